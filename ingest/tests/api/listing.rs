//! `GET /v1/events`: filters, order, page size and the keyset cursor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use traffic_model::classification::Label;

use crate::support::{Backend, TestApp, json, minute, reading, send};

fn ids(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect()
}

async fn page(app: &TestApp, query: &[(&str, &str)]) -> Value {
    json(send(app.get("/v1/events").query(query)).await, 200).await
}

async fn items(app: &TestApp, query: &[(&str, &str)]) -> Vec<i64> {
    let page = page(app, query).await;
    ids(page["items"].as_array().expect("items"))
}

pub async fn filters_combine_and_results_come_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut id = HashMap::new();
    for (name, sensor, minutes) in [
        ("a0", "A", 0),
        ("b5", "B", 5),
        ("a10", "A", 10),
        ("b15", "B", 15),
        ("a20", "A", 20),
    ] {
        let event = app.create(&reading(sensor, Some(1), minutes)).await;
        id.insert(name, event["id"].as_i64().expect("id"));
    }
    app.classify(id["a10"], Label::Heavy).await;
    app.classify(id["b15"], Label::FreeFlow).await;
    let ids_of = |names: &[&str]| names.iter().map(|n| id[n]).collect::<Vec<_>>();

    assert_eq!(
        items(&app, &[]).await,
        ids_of(&["a20", "b15", "a10", "b5", "a0"])
    );
    assert_eq!(
        items(&app, &[("sensor_id", "A")]).await,
        ids_of(&["a20", "a10", "a0"])
    );
    // `from` is inclusive, `to` exclusive; any offset is accepted.
    let from = minute(5).to_rfc3339();
    let to = minute(15)
        .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).expect("offset"))
        .to_rfc3339();
    assert_eq!(
        items(&app, &[("from", &from), ("to", &to)]).await,
        ids_of(&["a10", "b5"])
    );
    assert_eq!(
        items(&app, &[("status", "classified")]).await,
        ids_of(&["b15", "a10"])
    );
    assert_eq!(
        items(&app, &[("status", "pending")]).await,
        ids_of(&["a20", "b5", "a0"])
    );
    assert_eq!(items(&app, &[("label", "heavy")]).await, ids_of(&["a10"]));
    assert_eq!(items(&app, &[("label", "congested")]).await, ids_of(&[]));
    assert_eq!(
        items(
            &app,
            &[
                ("sensor_id", "B"),
                ("status", "classified"),
                ("from", &from)
            ]
        )
        .await,
        ids_of(&["b15"])
    );
    assert_eq!(items(&app, &[("sensor_id", "nobody")]).await, ids_of(&[]));

    let classified = page(&app, &[("label", "heavy")]).await;
    let event = &classified["items"][0];
    assert_eq!(event["status"], "classified");
    assert_eq!(event["classification"]["label"], "heavy");
    assert_eq!(event["classification"]["level_of_service"], "E");
}

pub async fn the_page_size_defaults_to_100_and_is_at_most_1000(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let readings: Vec<Value> = (0..1001).map(|m| reading("P", None, m)).collect();
    app.create_many(&readings).await;

    let first = page(&app, &[]).await;
    assert_eq!(first["items"].as_array().expect("items").len(), 100);
    assert!(first["next_cursor"].is_string());
    let most = page(&app, &[("limit", "1000")]).await;
    assert_eq!(most["items"].as_array().expect("items").len(), 1000);
    assert!(most["next_cursor"].is_string());
    let one = page(&app, &[("limit", "1")]).await;
    assert_eq!(one["items"].as_array().expect("items").len(), 1);

    for bad in ["0", "1001", "-1", "ten", "1.5", ""] {
        let path = format!("/v1/events?limit={bad}");
        app.assert_invalid_query(&path, &["limit"]).await;
    }
}

pub async fn every_invalid_parameter_is_listed_in_one_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = concat!(
        "/v1/events?sensor_id=has%20space&from=yesterday&to=2026-03-02",
        "&status=done&label=jammed&limit=0",
    );
    app.assert_invalid_query(
        path,
        &["from", "label", "limit", "sensor_id", "status", "to"],
    )
    .await;
}

pub async fn an_unknown_query_parameter_is_refused_with_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.assert_invalid_query("/v1/events?sensor=A&limit=5", &["sensor"])
        .await;
}

pub async fn a_bad_cursor_is_refused_with_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_many(&(0..3).map(|m| reading("C", None, m)).collect::<Vec<_>>())
        .await;
    for bad in ["", "not-a-cursor", "djE6eDox", "!!!"] {
        let path = format!("/v1/events?cursor={bad}");
        app.assert_invalid_query(&path, &["cursor"]).await;
    }
}

pub async fn next_cursor_is_null_on_the_last_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_many(&(0..10).map(|m| reading("L", None, m)).collect::<Vec<_>>())
        .await;
    let first = page(&app, &[("limit", "5")]).await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = page(&app, &[("limit", "5"), ("cursor", cursor)]).await;
    assert_eq!(second["items"].as_array().expect("items").len(), 5);
    assert!(second["next_cursor"].is_null(), "{second}");
    let all = page(&app, &[("limit", "11")]).await;
    assert!(all["next_cursor"].is_null());
    let empty = page(&app, &[("sensor_id", "nobody")]).await;
    assert_eq!(empty["items"], serde_json::json!([]));
    assert!(empty["next_cursor"].is_null());
}

pub async fn a_cursor_walk_sees_every_row_once_while_rows_keep_arriving(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    // Three sensors reporting at the same minutes: many rows share an observed_at.
    let existing: Vec<Value> = (0..60)
        .flat_map(|m| ["W1", "W2", "W3"].map(|s| reading(s, Some(1), m * 2)))
        .collect();
    app.create_many(&existing).await;
    let before: HashSet<i64> = ids(&app.list_all(&[]).await).into_iter().collect();
    assert_eq!(before.len(), existing.len());

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut written = 0_i64;
            // Newer, older and interleaved readings, some at instants already listed.
            while !stop.load(Ordering::Relaxed) && written < 2000 {
                let minutes = (written * 37) % 160 - 20;
                let sensor = format!("W{}", 1 + written / 160);
                app.create(&reading(&sensor, Some(2), minutes)).await;
                written += 1;
            }
            written
        })
    };

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "7")];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let page = page(&app, &query).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 7);
        seen.extend(ids(items));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    assert!(written > 0, "no rows arrived during the walk");
    assert!(pages >= existing.len() / 7);

    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a row was listed twice");
    let missed: Vec<&i64> = before.difference(&unique).collect();
    assert!(
        missed.is_empty(),
        "rows present before the walk were missed: {missed:?}"
    );
}
