//! A fresh, migrated store per test (see `tests/common/test_database.rs`) and test readings.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use mcp_classifier::store::{DatabaseUrl, Store, StoreConfig};
use serde_json::{Value, json};
use traffic_model::reading::Reading;

use crate::test_database::TestDatabase;

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
        match self.db.url() {
            DatabaseUrl::Postgres(url) => {
                let mut conn = AsyncPgConnection::establish(url)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.batch_execute(sql).await.map_err(|e| e.to_string())
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(|e| e.to_string())?;
                conn.batch_execute(sql).map_err(|e| e.to_string())
            }
        }
    }

    /// An unmigrated handle on the same database with a pool of its own (another process).
    pub fn open_store(&self) -> Store {
        Store::connect(StoreConfig::new(self.db.url().clone())).expect("second pool")
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
