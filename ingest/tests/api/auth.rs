//! API keys on writes, and on reads when asked.

use reqwest::Response;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use ingest::auth::ApiKeys;

use crate::support::{Backend, TestApp, json, problem, reading, send};

async fn keyed_app(backend: Backend, reads_too: bool) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.api_keys = ApiKeys::new(vec!["k1".into(), "k2-other".into()], reads_too);
    })
    .await
}

async fn unauthorized(response: Response) -> Value {
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

/// POSTs `body` as JSON to `path`, presenting the credential `(header, value)`.
async fn post(app: &TestApp, path: &str, (header, value): (&str, &str), body: &Value) -> Response {
    send(app.post(path).header(header, value).json(body)).await
}

/// Stores a reading of `sensor` with `credential`, and returns every read path it shows on.
async fn read_paths(app: &TestApp, sensor: &str, credential: (&str, &str)) -> [String; 4] {
    let created = post(app, "/v1/events", credential, &reading(sensor, None, 0)).await;
    let id = json(created, 201).await["id"].clone();
    [
        "/v1/events".to_owned(),
        format!("/v1/events/{id}"),
        "/v1/sensors".to_owned(),
        format!("/v1/sensors/{sensor}"),
    ]
}

pub async fn writes_need_a_valid_key_when_keys_are_configured(backend: Backend) {
    let app = keyed_app(backend, false).await;
    let body = reading("K1", None, 0);

    unauthorized(send(app.post("/v1/events").json(&body)).await).await;
    for credential in [
        (AUTHORIZATION.as_str(), "Bearer wrong"),
        (AUTHORIZATION.as_str(), "Bearer "),
        (AUTHORIZATION.as_str(), "Bearer k1k1"),
        (AUTHORIZATION.as_str(), "Basic azE6"),
        (AUTHORIZATION.as_str(), "k1"),
        ("x-api-key", "K1"),
        ("x-api-key", ""),
    ] {
        unauthorized(post(&app, "/v1/events", credential, &body).await).await;
    }
    unauthorized(send(app.post("/v1/events/batch").json(&[&body])).await).await;
    unauthorized(send(app.post("/v1/events/1/classify")).await).await;
    assert_eq!(app.row_count().await, 0);

    let bearer = send(app.post("/v1/events").bearer_auth("k1").json(&body)).await;
    json(bearer, 201).await;
    let second = reading("K1", None, 1);
    let api_key = post(&app, "/v1/events", ("X-API-Key", "k2-other"), &second).await;
    json(api_key, 201).await;
    let batch = json!([reading("K1", None, 2)]);
    let batch = post(&app, "/v1/events/batch", ("X-API-Key", "k1"), &batch).await;
    assert_eq!(json(batch, 200).await["accepted"], 1);
    assert_eq!(app.row_count().await, 3);
}

pub async fn reads_need_no_key_unless_configured_so(backend: Backend) {
    let app = keyed_app(backend, false).await;
    let bearer = (AUTHORIZATION.as_str(), "Bearer k1");
    for path in read_paths(&app, "K2", bearer).await {
        app.get_ok(&path).await;
    }
}

pub async fn reads_need_a_key_when_read_keys_are_required(backend: Backend) {
    let app = keyed_app(backend, true).await;
    for path in read_paths(&app, "K3", ("X-API-Key", "k1")).await {
        unauthorized(send(app.get(&path)).await).await;
        unauthorized(send(app.get(&path).bearer_auth("k3")).await).await;
        json(send(app.get(&path).bearer_auth("k1")).await, 200).await;
        let api_key = app.get(&path).header("X-API-Key", "k2-other");
        json(send(api_key).await, 200).await;
    }
    // Probes and documentation stay open.
    for path in ["/v1/health", "/v1/ready", "/openapi.json"] {
        app.get_ok(path).await;
    }
    let metrics = send(app.get("/metrics")).await;
    assert_eq!(metrics.status().as_u16(), 200);
}

/// RFC 9110 §11.1: the authentication scheme is case-insensitive.
pub async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = keyed_app(backend, false).await;
    for (n, scheme) in ["bearer", "BEARER"].into_iter().enumerate() {
        let value = format!("{scheme} k1");
        let credential = (AUTHORIZATION.as_str(), value.as_str());
        let sent = reading("K4", None, n as i64);
        json(post(&app, "/v1/events", credential, &sent).await, 201).await;
    }
}
