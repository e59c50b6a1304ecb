//! API keys on writes, and on reads when asked.

use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::Value;

use ingest::auth::ApiKeys;

use crate::support::{Backend, TestApp, json, problem, reading};

async fn keyed_app(backend: Backend, reads_too: bool) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.api_keys = ApiKeys::new(vec!["k1".into(), "k2-other".into()], reads_too);
    })
    .await
}

async fn unauthorized(response: reqwest::Response) -> Value {
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("bearer")),
        "WWW-Authenticate: {challenge:?}"
    );
    problem(response, 401, "unauthorized").await
}

pub async fn writes_need_a_valid_key_when_keys_are_configured(backend: Backend) {
    let app = keyed_app(backend, false).await;
    let body = reading("K1", None, 0);

    let none = app
        .post("/v1/events")
        .json(&body)
        .send()
        .await
        .expect("POST");
    unauthorized(none).await;
    for (header, value) in [
        (AUTHORIZATION.as_str(), "Bearer wrong"),
        (AUTHORIZATION.as_str(), "Bearer "),
        (AUTHORIZATION.as_str(), "Bearer k1k1"),
        (AUTHORIZATION.as_str(), "Basic azE6"),
        (AUTHORIZATION.as_str(), "k1"),
        ("x-api-key", "K1"),
        ("x-api-key", ""),
    ] {
        let response = app
            .post("/v1/events")
            .header(header, value)
            .json(&body)
            .send()
            .await
            .expect("POST");
        unauthorized(response).await;
    }
    let batch = app
        .post("/v1/events/batch")
        .json(&[&body])
        .send()
        .await
        .expect("POST");
    unauthorized(batch).await;
    let requeue = app
        .post("/v1/events/1/classify")
        .send()
        .await
        .expect("POST");
    unauthorized(requeue).await;
    assert_eq!(app.row_count().await, 0);

    let bearer = app
        .post("/v1/events")
        .bearer_auth("k1")
        .json(&body)
        .send()
        .await
        .expect("POST");
    json(bearer, 201).await;
    let api_key = app
        .post("/v1/events")
        .header("X-API-Key", "k2-other")
        .json(&reading("K1", None, 1))
        .send()
        .await
        .expect("POST");
    json(api_key, 201).await;
    let batch = app
        .post("/v1/events/batch")
        .header("X-API-Key", "k1")
        .json(&[reading("K1", None, 2)])
        .send()
        .await
        .expect("POST");
    assert_eq!(json(batch, 200).await["accepted"], 1);
    assert_eq!(app.row_count().await, 3);
}

pub async fn reads_need_no_key_unless_configured_so(backend: Backend) {
    let app = keyed_app(backend, false).await;
    let created = app
        .post("/v1/events")
        .bearer_auth("k1")
        .json(&reading("K2", None, 0))
        .send()
        .await
        .expect("POST");
    let id = json(created, 201).await["id"].clone();
    for path in [
        "/v1/events".to_owned(),
        format!("/v1/events/{id}"),
        "/v1/sensors".to_owned(),
        "/v1/sensors/K2".to_owned(),
    ] {
        app.get_ok(&path).await;
    }
}

pub async fn reads_need_a_key_when_read_keys_are_required(backend: Backend) {
    let app = keyed_app(backend, true).await;
    let created = app
        .post("/v1/events")
        .header("X-API-Key", "k1")
        .json(&reading("K3", None, 0))
        .send()
        .await
        .expect("POST");
    let id = json(created, 201).await["id"].clone();
    for path in [
        "/v1/events".to_owned(),
        format!("/v1/events/{id}"),
        "/v1/sensors".to_owned(),
        "/v1/sensors/K3".to_owned(),
    ] {
        let none = app.get(&path).send().await.expect("GET");
        unauthorized(none).await;
        let wrong = app.get(&path).bearer_auth("k3").send().await.expect("GET");
        unauthorized(wrong).await;
        let bearer = app.get(&path).bearer_auth("k1").send().await.expect("GET");
        json(bearer, 200).await;
        let api_key = app
            .get(&path)
            .header("X-API-Key", "k2-other")
            .send()
            .await
            .expect("GET");
        json(api_key, 200).await;
    }
    // Probes and documentation stay open.
    for path in ["/v1/health", "/v1/ready", "/openapi.json"] {
        app.get_ok(path).await;
    }
    let metrics = app.get("/metrics").send().await.expect("GET");
    assert_eq!(metrics.status().as_u16(), 200);
}

/// RFC 9110 §11.1: the authentication scheme is case-insensitive.
pub async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = keyed_app(backend, false).await;
    for (n, scheme) in ["bearer", "BEARER"].into_iter().enumerate() {
        let response = app
            .post("/v1/events")
            .header(AUTHORIZATION, format!("{scheme} k1"))
            .json(&reading("K4", None, n as i64))
            .send()
            .await
            .expect("POST");
        json(response, 201).await;
    }
}
