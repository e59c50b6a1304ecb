//! End-to-end, PostgreSQL: a database connection that dies or is cut off in the middle of a
//! statement answers `503` with `Retry-After` — never `500` — and the pool recovers by itself.
//!
//! Each case holds an exclusive lock on `events` from the test's own connection so that the
//! service's INSERT is caught mid-statement, then ends that statement the way a server
//! restart, an operator or a timeout would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use std::sync::{Arc, Mutex};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::Value;
use smart_traffic_e2e::{Ingest, TestDatabase, eventually, reading};
use tokio::net::{TcpListener, TcpStream};

/// How the statement caught waiting for the lock is ended.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// `pg_terminate_backend`: what a server shutdown or restart does to every connection.
    Terminate,
    /// `pg_cancel_backend`: an operator cancelling the statement.
    Cancel,
    /// The service's own `statement_timeout` (`DATABASE_STATEMENT_TIMEOUT_S`).
    StatementTimeout,
    /// The network between the service and the database cut: the connection ends without a
    /// word (no error from the server), while the server may still go on to commit.
    Severed,
}

/// A TCP relay between the service and PostgreSQL whose links can be cut.
struct Relay {
    port: u16,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let accepted = Arc::clone(&links);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                accepted.lock().unwrap().push(link);
            }
        });
        Self { port, links }
    }

    /// Closes every link open now; later connections go through.
    fn sever(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// Blocks the service's writes: an open transaction holding `events` exclusively.
async fn lock_events(db: &TestDatabase) -> AsyncPgConnection {
    let mut conn = AsyncPgConnection::establish(&db.database_url())
        .await
        .unwrap();
    conn.batch_execute("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    conn
}

/// The service's backend waiting on the lock, once it is there.
async fn waiting_backend(db: &TestDatabase) -> i64 {
    eventually(
        "the service waiting on the lock",
        Duration::from_secs(10),
        || async {
            let pids = db
                .ints(
                    "SELECT pid::bigint AS v FROM pg_stat_activity \
                 WHERE application_name = 'smart-traffic' AND wait_event_type = 'Lock'",
                )
                .await;
            pids.first().copied().ok_or_else(|| "none yet".to_owned())
        },
    )
    .await
}

async fn post(ingest: &Ingest, body: &Value) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(ingest.url("/v1/events"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cut_off_by_the_database_is_answered_503_and_the_pool_recovers() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let mut url = reqwest::Url::parse(&db.database_url()).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let relay = Relay::start(upstream).await;
    url.set_port(Some(relay.port)).unwrap();
    let ingest = Ingest::start(
        "ingest",
        &db,
        &[
            ("DATABASE_URL", url.as_str()),
            ("CLASSIFY_WORKERS", "0"),
            ("DATABASE_STATEMENT_TIMEOUT_S", "2"),
        ],
    )
    .await;
    let cuts = [
        Cut::Terminate,
        Cut::Cancel,
        Cut::StatementTimeout,
        Cut::Severed,
    ];
    for (minute, cut) in cuts.into_iter().enumerate() {
        let body = reading("cut", minute as i64);
        let lock = lock_events(&db).await;
        let posting = post(&ingest, &body);
        let cutting = async {
            let pid = waiting_backend(&db).await;
            match cut {
                Cut::Terminate => {
                    db.ints(&format!(
                        "SELECT pg_terminate_backend({pid})::int::bigint AS v"
                    ))
                    .await;
                }
                Cut::Cancel => {
                    db.ints(&format!(
                        "SELECT pg_cancel_backend({pid})::int::bigint AS v"
                    ))
                    .await;
                }
                Cut::StatementTimeout => {}
                Cut::Severed => relay.sever(),
            }
        };
        let ((status, retry_after, problem), ()) = tokio::join!(posting, cutting);
        assert_eq!(status, 503, "{cut:?}: {problem}");
        assert_eq!(retry_after.as_deref(), Some("5"), "{cut:?}");
        assert_eq!(
            problem["type"], "/problems/database-unavailable",
            "{problem}"
        );
        drop(lock);

        // The pool replaces what it lost by itself, and the reading is stored once when
        // re-sent. A severed INSERT may still have committed on the server: then the re-send
        // finds it (200) instead of storing it (201).
        let (status, _, event) = post(&ingest, &body).await;
        let expected: &[u16] = match cut {
            Cut::Severed => &[200, 201],
            _ => &[201],
        };
        assert!(expected.contains(&status), "{cut:?}: {status} {event}");
    }
    assert_eq!(db.count("sensor_id = 'cut'").await, cuts.len() as i64);
    let log = ingest.proc().log();
    assert!(!log.contains("internal error"), "{log}");
}
