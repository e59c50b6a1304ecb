//! The whole path with the in-process classifier running: a reading posted over HTTP comes back
//! classified, and a re-queued one is classified again.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Backend, TestApp, eventually, reading, with_classifier};

async fn classified(app: &TestApp, id: i64) -> Option<Value> {
    let event = app.get_ok(&format!("/v1/events/{id}")).await;
    (event["status"] == "classified").then_some(event)
}

async fn wait_classified(app: &TestApp, id: i64) -> Value {
    let done = eventually(Duration::from_secs(30), || async {
        classified(app, id).await.is_some()
    })
    .await;
    let event = app.get_ok(&format!("/v1/events/{id}")).await;
    assert!(done, "event {id} was not classified: {event}");
    event
}

pub async fn posted_readings_are_classified_by_the_workers(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_classifier).await;
    let ready = app.get_ok("/v1/ready").await;
    assert_eq!(ready["classifier"]["workers"], 2, "{ready}");

    let event = app.create(&reading("E2E-1", Some(1), 0)).await;
    let id = event["id"].as_i64().expect("id");
    let event = wait_classified(&app, id).await;
    let classification = &event["classification"];
    assert!(classification["label"].is_string(), "{event}");
    assert!(classification["classifier_version"].is_string(), "{event}");
    assert!(
        classification["reasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{event}"
    );
    assert!(event["classified_at"].is_string());

    let batch: Vec<Value> = (1..40).map(|m| reading("E2E-1", Some(1), m)).collect();
    app.create_many(&batch).await;
    let all_done = eventually(Duration::from_secs(30), || async {
        app.list_all(&[("status", "classified")]).await.len() == 40
    })
    .await;
    assert!(all_done, "not every reading was classified");
    let label = classification["label"].as_str().expect("label");
    assert!(
        !app.list_all(&[("label", label)]).await.is_empty(),
        "the label filter finds classified events"
    );
}

/// The in-process classifier loads a batch's history from the store: a reading posted after
/// five identical ones of its lane were classified is the sixth in a row (`stuck`), while the
/// same values on a lane with no history are not.
pub async fn a_reading_is_judged_with_the_stored_history_of_its_lane(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_classifier).await;
    let earlier: Vec<Value> = (0..5).map(|m| reading("E2E-H", Some(1), m)).collect();
    app.create_many(&earlier).await;
    let stored = eventually(Duration::from_secs(30), || async {
        app.list_all(&[("sensor_id", "E2E-H"), ("status", "classified")])
            .await
            .len()
            == 5
    })
    .await;
    assert!(stored, "the earlier readings were not classified");
    let flags = |event: &Value| event["classification"]["flags"].clone();
    for (sensor, stuck) in [("E2E-H", true), ("E2E-NEW", false)] {
        let id = app.create(&reading(sensor, Some(1), 5)).await["id"]
            .as_i64()
            .expect("id");
        let event = wait_classified(&app, id).await;
        let flagged = flags(&event)
            .as_array()
            .is_some_and(|f| f.contains(&Value::from("stuck")));
        assert_eq!(flagged, stuck, "{sensor}: {event}");
    }
}

pub async fn a_requeued_event_is_classified_again(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_classifier).await;
    let id = app.create(&reading("E2E-2", None, 0)).await["id"]
        .as_i64()
        .expect("id");
    let first = wait_classified(&app, id).await;
    app.requeue(id).await;
    let done = eventually(Duration::from_secs(30), || async {
        classified(&app, id)
            .await
            .is_some_and(|e| e["classified_at"] != first["classified_at"])
    })
    .await;
    assert!(done, "the re-queued event was not classified again");
}

pub async fn a_stream_of_single_posts_is_classified_in_a_few_gathered_calls(backend: Backend) {
    const READINGS: i64 = 30;
    let app = TestApp::spawn_with(backend, |settings| {
        with_classifier(settings);
        settings.classify.workers = 1;
        settings.classify.gather = Duration::from_millis(400);
    })
    .await;
    // One POST at a time: without gathering, the worker would claim each reading (or a
    // handful) on its own as it arrives.
    for m in 0..READINGS {
        app.create(&reading("GATHER-1", Some(1), m)).await;
    }
    let all_done = eventually(Duration::from_secs(30), || async {
        app.list_all(&[("status", "classified")]).await.len() == READINGS as usize
    })
    .await;
    assert!(all_done, "not every reading was classified");
    let calls = app
        .state
        .metrics
        .classify
        .calls
        .with_label_values(&["classify_batch", "ok"])
        .get();
    assert!(
        (1..=READINGS as u64 / 3).contains(&calls),
        "{READINGS} readings took {calls} classify_batch calls"
    );
}
