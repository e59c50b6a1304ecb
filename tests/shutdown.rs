//! End-to-end: SIGTERM to `ingest` while readings are pending — it exits with status 0 within
//! a few seconds and leaves no event `processing` under a lease of its own (each claimed event
//! is either classified or handed back), on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use smart_traffic_e2e::{Ingest, TestDatabase, eventually, free_port, on_both_backends, reading};
use traffic_store::StatusCounts;

/// How long ingest may take to exit after SIGTERM.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

on_both_backends! {
    sigterm_mid_batch_exits_zero_and_leaves_no_event_processing,
    sigterm_while_the_classifier_is_down_exits_zero_and_leaves_no_event_processing,
    sigterm_while_a_classifier_call_hangs_hands_the_claim_back_due_at_once,
    sigterm_with_live_stream_clients_ends_their_streams_and_exits_promptly,
}

/// Waits until some event is claimed (`processing`).
async fn a_worker_holds_a_claim(db: &TestDatabase) {
    eventually(
        "a worker holds a claim",
        Duration::from_secs(10),
        || async {
            if db.count("status = 'processing'").await > 0 {
                Ok(())
            } else {
                Err(format!("{:?}", db.statuses().await))
            }
        },
    )
    .await;
}

/// After ingest has exited: nothing `processing`, no lease left, nothing lost or failed.
async fn no_event_is_left_processing(db: &TestDatabase, posted: i64) -> StatusCounts {
    let statuses = db.statuses().await;
    assert_eq!(db.count("TRUE").await, posted, "{statuses:?}");
    assert_eq!(
        statuses.processing, 0,
        "events left processing under the dead process's lease: {statuses:?}"
    );
    assert_eq!(statuses.failed, 0, "{statuses:?}");
    assert_eq!(
        db.count("lease_owner IS NOT NULL OR lease_until IS NOT NULL")
            .await,
        0,
        "no lease survives the shutdown"
    );
    statuses
}

/// 6000 readings in one batch with the in-process classifier (2 workers claiming 100 at a
/// time); SIGTERM as soon as a worker holds a claim. The workers finish (or hand back) the batch they hold and claim no more.
async fn sigterm_mid_batch_exits_zero_and_leaves_no_event_processing(db: TestDatabase) {
    // Claims far smaller than the backlog (sixty of them), so that readings are still pending
    // at SIGTERM however fast the workers are.
    let mut ingest = Ingest::start(
        "ingest",
        &db,
        &[("CLASSIFY_WORKERS", "2"), ("CLASSIFY_BATCH", "100")],
    )
    .await;
    let readings: Vec<Value> = (0..6000)
        .map(|i| reading(&format!("e2e-t{:02}", i % 30), i / 30))
        .collect();
    ingest.create_batch(&readings).await;
    a_worker_holds_a_claim(&db).await;

    let status = ingest.terminate(EXIT_WITHIN);
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let statuses = no_event_is_left_processing(&db, 6000).await;
    assert!(
        statuses.pending > 0,
        "SIGTERM arrived while readings were pending (else this test proves nothing): {statuses:?}"
    );
    assert!(
        statuses.classified > 0,
        "the batch held at SIGTERM was finished: {statuses:?}"
    );
}

/// The classifier is unreachable, so readings cycle between pending and (briefly) processing
/// with growing backoff; SIGTERM leaves them all pending.
async fn sigterm_while_the_classifier_is_down_exits_zero_and_leaves_no_event_processing(
    db: TestDatabase,
) {
    let mcp_url = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut ingest = Ingest::start("ingest", &db, &[("MCP_URL", &mcp_url)]).await;
    let readings: Vec<Value> = (0..100).map(|m| reading("e2e-down", m)).collect();
    ingest.create_batch(&readings).await;
    eventually("the workers tried", Duration::from_secs(10), || async {
        if db.count("attempts >= 1").await > 0 {
            Ok(())
        } else {
            Err(format!("{:?}", db.statuses().await))
        }
    })
    .await;

    let status = ingest.terminate(EXIT_WITHIN);
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let statuses = no_event_is_left_processing(&db, 100).await;
    assert_eq!(statuses.pending, 100, "{statuses:?}");
}

/// The classifier accepts connections and never answers, so the workers' calls hang until their
/// (long) timeout; SIGTERM must not wait for them: the claims are handed back, pending, with no
/// attempt charged, rather than left to their leases or failed.
async fn sigterm_while_a_classifier_call_hangs_hands_the_claim_back_due_at_once(db: TestDatabase) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut ingest = Ingest::start(
        "ingest",
        &db,
        &[("MCP_URL", &mcp_url), ("CLASSIFY_TIMEOUT_S", "60")],
    )
    .await;
    let readings: Vec<Value> = (0..100).map(|m| reading("e2e-hang", m)).collect();
    ingest.create_batch(&readings).await;
    a_worker_holds_a_claim(&db).await;

    let status = ingest.terminate(EXIT_WITHIN);
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let statuses = no_event_is_left_processing(&db, 100).await;
    assert_eq!(statuses.pending, 100, "{statuses:?}");
    assert_eq!(
        db.count("attempts > 0").await,
        0,
        "the claims were handed back with their attempt refunded, not failed"
    );
    silent.abort();
}

/// Live stream clients do not hold the stop up: their streams end when it begins, and the
/// process exits well before the server's own drain timeout (30 s).
async fn sigterm_with_live_stream_clients_ends_their_streams_and_exits_promptly(db: TestDatabase) {
    let mut ingest = Ingest::start("ingest", &db, &[]).await;
    let http = reqwest::Client::new();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut response = http.get(ingest.url("/v1/stream")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // The retry advice: the stream is open.
        let first = response.chunk().await.unwrap().unwrap_or_default();
        assert!(String::from_utf8_lossy(&first).starts_with("retry:"));
        streams.push(response);
    }
    let started = std::time::Instant::now();
    let status = ingest.terminate(Duration::from_secs(5));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(started.elapsed() < Duration::from_secs(5));
    for mut stream in streams {
        let end = tokio::time::timeout(Duration::from_secs(2), stream.chunk()).await;
        assert!(
            matches!(end, Ok(Ok(None)) | Ok(Err(_))),
            "the stream ended: {end:?}"
        );
    }
}
