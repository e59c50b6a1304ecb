//! `POST /v1/events`: one reading.

use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::json;

use crate::support::{
    Backend, TestApp, encoded, error_fields, gzip, gzipped, json, problem, reading, send, t0,
};

const EVENTS: &str = "/v1/events";
const JSON: &str = "application/json";

pub async fn a_valid_reading_is_stored_and_answered_with_201_and_its_location(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sent = json!({
        "sensor_id": "A1-north",
        "observed_at": "2026-03-02T07:15:00Z",
        "interval_s": 30,
        "lane": 2,
        "vehicle_count": 17,
        "avg_speed_kmh": 71.5,
        "occupancy_pct": 12.25,
        "speed_limit_kmh": 100,
        "lanes": 3,
    });
    let response = app.post_json(EVENTS, &sent).await;
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let event = json(response, 201).await;

    let id = event["id"].as_i64().expect("numeric id");
    assert!(id > 0);
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/events/{id}").as_str())
    );
    assert_eq!(event["status"], "pending");
    assert!(event["classification"].is_null());
    // The queue's fields travel in one object, apart from the traffic.
    let processing = event["processing"]
        .as_object()
        .expect("a processing object");
    let mut fields: Vec<&str> = processing.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["attempts", "last_error", "next_attempt_at", "requeued"]
    );
    assert_eq!(processing["attempts"], 0);
    assert_eq!(processing["requeued"], false);
    assert!(processing["next_attempt_at"].is_string(), "{event}");
    for moved in ["attempts", "next_attempt_at", "last_error", "requeued"] {
        assert!(
            event.get(moved).is_none(),
            "{moved} at the top level: {event}"
        );
    }
    // Every field comes back as sent; the time is compared as an instant below.
    for (field, value) in sent.as_object().expect("an object") {
        if field != "observed_at" {
            assert_eq!(&event[field], value, "{field} in {event}");
        }
    }
    assert_eq!(
        event["observed_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()),
        Some(chrono::DateTime::parse_from_rfc3339("2026-03-02T07:15:00Z").expect("time"))
    );
    assert_eq!(app.get_ok(&format!("/v1/events/{id}")).await, event);
    assert_eq!(app.row_count().await, 1);
}

pub async fn a_resent_reading_returns_the_first_event_with_200_and_stores_one_row(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let first = app.create(&reading("A1", Some(1), 0)).await;

    let again = json(app.post_json(EVENTS, &reading("A1", Some(1), 0)).await, 200).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again, first);

    // The same instant written with another offset is the same reading.
    let mut shifted = reading("A1", Some(1), 0);
    assert_eq!(t0().to_rfc3339(), "2026-03-02T07:00:00+00:00");
    shifted["observed_at"] = json!("2026-03-02T08:00:00.000+01:00");
    let same = json(app.post_json(EVENTS, &shifted).await, 200).await;
    assert_eq!(same["id"], first["id"]);

    // Another lane is another reading.
    let other = app.create(&reading("A1", Some(2), 0)).await;
    assert_ne!(other["id"], first["id"]);
    assert_eq!(app.row_count().await, 2);
}

pub async fn an_invalid_reading_is_refused_with_422_listing_every_bad_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post_json(
            EVENTS,
            &json!({
                "sensor_id": "not a valid id!",
                "observed_at": "yesterday",
                "lane": 40,
                "vehicle_count": -3,
                "occupancy_pct": 120.0,
                "avg_speed_kmh": "fast",
                "colour": "red",
            }),
        )
        .await;
    let body = problem(response, 422, "invalid-reading").await;
    assert_eq!(
        error_fields(&body),
        [
            "avg_speed_kmh",
            "colour",
            "lane",
            "observed_at",
            "occupancy_pct",
            "sensor_id",
            "vehicle_count",
        ]
    );
    for error in body["errors"].as_array().expect("errors") {
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }

    let missing = problem(
        app.post_json(EVENTS, &json!({})).await,
        422,
        "invalid-reading",
    )
    .await;
    assert_eq!(
        error_fields(&missing),
        ["observed_at", "sensor_id", "vehicle_count"]
    );

    let not_an_object = problem(
        app.post_json(EVENTS, &json!([1, 2])).await,
        422,
        "invalid-reading",
    )
    .await;
    assert_eq!(error_fields(&not_an_object), [""]);
    assert_eq!(app.row_count().await, 0);
}

