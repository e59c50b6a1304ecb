//! Test support for every suite that needs a database (feature `test-util`): a fresh, empty
//! database per test — a SQLite file in a temporary directory, or a PostgreSQL schema of its
//! own from `TEST_DATABASE_URL` (selected through the URL's `options=-c search_path=…`) that is
//! dropped on `Drop`, even after a panic — and the readings the suites share.

// Test support: a broken fixture or an unreachable test database should fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use traffic_model::reading::Reading;

use crate::DatabaseUrl;

pub struct TestDatabase {
    url: DatabaseUrl,
    /// Scratch space for the test; holds the SQLite file.
    dir: tempfile::TempDir,
    pg_schema: Option<(String, String)>,
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite(dir.path().join("events.db"));
        Self {
            url,
            dir,
            pg_schema: None,
        }
    }

    /// `None` (after saying so) when `TEST_DATABASE_URL` is unset; panics when it is set but
    /// the server cannot be reached, so a broken CI database fails loudly.
    pub async fn postgres() -> Option<Self> {
        let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("skipped: TEST_DATABASE_URL is not set, the PostgreSQL variant did not run");
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
        let url = DatabaseUrl::Postgres(
            format!("{base}{separator}options=-c%20search_path%3D{schema}").into(),
        );
        Some(Self {
            url,
            dir: tempfile::tempdir().expect("temp dir"),
            pg_schema: Some((base, schema)),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The URL as `DATABASE_URL` takes it.
    pub fn database_url(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => url.expose_secret().to_owned(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestDatabase {
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
            })
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

/// `t0 + n` minutes.
pub fn minute(n: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(n)
}

/// A valid reading of `sensor` on `lane` observed at `at` (a moderately busy lane), as JSON.
pub fn reading_json_at(sensor: &str, lane: Option<u8>, at: DateTime<Utc>) -> Value {
    let mut body = json!({
        "sensor_id": sensor,
        "observed_at": at.to_rfc3339(),
        "vehicle_count": 12,
        "avg_speed_kmh": 87.5,
        "occupancy_pct": 8.25,
    });
    if let Some(lane) = lane {
        body["lane"] = json!(lane);
    }
    body
}

/// [`reading_json_at`] at `t0 + minutes`.
pub fn reading_json(sensor: &str, lane: Option<u8>, minutes: i64) -> Value {
    reading_json_at(sensor, lane, minute(minutes))
}

/// [`reading_json`] parsed, with the fields of `extra` merged in.
pub fn reading_with(sensor: &str, lane: Option<u8>, minutes: i64, extra: Value) -> Reading {
    let mut body = reading_json(sensor, lane, minutes);
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    Reading::from_json(body, Utc::now()).expect("valid test reading")
}

/// [`reading_json`] parsed.
pub fn reading(sensor: &str, lane: Option<u8>, minutes: i64) -> Reading {
    reading_with(sensor, lane, minutes, json!({}))
}
