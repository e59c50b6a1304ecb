//! `GET /v1/sensors` and `GET /v1/sensors/{sensor_id}`.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use traffic_model::classification::Label;

use crate::support::{Backend, TestApp, problem, reading, reading_at, send};

fn sensor_ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["sensor_id"].as_str().expect("sensor_id"))
        .collect()
}

/// The summary at `path`, after asserting its counts by label and of unclassified readings.
async fn assert_summary(app: &TestApp, path: &str, by_label: Value, unclassified: u64) -> Value {
    let summary = app.get_ok(path).await;
    assert_eq!(summary["counts_by_label"], by_label, "{path}");
    assert_eq!(summary["unclassified"], unclassified, "{path}");
    summary
}

pub async fn sensors_are_listed_in_id_order_with_each_lane_s_latest_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_many(&[
        reading("S-b", Some(1), 0),
        reading("S-b", Some(2), 30),
        reading("S-b", Some(1), 20),
        reading("S-a", None, 10),
        reading("S-a", None, 5),
        reading("S-c", Some(3), 1),
    ])
    .await;
    app.classify_all(Label::Heavy).await;
    // Known by its metadata alone; and a sensor whose only reading is not classified yet.
    app.put_sensor("S-m", json!({"road": "A9"})).await;
    app.create(&reading("S-p", None, 0)).await;

    let page = app.get_ok("/v1/sensors").await;
    assert_eq!(sensor_ids(&page), ["S-a", "S-b", "S-c", "S-m"]);
    assert!(page["next_after"].is_null(), "{page}");
    let at = |m| crate::support::minute(m);
    type Lane<'a> = (Option<i64>, chrono::DateTime<Utc>, &'a str);
    let lanes: Vec<Vec<Lane>> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| {
            s["lanes"]
                .as_array()
                .expect("lanes")
                .iter()
                .map(|l| {
                    assert_eq!(l["sensor_id"], s["sensor_id"]);
                    assert!(l["stale"].is_boolean() && l["age_s"].is_i64(), "{l}");
                    let observed = l["observed_at"].as_str().expect("observed_at");
                    (
                        l["lane"].as_i64(),
                        chrono::DateTime::parse_from_rfc3339(observed)
                            .expect("time")
                            .with_timezone(&Utc),
                        l["label"].as_str().expect("label"),
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(
        lanes,
        [
            vec![(None, at(10), "heavy")],
            vec![(Some(1), at(20), "heavy"), (Some(2), at(30), "heavy")],
            vec![(Some(3), at(1), "heavy")],
            vec![],
        ]
    );
    assert!(page["items"][0]["metadata"].is_null());
    assert_eq!(page["items"][3]["metadata"]["road"], "A9");
    assert!(page["items"][3]["metadata_updated_at"].is_string());
}

pub async fn the_sensor_list_pages_with_limit_and_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_many(&["p1", "p2", "p3", "p4", "p5"].map(|s| reading(s, None, 0)))
        .await;
    app.classify_all(Label::FreeFlow).await;
    let first = app.get_ok("/v1/sensors?limit=2").await;
    assert_eq!(sensor_ids(&first), ["p1", "p2"]);
    assert_eq!(first["next_after"], "p2");
    let second = app.get_ok("/v1/sensors?limit=2&after=p2").await;
    assert_eq!(sensor_ids(&second), ["p3", "p4"]);
    let last = app.get_ok("/v1/sensors?limit=2&after=p4").await;
    assert_eq!(sensor_ids(&last), ["p5"]);
    assert!(last["next_after"].is_null());

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("after=has%20space", "after"),
        ("page=2", "page"),
        ("bbox=1,2", "bbox"),
        ("label=gridlock", "label"),
    ] {
        let path = format!("/v1/sensors?{query}");
        app.assert_invalid_query(&path, &[field]).await;
    }
}

pub async fn a_sensor_summary_counts_its_readings_by_label_over_the_window(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = Utc::now();
    let ago = |minutes| now - TimeDelta::minutes(minutes);
    let mut ids = Vec::new();
    for (lane, minutes) in [
        (1, 5),
        (1, 10),
        (2, 10),
        (1, 20),
        (1, 30),
        (1, 90),
        (1, 200),
    ] {
        let event = app
            .create(&reading_at("D-1", Some(lane), ago(minutes)))
            .await;
        ids.push(event["id"].as_i64().expect("id"));
    }
    app.create(&reading_at("D-2", Some(1), ago(1))).await;
    app.classify(ids[1], Label::Heavy).await;
    app.classify(ids[2], Label::Heavy).await;
    app.classify(ids[3], Label::FreeFlow).await;
    app.classify(ids[5], Label::Congested).await;

    // Readings at 5 and 30 minutes ago are not classified yet.
    let by_label = json!({"heavy": 2, "free_flow": 1});
    let summary = assert_summary(&app, "/v1/sensors/D-1", by_label, 2).await;
    assert_eq!(summary["sensor_id"], "D-1");
    assert_eq!(summary["latest"]["id"], ids[0]);
    // Lane 1's latest classified reading is 10 minutes old (5 is pending), lane 2's too.
    let lanes: Vec<(i64, i64)> = summary["lanes"]
        .as_array()
        .expect("lanes")
        .iter()
        .map(|l| (l["lane"].as_i64().unwrap(), l["event_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(lanes, [(1, ids[1]), (2, ids[2])]);
    let from = summary["window"]["from"].as_str().expect("from");
    let to = summary["window"]["to"].as_str().expect("to");
    let span = chrono::DateTime::parse_from_rfc3339(to).expect("to")
        - chrono::DateTime::parse_from_rfc3339(from).expect("from");
    assert_eq!(span, TimeDelta::minutes(60));

    let wide = json!({"heavy": 2, "free_flow": 1, "congested": 1});
    assert_summary(&app, "/v1/sensors/D-1?window_minutes=120", wide, 2).await;
    assert_summary(&app, "/v1/sensors/D-1?window_minutes=7", json!({}), 1).await;
}

pub async fn an_unknown_sensor_is_a_404_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create(&reading("known", None, 0)).await;
    for path in ["/v1/sensors/unknown", "/v1/sensors/no%20such%20id"] {
        problem(send(app.get(path)).await, 404, "not-found").await;
    }
    // The id is an opaque string: the sensor that exists is found even outside the window.
    assert_summary(&app, "/v1/sensors/known", json!({}), 0).await;
}

pub async fn a_bad_window_is_refused_with_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create(&reading("W", None, 0)).await;
    for minutes in ["0", "44641", "an-hour", "-5"] {
        let path = format!("/v1/sensors/W?window_minutes={minutes}");
        app.assert_invalid_query(&path, &["window_minutes"]).await;
    }
    app.assert_invalid_query("/v1/sensors/W?window=60", &["window"])
        .await;
    app.get_ok("/v1/sensors/W?window_minutes=44640").await;
}

/// Sensor ids may contain `/` (and `:`); such a sensor is reached with the `/` percent-encoded.
pub async fn a_sensor_id_with_a_slash_is_found_percent_encoded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create(&reading("ring/12:north", None, 0)).await;
    app.classify_all(Label::FreeFlow).await;
    let listed = app.get_ok("/v1/sensors").await;
    assert_eq!(sensor_ids(&listed), ["ring/12:north"]);
    let summary = app.get_ok("/v1/sensors/ring%2F12:north").await;
    assert_eq!(summary["sensor_id"], "ring/12:north");
    let next = app.get_ok("/v1/sensors?after=ring%2F12%3Anorth").await;
    assert_eq!(sensor_ids(&next), Vec::<&str>::new());
}

/// `next_after` is documented as null on the last page, also when that page is full.
pub async fn next_after_is_null_on_a_full_last_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_many(&["f1", "f2", "f3", "f4"].map(|s| reading(s, None, 0)))
        .await;
    app.classify_all(Label::FreeFlow).await;
    let first = app.get_ok("/v1/sensors?limit=2").await;
    assert_eq!(first["next_after"], "f2");
    let last = app.get_ok("/v1/sensors?limit=2&after=f2").await;
    assert_eq!(sensor_ids(&last), ["f3", "f4"]);
    assert!(last["next_after"].is_null(), "{last}");
}

