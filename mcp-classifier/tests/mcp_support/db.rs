//! A fresh, migrated store per test: a temporary SQLite file, or a PostgreSQL schema of its own
//! (from `TEST_DATABASE_URL`) dropped when the test ends (`traffic_store::test_util`).

use chrono::Utc;
use serde_json::Value;
use traffic_model::reading::Reading;
use traffic_store::{Event, Store, StoreConfig};

use traffic_store::test_util::{TestDatabase, reading_json};

pub struct TestDb {
    db: TestDatabase,
    store: Store,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        Self::open(TestDatabase::sqlite()).await
    }

    /// `None` (after saying so) when `TEST_DATABASE_URL` is unset.
    pub async fn postgres() -> Option<Self> {
        Some(Self::open(TestDatabase::postgres().await?).await)
    }

    async fn open(db: TestDatabase) -> Self {
        let store = Store::connect(StoreConfig::new(db.url().clone())).expect("pool");
        store.migrate().await.expect("migrations");
        Self { db, store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The URL the binary gets as `DATABASE_URL`.
    pub fn url(&self) -> String {
        self.db.database_url()
    }

    /// Stores a reading given as JSON and returns the stored event.
    pub async fn insert(&self, reading: &Value) -> Event {
        let reading = Reading::from_json(reading.clone(), Utc::now()).expect("valid reading");
        let inserted = self.store.insert(reading).await.expect("insert");
        assert!(!inserted.duplicate, "test readings are distinct");
        inserted.event
    }

    /// Stores a reading of `sensor` on `lane` at `t0` plus each of `minutes`; returns them.
    pub async fn insert_minutes(
        &self,
        sensor: &str,
        lane: Option<u8>,
        minutes: std::ops::Range<i64>,
    ) -> Vec<Value> {
        let mut readings = Vec::new();
        for minute in minutes {
            let reading = reading_json(sensor, lane, minute);
            self.insert(&reading).await;
            readings.push(reading);
        }
        readings
    }
}

/// Two tests of `case(&TestDb)`: `$sqlite` on a temporary SQLite file, `$postgres` on a
/// PostgreSQL schema of its own (skipped, saying so, when `TEST_DATABASE_URL` is unset). Not
/// every suite that shares this module uses it.
#[allow(unused_macros)]
macro_rules! on_sqlite_and_postgres {
    ($case:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $case(&$crate::mcp_support::db::TestDb::sqlite().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            if let Some(db) = $crate::mcp_support::db::TestDb::postgres().await {
                $case(&db).await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_sqlite_and_postgres;
