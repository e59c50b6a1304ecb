//! Request ids, unknown paths and wrong methods.

use reqwest::Method;
use reqwest::header::ALLOW;

use crate::support::{Backend, TestApp, problem, reading, send};

const REQUEST_ID: &str = "x-request-id";

fn request_id(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

pub async fn a_sane_request_id_is_echoed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = "req-2026.11.29/abc:123_XYZ";
    let ok = send(app.get("/v1/health").header(REQUEST_ID, id)).await;
    assert_eq!(request_id(&ok).as_deref(), Some(id));
    let error = send(app.get("/v1/events/404404").header(REQUEST_ID, id)).await;
    assert_eq!(request_id(&error).as_deref(), Some(id));
    let created = app.post("/v1/events").json(&reading("R", None, 0));
    let created = send(created.header(REQUEST_ID, "a")).await;
    assert_eq!(request_id(&created).as_deref(), Some("a"));
    let longest = "x".repeat(128);
    let response = send(app.get("/v1/health").header(REQUEST_ID, &longest)).await;
    assert_eq!(request_id(&response), Some(longest));
}

pub async fn a_request_without_an_id_gets_a_fresh_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for path in ["/v1/health", "/v1/health", "/nowhere"] {
        let response = send(app.get(path)).await;
        let id = request_id(&response).expect("a request id");
        assert!(is_generated(&id), "{id}");
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "request ids repeat");
}

pub async fn an_insane_request_id_is_replaced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for insane in [
        "x".repeat(300),
        "x".repeat(129),
        "has space".to_owned(),
        "tab\there".to_owned(),
        "ünïcode".to_owned(),
    ] {
        let response = send(app.get("/v1/health").header(REQUEST_ID, insane.as_bytes())).await;
        let id = request_id(&response).expect("a request id");
        assert!(is_generated(&id), "{insane:?} came back as {id:?}");
    }
}

/// Every 4xx is a problem document, the probes and documents included: a path no route has is
/// a 404, a method its route does not serve a 405, and neither writes anything.
pub async fn requests_no_route_serves_are_404_or_405_problems(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let not_found = (404, "not-found");
    let not_allowed = (405, "method-not-allowed");
    for (method, path, (status, kind)) in [
        (Method::POST, "/", not_allowed),
        (Method::GET, "/ui/nothing.js", not_found),
        (Method::POST, "/ui/app.js", not_allowed),
        (Method::GET, "/v2/events", not_found),
        (Method::GET, "/v1/events/1/history", not_found),
        (Method::POST, "/v1/nothing", not_found),
        (Method::DELETE, "/v1/sensors/x/y", not_found),
        (Method::DELETE, "/v1/events", not_allowed),
        (Method::PUT, "/v1/events", not_allowed),
        (Method::GET, "/v1/events/batch", not_allowed),
        (Method::DELETE, "/v1/events/1", not_allowed),
        (Method::PATCH, "/v1/events/1", not_allowed),
        (Method::GET, "/v1/events/1/classify", not_allowed),
        (Method::POST, "/v1/sensors", not_allowed),
        (Method::DELETE, "/v1/sensors/s1", not_allowed),
        (Method::POST, "/v1/health", not_allowed),
        (Method::POST, "/v1/ready", not_allowed),
        (Method::POST, "/metrics", not_allowed),
        (Method::POST, "/openapi.json", not_allowed),
        (Method::POST, "/docs", not_allowed),
    ] {
        problem(send(app.request(method, path)).await, status, kind).await;
    }
    assert_eq!(app.row_count().await, 0);
}

/// RFC 9110 §15.5.6: a 405 response must say which methods the resource supports.
pub async fn a_405_lists_the_allowed_methods(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, allowed) in [
        ("/v1/events", "GET, POST"),
        ("/v1/events/batch", "POST"),
        ("/v1/events/1", "GET"),
        ("/v1/events/1/classify", "POST"),
    ] {
        let response = send(app.request(Method::DELETE, path)).await;
        assert_eq!(response.status().as_u16(), 405);
        let mut got: Vec<String> = response
            .headers()
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect();
        got.sort();
        let expected: Vec<&str> = allowed.split(", ").collect();
        assert_eq!(got, expected, "Allow on {path}");
    }
}