pub async fn the_sensor_list_filters_by_road_place_label_and_flags(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (id, metadata) in [
        (
            "F-a",
            json!({"road": "A1", "location": {"lon": 13.4, "lat": 52.5}}),
        ),
        (
            "F-b",
            json!({"road": "A1", "location": {"lon": 11.6, "lat": 48.1}}),
        ),
        ("F-c", json!({"road": "A2"})),
    ] {
        app.put_sensor(id, metadata).await;
    }
    let a = app.create(&reading("F-a", Some(1), 0)).await;
    let b = app.create(&reading("F-b", Some(1), 0)).await;
    app.create(&reading("F-d", Some(1), 0)).await;
    app.classify(a["id"].as_i64().unwrap(), Label::Congested)
        .await;
    app.classify(b["id"].as_i64().unwrap(), Label::FreeFlow)
        .await;
    app.classify_all(Label::Moderate).await;

    let ids = |query: &'static str| {
        let app = &app;
        async move {
            let page = app.get_ok(&format!("/v1/sensors?{query}")).await;
            sensor_ids(&page)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("").await, ["F-a", "F-b", "F-c", "F-d"]);
    assert_eq!(ids("road=A1").await, ["F-a", "F-b"]);
    assert_eq!(ids("bbox=13,52,14,53").await, ["F-a"]);
    assert_eq!(ids("label=congested").await, ["F-a"]);
    assert_eq!(ids("label=moderate").await, ["F-d"]);
    assert_eq!(ids("road=A1&label=free_flow").await, ["F-b"]);
    assert!(ids("flagged=true").await.is_empty());
    assert_eq!(ids("flagged=false").await, ["F-a", "F-b", "F-d"]);
    // Filters and pages combine: the page holds only what the filters keep.
    let first = app.get_ok("/v1/sensors?road=A1&limit=1").await;
    assert_eq!(sensor_ids(&first), ["F-a"]);
    assert_eq!(first["next_after"], "F-a");
    let second = app.get_ok("/v1/sensors?road=A1&limit=1&after=F-a").await;
    assert_eq!(sensor_ids(&second), ["F-b"]);
    assert!(second["next_after"].is_null());
}
