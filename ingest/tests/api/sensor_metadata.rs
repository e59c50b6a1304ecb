//! `PUT` and `PATCH /v1/sensors/{sensor_id}`: a sensor's metadata, and how it shows.

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, error_fields, json, problem, reading, send};

const PATH: &str = "/v1/sensors/loop%2FA1-12";

/// A document with every field, shared with the model's tests of sensor metadata.
fn full() -> Value {
    serde_json::from_str(include_str!("../../../tests/fixtures/sensor-metadata.json"))
        .expect("the fixture is JSON")
}

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";

async fn write(app: &TestApp, method: Method, media_type: &str, body: &Value) -> reqwest::Response {
    app.send_as(method, PATH, media_type, body.to_string())
        .await
}

/// [`write`], answered with the sensor's metadata and `status`.
async fn written(
    app: &TestApp,
    method: Method,
    media_type: &str,
    body: &Value,
    status: u16,
) -> Value {
    json(write(app, method, media_type, body).await, status).await
}

/// [`write`], refused with the problem `status` of type `kind`; returns the problem.
async fn refused(
    app: &TestApp,
    method: Method,
    media_type: &str,
    body: &Value,
    status: u16,
    kind: &str,
) -> Value {
    problem(write(app, method, media_type, body).await, status, kind).await
}

/// The metadata fields of a written sensor or of a summary's `metadata`.
fn fields(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        object.remove("sensor_id");
        object.remove("updated_at");
    }
    value
}

pub async fn metadata_is_put_patched_and_shown_with_the_sensor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A sensor with metadata and no readings is known.
    let created = written(&app, Method::PUT, JSON, &full(), 201).await;
    assert_eq!(created["sensor_id"], "loop/A1-12");
    assert_eq!(fields(&created), full());
    assert!(created["updated_at"].is_string(), "{created}");
    let summary = app.get_ok(PATH).await;
    assert!(summary["latest"].is_null(), "{summary}");
    assert_eq!(summary["metadata"], full());
    assert_eq!(summary["metadata_updated_at"], created["updated_at"]);

    // PUT replaces the whole: what it leaves out is no longer known.
    let replaced = written(&app, Method::PUT, JSON, &json!({"road": "A2"}), 200).await;
    assert_eq!(replaced["road"], "A2");
    assert!(
        replaced["name"].is_null() && replaced["location"].is_null(),
        "{replaced}"
    );

    // PATCH merges: a member given replaces, null forgets, the location merges member by member.
    written(&app, Method::PUT, JSON, &full(), 200).await;
    let patch = json!({"direction": null, "location": {"lat": 48.1}, "lanes": 4});
    let patched = written(&app, Method::PATCH, MERGE_PATCH, &patch, 200).await;
    assert!(patched["direction"].is_null(), "{patched}");
    assert_eq!(patched["location"], json!({"lon": 13.405, "lat": 48.1}));
    assert_eq!(patched["lanes"], 4);
    assert_eq!(patched["road"], "A1", "a member left out is kept");
    assert_eq!(app.get_ok(PATH).await["metadata"], fields(&patched));

    // Readings of the sensor are stored as ever, and show beside the metadata.
    app.create(&reading("loop/A1-12", Some(1), 0)).await;
    let summary = app.get_ok(PATH).await;
    assert_eq!(summary["latest"]["sensor_id"], "loop/A1-12");
    assert_eq!(summary["metadata"]["lanes"], 4);
}

pub async fn a_patch_of_a_sensor_without_metadata_creates_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create(&reading("loop/A1-12", None, 0)).await;
    assert!(app.get_ok(PATH).await["metadata"].is_null());
    let created = written(&app, Method::PATCH, JSON, &json!({"road": "A1"}), 201).await;
    assert_eq!(created["road"], "A1");
    assert!(created["time_zone"].is_null());
}

pub async fn invalid_metadata_is_a_422_naming_every_field_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    written(&app, Method::PUT, JSON, &full(), 201).await;
    let bad = json!({
        "name": "",
        "location": {"lon": 200},
        "lanes": 0,
        "time_zone": "Mars/Base",
        "colour": "red"
    });
    let body = refused(
        &app,
        Method::PUT,
        JSON,
        &bad,
        422,
        "invalid-sensor-metadata",
    )
    .await;
    assert_eq!(
        error_fields(&body),
        [
            "colour",
            "lanes",
            "location.lat",
            "location.lon",
            "name",
            "time_zone"
        ]
    );
    // A patch is checked as the document it makes.
    let lanes = json!({"lanes": 99});
    let body = refused(
        &app,
        Method::PATCH,
        MERGE_PATCH,
        &lanes,
        422,
        "invalid-sensor-metadata",
    )
    .await;
    assert_eq!(error_fields(&body), ["lanes"]);
    assert_eq!(
        app.get_ok(PATH).await["metadata"],
        full(),
        "nothing changed"
    );

    // A member given twice is named, not silently kept once.
    let twice = app
        .send_as(Method::PUT, PATH, JSON, r#"{"road": "A1", "road": "A9"}"#)
        .await;
    let body = problem(twice, 422, "invalid-sensor-metadata").await;
    assert_eq!(error_fields(&body), ["road"]);

    let broken = app.send_as(Method::PATCH, PATH, JSON, "{\"road\": ").await;
    problem(broken, 400, "malformed-json").await;
    // A merge patch is no whole document.
    refused(
        &app,
        Method::PUT,
        MERGE_PATCH,
        &full(),
        415,
        "unsupported-media-type",
    )
    .await;
    assert_eq!(
        app.get_ok(PATH).await["metadata"],
        full(),
        "nothing changed"
    );
    // A path that names no possible sensor is no resource to write.
    let nowhere = send(app.request(Method::PUT, "/v1/sensors/a%20b").json(&full())).await;
    problem(nowhere, 404, "not-found").await;
}

pub async fn metadata_writes_need_a_key_when_keys_are_configured(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.api_keys = ingest::auth::ApiKeys::new(vec!["k1".into()], false);
    })
    .await;
    for method in [Method::PUT, Method::PATCH] {
        refused(&app, method.clone(), JSON, &full(), 401, "unauthorized").await;
        let keyed = send(
            app.request(method, PATH)
                .header("x-api-key", "k1")
                .header(CONTENT_TYPE, JSON)
                .body(full().to_string()),
        )
        .await;
        assert!(keyed.status().is_success(), "{}", keyed.status());
    }
    problem(
        send(app.get("/v1/sensors/no-such-sensor")).await,
        404,
        "not-found",
    )
    .await;
}
