//! `GET /v1/events/{id}` and `POST /v1/events/{id}/classify`.

use std::time::Duration;

use traffic_model::classification::Label;

use crate::support::{Backend, TestApp, problem, reading, send};

pub async fn an_event_is_fetched_by_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create(&reading("I1", Some(4), 0)).await;
    let id = created["id"].as_i64().expect("id");
    let fetched = app.get_ok(&format!("/v1/events/{id}")).await;
    assert_eq!(fetched, created);

    app.classify(id, Label::Congested).await;
    let classified = app.get_ok(&format!("/v1/events/{id}")).await;
    assert_eq!(classified["status"], "classified");
    assert_eq!(classified["classification"]["label"], "congested");
    assert!(classified["classified_at"].is_string());
    assert_eq!(classified["processing"]["attempts"], 1);
}

pub async fn an_unknown_or_malformed_event_id_is_a_404_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create(&reading("I1", None, 0)).await;
    for path in [
        "/v1/events/987654321",
        "/v1/events/0",
        "/v1/events/-1",
        "/v1/events/abc",
        "/v1/events/1.5",
        "/v1/events/99999999999999999999999",
    ] {
        problem(send(app.get(path)).await, 404, "not-found").await;
    }
}

pub async fn requeueing_a_claimed_event_answers_202_with_it_pending_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create(&reading("Q1", None, 0)).await;
    let id = created["id"].as_i64().expect("id");
    let claimed = app.claim_all("test-worker").await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        app.get_ok(&format!("/v1/events/{id}")).await["status"],
        "processing"
    );

    let event = app.requeue(id).await;
    assert_eq!(event["id"], id);
    assert_eq!(event["status"], "pending");
    assert_eq!(event["processing"]["attempts"], 0);
    assert_eq!(
        app.get_ok(&format!("/v1/events/{id}")).await["status"],
        "pending"
    );
    // The revoked lease can no longer record a result; the event is due again.
    let late = app
        .state
        .store
        .complete_many(
            "test-worker",
            vec![(id, crate::support::classification(Label::Heavy))],
        )
        .await
        .expect("complete");
    assert!(late.is_empty());
    let again = app
        .state
        .store
        .claim("another-worker", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, id);
}

pub async fn requeueing_a_classified_event_keeps_its_classification_visible(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create(&reading("Q2", None, 0)).await["id"]
        .as_i64()
        .expect("id");
    app.classify(id, Label::Moderate).await;
    let event = app.requeue(id).await;
    assert_eq!(event["status"], "pending");
    assert_eq!(event["classification"]["label"], "moderate");
}

pub async fn requeueing_an_unknown_event_is_a_404_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/v1/events/424242/classify", "/v1/events/nope/classify"] {
        problem(send(app.post(path)).await, 404, "not-found").await;
    }
    assert_eq!(app.row_count().await, 0);
}
