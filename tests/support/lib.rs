//! Shared helpers of the end-to-end suite (`tests/*.rs` of the `smart-traffic-e2e` package):
//! the built binaries, child processes killed on drop, and an HTTP client for a running
//! `ingest`; fresh databases are `traffic_store::test_util`'s.
//!
//! The suite runs the REAL binaries (`target/<profile>/ingest`, `target/<profile>/mcp-classifier`),
//! each in an empty temporary directory with a clean environment, against a fresh SQLite file
//! or a fresh PostgreSQL schema (of `TEST_DATABASE_URL`, which the processes select through
//! their `DATABASE_URL`; dropped afterwards). See [`binaries`] for how the binaries get built.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binaries;
mod ingest;
pub mod ledger;
pub mod pg_server;
mod process;
pub mod raw;
mod readings;
mod redis_server;

pub use binaries::{Binaries, binaries};
pub use ingest::{Classifier, Ingest, metric};
pub use process::{Proc, free_port};
pub use readings::{at, reading};
pub use redis_server::RedisServer;
pub use traffic_store::test_util::TestDatabase;

use std::future::Future;
use std::time::{Duration, Instant};

/// The workspace root (this package's manifest directory).
pub const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");

/// How long a reading may take from POST to `classified` in the simple cases.
pub const CLASSIFIED_WITHIN: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` saying `what`
/// (with the last value seen, for the failure message).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: not reached within {timeout:?}; last seen: {last}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads `response`'s body (a live stream) until it holds `needle` or `within` passes; what
/// it read.
pub async fn read_until(
    response: &mut reqwest::Response,
    needle: &str,
    within: Duration,
) -> String {
    let mut body = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while !body.contains(needle) {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => body.push_str(&String::from_utf8_lossy(&bytes)),
            _ => break,
        }
    }
    body
}

/// Waits up to `timeout` (saying `what` if it runs out) until `n` events are classified,
/// failing at once should any end `failed` (which would never change).
pub async fn all_classified(db: &TestDatabase, what: &str, n: u64, timeout: Duration) {
    eventually(what, timeout, || async {
        let statuses = db.statuses().await;
        assert_eq!(statuses.failed, 0, "{statuses:?}");
        if statuses.classified == n {
            Ok(())
        } else {
            Err(format!("{statuses:?}"))
        }
    })
    .await;
}

/// Generates one test per backend for each `case(db: TestDatabase)` of the calling file:
/// `sqlite::case` on a temporary file, and `postgres::case` on a fresh schema of
/// `TEST_DATABASE_URL` (skipped, saying so, when it is unset; failing when it is unreachable).
/// Attributes written before a case (e.g. `#[ignore = "…"]`) go on both tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($(#[$meta:meta])* $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::TestDatabase::sqlite()).await;
                }
            )*
        }

        mod postgres {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(db) = $crate::TestDatabase::postgres().await {
                        super::$case(db).await;
                    }
                }
            )*
        }
    };
}
