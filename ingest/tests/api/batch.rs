//! `POST /v1/events/batch`: a JSON array or NDJSON of readings.

use serde_json::{Value, json};

use crate::support::{Backend, NDJSON, TestApp, gzipped, json, ndjson, problem, reading, send};

const BATCH: &str = "/v1/events/batch";

/// The `index` of every rejected reading, in answer order.
fn rejected_indexes(result: &Value) -> Vec<u64> {
    result["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| r["index"].as_u64().expect("index"))
        .collect()
}

/// The fields named by the rejection of the reading at `index`.
fn rejected_fields(result: &Value, index: u64) -> Vec<String> {
    let entry = result["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .find(|r| r["index"] == index)
        .unwrap_or_else(|| panic!("reading {index} was not rejected: {result}"));
    let mut fields: Vec<String> = entry["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect();
    fields.sort();
    fields
}

pub async fn a_json_batch_stores_the_valid_readings_and_lists_the_invalid_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut bad_lane = reading("B1", Some(1), 1);
    bad_lane["lane"] = json!(99);
    let batch = json!([
        reading("B1", Some(1), 0),
        bad_lane,
        reading("B1", Some(1), 2),
        "not a reading",
        {"sensor_id": "B 2", "observed_at": "soon", "vehicle_count": -1},
        reading("B1", Some(1), 0),
    ]);
    let result = json(app.post_json(BATCH, &batch).await, 200).await;

    assert_eq!(result["accepted"], 2, "{result}");
    // The last reading repeats the first one of the same batch.
    assert_eq!(result["duplicates"], 1, "{result}");
    assert_eq!(rejected_indexes(&result), [1, 3, 4]);
    assert_eq!(rejected_fields(&result, 1), ["lane"]);
    assert_eq!(rejected_fields(&result, 3), [""]);
    assert_eq!(
        rejected_fields(&result, 4),
        ["observed_at", "sensor_id", "vehicle_count"]
    );

    let stored = app.list_all(&[("sensor_id", "B1")]).await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|e| e["status"] == "pending"));
    assert_eq!(app.row_count().await, 2);
}

pub async fn an_ndjson_batch_rejects_a_line_that_is_not_json_by_its_index(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = format!(
        "{}{{\"sensor_id\": \"N1\", oops\n{}",
        ndjson(&[reading("N1", None, 0)]),
        ndjson(&[reading("N1", None, 1), reading("N1", None, 2)])
    );
    let response = app.post_as(BATCH, NDJSON, body).await;
    let result = json(response, 200).await;
    assert_eq!(result["accepted"], 3, "{result}");
    assert_eq!(result["duplicates"], 0);
    assert_eq!(rejected_indexes(&result), [1]);
    assert!(
        result["rejected"][0]["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not JSON")),
        "{result}"
    );
    assert_eq!(app.list_all(&[("sensor_id", "N1")]).await.len(), 3);
}

/// The documented meaning of an NDJSON `index` is the line number from 0.
pub async fn an_ndjson_index_is_the_line_number_even_after_blank_lines(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = format!(
        "{}\n\r\n{}not json\n",
        ndjson(&[reading("N2", None, 0)]),
        ndjson(&[reading("N2", None, 1)]),
    );
    // Lines: 0 reading, 1 blank, 2 blank (CRLF), 3 reading, 4 not JSON.
    let response = app.post_as(BATCH, NDJSON, body).await;
    let result = json(response, 200).await;
    assert_eq!(result["accepted"], 2, "{result}");
    assert_eq!(rejected_indexes(&result), [4], "{result}");
}

pub async fn a_resent_batch_is_all_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let readings: Vec<Value> = (0..25).map(|m| reading("R1", Some(1), m)).collect();
    let mut batch = readings.clone();
    batch.push(json!({"sensor_id": "R1"}));
    let batch = Value::from(batch);

    let first = json(app.post_json(BATCH, &batch).await, 200).await;
    assert_eq!(first["accepted"], 25, "{first}");
    assert_eq!(first["duplicates"], 0);
    let again = json(app.post_json(BATCH, &batch).await, 200).await;
    assert_eq!(again["accepted"], 0, "{again}");
    assert_eq!(again["duplicates"], 25);
    assert_eq!(rejected_indexes(&again), [25]);
    assert_eq!(app.row_count().await, 25);
}

pub async fn a_batch_of_more_than_10000_readings_is_refused_with_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let readings: Vec<Value> = (0..10_001).map(|m| reading("X1", None, m)).collect();
    let response = app.post_as(BATCH, NDJSON, ndjson(&readings)).await;
    problem(response, 413, "too-many-readings").await;
    let response = app.post_json(BATCH, &Value::from(readings)).await;
    problem(response, 413, "too-many-readings").await;
    assert_eq!(app.row_count().await, 0);
}

pub async fn a_batch_of_exactly_10000_readings_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let readings: Vec<Value> = (0..10_000).map(|m| reading("X2", None, m)).collect();
    let response = app.post_as(BATCH, NDJSON, ndjson(&readings)).await;
    let result = json(response, 200).await;
    assert_eq!(result["accepted"], 10_000, "{result}");
    assert_eq!(app.row_count().await, 10_000);
}

pub async fn a_gzip_ndjson_batch_is_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let readings: Vec<Value> = (0..200).map(|m| reading("G1", Some(0), m)).collect();
    let body = ndjson(&readings);
    let response = send(gzipped(app.post(BATCH), NDJSON, body.as_bytes())).await;
    let result = json(response, 200).await;
    assert_eq!(result["accepted"], 200, "{result}");
    assert_eq!(app.row_count().await, 200);
}

pub async fn a_batch_over_the_byte_limit_is_refused_with_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.http.limits.max_batch_bytes = 4096
    })
    .await;
    let readings: Vec<Value> = (0..100).map(|m| reading("L1", None, m)).collect();
    let body = ndjson(&readings);
    assert!(body.len() > 4096);
    let response = app.post_as(BATCH, NDJSON, body.clone()).await;
    problem(response, 413, "body-too-large").await;
    // Compressed below the limit, still over it once inflated.
    let response = send(gzipped(app.post(BATCH), NDJSON, body.as_bytes())).await;
    problem(response, 413, "body-too-large").await;
    assert_eq!(app.row_count().await, 0);
}

pub async fn a_malformed_or_mistyped_batch_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let malformed = app
        .post_as(BATCH, "application/json", "[{\"sensor_id\": ")
        .await;
    problem(malformed, 400, "malformed-json").await;

    let not_an_array = app.post_json(BATCH, &reading("M1", None, 0)).await;
    problem(not_an_array, 400, "malformed-json").await;

    let csv = "sensor_id,observed_at\nM1,2026-03-02T07:00:00Z\n";
    let csv = app.post_as(BATCH, "text/csv", csv).await;
    problem(csv, 415, "unsupported-media-type").await;
    assert_eq!(app.row_count().await, 0);

    let empty = json(app.post_json(BATCH, &json!([])).await, 200).await;
    assert_eq!(
        empty,
        json!({"accepted": 0, "duplicates": 0, "rejected": []})
    );
}
