//! `/v1/health`, `/v1/ready`, `/metrics`, and what a database outage looks like from outside.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use crate::support::{
    Backend, Outage, TestApp, content_type, json, problem, reading, send, settings,
};

pub async fn health_answers_200_without_touching_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.get_ok("/v1/health").await;
    assert_eq!(body, json!({"status": "ok"}));
}

pub async fn ready_answers_200_on_a_migrated_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.get_ok("/v1/ready").await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["database"], backend.name(), "{body}");
}

pub async fn an_unreachable_database_means_503_everywhere_and_nothing_written(backend: Backend) {
    let outage = Outage::new(backend).await;
    let mut settings = settings(outage.store_config());
    settings.skip_migrations = true;
    let app = TestApp::start(settings, None).await;

    // Liveness does not depend on the database.
    assert_eq!(app.get_ok("/v1/health").await["status"], "ok");
    problem(
        send(app.get("/v1/ready")).await,
        503,
        "database-unavailable",
    )
    .await;

    let response = app.post_json("/v1/events", &reading("O1", None, 0)).await;
    assert_eq!(
        response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body = problem(response, 503, "database-unavailable").await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("nothing was written")),
        "{body}"
    );
    let batch = Value::from(vec![reading("O1", None, 1), reading("O1", None, 2)]);
    let response = app.post_json("/v1/events/batch", &batch).await;
    problem(response, 503, "database-unavailable").await;
    for path in [
        "/v1/events",
        "/v1/events/1",
        "/v1/sensors",
        "/v1/sensors/O1",
    ] {
        problem(send(app.get(path)).await, 503, "database-unavailable").await;
    }
    let requeue = send(app.post("/v1/events/1/classify")).await;
    problem(requeue, 503, "database-unavailable").await;
    // Metrics still render; the queue depth just cannot be refreshed.
    let metrics = send(app.get("/metrics")).await;
    assert_eq!(metrics.status().as_u16(), 200);

    // The database comes back, empty: not ready until migrated.
    outage.end().await;
    let body = problem(
        send(app.get("/v1/ready")).await,
        503,
        "database-unavailable",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("migrat")),
        "{body}"
    );
    app.state.store.migrate().await.expect("migrate");
    app.get_ok("/v1/ready").await;

    // Nothing the failed requests sent was written, then or later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.row_count().await, 0);
    assert!(app.list_all(&[]).await.is_empty());
    // And the pool recovered.
    app.create(&reading("O1", None, 0)).await;
    app.create_many(&[reading("O1", None, 1), reading("O1", None, 2)])
        .await;
    assert_eq!(app.row_count().await, 3);
}

/// The value of the sample `name{labels…}` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name).then_some((rest, value))
        })
        .find(|(rest, _)| {
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

pub async fn metrics_count_requests_readings_queue_depth_and_latency(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for minute in 0..3 {
        app.create(&reading("M1", None, minute)).await;
    }
    json(
        app.post_json("/v1/events", &reading("M1", None, 0)).await,
        200,
    )
    .await;
    problem(
        app.post_json("/v1/events", &json!({"sensor_id": "M1"}))
            .await,
        422,
        "invalid-reading",
    )
    .await;
    let batch = json!([reading("M2", None, 0), reading("M1", None, 1), {"lane": -1}]);
    json(app.post_json("/v1/events/batch", &batch).await, 200).await;
    app.get_ok("/v1/events?limit=1").await;
    let claimed = app.claim_all("metrics-worker").await;
    app.state
        .store
        .release(claimed[0].id, "metrics-worker")
        .await
        .expect("release");

    let response = send(app.get("/metrics")).await;
    assert_eq!(response.status().as_u16(), 200);
    let media_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(media_type.starts_with("text/plain"), "{media_type}");
    assert!(media_type.contains("version=0.0.4"), "{media_type}");
    let text = response.text().await.expect("body");

    let requests = "smart_traffic_http_requests_total";
    for (route, method, status, count) in [
        ("/v1/events", "POST", "201", 3.0),
        ("/v1/events", "POST", "200", 1.0),
        ("/v1/events", "POST", "422", 1.0),
        ("/v1/events/batch", "POST", "200", 1.0),
        ("/v1/events", "GET", "200", 1.0),
    ] {
        let labels = [("route", route), ("method", method), ("status", status)];
        let got = sample(&text, requests, &labels);
        assert_eq!(got, Some(count), "{requests} {labels:?}\n{text}");
    }
    let readings = "smart_traffic_readings_total";
    let queue = "smart_traffic_queue_events";
    for (metric, label, value, count) in [
        (readings, "outcome", "accepted", 4.0),
        (readings, "outcome", "duplicate", 2.0),
        (readings, "outcome", "rejected", 2.0),
        (queue, "status", "pending", 1.0),
        (queue, "status", "processing", 3.0),
        (queue, "status", "classified", 0.0),
        (queue, "status", "failed", 0.0),
    ] {
        let got = sample(&text, metric, &[(label, value)]);
        assert_eq!(got, Some(count), "{metric} {label}={value}\n{text}");
    }

    let latency = "smart_traffic_http_request_duration_seconds";
    assert!(
        text.contains(&format!("# TYPE {latency} histogram")),
        "{text}"
    );
    let post_latency = [("route", "/v1/events"), ("method", "POST")];
    let bucket = |le| {
        let mut labels = post_latency.to_vec();
        labels.push(("le", le));
        sample(&text, &format!("{latency}_bucket"), &labels)
    };
    assert_eq!(bucket("+Inf"), Some(5.0), "{text}");
    assert!(bucket("0.005").is_some(), "{text}");
    assert!(bucket("0.0005") <= bucket("5"), "{text}");
    assert_eq!(
        sample(&text, &format!("{latency}_count"), &post_latency),
        Some(5.0),
        "{text}"
    );
    assert!(
        sample(&text, &format!("{latency}_sum"), &post_latency).is_some_and(|s| s > 0.0),
        "{text}"
    );
}

pub async fn metrics_name_unmatched_requests_without_their_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for n in 0..3 {
        let response = send(app.get(&format!("/no/such/path/{n}"))).await;
        assert_eq!(content_type(&response), "application/problem+json");
    }
    let text = send(app.get("/metrics")).await.text().await.expect("body");
    assert!(!text.contains("/no/such/path"), "{text}");
    assert_eq!(
        sample(
            &text,
            "smart_traffic_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(3.0),
        "{text}"
    );
}
