//! Test support for every suite that needs a database (feature `test-util`): a fresh, empty
//! database per test — a SQLite file in a temporary directory, or a PostgreSQL schema of its
//! own from `TEST_DATABASE_URL` (selected through the URL's `options=-c search_path=…`, which
//! a child process given that URL uses too) that is dropped on `Drop`, even after a panic — SQL
//! to check what was written, and the readings the suites share.

// Test support: a broken fixture or an unreachable test database should fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use traffic_model::reading::Reading;

use crate::{DatabaseUrl, Status, StatusCounts};

pub struct TestDatabase {
    url: DatabaseUrl,
    /// Scratch space for the test; holds the SQLite file.
    dir: tempfile::TempDir,
    pg_schema: Option<(String, String)>,
}

/// A connection of the test's own, past the store.
enum Conn {
    Postgres(Box<AsyncPgConnection>),
    Sqlite(SyncConnectionWrapper<SqliteConnection>),
}

#[derive(QueryableByName)]
struct Int {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

#[derive(QueryableByName)]
struct Str {
    #[diesel(sql_type = Nullable<Text>)]
    v: Option<String>,
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

    /// `None` (after saying so) when `TEST_DATABASE_URL` is unset or empty; panics when it is
    /// set but the server cannot be reached, so a broken CI database fails loudly.
    pub async fn postgres() -> Option<Self> {
        let Some(base) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            eprintln!("skipped: TEST_DATABASE_URL is not set, the PostgreSQL variant did not run");
            return None;
        };
        Some(Self::postgres_at(&base).await)
    }

    /// A fresh schema on the server (and database) of `base`, a `postgres://` URL; panics
    /// when it cannot be reached.
    pub async fn postgres_at(base: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_micros()
        );
        let mut admin = AsyncPgConnection::establish(base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"));
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = DatabaseUrl::Postgres(
            format!("{base}{separator}options=-c%20search_path%3D{schema}").into(),
        );
        Self {
            url,
            dir: tempfile::tempdir().expect("temp dir"),
            pg_schema: Some((base.to_owned(), schema)),
        }
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

    /// PostgreSQL's server URL (without the schema) and the test's schema; `None` on SQLite.
    pub fn postgres_schema(&self) -> Option<(&str, &str)> {
        self.pg_schema
            .as_ref()
            .map(|(base, schema)| (base.as_str(), schema.as_str()))
    }

    async fn connect(&self) -> Result<Conn, String> {
        match &self.url {
            DatabaseUrl::Postgres(url) => AsyncPgConnection::establish(url.expose_secret())
                .await
                .map(|conn| Conn::Postgres(Box::new(conn)))
                .map_err(|e| format!("connect to {}: {e}", self.url)),
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_string_lossy();
                let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(&path)
                    .await
                    .map_err(|e| format!("open {path}: {e}"))?;
                // Processes under test may be writing: wait for them rather than fail.
                conn.batch_execute("PRAGMA busy_timeout = 10000")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Conn::Sqlite(conn))
            }
        }
    }

    /// Runs SQL on a connection of its own, past the store and its validation.
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        let done = match self.connect().await? {
            Conn::Postgres(mut conn) => conn.batch_execute(sql).await,
            Conn::Sqlite(mut conn) => conn.batch_execute(sql).await,
        };
        done.map_err(|e| e.to_string())
    }

    /// Every row of `sql`, read on a connection of its own; panics on any error.
    async fn rows<T>(&self, sql: &str) -> Vec<T>
    where
        T: QueryableByName<Pg> + QueryableByName<Sqlite> + Send + 'static,
    {
        let query = diesel::sql_query(sql);
        let rows = match self.connect().await.unwrap_or_else(|e| panic!("{e}")) {
            Conn::Postgres(mut conn) => RunQueryDsl::load(query, &mut *conn).await,
            Conn::Sqlite(mut conn) => RunQueryDsl::load(query, &mut conn).await,
        };
        rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column, named `v`, of every row of `sql`, which must be an integer.
    pub async fn ints(&self, sql: &str) -> Vec<i64> {
        let rows: Vec<Int> = self.rows(sql).await;
        rows.into_iter().map(|r| r.v).collect()
    }

    /// The first column, named `v`, of every row of `sql`, which must be text (or null).
    pub async fn strings(&self, sql: &str) -> Vec<Option<String>> {
        let rows: Vec<Str> = self.rows(sql).await;
        rows.into_iter().map(|r| r.v).collect()
    }

    /// The single integer `sql` returns, named `v` (e.g. `SELECT count(*) AS v …`).
    pub async fn int(&self, sql: &str) -> i64 {
        let values = self.ints(sql).await;
        assert_eq!(values.len(), 1, "{sql} returned {values:?}");
        values[0]
    }

    /// Events matching the SQL condition `condition` on the `event_states` view (the columns
    /// of an event as the API shows it, plus `lease_owner` and `lease_until`).
    pub async fn count(&self, condition: &str) -> i64 {
        self.int(&format!(
            "SELECT count(*) AS v FROM event_states WHERE {condition}"
        ))
        .await
    }

    /// Events per status, read with SQL rather than through the store.
    pub async fn statuses(&self) -> StatusCounts {
        let rows = self
            .strings("SELECT status || ':' || count(*) AS v FROM event_states GROUP BY status")
            .await;
        let mut counts = StatusCounts::default();
        for row in rows.into_iter().flatten() {
            let (status, n) = row.split_once(':').expect("status:count");
            let status: Status = status.parse().unwrap();
            counts.add(status, n.parse().expect("a count"));
        }
        counts
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, schema)) = self.pg_schema.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(drop_schema(&base, &schema))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema: {dropped:?}");
        }
    }
}

/// How long one attempt to drop a test schema waits for its locks.
const DROP_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Drops `schema`. A connection left by a killed or frozen process may still hold locks in it;
/// rather than wait for it, each attempt gives up after [`DROP_LOCK_WAIT`], ends the sessions
/// holding locks on the schema or its tables, and tries again.
async fn drop_schema(
    base: &str,
    schema: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut admin = AsyncPgConnection::establish(base).await?;
    admin
        .batch_execute(&format!(
            "SET lock_timeout = {}",
            DROP_LOCK_WAIT.as_millis()
        ))
        .await?;
    let holders = format!(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
         LEFT JOIN pg_class c ON l.locktype = 'relation' AND c.oid = l.relation \
         WHERE l.pid <> pg_backend_pid() \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND (c.relnamespace = '{schema}'::regnamespace \
                OR (l.classid = 'pg_namespace'::regclass AND l.objid = '{schema}'::regnamespace))"
    );
    for attempt in 1.. {
        match admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
        {
            Ok(()) => break,
            Err(e) if attempt == 3 => return Err(e.into()),
            Err(_) => admin.batch_execute(&holders).await?,
        }
    }
    Ok(())
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
