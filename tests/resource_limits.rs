//! End-to-end: hostile bodies and requests cannot exhaust the running `ingest`'s memory, file
//! descriptors or metrics, and other clients keep being served meanwhile. Memory and
//! descriptors are read from `/proc`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::Duration;

use smart_traffic_e2e::raw::{exchange, open, open_sockets, read_to_close, rss_kib, status_of};
use smart_traffic_e2e::{Ingest, eventually, metric, reading};

/// A gzip stream inflating to `mib` MiB of spaces: one compressed MiB repeated as members,
/// so it is built in an instant (about 1 KiB per MiB).
fn bomb(mib: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![b' '; 1 << 20]).unwrap();
    encoder.finish().unwrap().repeat(mib)
}

/// `body` as one chunk of a chunked request (no `Content-Length` to refuse it by).
fn chunked(path: &str, encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Encoding: {encoding}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(b"\r\n0\r\n\r\n");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_are_cut_off_at_the_limit_without_the_memory_they_inflate_to() {
    let ingest = Ingest::storing_only_on_sqlite(&[("INGEST_MAX_BATCH_BYTES", "1048576")]).await;
    let base = ingest.url("");
    let pid = ingest.proc().pid();
    // Warm up the allocator with a legitimate request of each kind, then measure.
    ingest.create(&reading("warm", 0)).await;
    let before = rss_kib(pid);
    let gigabyte = bomb(1024);
    let mut peak = before;
    for (path, round) in [("/v1/events/batch", 0), ("/v1/events", 1)] {
        let requests = (0..16).map(|_| {
            let request = chunked(path, "gzip", &gigabyte);
            let base = base.clone();
            tokio::spawn(async move { exchange(&base, &request).await })
        });
        let sampler = async {
            let mut high = 0;
            for _ in 0..40 {
                high = high.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            high
        };
        let (answers, high) = tokio::join!(futures_join(requests.collect()), sampler);
        peak = peak.max(high).max(rss_kib(pid));
        for (status, text) in answers {
            assert_eq!(status, 413, "round {round}: {text}");
            assert!(text.contains("/problems/body-too-large"), "{text}");
        }
    }
    // 16 bombs of 1 GiB each, inflated in parallel, cost at most their limits plus slack.
    let grew_mib = (peak.saturating_sub(before)) / 1024;
    eprintln!("resident memory {before} KiB before the bombs, {peak} KiB at their peak");
    assert!(
        grew_mib < 64,
        "resident memory grew by {grew_mib} MiB during the bombs (from {before} KiB)"
    );
    // A bomb with a declared length over what the limit allows is refused before reading.
    let declared = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        1u64 << 30
    );
    let (status, text) = exchange(&base, declared.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
}

/// Awaits every task, in order.
async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_cut_at_the_deadline_and_others_are_served_meanwhile() {
    const CONTENT_LENGTH_STALLS: usize = 300;
    const CHUNKED_STALLS: usize = 100;
    let ingest = Ingest::storing_only_on_sqlite(&[("INGEST_BODY_TIMEOUT_S", "3")]).await;
    let base = ingest.url("");
    let pid = ingest.proc().pid();
    let baseline = open_sockets(pid);

    let mut stalled = Vec::new();
    // A thousand bytes announced, one sent, to the route that reads bodies.
    for _ in 0..CONTENT_LENGTH_STALLS {
        stalled.push(
            open(
                &base,
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                  Content-Length: 1000\r\n\r\n{",
            )
            .await,
        );
    }
    // A chunk begun and never finished: to the route that reads, and to one that never does.
    for path in ["/v1/events/batch", "/v1/sensors"] {
        let method = if path == "/v1/sensors" { "GET" } else { "POST" };
        for _ in 0..CHUNKED_STALLS {
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\n\r\n400\r\n[{{"
            );
            stalled.push(open(&base, head.as_bytes()).await);
        }
    }
    eventually(
        "the stalled connections held",
        Duration::from_secs(10),
        || async {
            let fds = open_sockets(pid);
            (fds >= baseline + CONTENT_LENGTH_STALLS)
                .then_some(())
                .ok_or(format!("{fds} sockets"))
        },
    )
    .await;

    // Other clients are served while the attacker holds its connections.
    for minute in 0..20 {
        let started = std::time::Instant::now();
        ingest.create(&reading("honest", minute)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    // Every stalled connection is answered and closed by the server, none held.
    let mut statuses = Vec::new();
    for stream in &mut stalled {
        let answer = read_to_close(stream, Duration::from_secs(15))
            .await
            .expect("the server closes a stalled connection");
        statuses.push(status_of(&String::from_utf8_lossy(&answer)));
    }
    let timed_out = statuses.iter().filter(|s| **s == 408).count();
    assert_eq!(
        timed_out,
        CONTENT_LENGTH_STALLS + CHUNKED_STALLS,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        CHUNKED_STALLS
    );
    drop(stalled);
    eventually(
        "descriptors back to normal",
        Duration::from_secs(10),
        || async {
            let fds = open_sockets(pid);
            (fds <= baseline + 4)
                .then_some(())
                .ok_or(format!("{fds} sockets, {baseline} before"))
        },
    )
    .await;
    let metrics = ingest.metrics().await;
    assert_eq!(
        metric(&metrics, "smart_traffic_http_body_timeouts_total", &[]) as usize,
        timed_out,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let ingest = Ingest::storing_only_on_sqlite(&[]).await;
    let base = ingest.url("");
    let before = ingest.metrics().await.len();
    // Made-up methods on a real path, and made-up paths with made-up methods too.
    for i in 0..300 {
        for (request, status) in [
            (format!("MADEUP{i} /v1/events"), 405),
            (format!("ODD{i} /made/up/{i}"), 404),
        ] {
            let head = format!("{request} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut stream = open(&base, head.as_bytes()).await;
            let answer = read_to_close(&mut stream, Duration::from_secs(10))
                .await
                .expect("an answer");
            assert_eq!(
                status_of(&String::from_utf8_lossy(&answer)),
                status,
                "{request}"
            );
        }
    }
    let metrics = ingest.metrics().await;
    assert!(
        !metrics.contains("MADEUP"),
        "a made-up method became a label"
    );
    assert!(
        !metrics.contains("made/up"),
        "a made-up path became a label"
    );
    assert_eq!(
        metric(
            &metrics,
            "smart_traffic_http_requests_total",
            &[("method", "other"), ("status", "405")]
        ),
        300.0
    );
    assert_eq!(
        metric(
            &metrics,
            "smart_traffic_http_requests_total",
            &[
                ("route", "unmatched"),
                ("method", "other"),
                ("status", "404")
            ]
        ),
        300.0
    );
    assert!(
        metrics.len() < before + 8 * 1024,
        "/metrics grew from {before} to {} bytes",
        metrics.len()
    );
}
