//! A client hanging up does not cancel a write, and leaves the service healthy.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Backend, TestApp, eventually, json, reading};

/// Sends a whole request over a raw connection and closes it without reading the answer.
fn send_and_hang_up(app: &TestApp, path: &str, media_type: &str, body: &str) {
    let mut stream = TcpStream::connect(app.address).expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\n\r\n{body}",
        app.address,
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    stream.flush().expect("flush");
    drop(stream);
}

pub async fn a_client_hanging_up_does_not_cancel_the_write(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    send_and_hang_up(
        &app,
        "/v1/events",
        "application/json",
        &reading("H1", Some(1), 0).to_string(),
    );
    let stored = eventually(Duration::from_secs(10), || async {
        app.row_count().await == 1
    })
    .await;
    assert!(
        stored,
        "the reading of a client that hung up was not stored"
    );

    // Many at once, single readings and batches alike.
    for n in 0..20 {
        send_and_hang_up(
            &app,
            "/v1/events",
            "application/json",
            &reading("H2", Some(1), n).to_string(),
        );
    }
    let batch: Vec<Value> = (0..50).map(|m| reading("H3", None, m)).collect();
    send_and_hang_up(
        &app,
        "/v1/events/batch",
        "application/json",
        &Value::from(batch).to_string(),
    );
    let stored = eventually(Duration::from_secs(20), || async {
        app.row_count().await == 71
    })
    .await;
    assert!(
        stored,
        "only {} of 71 rows were stored",
        app.row_count().await
    );
    assert_eq!(app.list_all(&[("sensor_id", "H2")]).await.len(), 20);
    assert_eq!(app.list_all(&[("sensor_id", "H3")]).await.len(), 50);
}

pub async fn the_pool_stays_healthy_after_hang_ups(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for n in 0..30 {
        send_and_hang_up(
            &app,
            "/v1/events",
            "application/json",
            &reading("P1", None, n).to_string(),
        );
    }
    // Readers hanging up mid-listing too.
    for _ in 0..10 {
        let mut stream = TcpStream::connect(app.address).expect("connect");
        write!(
            stream,
            "GET /v1/events?limit=1000 HTTP/1.1\r\nHost: {}\r\n\r\n",
            app.address
        )
        .expect("write");
        drop(stream);
    }

    let requests = (0..64).map(|n| {
        let app = &app;
        async move {
            if n % 2 == 0 {
                let response = app.post_json("/v1/events", &reading("P2", None, n)).await;
                json(response, 201).await;
            } else {
                app.get_ok("/v1/events?limit=50").await;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(requests))
        .await
        .expect("concurrent requests finished in time");
    app.get_ok("/v1/ready").await;
    let stored = eventually(Duration::from_secs(10), || async {
        app.row_count().await == 62
    })
    .await;
    assert!(stored, "{} rows", app.row_count().await);
}
