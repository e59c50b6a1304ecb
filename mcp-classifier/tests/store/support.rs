//! A fresh, migrated database per test: a temporary SQLite file, or a PostgreSQL schema of its
//! own (from `TEST_DATABASE_URL`) that is dropped when the test ends, even by a panic.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use mcp_classifier::reading::Reading;
use mcp_classifier::store::{DatabaseUrl, Store, StoreConfig};
use serde_json::{Value, json};

pub struct TestDb {
    url: DatabaseUrl,
    store: Store,
    _sqlite_dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite(migrate: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite(dir.path().join("events.db"));
        let store = open(&url, migrate).await;
        Self {
            url,
            store,
            _sqlite_dir: Some(dir),
            pg_schema: None,
        }
    }

    /// `None` (after saying so) when `TEST_DATABASE_URL` is unset; panics when it is set but
    /// the server cannot be reached, so a broken CI database fails loudly.
    pub async fn postgres(migrate: bool) -> Option<Self> {
        let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("skipped: TEST_DATABASE_URL is not set, PostgreSQL store tests did not run");
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "test_{}_{}_{}",
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
        let store = open(&url, migrate).await;
        Some(Self {
            url,
            store,
            _sqlite_dir: None,
            pg_schema: Some((base, schema)),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// An unmigrated handle on the same database with a pool of its own (another process).
    pub fn open_store(&self) -> Store {
        Store::connect(StoreConfig::new(self.url.clone())).expect("second pool")
    }
}

async fn open(url: &DatabaseUrl, migrate: bool) -> Store {
    let store = Store::connect(StoreConfig::new(url.clone())).expect("pool");
    if migrate {
        store.migrate().await.expect("migrations");
    }
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

/// A fixed instant well in the past, so readings never trip the future-skew rule.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T07:00:00Z")
        .expect("t0")
        .with_timezone(&Utc)
}

pub fn minute(n: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(n)
}

/// A valid reading of `sensor` on `lane` at `t0 + minutes`, with extra fields merged in.
pub fn reading_with(sensor: &str, lane: Option<u8>, minutes: i64, extra: Value) -> Reading {
    let mut body = json!({
        "sensor_id": sensor,
        "observed_at": minute(minutes).to_rfc3339(),
        "vehicle_count": 12,
        "avg_speed_kmh": 87.5,
        "occupancy_pct": 8.25,
    });
    if let Some(lane) = lane {
        body["lane"] = json!(lane);
    }
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    Reading::from_json(body, Utc::now()).expect("valid test reading")
}

pub fn reading(sensor: &str, lane: Option<u8>, minutes: i64) -> Reading {
    reading_with(sensor, lane, minutes, json!({}))
}
