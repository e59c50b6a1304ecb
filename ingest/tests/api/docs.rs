//! `GET /openapi.json` and `GET /docs`.

use ingest::auth::Access;
use ingest::routes::ROUTES;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, content_type, reading, send};

async fn document(app: &TestApp) -> Value {
    app.get_ok("/openapi.json").await
}

/// How `instance` fails `schema`, a schema that may refer to the document's components.
fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

pub async fn the_openapi_document_is_3_1_and_describes_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());

    let paths = doc["paths"].as_object().expect("paths");
    let documented: usize = paths
        .values()
        .map(|item| item.as_object().expect("path item").len())
        .sum();
    assert_eq!(
        documented,
        ROUTES.iter().filter(|r| r.operation.is_some()).count(),
        "operations beyond the route table"
    );
    for route in ROUTES {
        let operation = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
        let Some(documented) = &route.operation else {
            assert!(
                operation.is_null(),
                "{} {} is documented",
                route.method,
                route.path
            );
            continue;
        };
        assert!(
            operation.is_object(),
            "{} {} is not in the document",
            route.method,
            route.path
        );
        assert_eq!(operation["operationId"], documented.id);
        assert_eq!(
            operation["security"].is_array(),
            route.access != Access::Open,
            "{} {}: security declared unlike the route's access",
            route.method,
            route.path
        );
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{} {} documents no success",
            route.method,
            route.path
        );
        for (status, response) in responses {
            if status == "304" {
                assert!(response.get("content").is_none(), "a 304 has no body");
            } else if !status.starts_with('2') {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{} {} {status}",
                    route.method,
                    route.path
                );
            }
        }
    }

    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
    }
}

pub async fn the_reading_schema_carries_the_reading_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    let reading = &doc["components"]["schemas"]["Reading"];
    assert!(reading.is_object(), "no Reading schema");
    let properties = &reading["properties"];
    // An integer bound must be an integer in the document; a real one may be either.
    for (field, minimum, maximum) in [
        ("lane", Some(0), 32),
        ("lanes", Some(1), 32),
        ("interval_s", Some(1), 3600),
        ("vehicle_count", None, 100_000),
        ("speed_limit_kmh", Some(5), 200),
    ] {
        if let Some(minimum) = minimum {
            assert_eq!(properties[field]["minimum"], minimum, "{field} minimum");
        }
        assert_eq!(properties[field]["maximum"], maximum, "{field} maximum");
    }
    for (field, maximum) in [("occupancy_pct", 100.0), ("avg_speed_kmh", 400.0)] {
        assert_eq!(properties[field]["maximum"], maximum, "{field} maximum");
    }
    assert_eq!(properties["sensor_id"]["maxLength"], 128);
    assert_eq!(properties["sensor_id"]["pattern"], "^[A-Za-z0-9._:/-]+$");
    assert_eq!(properties["observed_at"]["format"], "date-time");
    assert_eq!(reading["additionalProperties"], false);
    let mut required: Vec<&str> = reading["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["observed_at", "sensor_id", "vehicle_count"]);

    let create = &doc["paths"]["/v1/events"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Reading"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

pub async fn every_documented_operation_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = app.create(&reading("doc-sensor", Some(1), 0)).await;
    let id = event["id"].to_string();
    let doc = document(&app).await;
    let mut minute = 100;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let path = template
            .replace("{id}", &id)
            .replace("{sensor_id}", "doc-sensor");
        for method in item.as_object().expect("path item").keys() {
            let method =
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("an HTTP method");
            let mut request = app.request(method.clone(), &path);
            if method == Method::POST && template == "/v1/events" {
                minute += 1;
                request = request.json(&reading("doc-sensor", Some(1), minute));
            } else if method == Method::POST && template == "/v1/events/batch" {
                minute += 1;
                request = request.json(&json!([reading("doc-sensor", Some(2), minute)]));
            } else if method == Method::PUT || method == Method::PATCH {
                request = request.json(&json!({"road": "A1", "lanes": 2}));
            }
            let response = send(request).await;
            let status = response.status();
            assert!(
                status != 404 && status != 405,
                "{method} {path} answered {status}"
            );
            assert!(
                status.is_success(),
                "{method} {path} answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
    }
}

pub async fn the_docs_page_is_html_pointing_at_the_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = send(app.get("/docs")).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(content_type(&response), "text/html");
    let page = response.text().await.expect("body");
    assert!(page.contains("/openapi.json"), "{page}");
    // Its script is served here, not by a CDN.
    assert!(page.contains("/ui/vendor/rapidoc/"), "{page}");
}

/// Checks each response against the schema the document gives for its operation, status and
/// media type; returns the status.
struct Conformance {
    doc: Value,
}

impl Conformance {
    async fn new(app: &TestApp) -> Self {
        Self {
            doc: document(app).await,
        }
    }

    /// Asserts that `response`, answering `method template`, matches its documented schema.
    async fn check(&self, template: &str, method: &str, response: reqwest::Response) -> u16 {
        let status = response.status().as_u16();
        let media_type = content_type(&response);
        let body: Value = response.json().await.expect("a JSON body");
        let documented = &self.doc["paths"][template][method]["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {template} answered {status}, which is not documented: {body}"
        );
        let schema = &documented["content"][&media_type]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} {status}: {media_type} is not documented"
        );
        let root = json!({
            "components": self.doc["components"].clone(),
            "allOf": [schema],
        });
        let errors = schema_errors(&root, &body);
        assert!(
            errors.is_empty(),
            "{method} {template} {status} does not match its schema: {errors:?}\n{body}"
        );
        status
    }
}

