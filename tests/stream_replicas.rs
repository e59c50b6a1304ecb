//! End-to-end, PostgreSQL only: the live stream across replicas. Replica A never classifies
//! (`CLASSIFY_WORKERS=0`); a reading posted to replica B is classified there, and a stream
//! client of A receives it, through PostgreSQL `LISTEN/NOTIFY`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smart_traffic_e2e::{Ingest, TestDatabase, read_until, reading};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_classified_on_one_replica_reaches_the_stream_clients_of_another() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let watcher = Ingest::start("ingest-watcher", &db, &[("CLASSIFY_WORKERS", "0")]).await;
    let classifier = Ingest::start("ingest-classifier", &db, &[]).await;
    let http = reqwest::Client::new();
    let mut on_watcher = http
        .get(watcher.url("/v1/stream?sensor_id=across"))
        .send()
        .await
        .unwrap();
    let mut on_classifier = http
        .get(classifier.url("/v1/stream?sensor_id=across"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_watcher.status(), 200);
    // Both streams are open (their first bytes, the retry advice, arrived) before the POST.
    read_until(&mut on_watcher, "retry:", Duration::from_secs(5)).await;
    read_until(&mut on_classifier, "retry:", Duration::from_secs(5)).await;

    let id = classifier.create(&reading("across", 0)).await;
    let needle = format!("\"id\":{id},");
    for (name, response) in [
        ("watcher", &mut on_watcher),
        ("classifier", &mut on_classifier),
    ] {
        let body = read_until(response, &needle, Duration::from_secs(10)).await;
        assert!(body.contains("event: classified\n"), "{name}: {body}");
        assert!(
            body.contains(&needle),
            "{name} never got event {id}: {body}"
        );
    }
}
