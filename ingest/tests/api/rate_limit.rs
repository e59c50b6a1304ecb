//! `INGEST_RATE_LIMIT`: readings per second per API key, in this process or shared through
//! Redis by the replicas; a batch counts its readings; Redis failing lets readings through.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use ingest::auth::ApiKeys;
use ingest::rate_limit::RateLimit;
use ingest::settings::Settings;
use reqwest::Response;
use serde_json::{Value, json};
use traffic_store::test_util::reading_json_at;

use crate::redis_server::{RedisServer, UseRedis};
use crate::support::{Backend, TestApp, TestDb, problem, send, settings};

/// The `n`th reading of `sensor`, a minute apart.
fn reading(sensor: &str, n: i64) -> Value {
    reading_json_at(sensor, Some(1), Utc::now() - TimeDelta::minutes(600 - n))
}

fn limited(settings: &mut Settings, per_second: f64, burst: u32) {
    settings.rate_limit = Some(RateLimit { per_second, burst });
    settings.api_keys = ApiKeys::new(vec!["key-a".into(), "key-b".into()], false);
}

async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> Response {
    send(app.post(path).header("x-api-key", key).json(body)).await
}

/// The seconds `Retry-After` asks for, checking the problem that carries it.
async fn retry_after(response: Response) -> u64 {
    let seconds = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = problem(response, 429, "rate-limited").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("2 readings a second")
    );
    seconds
}

pub async fn readings_over_the_rate_get_429_with_retry_after_and_a_batch_counts_its_readings(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |s| limited(s, 2.0, 5)).await;
    for n in 0..5 {
        let response = post(&app, "key-a", "/v1/events", &reading("r1", n)).await;
        assert_eq!(response.status().as_u16(), 201, "reading {n} of the burst");
    }
    let over = post(&app, "key-a", "/v1/events", &reading("r1", 5)).await;
    assert_eq!(retry_after(over).await, 1);
    // Another key has its own allowance.
    let response = post(&app, "key-b", "/v1/events", &reading("r1", 6)).await;
    assert_eq!(response.status().as_u16(), 201);
    // Nothing refused was stored.
    assert_eq!(app.row_count().await, 6);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = post(&app, "key-a", "/v1/events", &reading("r1", 7)).await;
    assert_eq!(
        response.status().as_u16(),
        201,
        "admitted after Retry-After"
    );
    // A batch of 8, more than the burst, is admitted once the key is idle, then the key waits
    // for it: 8 readings at 2 a second.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let batch = json!((10..18).map(|n| reading("r1", n)).collect::<Vec<_>>());
    let response = post(&app, "key-a", "/v1/events/batch", &batch).await;
    assert_eq!(response.status().as_u16(), 200);
    let after = post(
        &app,
        "key-a",
        "/v1/events/batch",
        &json!([reading("r1", 20)]),
    )
    .await;
    let wait = retry_after(after).await;
    assert!((2..=4).contains(&wait), "waits {wait} s for the batch");
    assert_eq!(app.row_count().await, 15);
}

/// Two replicas share one limit through Redis; with Redis frozen the limit lets readings
/// through rather than refuse what the database would take.
pub async fn the_limit_holds_across_two_replicas_and_fails_open_without_redis(backend: Backend) {
    if backend != Backend::Postgres {
        return; // Replicas share PostgreSQL; SQLite runs one process.
    }
    let redis = RedisServer::start().await;
    let db = TestDb::new(backend).await;
    let replica = || {
        let mut s = settings(traffic_store::StoreConfig::new(db.url().clone()));
        redis.configure(&mut s, "limits");
        limited(&mut s, 0.5, 4);
        TestApp::start(s, None)
    };
    let (a, b) = (replica().await, replica().await);
    let mut admitted = 0;
    for n in 0..12 {
        let replica = if n % 2 == 0 { &a } else { &b };
        let response = post(replica, "key-a", "/v1/events", &reading("r2", n)).await;
        match response.status().as_u16() {
            201 => admitted += 1,
            429 => {}
            other => panic!("status {other}"),
        }
    }
    // One budget of 4 between them (each replica alone would have admitted 4).
    assert_eq!(admitted, 4);

    redis.pause();
    for n in 20..26 {
        let response = post(&a, "key-a", "/v1/events", &reading("r2", n)).await;
        assert_eq!(response.status().as_u16(), 201, "Redis frozen: admitted");
    }
    redis.resume();
}