pub async fn successful_responses_match_their_documented_schemas(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let check = Conformance::new(&app).await;
    let created = app
        .post_json("/v1/events", &reading("S1", Some(1), 0))
        .await;
    assert_eq!(check.check("/v1/events", "post", created).await, 201);
    let again = app
        .post_json("/v1/events", &reading("S1", Some(1), 0))
        .await;
    assert_eq!(check.check("/v1/events", "post", again).await, 200);
    let batch = json!([reading("S1", Some(1), 1), reading("S1", Some(1), 1), {"lane": 99}]);
    let batch = app.post_json("/v1/events/batch", &batch).await;
    assert_eq!(check.check("/v1/events/batch", "post", batch).await, 200);
    let id = app.create(&reading("S2", None, 0)).await["id"]
        .as_i64()
        .expect("id");
    app.classify(id, traffic_model::classification::Label::Heavy)
        .await;

    let metadata = json!({"road": "A1", "location": {"lon": 2.35, "lat": 48.86}, "name": null});
    for (method, status) in [(Method::PUT, 201), (Method::PUT, 200), (Method::PATCH, 200)] {
        let written = send(
            app.request(method.clone(), "/v1/sensors/S2")
                .json(&metadata),
        )
        .await;
        let verb = method.as_str().to_ascii_lowercase();
        assert_eq!(
            check.check("/v1/sensors/{sensor_id}", &verb, written).await,
            status,
            "{method}"
        );
    }
    let root = json!({
        "components": check.doc["components"].clone(),
        "$ref": "#/components/schemas/SensorMetadata",
    });
    let errors = schema_errors(&root, &metadata);
    assert!(
        errors.is_empty(),
        "accepted but not schema-valid: {errors:?}"
    );
    // A merge patch may give one coordinate (it merges into the stored location); a whole
    // document may not.
    let half = json!({"location": {"lat": 48.0}});
    let patched = send(app.request(Method::PATCH, "/v1/sensors/S2").json(&half)).await;
    assert_eq!(patched.status().as_u16(), 200);
    let mut patch_root = check.doc["paths"]["/v1/sensors/{sensor_id}"]["patch"]["requestBody"]
        ["content"]["application/merge-patch+json"]["schema"]
        .clone();
    patch_root["components"] = check.doc["components"].clone();
    assert_eq!(schema_errors(&patch_root, &half), Vec::<String>::new());
    assert!(
        !schema_errors(&root, &half).is_empty(),
        "a whole document needs both"
    );

    for (template, path) in [
        ("/v1/events", "/v1/events?limit=2".to_owned()),
        ("/v1/events/{id}", format!("/v1/events/{id}")),
        ("/v1/sensors", "/v1/sensors?limit=1".to_owned()),
        ("/v1/sensors/{sensor_id}", "/v1/sensors/S2".to_owned()),
        ("/v1/health", "/v1/health".to_owned()),
        ("/v1/ready", "/v1/ready".to_owned()),
    ] {
        let response = send(app.get(&path)).await;
        assert_eq!(check.check(template, "get", response).await, 200, "{path}");
    }
    let requeued = send(app.post(&format!("/v1/events/{id}/classify"))).await;
    assert_eq!(
        check
            .check("/v1/events/{id}/classify", "post", requeued)
            .await,
        202
    );
}