pub async fn a_reading_from_the_future_is_refused_with_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ahead = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    let body = problem(
        app.post_json(EVENTS, &crate::support::reading_at("A1", None, ahead))
            .await,
        422,
        "invalid-reading",
    )
    .await;
    assert_eq!(error_fields(&body), ["observed_at"]);
}

pub async fn malformed_json_is_refused_with_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for body in [
        r#"{"sensor_id": "A1", "#,
        "not json",
        "",
        r#"{"a": 1} trailing"#,
    ] {
        let response = app.post_as(EVENTS, JSON, body).await;
        problem(response, 400, "malformed-json").await;
    }
    assert_eq!(app.row_count().await, 0);
}

pub async fn a_body_that_is_not_json_by_content_type_is_refused_with_415(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = reading("A1", None, 0).to_string();
    for media_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/x-ndjson"),
        Some("application/jsonx"),
        None,
    ] {
        let mut request = app.post(EVENTS).body(body.clone());
        if let Some(media_type) = media_type {
            request = request.header(CONTENT_TYPE, media_type);
        }
        problem(send(request).await, 415, "unsupported-media-type").await;
    }
    // Parameters and case do not matter.
    let response = app
        .post_as(EVENTS, "Application/JSON; charset=utf-8", body)
        .await;
    json(response, 201).await;
    assert_eq!(app.row_count().await, 1);
}

pub async fn a_body_over_the_limit_is_refused_with_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.http.limits.max_body_bytes = 512
    })
    .await;
    let mut big = reading("A1", None, 0);
    big["sensor_id"] = json!("A".repeat(128));
    let padded = format!("{big}{}", " ".repeat(600));
    assert!(padded.len() > 512);
    let response = app.post_as(EVENTS, JSON, padded).await;
    problem(response, 413, "body-too-large").await;

    // Just under the limit is fine.
    let fits = format!("{big}{}", " ".repeat(511 - big.to_string().len()));
    assert_eq!(fits.len(), 511);
    json(app.post_as(EVENTS, JSON, fits).await, 201).await;
    assert_eq!(app.row_count().await, 1);
}

pub async fn a_gzip_body_is_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sent = reading("A1", Some(3), 0);
    let body = sent.to_string();
    let response = send(gzipped(app.post(EVENTS), JSON, body.as_bytes())).await;
    let event = json(response, 201).await;
    assert_eq!(event["sensor_id"], "A1");
    assert_eq!(event["lane"], 3);
    assert_eq!(app.row_count().await, 1);
}

pub async fn a_gzip_body_that_inflates_beyond_the_limit_is_refused_with_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.http.limits.max_body_bytes = 1024
    })
    .await;
    let bomb = format!("{}{}", reading("A1", None, 0), " ".repeat(200_000));
    let compressed = gzip(bomb.as_bytes());
    assert!(compressed.len() < 1024, "{} bytes", compressed.len());
    let response = send(encoded(app.post(EVENTS), JSON, "gzip", compressed)).await;
    problem(response, 413, "body-too-large").await;
    assert_eq!(app.row_count().await, 0);
}

pub async fn an_unsupported_content_encoding_is_refused_with_415(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = reading("A1", None, 0).to_string();
    for encoding in ["br", "compress", "zstd"] {
        let response = send(encoded(app.post(EVENTS), JSON, encoding, body.clone())).await;
        problem(response, 415, "unsupported-media-type").await;
    }
    assert_eq!(app.row_count().await, 0);
}
