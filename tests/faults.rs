//! End-to-end: the parts `ingest` depends on fail under a sustained ingest, and nothing
//! acknowledged is lost. Each case keeps the client's own ledger (every answer, and every
//! reading a `2xx` acknowledged), then checks each acknowledged reading in the database until it
//! is classified. Requests the fault catches fail fast with `503` and `Retry-After`, never `500`,
//! and none waits past its deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use smart_traffic_e2e::ledger::{Ledger, Load};
use smart_traffic_e2e::pg_server::{PgServer, StopMode};
use smart_traffic_e2e::{Classifier, Ingest, RedisServer, TestDatabase, free_port, read_until};

/// The request deadline of the load's clients: far above any answer the service may give.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long every acknowledged reading may take to be classified once the fault is over.
const SETTLE: Duration = Duration::from_secs(90);

const UNAVAILABLE: (u16, &str) = (503, "/problems/database-unavailable");
const STORAGE_FULL: (u16, &str) = (507, "/problems/storage-full");

/// Sleeps without holding up the load's tasks.
async fn pause(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// Runs blocking `f` (a server stop or start) off the runtime's workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Every answer sent after `since` (plus `grace` for the pool to notice) is a `2xx`.
fn recovered(ledger: &Ledger, since: Instant, grace: Duration) {
    let late: Vec<_> = ledger
        .answers
        .iter()
        .filter(|a| a.at > since + grace)
        .collect();
    assert!(
        late.len() > 10,
        "too few requests after recovery: {}",
        late.len()
    );
    let failed: Vec<_> = late
        .iter()
        .filter(|a| !(200..300).contains(&a.status))
        .collect();
    assert!(
        failed.is_empty(),
        "not recovered {grace:?} after: {failed:?}"
    );
}

/// Posts a reading of `sensor` to `ingest` and asserts that `stream` (a live stream of that
/// sensor) delivers it classified within 15 s.
async fn delivers(stream: &mut reqwest::Response, ingest: &Ingest, sensor: &str) {
    let id = ingest.create(&smart_traffic_e2e::reading(sensor, 0)).await;
    let needle = format!("\"id\":{id},");
    let body = read_until(stream, &needle, Duration::from_secs(15)).await;
    assert!(
        body.contains(&needle),
        "the stream never got event {id}: {body}"
    );
}

/// PostgreSQL stopped for three seconds (a planned restart: sessions ended, new connections
/// refused), then crashed (`pg_ctl stop -m immediate`) and started again, while four clients
/// post single readings and batches. During each outage requests get `503` with `Retry-After`
/// within the pool's acquire timeout (2 s) plus the statement timeout; the pool reconnects by
/// itself; every acknowledged reading is stored and classified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_and_crashed_during_sustained_ingest_loses_no_acknowledged_reading() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let db = pg.database().await;
    let ingest = Ingest::start(
        "ingest",
        &db,
        &[
            ("DATABASE_ACQUIRE_TIMEOUT_S", "2"),
            ("DATABASE_STATEMENT_TIMEOUT_S", "5"),
            // Claims whose results the outage kept from being recorded wait out their lease.
            ("CLASSIFY_LEASE_S", "10"),
        ],
    )
    .await;
    let load = Load::start(
        "pg",
        &[ingest.url("")],
        4,
        Duration::from_millis(20),
        CLIENT_TIMEOUT,
    );
    let reads = Load::reads(
        &[ingest.url("")],
        &[
            "/v1/events?limit=20",
            "/v1/sensors",
            "/v1/sensors/pg-0",
            "/v1/sensors/pg-0/series",
            "/v1/state",
            "/v1/transitions",
        ],
        Duration::from_millis(20),
        CLIENT_TIMEOUT,
    );
    let mut stream = reqwest::Client::new()
        .get(ingest.url("/v1/stream?sensor_id=pg-sse"))
        .send()
        .await
        .unwrap();
    read_until(&mut stream, "retry:", Duration::from_secs(5)).await;
    pause(Duration::from_secs(2)).await;
    blocking(|| pg.stop(StopMode::Fast));
    pause(Duration::from_secs(3)).await;
    blocking(|| pg.launch());
    pause(Duration::from_secs(3)).await;
    blocking(|| pg.stop(StopMode::Immediate));
    pause(Duration::from_secs(2)).await;
    blocking(|| pg.launch());
    let back = Instant::now();
    pause(Duration::from_secs(5)).await;
    let ledger = load.finish().await;
    let read_ledger = reads.finish().await;

    for (what, ledger) in [("writes", &ledger), ("reads", &read_ledger)] {
        let statuses = ledger.statuses();
        eprintln!("{what}: {statuses:?}, slowest {:?}", ledger.slowest());
        assert!(
            statuses.get(&503).copied().unwrap_or(0) > 0,
            "no {what} met the outage: {statuses:?}"
        );
        ledger.assert_fast_failures(&[UNAVAILABLE], Duration::from_secs(2 + 5 + 3));
        recovered(ledger, back, Duration::from_secs(2));
    }
    ledger.assert_all_classified(&db, SETTLE).await;

    // The live stream opened before the outage still delivers what is classified after it.
    delivers(&mut stream, &ingest, "pg-sse").await;
    let log = ingest.proc().log();
    assert!(
        !log.contains("internal error"),
        "{}",
        ingest.proc().log_tail(40)
    );
}