pub async fn problems_match_the_documented_problem_schema(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.http.limits.max_body_bytes = 1024
    })
    .await;
    let check = Conformance::new(&app).await;
    let invalid = app.post_json("/v1/events", &json!({"lane": -1})).await;
    assert_eq!(check.check("/v1/events", "post", invalid).await, 422);
    let bad_query = send(app.get("/v1/events?limit=0")).await;
    assert_eq!(check.check("/v1/events", "get", bad_query).await, 400);
    let missing = send(app.get("/v1/events/12345")).await;
    assert_eq!(check.check("/v1/events/{id}", "get", missing).await, 404);
    let metadata = send(
        app.request(Method::PUT, "/v1/sensors/S1")
            .json(&json!({"lanes": 0})),
    )
    .await;
    assert_eq!(
        check
            .check("/v1/sensors/{sensor_id}", "put", metadata)
            .await,
        422
    );
    let text = app.post_as("/v1/events", "text/plain", "{}").await;
    assert_eq!(check.check("/v1/events", "post", text).await, 415);
    let large = app
        .post_json("/v1/events", &json!({"pad": "x".repeat(2000)}))
        .await;
    assert_eq!(check.check("/v1/events", "post", large).await, 413);
}

/// The API takes `null` for an optional field as absent; the schema must then admit `null`.
pub async fn the_reading_schema_admits_every_reading_the_api_accepts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    let mut sent = reading("N1", None, 0);
    for field in [
        "interval_s",
        "lane",
        "avg_speed_kmh",
        "occupancy_pct",
        "speed_limit_kmh",
        "lanes",
    ] {
        sent[field] = Value::Null;
    }
    let accepted = app.post_json("/v1/events", &sent).await;
    assert_eq!(accepted.status().as_u16(), 201);
    let root = json!({
        "components": doc["components"].clone(),
        "$ref": "#/components/schemas/Reading",
    });
    let errors = schema_errors(&root, &sent);
    assert!(
        errors.is_empty(),
        "accepted but not schema-valid: {errors:?}"
    );
}

/// The limits the document gives the query parameters are the ones the service enforces: the
/// largest documented value is served, one more is refused naming the parameter, and so is a
/// parameter the document does not list.
pub async fn documented_query_limits_are_the_enforced_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create(&reading("doc-sensor", Some(1), 0)).await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let Some(get) = item.get("get") else { continue };
        let path = template.replace("{sensor_id}", "doc-sensor");
        let parameters = get["parameters"].as_array().cloned().unwrap_or_default();
        for parameter in parameters.iter().filter(|p| p["in"] == "query") {
            let name = parameter["name"].as_str().expect("a name");
            let schema = &parameter["schema"];
            assert!(schema.is_object(), "{template} {name}: no schema");
            assert!(
                parameter["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{template} {name}: no description"
            );
            let (Some(min), Some(max)) = (schema["minimum"].as_u64(), schema["maximum"].as_u64())
            else {
                continue;
            };
            let below = min.checked_sub(1).map(|v| (v, false));
            for (value, ok) in [(min, true), (max, true), (max + 1, false)]
                .into_iter()
                .chain(below)
            {
                let response = send(app.get(&format!("{path}?{name}={value}"))).await;
                let status = response.status().as_u16();
                if ok {
                    assert_eq!(status, 200, "{template}?{name}={value}");
                } else {
                    assert_eq!(status, 400, "{template}?{name}={value}");
                    let problem: Value = response.json().await.expect("a problem");
                    assert_eq!(problem["errors"][0]["field"], name, "{problem}");
                }
            }
            checked += 1;
        }
        if !parameters.iter().any(|p| p["in"] == "query") {
            continue;
        }
        let response = send(app.get(&format!("{path}?undocumented=1"))).await;
        assert_eq!(response.status().as_u16(), 400, "{template}?undocumented=1");
    }
    assert!(checked >= 3, "only {checked} bounded parameters were found");
}
