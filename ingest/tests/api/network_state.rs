//! `GET /v1/state`: each sensor lane's latest classification, now or at a moment.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use traffic_model::classification::Label;
use traffic_store::test_util::reading_json_at;

use crate::support::{Backend, TestApp};

/// `(sensor_id, lane, label)` of each item.
fn lanes(state: &Value) -> Vec<(String, Value, String)> {
    state["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["sensor_id"].as_str().unwrap().to_owned(),
                i["lane"].clone(),
                i["label"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A small network: `a` on the A1 in Berlin (lane 1 heavy 2 min ago, lane 2 free-flowing 10
/// min ago, so stale), `b` on the A2 in Munich (congested 1 min ago), `c` without metadata
/// and with only a pending reading. Returns the time the readings are relative to.
async fn network(app: &TestApp) -> DateTime<Utc> {
    app.put_sensor(
        "a",
        json!({"road": "A1", "location": {"lon": 13.4, "lat": 52.5}}),
    )
    .await;
    app.put_sensor(
        "b",
        json!({"road": "A2", "location": {"lon": 11.6, "lat": 48.1}}),
    )
    .await;
    let now = Utc::now();
    let ago = |minutes| now - TimeDelta::minutes(minutes);
    for (sensor, lane, minutes, label) in [
        ("a", 1, 2, Label::Heavy),
        ("a", 2, 10, Label::FreeFlow),
        ("b", 1, 1, Label::Congested),
    ] {
        app.create_classified(&reading_json_at(sensor, Some(lane), ago(minutes)), label)
            .await;
    }
    app.create(&reading_json_at("c", None, ago(1))).await;
    now
}

pub async fn the_state_holds_each_lane_s_latest_classification_with_its_age(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = network(&app).await;
    let state = app.get_ok("/v1/state").await;
    assert_eq!(
        lanes(&state),
        [
            ("a".into(), json!(1), "heavy".into()),
            ("a".into(), json!(2), "free_flow".into()),
            ("b".into(), json!(1), "congested".into()),
        ]
    );
    let items = state["items"].as_array().unwrap();
    assert_eq!(items[0]["stale"], false, "{state}");
    assert_eq!(items[1]["stale"], true, "10 min > 3 × 60 s: {state}");
    assert!(items[1]["age_s"].as_i64().unwrap() >= 600, "{state}");
    assert_eq!(items[0]["road"], "A1");
    assert_eq!(items[2]["location"], json!({"lon": 11.6, "lat": 48.1}));
    assert_eq!(items[0]["level_of_service"], "E");
    assert!(items[0]["event_id"].is_i64() && items[0]["observed_at"].is_string());
    assert_eq!(
        state["summary"],
        json!({"lanes": 3, "stale": 1, "flagged": 0,
               "by_label": {"free_flow": 1, "heavy": 1, "congested": 1}})
    );

    // Five minutes ago only lane a/2 had been classified; its age counts from then.
    let at = (now - TimeDelta::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let earlier = app
        .get_ok(&format!("/v1/state?at={}", urlencode(&at)))
        .await;
    assert_eq!(
        lanes(&earlier),
        [("a".into(), json!(2), "free_flow".into())]
    );
    assert_eq!(earlier["items"][0]["age_s"], 300, "{earlier}");
    assert_eq!(earlier["items"][0]["stale"], true);
    assert_eq!(
        DateTime::parse_from_rfc3339(earlier["at"].as_str().unwrap()).unwrap(),
        DateTime::parse_from_rfc3339(&at).unwrap()
    );
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A").replace('+', "%2B")
}

pub async fn the_state_filters_by_road_place_label_and_flags(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    network(&app).await;
    let only = |query: &'static str| {
        let app = &app;
        async move { lanes(&app.get_ok(&format!("/v1/state?{query}")).await) }
    };
    let a1 = only("road=A1").await;
    assert_eq!(a1.len(), 2, "{a1:?}");
    assert!(a1.iter().all(|(s, _, _)| s == "a"));
    assert_eq!(
        only("label=congested").await,
        [("b".into(), json!(1), "congested".into())]
    );
    assert_eq!(only("bbox=13,52,14,53&label=heavy").await.len(), 1);
    assert_eq!(only("bbox=11,48,12,49").await[0].0, "b");
    // A box across the antimeridian holds neither.
    assert!(only("bbox=170,-10,-170,10").await.is_empty());
    assert!(only("flagged=true").await.is_empty());
    assert_eq!(only("flagged=false").await.len(), 3);
    assert!(only("road=M25").await.is_empty());
}

pub async fn bad_state_parameters_are_named_in_one_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.assert_invalid_query(
        "/v1/state?at=yesterday&bbox=1,2,3&label=jammed&flagged=maybe&road=",
        &["at", "bbox", "flagged", "label", "road"],
    )
    .await;
    app.assert_invalid_query("/v1/state?bbox=0,10,1,5", &["bbox"])
        .await;
    app.assert_invalid_query("/v1/state?window=5", &["window"])
        .await;
}
