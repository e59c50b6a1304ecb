//! End-to-end: input a careless gateway or an attacker sends, against the running `ingest`.
//! Each gets its documented answer, and no accepted reading ever takes another's place.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use smart_traffic_e2e::raw::exchange;
use smart_traffic_e2e::{Ingest, TestDatabase, at, free_port, on_both_backends, reading};

on_both_backends! {
    a_second_60_is_refused_and_never_takes_the_next_minutes_place,
    repeated_members_and_query_parameters_are_refused_by_name,
    times_before_1970_are_refused,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A reading at `observed_at`, as text.
fn stamped(sensor: &str, observed_at: &str) -> Value {
    let mut body = reading(sensor, 0);
    body["observed_at"] = json!(observed_at);
    body
}

/// The `errors` of a problem document, as (field, message) pairs.
fn field_errors(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["message"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Second 60: in UTC, at another offset, with a fraction, and a real leap second.
const LEAP_SECONDS: [&str; 4] = [
    "2026-03-02T07:00:60Z",
    "2026-03-02T08:00:60+01:00",
    "2026-03-02T07:00:60.5Z",
    "2016-12-31T23:59:60Z",
];

/// Year 0, year 1, and the last microsecond before 1970.
const BEFORE_1970: [&str; 3] = [
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999Z",
];

/// Posts a reading of `sensor` stamped with each of `refused`: each is answered 422, its first
/// error on `observed_at` and an error there saying `why`. Then one stamped `accepted` is
/// stored (201).
async fn refused_then_accepted(
    ingest: &Ingest,
    sensor: &str,
    refused: &[&str],
    why: &str,
    accepted: &str,
) {
    for observed_at in refused {
        let (status, problem) = ingest.post_reading(&stamped(sensor, observed_at)).await;
        assert_eq!(status, 422, "{observed_at}: {problem}");
        let errors = field_errors(&problem);
        let first = errors.first().map(|(field, _)| field.as_str());
        assert_eq!(first, Some("observed_at"), "{observed_at}: {problem}");
        assert!(
            errors
                .iter()
                .any(|(f, m)| f == "observed_at" && m.contains(why)),
            "{observed_at}: {problem}"
        );
    }
    let (status, event) = ingest.post_reading(&stamped(sensor, accepted)).await;
    assert_eq!(status, 201, "{accepted}: {event}");
}

async fn a_second_60_is_refused_and_never_takes_the_next_minutes_place(db: TestDatabase) {
    let ingest = Ingest::storing_only(&db, &[]).await;
    // t0 is 07:00:00Z: ":60" of minute 0 would be read as minute 1. The real reading of the
    // next minute is stored as itself, not as a duplicate.
    refused_then_accepted(&ingest, "leap", &LEAP_SECONDS, "second 60", &at(1)).await;

    let batch = json!([
        stamped("leap", "2026-03-02T07:01:60Z"),
        stamped("leap", &at(2))
    ]);
    let response = client()
        .post(ingest.url("/v1/events/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["accepted"], 1, "{result}");
    assert_eq!(result["duplicates"], 0, "{result}");
    assert_eq!(result["rejected"][0]["index"], 0, "{result}");
    assert_eq!(
        result["rejected"][0]["errors"][0]["field"], "observed_at",
        "{result}"
    );
    assert_eq!(db.count("sensor_id = 'leap'").await, 2);
}

async fn repeated_members_and_query_parameters_are_refused_by_name(db: TestDatabase) {
    let ingest = Ingest::storing_only(&db, &[]).await;
    let base = ingest.url("");
    let body = r#"{"sensor_id":"dup","observed_at":"2026-03-02T07:00:00Z","vehicle_count":5,"vehicle_count":50}"#;
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = exchange(&base, request.as_bytes()).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains(r#""field":"vehicle_count""#), "{text}");
    assert!(text.contains("more than once"), "{text}");

    let ndjson = format!("{}\n{body}\n", stamped("dup", &at(1)));
    let response = client()
        .post(ingest.url("/v1/events/batch"))
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["accepted"], 1, "{result}");
    assert_eq!(result["rejected"][0]["index"], 1, "{result}");
    assert_eq!(db.count("sensor_id = 'dup'").await, 1);

    for query in [
        "/v1/events?limit=10&limit=20",
        "/v1/events?limit=10&limit=10",
        "/v1/sensors?after=a&after=b",
        "/v1/sensors/dup?window_minutes=5&window_minutes=6",
    ] {
        let response = client().get(ingest.url(query)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/invalid-query", "{problem}");
        let errors = field_errors(&problem);
        assert!(
            errors.iter().any(|(_, m)| m.contains("more than once")),
            "{query}: {problem}"
        );
    }
}

async fn times_before_1970_are_refused(db: TestDatabase) {
    let ingest = Ingest::storing_only(&db, &[]).await;
    let earliest = "1970-01-01T00:00:00Z";
    refused_then_accepted(&ingest, "old", &BEFORE_1970, "before 1970", earliest).await;
    assert_eq!(db.count("sensor_id = 'old'").await, 1);
}

/// Errors say what is wrong in words: no Rust type names, no `Debug` dumps.
fn in_words(text: &str) -> bool {
    !["Some(", "None", "Custom {", "kind:", "::"]
        .iter()
        .any(|internal| text.contains(internal))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_bodies_and_encodings_get_problems_in_words() {
    let ingest = Ingest::storing_only_on_sqlite(&[]).await;
    let base = ingest.url("");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzip, reading("gz", 0).to_string().as_bytes()).unwrap();
    let whole = gzip.finish().unwrap();
    let request = |encoding: &str, body: &[u8]| {
        let mut bytes = format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             {encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    };
    let cases: [(&str, &[u8], u16, &str); 6] = [
        (
            "Content-Encoding: gzip\r\n",
            &whole[..whole.len() - 4],
            400,
            "malformed-body",
        ),
        (
            "Content-Encoding: gzip\r\n",
            b"plain text",
            400,
            "malformed-body",
        ),
        (
            "Content-Encoding: deflate\r\n",
            &whole,
            415,
            "unsupported-media-type",
        ),
        (
            "Content-Encoding: br\r\n",
            &whole,
            415,
            "unsupported-media-type",
        ),
        (
            "Content-Encoding: gzip\r\nContent-Encoding: gzip\r\n",
            &whole,
            415,
            "unsupported-media-type",
        ),
        ("", b"{\"sensor_id\": ", 400, "malformed-json"),
    ];
    for (encoding, body, status, kind) in cases {
        let (got, text) = exchange(&base, &request(encoding, body)).await;
        assert_eq!(got, status, "{encoding:?}: {text}");
        assert!(text.contains(&format!("/problems/{kind}")), "{text}");
        let detail = text.split("\"detail\":").nth(1).unwrap_or_default();
        assert!(in_words(detail), "{encoding:?}: {detail}");
    }
    // Chunked framing that breaks off: the body ends before its end.
    let chunked = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
        Transfer-Encoding: chunked\r\n\r\nZZ\r\n";
    let (status, text) = exchange(&base, chunked).await;
    assert_eq!(status, 400, "{text}");
    let detail = text.split("\"detail\":").nth(1).unwrap_or_default();
    assert!(in_words(detail), "{detail}");
    // The whole gzip body is accepted.
    let (status, text) = exchange(&base, &request("Content-Encoding: gzip\r\n", &whole)).await;
    assert_eq!(status, 201, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_a_classifier_failure_in_words() {
    let db = TestDatabase::sqlite();
    let nowhere = format!("http://127.0.0.1:{}/mcp", free_port());
    let ingest = Ingest::start(
        "ingest",
        &db,
        &[("MCP_URL", nowhere.as_str()), ("CLASSIFY_WORKERS", "1")],
    )
    .await;
    ingest.create(&reading("words", 0)).await;
    let error = smart_traffic_e2e::eventually(
        "the classifier link's last error",
        std::time::Duration::from_secs(20),
        || async {
            let ready = ingest.ready().await;
            ready["classifier"]["last_error"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ready.to_string())
        },
    )
    .await;
    assert!(in_words(&error), "{error}");
    assert!(
        error.contains("refused") || error.contains("connect"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_http_layer_refuses_get_problem_documents_too() {
    let ingest = Ingest::storing_only_on_sqlite(&[]).await;
    let base = ingest.url("");
    let huge_head = format!(
        "GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let cases: [(&[u8], u16, &str); 4] = [
        (b"GARBAGE\r\n\r\n", 400, "malformed-request"),
        (
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            400,
            "malformed-request",
        ),
        (huge_head.as_bytes(), 431, "headers-too-large"),
        // A head that never ends: cut after 5 s.
        (b"GET /v1/events HTTP/1.1\r\nHost: x\r\n", 408, "request-timeout"),
    ];
    for (request, status, kind) in cases {
        let (got, text) = exchange(&base, request).await;
        assert_eq!(got, status, "{text}");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{head}"
        );
        let problem: Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(problem["type"], format!("/problems/{kind}"), "{problem}");
        assert_eq!(problem["status"], status, "{problem}");
    }
    // The service goes on serving.
    ingest.create(&reading("after", 0)).await;
}
