//! `GET /v1/transitions`: the label changes of each lane in a window.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use traffic_model::classification::Label;
use traffic_store::test_util::reading_json_at;

use crate::support::{Backend, TestApp};

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
        .replace(':', "%3A")
}

/// Stores a reading of `sensor` lane 1 observed at `at` and classifies it `label`.
async fn classified(app: &TestApp, sensor: &str, at: DateTime<Utc>, label: Label) {
    app.create_classified(&reading_json_at(sensor, Some(1), at), label)
        .await;
}

/// `(sensor_id, from_label, to_label)` of each item.
fn changes(page: &Value) -> Vec<(String, String, String)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let text = |k: &str| t[k].as_str().unwrap().to_owned();
            (text("sensor_id"), text("from_label"), text("to_label"))
        })
        .collect()
}

/// `a` (road A1) goes free → heavy → congested, `b` (no metadata) free → congested; a late
/// reading of `a` lands between its heavy and congested readings. Returns the base time.
async fn timeline(app: &TestApp) -> DateTime<Utc> {
    app.put_sensor("a", json!({"road": "A1"})).await;
    // Stored times keep microseconds.
    let t0 =
        DateTime::from_timestamp_micros((Utc::now() - TimeDelta::minutes(30)).timestamp_micros())
            .unwrap();
    let at = |m| t0 + TimeDelta::minutes(m);
    classified(app, "a", at(0), Label::FreeFlow).await;
    classified(app, "a", at(2), Label::Heavy).await;
    classified(app, "a", at(6), Label::Congested).await;
    classified(app, "b", at(1), Label::FreeFlow).await;
    classified(app, "b", at(3), Label::Congested).await;
    t0
}

pub async fn transitions_list_label_changes_in_time_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t0 = timeline(&app).await;
    let page = app.get_ok("/v1/transitions").await;
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    let expected = [
        s("a", "free_flow", "heavy"),
        s("b", "free_flow", "congested"),
        s("a", "heavy", "congested"),
    ];
    assert_eq!(changes(&page), expected);
    assert!(page["next_cursor"].is_null());
    let first = &page["items"][0];
    assert_eq!(first["lane"], 1);
    assert!(first["event_id"].is_i64() && first["previous_event_id"].is_i64());
    assert_eq!(first["from_level_of_service"], "E");

    let newest = app.get_ok("/v1/transitions?order=desc").await;
    assert_eq!(
        changes(&newest),
        expected.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        changes(&app.get_ok("/v1/transitions?road=A1").await),
        [expected[0].clone(), expected[2].clone()]
    );
    assert_eq!(
        changes(&app.get_ok("/v1/transitions?sensor_id=b").await),
        [expected[1].clone()]
    );
    assert!(changes(&app.get_ok("/v1/transitions?road=A1&sensor_id=b").await).is_empty());
    assert!(changes(&app.get_ok("/v1/transitions?road=M25").await).is_empty());
    // A window that starts after a's heavy reading still sees the change to congested.
    let from = stamp(t0 + TimeDelta::minutes(4));
    assert_eq!(
        changes(&app.get_ok(&format!("/v1/transitions?from={from}")).await),
        [expected[2].clone()]
    );

    // Page by page.
    let mut walked = Vec::new();
    let mut path = "/v1/transitions?limit=1".to_owned();
    loop {
        let page = app.get_ok(&path).await;
        walked.extend(changes(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/transitions?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, expected);

    // A late reading of a between minutes 2 and 6, congested: the change moves to it.
    classified(&app, "a", t0 + TimeDelta::minutes(4), Label::Congested).await;
    let revised = app.get_ok("/v1/transitions?road=A1").await;
    assert_eq!(revised["items"][1]["to_label"], "congested");
    let at = DateTime::parse_from_rfc3339(revised["items"][1]["at"].as_str().unwrap()).unwrap();
    assert_eq!(at, t0 + TimeDelta::minutes(4));
}

pub async fn bad_transition_windows_are_refused_with_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = Utc::now();
    let (from, to) = (stamp(now - TimeDelta::days(32)), stamp(now));
    app.assert_invalid_query(&format!("/v1/transitions?from={from}&to={to}"), &["to"])
        .await;
    app.assert_invalid_query(&format!("/v1/transitions?from={to}&to={from}"), &["to"])
        .await;
    app.assert_invalid_query(
        "/v1/transitions?order=sideways&limit=0&cursor=x&sensor_id=a%20b",
        &["cursor", "limit", "order", "sensor_id"],
    )
    .await;
}
