//! A fresh database per test, and SQL to check what the processes wrote.
//!
//! Separate processes need a URL they can open themselves, so PostgreSQL tests get a whole
//! database (`CREATE DATABASE e2e_…` on the server of `TEST_DATABASE_URL`) rather than a
//! schema, dropped `WITH (FORCE)` on `Drop` (even after a panic, and even if a killed process
//! left connections behind). SQLite tests get a file in a temporary directory.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    backend: Backend,
    url: String,
    /// PostgreSQL: the admin URL (`TEST_DATABASE_URL`) and the database to drop.
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
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

/// Runs `$body` with `$conn` bound to a fresh connection to `$db`, whichever the backend.
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db.backend {
            Backend::Postgres => {
                let mut $conn = AsyncPgConnection::establish(&$db.url)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {}: {e}", $db.url));
                $body
            }
            Backend::Sqlite => {
                let path = $db.url.strip_prefix("sqlite://").expect("a sqlite:// URL");
                let mut $conn = SyncConnectionWrapper::<SqliteConnection>::establish(path)
                    .await
                    .unwrap_or_else(|e| panic!("open {path}: {e}"));
                $conn
                    .batch_execute("PRAGMA busy_timeout = 10000")
                    .await
                    .expect("busy_timeout");
                $body
            }
        }
    };
}

impl TestDb {
    /// A SQLite file in a fresh temporary directory (created by the first `ingest`).
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("e2e.db").display());
        Self {
            backend: Backend::Sqlite,
            url,
            pg: None,
            _dir: Some(dir),
        }
    }

    /// A fresh database on the server of `TEST_DATABASE_URL`; `None` (after saying so) when it
    /// is unset. Panics when it is set but the server cannot be reached, so a broken CI
    /// database fails loudly instead of skipping.
    pub async fn postgres() -> Option<Self> {
        let Some(admin) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!(
                "skipped: TEST_DATABASE_URL is not set, this PostgreSQL end-to-end test did not run"
            );
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "e2e_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros()
        );
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
            });
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let mut url = reqwest::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(Self {
            backend: Backend::Postgres,
            url: url.to_string(),
            pg: Some((admin, name)),
            _dir: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The `DATABASE_URL` of the processes under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first column of every row of `sql`, which must be an integer.
    pub async fn ints(&self, sql: &str) -> Vec<i64> {
        let rows: Vec<Int> = with_conn!(self, |conn| diesel::sql_query(sql)
            .load(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")));
        rows.into_iter().map(|r| r.v).collect()
    }

    /// The first column of every row of `sql`, which must be text (or null).
    pub async fn strings(&self, sql: &str) -> Vec<Option<String>> {
        let rows: Vec<Str> = with_conn!(self, |conn| diesel::sql_query(sql)
            .load(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")));
        rows.into_iter().map(|r| r.v).collect()
    }

    /// The single integer `sql` returns, named `v` (e.g. `SELECT count(*) AS v …`).
    pub async fn int(&self, sql: &str) -> i64 {
        let values = self.ints(sql).await;
        assert_eq!(values.len(), 1, "{sql} returned {values:?}");
        values[0]
    }

    /// Events matching the SQL condition `condition`.
    pub async fn count(&self, condition: &str) -> i64 {
        self.int(&format!(
            "SELECT count(*) AS v FROM events WHERE {condition}"
        ))
        .await
    }

    /// Events by status: (pending, processing, classified, failed).
    pub async fn statuses(&self) -> Statuses {
        let rows = self
            .strings("SELECT status || ':' || count(*) AS v FROM events GROUP BY status")
            .await;
        let mut statuses = Statuses::default();
        for row in rows.into_iter().flatten() {
            let (status, n) = row.split_once(':').expect("status:count");
            let n: i64 = n.parse().expect("a count");
            match status {
                "pending" => statuses.pending = n,
                "processing" => statuses.processing = n,
                "classified" => statuses.classified = n,
                "failed" => statuses.failed = n,
                other => panic!("unknown status {other:?}"),
            }
        }
        statuses
    }
}

/// Events per queue status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Statuses {
    pub pending: i64,
    pub processing: i64,
    pub classified: i64,
    pub failed: i64,
}

impl Statuses {
    pub fn total(&self) -> i64 {
        self.pending + self.processing + self.classified + self.failed
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop may run inside the test's runtime, which cannot block on itself: use a thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&admin).await?;
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database: {dropped:?}");
        }
    }
}
