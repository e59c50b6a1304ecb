//! Representations: CSV for events, series, state and transitions; GeoJSON (checked against
//! the GeoJSON working group's schema) for sensors and state; `406` for anything else.

use chrono::{TimeDelta, Utc};
use reqwest::header::ACCEPT;
use serde_json::{Value, json};
use traffic_model::classification::Label;
use traffic_store::test_util::reading_json_at;

use crate::support::{Backend, TestApp, content_type, problem, send};

/// `a` (located, on the A1) with two lanes, `b` (no location) with one; one change of label.
async fn network(app: &TestApp) {
    app.put_sensor(
        "a",
        json!({"road": "A1", "location": {"lon": 13.4, "lat": 52.5}}),
    )
    .await;
    app.put_sensor("b", json!({"road": "A1"})).await;
    let now = Utc::now();
    for (sensor, lane, minutes, label) in [
        ("a", 1, 3, Label::FreeFlow),
        ("a", 1, 2, Label::Congested),
        ("a", 2, 2, Label::Heavy),
        ("b", 1, 1, Label::Moderate),
    ] {
        let at = now - TimeDelta::minutes(minutes);
        app.create_classified(&reading_json_at(sensor, Some(lane), at), label)
            .await;
    }
}

/// The body as CSV records (header first), after checking the content type.
async fn csv_of(app: &TestApp, path: &str) -> (Vec<Vec<String>>, Option<String>) {
    let response = send(app.get(path).header(ACCEPT, "text/csv")).await;
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(content_type(&response), "text/csv", "{path}");
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let records: Vec<Vec<String>> = csv::Reader::from_reader(text.as_bytes())
        .into_records()
        .map(|r| {
            r.unwrap()
                .iter()
                .map(str::to_owned)
                .collect::<Vec<String>>()
        })
        .collect();
    let mut header = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = header
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    (std::iter::once(header).chain(records).collect(), link)
}

fn column<'a>(table: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let index = table[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no {name}"));
    table[1..].iter().map(|row| row[index].as_str()).collect()
}

async fn geojson_of(app: &TestApp, path: &str) -> Value {
    let response = send(app.get(path).header(ACCEPT, "application/geo+json")).await;
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(content_type(&response), "application/geo+json", "{path}");
    let body: Value = response.json().await.unwrap();
    let schema: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/geojson/FeatureCollection.json"
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the GeoJSON schema");
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{path}: {errors:?}\n{body:#}");
    body
}

pub async fn reads_answer_in_csv_when_asked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    network(&app).await;

    let (events, link) = csv_of(&app, "/v1/events?limit=3").await;
    assert_eq!(events[0][..4], ["id", "sensor_id", "lane", "observed_at"]);
    assert_eq!(events.len(), 4, "a header and three rows");
    assert_eq!(
        column(&events, "sensor_id"),
        ["b", "a", "a"],
        "newest first"
    );
    assert_eq!(column(&events, "label"), ["moderate", "heavy", "congested"]);
    let next = link.expect("a next page");
    assert!(next.starts_with("</v1/events?limit=3&cursor="), "{next}");
    let url = next.trim_start_matches('<').split('>').next().unwrap();
    let (rest, _) = csv_of(&app, url).await;
    assert_eq!(column(&rest, "label"), ["free_flow"]);

    let (state, _) = csv_of(&app, "/v1/state").await;
    assert_eq!(column(&state, "sensor_id"), ["a", "a", "b"]);
    assert_eq!(column(&state, "label"), ["congested", "heavy", "moderate"]);
    assert_eq!(column(&state, "lon"), ["13.4", "13.4", ""]);
    assert_eq!(column(&state, "stale"), ["false", "false", "false"]);

    let (transitions, _) = csv_of(&app, "/v1/transitions").await;
    assert_eq!(column(&transitions, "from_label"), ["free_flow"]);
    assert_eq!(column(&transitions, "to_label"), ["congested"]);

    let (series, _) = csv_of(&app, "/v1/sensors/a/series?bucket=1h").await;
    let readings: u32 = column(&series, "readings")
        .iter()
        .map(|r| r.parse::<u32>().unwrap())
        .sum();
    assert_eq!(readings, 3);
    assert_eq!(series.len(), 26, "a header and 25 hours");
}

pub async fn sensors_and_state_answer_in_geojson_when_asked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    network(&app).await;
    let sensors = geojson_of(&app, "/v1/sensors").await;
    let features = sensors["features"].as_array().unwrap();
    assert_eq!(features.len(), 2);
    let a = &features[0];
    assert_eq!(a["id"], "a");
    assert_eq!(
        a["geometry"],
        json!({"type": "Point", "coordinates": [13.4, 52.5]})
    );
    assert_eq!(a["properties"]["metadata"]["road"], "A1");
    assert_eq!(
        a["properties"]["label"], "congested",
        "the worst lane colours the marker"
    );
    assert_eq!(a["properties"]["lanes"].as_array().unwrap().len(), 2);
    assert!(features[1]["geometry"].is_null(), "b has no location");
    assert!(sensors["next_after"].is_null());

    let state = geojson_of(&app, "/v1/state?road=A1").await;
    let ids: Vec<&str> = state["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a#1", "a#2", "b#1"]);
    assert_eq!(state["features"][1]["properties"]["label"], "heavy");
    assert_eq!(state["summary"]["lanes"], 3);
}

pub async fn a_representation_not_offered_is_a_406_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    network(&app).await;
    for (path, accept) in [
        ("/v1/events", "application/geo+json"),
        ("/v1/sensors", "text/csv"),
        ("/v1/state", "text/html"),
        ("/v1/transitions", "application/xml"),
        ("/v1/sensors/a/series", "application/json;q=0"),
    ] {
        let response = send(app.get(path).header(ACCEPT, accept)).await;
        let body = problem(response, 406, "not-acceptable").await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{body}"
        );
    }
    // A browser's Accept ends in */*: JSON.
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let response = send(app.get("/v1/state").header(ACCEPT, browser)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
}
