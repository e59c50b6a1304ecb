//! A fresh, migrated store per test (over `traffic_store::test_util`) and its test readings.

use traffic_store::{Store, StoreConfig};

use traffic_store::test_util::TestDatabase;
pub use traffic_store::test_util::{minute, reading, reading_with};

pub struct TestDb {
    db: TestDatabase,
    store: Store,
}

impl TestDb {
    pub async fn sqlite(migrate: bool) -> Self {
        Self::open(TestDatabase::sqlite(), migrate).await
    }

    /// `None` (after saying so) when `TEST_DATABASE_URL` is unset.
    pub async fn postgres(migrate: bool) -> Option<Self> {
        Some(Self::open(TestDatabase::postgres().await?, migrate).await)
    }

    async fn open(db: TestDatabase, migrate: bool) -> Self {
        let store = Store::connect(StoreConfig::new(db.url().clone())).expect("pool");
        if migrate {
            store.migrate().await.expect("migrations");
        }
        Self { db, store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs SQL on a connection of its own, past the store and its validation.
    pub async fn execute_raw(&self, sql: &str) -> Result<(), String> {
        self.db.execute(sql).await
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.db.url(), traffic_store::DatabaseUrl::Postgres(_))
    }

    /// The first column, named `v`, of every row of `sql`, as text.
    pub async fn strings(&self, sql: &str) -> Vec<Option<String>> {
        self.db.strings(sql).await
    }

    /// The single integer `sql` returns, named `v`.
    pub async fn int(&self, sql: &str) -> i64 {
        self.db.int(sql).await
    }

    /// An unmigrated handle on the same database with a pool of its own (another process).
    pub fn open_store(&self) -> Store {
        Store::connect(StoreConfig::new(self.db.url().clone())).expect("second pool")
    }
}