/// A tmpfs mounted over a directory for the length of a test (root only), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None` (saying so) when the test does not run as root and cannot mount.
    fn mount(dir: &std::path::Path, size: &str) -> Option<Self> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        if !mounted.status.success() {
            eprintln!(
                "skipped: mounting a small tmpfs needs root ({})",
                String::from_utf8_lossy(&mounted.stderr).trim()
            );
            return None;
        }
        Some(Self(dir.to_owned()))
    }

    /// Bytes free on it.
    fn available(&self) -> u64 {
        let df = std::process::Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .expect("run df");
        let text = String::from_utf8_lossy(&df.stdout);
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A SQLite deployment whose disk fills up: its database lives on a 16 MiB tmpfs, a file
/// takes all but 256 KiB of it, and four clients post until writes meet the full disk. They are
/// refused `507 storage-full` with `Retry-After` (or `503` while SQLite reports the failed
/// write as an I/O error), never `500`; once the file is removed, writes are taken again, every
/// acknowledged reading is classified, and `PRAGMA integrity_check` finds the file intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_sqlite_is_refused_507_and_recovers_with_no_corruption() {
    let db = TestDatabase::sqlite();
    let Some(disk) = Tmpfs::mount(db.dir(), "16m") else {
        return;
    };
    // Claims whose results the full disk kept from being recorded wait out their lease.
    let ingest = Ingest::start("ingest", &db, &[("CLASSIFY_LEASE_S", "10")]).await;
    let filler = db.dir().join("filler");
    let fill = disk.available().saturating_sub(256 * 1024);
    let file = std::fs::File::create(&filler).unwrap();
    file.set_len(0).unwrap();
    std::io::Write::write_all(&mut &file, &vec![0u8; fill as usize]).unwrap();
    drop(file);

    let load = Load::start(
        "full",
        &[ingest.url("")],
        4,
        Duration::from_millis(5),
        CLIENT_TIMEOUT,
    );
    let refused = async {
        loop {
            let log = ingest.proc().log();
            if log.contains("database out of storage") {
                break;
            }
            pause(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), refused)
        .await
        .expect("writes never met the full disk");
    pause(Duration::from_secs(2)).await;
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    pause(Duration::from_secs(5)).await;
    let ledger = load.finish().await;

    let statuses = ledger.statuses();
    eprintln!("answers: {statuses:?}, slowest {:?}", ledger.slowest());
    assert!(
        statuses.get(&507).copied().unwrap_or(0) > 0,
        "no write was refused 507: {statuses:?}"
    );
    assert!(ledger.answers.iter().all(|a| a.status != 507
        || (a.retry_after.as_deref() == Some("30")
            && a.problem_type.as_deref() == Some("/problems/storage-full"))));
    ledger.assert_fast_failures(&[UNAVAILABLE, STORAGE_FULL], Duration::from_secs(10));
    recovered(&ledger, freed, Duration::from_secs(2));
    ledger.assert_all_classified(&db, SETTLE).await;
    assert_eq!(
        db.strings("SELECT integrity_check AS v FROM pragma_integrity_check()")
            .await,
        [Some("ok".to_owned())]
    );
    let log = ingest.proc().log();
    assert!(
        !log.contains("internal error"),
        "{}",
        ingest.proc().log_tail(40)
    );
}

/// Two replicas share PostgreSQL and a Redis server (the rate limits, the cache, the live
/// stream's fan-out); Redis is killed for three seconds and started again, empty, under a
/// sustained ingest on both. No write fails (Redis only helps them), and once Redis is back an
/// event classified on one replica reaches a stream client of the other again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_during_sustained_ingest_fails_no_write() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let mut redis = RedisServer::start().await;
    let env = [
        ("REDIS_URL", redis.url()),
        ("REDIS_TIMEOUT_MS", "200".to_owned()),
        ("INGEST_RATE_LIMIT", "100000".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let watcher_env: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .chain([("CLASSIFY_WORKERS", "0")])
        .collect();
    let a = Ingest::start("ingest-a", &db, &env).await;
    let b = Ingest::start("ingest-b", &db, &watcher_env).await;
    let load = Load::start(
        "redis",
        &[a.url(""), b.url("")],
        4,
        Duration::from_millis(20),
        CLIENT_TIMEOUT,
    );
    pause(Duration::from_secs(2)).await;
    redis.kill();
    pause(Duration::from_secs(3)).await;
    redis.restart().await;
    pause(Duration::from_secs(3)).await;
    let ledger = load.finish().await;

    let statuses = ledger.statuses();
    eprintln!("answers: {statuses:?}, slowest {:?}", ledger.slowest());
    ledger.assert_all_acknowledged();
    assert!(
        ledger.slowest() < Duration::from_secs(5),
        "{:?}",
        ledger.slowest()
    );
    ledger.assert_all_classified(&db, SETTLE).await;

    // The fan-out works again: b's stream client sees what a classifies.
    let mut stream = reqwest::Client::new()
        .get(b.url("/v1/stream?sensor_id=after-redis"))
        .send()
        .await
        .unwrap();
    read_until(&mut stream, "retry:", Duration::from_secs(5)).await;
    delivers(&mut stream, &a, "after-redis").await;
    for replica in [&a, &b] {
        let errors = smart_traffic_e2e::metric(
            &replica.metrics().await,
            "smart_traffic_redis_errors_total",
            &[],
        );
        eprintln!("{}: {errors} Redis errors counted", replica.proc().name());
    }
}

/// The child of `pid` (the stdio classifier of an `ingest`), if it has one.
fn child_of(pid: u32) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|task| {
        let children = std::fs::read_to_string(task.path().join("children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    })
}

/// The classifier killed with SIGKILL under a sustained ingest, on each transport a process can
/// be killed on: the stdio child (which `ingest` starts again) and a remote `mcp-classifier
/// serve` (started again on its port after three seconds). Writes never notice; every
/// acknowledged reading is classified. (The in-process classifier dies only with its replica:
/// `tests/replicas.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classifier_killed_on_each_transport_during_sustained_ingest_loses_nothing() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    // stdio: the child dies twice.
    let command = format!(
        "{} stdio",
        smart_traffic_e2e::binaries().classifier.display()
    );
    let stdio = Ingest::start("ingest-stdio", &db, &[("MCP_COMMAND", &command)]).await;
    let load = Load::start(
        "stdio",
        &[stdio.url("")],
        3,
        Duration::from_millis(20),
        CLIENT_TIMEOUT,
    );
    let mut killed = Vec::new();
    for _ in 0..2 {
        pause(Duration::from_secs(2)).await;
        let child = smart_traffic_e2e::eventually(
            "the stdio classifier running",
            Duration::from_secs(20),
            || async {
                child_of(stdio.proc().pid())
                    .filter(|c| !killed.contains(c))
                    .ok_or_else(String::new)
            },
        )
        .await;
        let status = std::process::Command::new("kill")
            .args(["-KILL", &child.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        killed.push(child);
    }
    pause(Duration::from_secs(3)).await;
    let ledger = load.finish().await;
    eprintln!("stdio answers: {:?}", ledger.statuses());
    ledger.assert_all_acknowledged();
    ledger.assert_all_classified(&db, SETTLE).await;
    let restarted = child_of(stdio.proc().pid());
    assert!(
        restarted.is_some_and(|c| !killed.contains(&c)),
        "no new child: {restarted:?}"
    );

    // Streamable HTTP: the remote classifier down for three seconds.
    let port = free_port();
    let mcp_url = format!("http://127.0.0.1:{port}/mcp");
    let remote = Ingest::start("ingest-http", &db, &[("MCP_URL", &mcp_url)]).await;
    let database_url = db.database_url();
    let classifier_env = [("DATABASE_URL", database_url.as_str())];
    let classifier = Classifier::serve(port, &classifier_env);
    let load = Load::start(
        "http",
        &[remote.url("")],
        3,
        Duration::from_millis(20),
        CLIENT_TIMEOUT,
    );
    pause(Duration::from_secs(2)).await;
    drop(classifier);
    pause(Duration::from_secs(3)).await;
    let _classifier = Classifier::serve(port, &classifier_env);
    pause(Duration::from_secs(3)).await;
    let ledger = load.finish().await;
    eprintln!("http answers: {:?}", ledger.statuses());
    ledger.assert_all_acknowledged();
    ledger.assert_all_classified(&db, SETTLE).await;
}

/// libfaketime, which shifts a process's clock (`FAKETIME`).
fn faketime() -> Option<String> {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|dir| dir.path().join("faketime/libfaketime.so.1"))
        .find(|lib| lib.exists());
    if found.is_none() {
        eprintln!("skipped: libfaketime is not installed (Debian's faketime)");
    }
    found.map(|lib| lib.display().to_string())
}

/// Two replicas whose clocks disagree by ten seconds — one 5 s behind, one 5 s ahead — share
/// the queue under a sustained ingest. Leases (60 s) outlast the difference, so neither takes
/// the other's claims: every acknowledged reading is classified once (`attempts = 1`) and
/// none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_clocks_seconds_apart_classify_everything_once() {
    let Some(lib) = faketime() else {
        return;
    };
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let skewed = |name: &str, offset: &str| {
        let lib = lib.clone();
        let db = &db;
        let name = name.to_owned();
        let offset = offset.to_owned();
        async move {
            let env = [
                ("LD_PRELOAD", lib.as_str()),
                ("FAKETIME", offset.as_str()),
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                ("CLASSIFY_LEASE_S", "60"),
            ];
            Ingest::start(&name, db, &env).await
        }
    };
    let slow = skewed("ingest-behind", "-5s").await;
    let fast = skewed("ingest-ahead", "+5s").await;
    let load = Load::start(
        "skew",
        &[slow.url(""), fast.url("")],
        4,
        Duration::from_millis(10),
        CLIENT_TIMEOUT,
    );
    pause(Duration::from_secs(8)).await;
    let ledger = load.finish().await;
    ledger.assert_all_acknowledged();
    ledger.assert_all_classified(&db, SETTLE).await;
    let statuses = db.statuses().await;
    assert_eq!(statuses.failed, 0, "{statuses:?}");
    assert_eq!(
        db.int("SELECT count(*) AS v FROM classifications WHERE attempts <> 1")
            .await,
        0,
        "a reading was claimed more than once"
    );
    // Both replicas classified (the test is about their sharing the queue).
    for replica in [&slow, &fast] {
        let calls = smart_traffic_e2e::metric(
            &replica.metrics().await,
            "smart_traffic_classifier_calls_total",
            &[],
        );
        assert!(
            calls > 0.0,
            "{} made no classifier call",
            replica.proc().name()
        );
    }
}
