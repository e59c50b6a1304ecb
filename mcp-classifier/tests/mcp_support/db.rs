//! A fresh, migrated store per test: a temporary SQLite file, or a PostgreSQL schema of its own
//! (from `TEST_DATABASE_URL`) dropped when the test ends, even by a panic. The same approach as
//! `tests/store/support.rs`.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use mcp_classifier::reading::Reading;
use mcp_classifier::store::{DatabaseUrl, Event, Store, StoreConfig};
use serde_json::Value;

pub struct TestDb {
    url: DatabaseUrl,
    store: Store,
    _sqlite_dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite(dir.path().join("events.db"));
        let store = open(&url).await;
        Self {
            url,
            store,
            _sqlite_dir: Some(dir),
            pg_schema: None,
        }
    }

    /// `None` (after saying so) when `TEST_DATABASE_URL` is unset; panics when it is set but
    /// the server cannot be reached, so a broken CI database fails loudly.
    pub async fn postgres() -> Option<Self> {
        let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!(
                "skipped: TEST_DATABASE_URL is not set, the PostgreSQL variant of this test did not run"
            );
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "test_mcp_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_micros()
        );
        let mut admin = AsyncPgConnection::establish(&base)
            .await
            .unwrap_or_else(|e| {
                panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
            });
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = DatabaseUrl::Postgres(format!(
            "{base}{separator}options=-c%20search_path%3D{schema}"
        ));
        // From here on a panic drops the schema.
        let mut db = Self {
            url: url.clone(),
            store: Store::connect(StoreConfig::new(url.clone())).expect("pool"),
            _sqlite_dir: None,
            pg_schema: Some((base, schema)),
        };
        db.store = open(&url).await;
        Some(db)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The URL the binary gets as `DATABASE_URL`.
    pub fn url(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => url.clone(),
        }
    }

    /// Stores a reading given as JSON and returns the stored event.
    pub async fn insert(&self, reading: &Value) -> Event {
        let reading = Reading::from_json(reading.clone(), Utc::now()).expect("valid reading");
        let inserted = self.store.insert(reading).await.expect("insert");
        assert!(!inserted.duplicate, "test readings are distinct");
        inserted.event
    }
}

async fn open(url: &DatabaseUrl) -> Store {
    let store = Store::connect(StoreConfig::new(url.clone())).expect("pool");
    store.migrate().await.expect("migrations");
    store
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.pg_schema.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = AsyncPgConnection::establish(&base).await?;
                admin
                    .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema: {dropped:?}");
        }
    }
}
