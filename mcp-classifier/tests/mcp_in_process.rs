//! The MCP server in-process: an rmcp client talks to `ClassifierServer` over a duplex pipe,
//! framed on the server's side by `wire::LineTransport` as on stdio and inside ingest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mcp_support;

use mcp_classifier::server::{ClassifierServer, Database};
use mcp_classifier::wire::{LineTransport, tool_call_request};
use mcp_support::db::{TestDb, on_sqlite_and_postgres};
use mcp_support::*;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion, Tool};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use traffic_model::rules::RulesConfig;

/// Serves a fresh `ClassifierServer` on one end of a pipe and returns the other end.
fn spawn_server(database: Database) -> tokio::io::DuplexStream {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server = ClassifierServer::new(RulesConfig::default(), database);
    let (read, write) = tokio::io::split(server_io);
    let transport = LineTransport::new(read, write, tool_call_request);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(transport).await {
            let _ = running.waiting().await;
        }
    });
    client_io
}

/// A client that has completed the `initialize` handshake with a fresh server.
async fn connect(database: Database) -> RunningService<RoleClient, ()> {
    ().serve(spawn_server(database))
        .await
        .expect("initialize with the classifier")
}

fn no_database() -> Database {
    Database::Unavailable("no database configured (test)".into())
}

fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

fn output_schema(tools: &[Tool], name: &str) -> Value {
    let schema = tool(tools, name)
        .output_schema
        .as_ref()
        .unwrap_or_else(|| panic!("{name} has no outputSchema"));
    Value::Object((**schema).clone())
}

fn input_schema(tools: &[Tool], name: &str) -> Value {
    Value::Object((*tool(tools, name).input_schema).clone())
}

// 1. ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_names_the_server_and_lists_exactly_three_read_only_tools() {
    let client = connect(no_database()).await;
    let info = client.peer_info().expect("server info after initialize");
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, SERVER_NAME);
    assert!(!server.version.is_empty());
    assert!(info.capabilities.tools.is_some(), "tools capability");
    assert!(
        info.instructions
            .as_deref()
            .is_some_and(|i| i.contains("classify_by_id")),
        "instructions name the tools: {:?}",
        info.instructions
    );

    let tools = list_tools(&client).await;
    for t in &tools {
        let name = &t.name;
        assert!(
            t.title.as_deref().is_some_and(|s| !s.trim().is_empty()),
            "{name} title"
        );
        assert!(
            t.description.as_deref().is_some_and(|s| s.len() > 40),
            "{name} description"
        );
        // Both schemas are objects, and usable JSON Schemas.
        for (which, schema) in [
            ("inputSchema", input_schema(&tools, name)),
            ("outputSchema", output_schema(&tools, name)),
        ] {
            assert_eq!(schema["type"], json!("object"), "{name} {which} type");
            schema_violations(&schema, &json!({}));
        }
        let annotations = t
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name} annotations"));
        for (hint, value, expected) in [
            ("readOnlyHint", annotations.read_only_hint, true),
            ("idempotentHint", annotations.idempotent_hint, true),
            ("openWorldHint", annotations.open_world_hint, false),
        ] {
            assert_eq!(value, Some(expected), "{name} {hint}");
        }
    }
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_schemas_accept_the_arguments_the_tools_accept() {
    let client = connect(no_database()).await;
    let tools = list_tools(&client).await;
    let full = with(
        reading("loop/A1:n.3", Some(2), 10),
        json!({"interval_s": 30, "speed_limit_kmh": 100, "lanes": 3}),
    );
    let valid = [
        ("classify", json!({"event": reading("s1", None, 0)})),
        (
            "classify",
            json!({"event": full, "history": [reading("loop/A1:n.3", Some(2), 9)]}),
        ),
        (
            "classify_batch",
            json!({"events": [reading("s1", None, 0), reading("s2", Some(0), 1)]}),
        ),
        ("classify_by_id", json!({"id": 42})),
    ];
    for (name, args) in valid {
        assert_matches_schema(
            &format!("{name} arguments"),
            &input_schema(&tools, name),
            &args,
        );
        // …and the tool agrees (classify_by_id fails for want of a database, not its arguments).
        let result = call(&client, name, args).await;
        if name != "classify_by_id" {
            success(&result);
        }
    }
    let invalid = [
        ("classify", json!({})),
        (
            "classify",
            json!({"event": reading("s1", None, 0), "extra": 1}),
        ),
        (
            "classify",
            json!({"event": with(reading("s1", None, 0), json!({"vehicle_count": -1}))}),
        ),
        ("classify_batch", json!({"events": []})),
        ("classify_by_id", json!({"id": 0})),
    ];
    for (name, args) in invalid {
        assert!(
            !schema_violations(&input_schema(&tools, name), &args).is_empty(),
            "{name} inputSchema accepts {args}"
        );
        tool_error(&call(&client, name, args).await);
    }
    client.cancel().await.expect("cancel");
}

// 2. ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_returns_one_structured_classification_equal_to_its_text() {
    let client = connect(no_database()).await;
    let event = with(reading("loop/A1:n.3", Some(1), 30), json!({"lanes": 3}));
    let structured = assert_classifies(&client, &event).await;
    assert_classification(&structured);
    // 12 vehicles a minute on one lane.
    assert_eq!(structured["flow_veh_h_lane"], json!(720.0));
    assert_eq!(structured["label"], json!("free_flow"));
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_content_of_every_tool_matches_its_output_schema() {
    let db = TestDb::sqlite().await;
    db.insert_minutes("s1", Some(1), 0..5).await;
    let stored = db.insert(&reading("s1", Some(1), 5)).await;
    let client = connect(Database::Connected(db.store().clone())).await;
    let tools = list_tools(&client).await;

    let minimal = json!({"sensor_id": "s9", "observed_at": at(0), "vehicle_count": 0});
    let calls = [
        ("classify", json!({"event": reading("s1", Some(1), 0)})),
        ("classify", json!({"event": minimal})),
        (
            "classify",
            json!({"event": with(reading("s1", None, 9), json!({"avg_speed_kmh": 3.0, "occupancy_pct": 95.0}))}),
        ),
        (
            "classify_batch",
            json!({"events": [reading("s1", Some(1), 0), {"sensor_id": "bad id"}, minimal]}),
        ),
        ("classify_by_id", json!({"id": stored.id})),
    ];
    for (name, args) in calls {
        let structured = success(&call(&client, name, args.clone()).await);
        assert_matches_schema(
            &format!("{name} result for {args}"),
            &output_schema(&tools, name),
            &structured,
        );
    }
    client.cancel().await.expect("cancel");
}

// 3. ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_with_invalid_arguments_is_a_tool_error_naming_each_field_and_rule() {
    let client = connect(no_database()).await;
    let cases: [(Value, &[&str]); 5] = [
        (
            json!({"event": {"sensor_id": "s 1", "observed_at": "yesterday", "vehicle_count": -1,
                             "avg_speed_kmh": 500, "speed": 3}}),
            &[
                "event.speed is not a field of a reading",
                "event.sensor_id must be 1 to 128 characters",
                "event.observed_at must be an RFC 3339 timestamp",
                "event.vehicle_count must be an integer from 0 to 100000",
                "event.avg_speed_kmh must be a number from 0 to 400",
            ],
        ),
        (
            json!({"event": reading("s1", None, 0), "extra": true}),
            &["extra is not an argument of this tool (expected: event, history, site)"],
        ),
        (json!({}), &["event is required"]),
        (
            json!({"history": [reading("s1", None, 0)]}),
            &["event is required"],
        ),
        (
            json!({"event": reading("s1", None, 5),
                   "history": [reading("s1", None, 4), {"sensor_id": "s1", "observed_at": "4 pm", "vehicle_count": "many"}]}),
            &[
                "history[1].observed_at must be an RFC 3339 timestamp",
                "history[1].vehicle_count must be an integer, got a string",
            ],
        ),
    ];
    for (args, expected) in cases {
        let result = call(&client, "classify", args.clone()).await;
        let text = tool_error(&result);
        assert!(
            text.starts_with("invalid arguments: "),
            "for {args}: {text}"
        );
        for needle in expected {
            assert!(
                text.contains(needle),
                "for {args}: {needle:?} not in {text:?}"
            );
        }
        assert!(
            result.structured_content.is_none(),
            "a tool error carries no structuredContent: {result:?}"
        );
    }

    // No `arguments` at all.
    let result = client
        .call_tool(CallToolRequestParams::new("classify"))
        .await
        .expect("a tool result");
    assert_eq!(tool_error(&result), "invalid arguments: event is required");

    // Wrong JSON types for the arguments themselves, and a reading stamped far in the future,
    // which the future-skew rule rejects.
    let future = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let future = with(reading("s1", None, 0), json!({"observed_at": future}));
    let not_an_array = json!({"event": reading("s1", None, 0), "history": {"not": "an array"}});
    let cases: [(Value, &[&str]); 3] = [
        (
            json!({"event": [1, 2]}),
            &["event a reading must be a JSON object, not an array"],
        ),
        (not_an_array, &["history must be an array of readings"]),
        (
            json!({"event": future}),
            &["event.observed_at is ", "ahead of the server clock"],
        ),
    ];
    assert_tool_errors(&client, "classify", cases).await;
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_by_id_with_a_bad_id_is_a_tool_error() {
    let client = connect(no_database()).await;
    for bad in [json!(0), json!(-4), json!("7"), json!(1.5), json!(null)] {
        let text = tool_error(&call(&client, "classify_by_id", json!({"id": bad})).await);
        assert!(
            text.starts_with("invalid arguments: id "),
            "for {bad}: {text}"
        );
    }
    let text = tool_error(&call(&client, "classify_by_id", json!({"id": 1, "ids": [2]})).await);
    assert!(
        text.contains("ids is not an argument of this tool (expected: id)"),
        "{text}"
    );
    client.cancel().await.expect("cancel");
}

// 4. ------------------------------------------------------------------------------------------

fn results(structured: &Value) -> &Vec<Value> {
    structured["results"].as_array().expect("results array")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_batch_answers_in_input_order_and_rejects_only_the_invalid_readings() {
    let client = connect(no_database()).await;
    let events = vec![
        reading("s1", Some(1), 0),
        json!({"sensor_id": "s1", "observed_at": at(1), "vehicle_count": "many"}),
        with(reading("s2", None, 2), json!({"lanes": 2})),
        json!("not a reading"),
        json!({"sensor_id": "s 3", "observed_at": at(3), "vehicle_count": 4, "lane": 99}),
        reading("s3", Some(0), 3),
    ];
    let structured = success(&call(&client, "classify_batch", json!({"events": events})).await);
    assert_eq!(keys(&structured), ["results"]);
    let results = results(&structured);
    assert_eq!(results.len(), events.len());
    for (i, item) in results.iter().enumerate() {
        assert_eq!(item["index"], json!(i), "item {i}: {item}");
    }
    for i in [0, 2, 5] {
        assert_eq!(keys(&results[i]), ["classification", "index"], "item {i}");
        assert_classification(&results[i]["classification"]);
        assert_eq!(
            results[i]["classification"],
            expected_classification(&events[i], &[]),
            "item {i}"
        );
    }
    let field_errors = |i: usize| -> Vec<(String, String)> {
        let item = &results[i];
        assert_eq!(keys(item), ["error", "index"], "item {i}");
        let error = &item["error"];
        let message = error["message"].as_str().expect("message");
        assert!(
            message.starts_with("invalid reading: "),
            "item {i}: {message}"
        );
        error["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().expect("field").to_owned(),
                    e["message"].as_str().expect("message").to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        field_errors(1),
        [(
            "vehicle_count".to_owned(),
            "must be an integer, got a string".to_owned()
        )]
    );
    assert_eq!(
        field_errors(3),
        [(
            String::new(),
            "a reading must be a JSON object, not a string".to_owned()
        )]
    );
    let errors = field_errors(4);
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["sensor_id", "lane"], "{errors:?}");
    assert!(
        errors[1].1.starts_with("must be an integer from 0 to 32"),
        "{errors:?}"
    );
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_batch_takes_1000_events_and_refuses_more_or_none() {
    let client = connect(no_database()).await;
    let batch = |n: i64| -> Vec<Value> {
        (0..n)
            .map(|i| reading(&format!("s{}", i % 7), Some((i % 3) as u8), i))
            .collect()
    };

    let structured =
        success(&call(&client, "classify_batch", json!({"events": batch(1000)})).await);
    let results = results(&structured);
    assert_eq!(results.len(), 1000);
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| r["index"] == json!(i) && r.get("classification").is_some())
    );

    let two_events = json!({"events": [reading("s1", None, 0)], "event": reading("s1", None, 0)});
    // An invalid history element fails the whole call (history is not judged per reading).
    let bad_history = json!({"events": [reading("s1", None, 5)],
                             "history": [reading("s1", None, 4), {"vehicle_count": 1}]});
    let cases: [(Value, &[&str]); 5] = [
        (
            json!({"events": batch(1001)}),
            &["events holds 1001 readings; at most 1000 per call"],
        ),
        (
            json!({"events": []}),
            &["events must hold at least one reading"],
        ),
        (json!({}), &["events is required"]),
        (
            two_events,
            &[
                "event is not an argument of this tool (expected: events, history, stored_history, sites, stored_sites)",
            ],
        ),
        (bad_history, &["history[1].sensor_id is required"]),
    ];
    assert_tool_errors(&client, "classify_batch", cases).await;
    client.cancel().await.expect("cancel");
}

/// The stuck rule: the same non-zero (count, speed, occupancy) `STUCK_REPEATS` (6) times in a
/// row, the current reading included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_batch_uses_earlier_readings_of_the_same_sensor_and_lane_as_history() {
    assert_eq!(RulesConfig::default().stuck_repeats, 6);
    let client = connect(no_database()).await;
    // Given in reverse time order: the server must order each lane's readings itself.
    let mut events: Vec<Value> = (0..8).rev().map(|m| reading("A", Some(1), m)).collect();
    // The same values on another lane and on another sensor, five times only: never stuck,
    // whatever lane A/1 does.
    events.extend((0..5).map(|m| reading("A", Some(2), m)));
    events.extend((0..5).map(|m| reading("B", Some(1), m)));
    // A whole-carriageway reading of sensor A is a lane of its own too.
    events.extend((3..8).map(|m| reading("A", None, m)));

    let structured = success(&call(&client, "classify_batch", json!({"events": events})).await);
    let results = results(&structured);
    assert_eq!(results.len(), events.len());
    for (i, (event, result)) in events.iter().zip(results).enumerate() {
        let classification = &result["classification"];
        let minute_of_a1 = (event["sensor_id"] == "A" && event["lane"] == 1).then(|| 7 - i as i64);
        let expect_stuck = minute_of_a1.is_some_and(|m| m >= 5);
        assert_eq!(
            has_flag(classification, "stuck"),
            expect_stuck,
            "event {i} {event}: {classification:#}"
        );
        // Exactly what the rules say with the whole batch as history.
        assert_eq!(
            classification,
            &expected_classification(event, &events),
            "event {i}"
        );
    }
    let stuck_reason = results[0]["classification"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|r| r.starts_with("stuck:"))
        .map(str::to_owned);
    let stuck_reason = stuck_reason.expect("a stuck reason");
    assert!(
        stuck_reason.contains("12 veh") && stuck_reason.contains("8 times in a row ≥ 6"),
        "{stuck_reason}"
    );
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_batch_groups_the_history_pool_by_sensor_and_lane() {
    let client = connect(no_database()).await;
    // Five identical earlier readings of A/1 and of B/2 in one pool, interleaved.
    let history: Vec<Value> = (0..5)
        .flat_map(|m| [reading("B", Some(2), m), reading("A", Some(1), m)])
        .collect();
    let events = vec![
        reading("A", Some(1), 5), // sixth in a row: stuck
        reading("A", Some(2), 5), // other lane: no history
        reading("B", Some(2), 5), // B/2 from the pool: stuck
        with(reading("B", Some(2), 6), json!({"vehicle_count": 13})), // changed value: not stuck
        reading("C", Some(1), 5), // unknown sensor
    ];
    let structured = success(
        &call(
            &client,
            "classify_batch",
            json!({"events": events, "history": history}),
        )
        .await,
    );
    let stuck: Vec<bool> = results(&structured)
        .iter()
        .map(|r| has_flag(&r["classification"], "stuck"))
        .collect();
    assert_eq!(stuck, [true, false, true, false, false]);
    // A gap in B/2 is seen across pool and batch: minute 6 follows minute 5 (no gap).
    assert!(!has_flag(&results(&structured)[3]["classification"], "gap"));
    // A/1 at minute 5 after the pool's minute 4: no gap either; C has no history: no gap.
    assert!(
        results(&structured)
            .iter()
            .all(|r| !has_flag(&r["classification"], "gap"))
    );

    // The same pool passed to `classify` gives the same answer for one reading.
    let single = success(
        &call(
            &client,
            "classify",
            json!({"event": reading("A", Some(1), 5), "history": history}),
        )
        .await,
    );
    assert_eq!(single, results(&structured)[0]["classification"]);
    client.cancel().await.expect("cancel");
}

// 5. ------------------------------------------------------------------------------------------

async fn classify_by_id_reads_the_event_and_its_history(db: &TestDb) {
    // Five identical earlier readings of s1/lane 1, one of another lane and one of another
    // sensor, then the reading to classify: the sixth in a row.
    let history = db.insert_minutes("loop/s1", Some(1), 0..5).await;
    db.insert(&reading("loop/s1", Some(2), 4)).await;
    db.insert(&reading("loop/s2", Some(1), 4)).await;
    let event = reading("loop/s1", Some(1), 5);
    let stored = db.insert(&event).await;
    // A later reading of the same lane is not history.
    db.insert(&with(
        reading("loop/s1", Some(1), 6),
        json!({"vehicle_count": 40}),
    ))
    .await;
    let lonely = db.insert(&reading("loop/s3", None, 5)).await;

    let client = connect(Database::Connected(db.store().clone())).await;
    let structured = success(&call(&client, "classify_by_id", json!({"id": stored.id})).await);
    assert_eq!(keys(&structured), ["classification", "event"]);
    assert_eq!(structured["event"], serde_json::to_value(&stored).unwrap());
    assert_eq!(structured["event"]["id"], json!(stored.id));
    assert_eq!(structured["event"]["sensor_id"], json!("loop/s1"));
    assert_eq!(structured["event"]["status"], json!("pending"));
    let classification = &structured["classification"];
    assert_classification(classification);
    assert!(has_flag(classification, "stuck"), "{classification:#}");
    assert_eq!(classification, &expected_classification(&event, &history));
    // Nothing is written: the stored event is unchanged.
    assert_eq!(
        db.store().get(stored.id).await.unwrap(),
        Some(stored.clone())
    );

    let structured = success(&call(&client, "classify_by_id", json!({"id": lonely.id})).await);
    assert_eq!(structured["event"]["id"], json!(lonely.id));
    assert!(
        flags(&structured["classification"]).is_empty(),
        "{structured:#}"
    );

    let unknown = lonely.id + 1000;
    let text = tool_error(&call(&client, "classify_by_id", json!({"id": unknown})).await);
    assert_eq!(text, format!("no event with id {unknown}"));
    client.cancel().await.expect("cancel");
}

on_sqlite_and_postgres!(
    classify_by_id_reads_the_event_and_its_history:
    classify_by_id_on_sqlite_returns_the_stored_event_classified_with_its_history,
    classify_by_id_on_postgres_returns_the_stored_event_classified_with_its_history
);

async fn classify_batch_loads_stored_history_when_asked(db: &TestDb) {
    // Stored: five identical readings of s1/lane 1 (minutes 0–4), one of lane 2, and a reading
    // later than the batch's. The batch: s1/1 at minutes 5 and 6 (the sixth and seventh in a
    // row) and s2 with no stored history.
    let stored = db.insert_minutes("hist/s1", Some(1), 0..5).await;
    db.insert(&with(
        reading("hist/s1", Some(2), 4),
        json!({"vehicle_count": 3}),
    ))
    .await;
    db.insert(&with(
        reading("hist/s1", Some(1), 9),
        json!({"vehicle_count": 40}),
    ))
    .await;
    let events = [
        reading("hist/s1", Some(1), 5),
        reading("hist/s1", Some(1), 6),
        reading("hist/s2", None, 5),
    ];
    let client = connect(Database::Connected(db.store().clone())).await;
    let asked = |stored_history: Value| {
        call(
            &client,
            "classify_batch",
            json!({"events": events, "stored_history": stored_history}),
        )
    };
    let structured = success(&asked(json!({"readings": 24, "minutes": 70})).await);
    let judged = results(&structured);
    assert_eq!(
        judged[0]["classification"],
        expected_classification(&events[0], &stored)
    );
    assert!(has_flag(&judged[0]["classification"], "stuck"));
    assert!(has_flag(&judged[1]["classification"], "stuck"));
    assert!(
        flags(&judged[2]["classification"]).is_empty(),
        "{structured:#}"
    );

    // Bounded per lane: with the last two stored readings only, five in a row is not enough.
    let structured = success(&asked(json!({"readings": 2, "minutes": 70})).await);
    assert!(!has_flag(
        &results(&structured)[0]["classification"],
        "stuck"
    ));
    // Bounded in time: a window of one minute reaches back to minute 4 only.
    let structured = success(&asked(json!({"readings": 24, "minutes": 1})).await);
    assert!(!has_flag(
        &results(&structured)[0]["classification"],
        "stuck"
    ));

    let text = tool_error(&asked(json!({"readings": 0, "minutes": 99_999, "depth": 1})).await);
    for field in [
        "stored_history.readings must be an integer from 1 to 1000, got 0",
        "stored_history.minutes must be an integer from 1 to 44640, got 99999",
        "stored_history.depth is not a field",
    ] {
        assert!(text.contains(field), "{field}: {text}");
    }
    client.cancel().await.expect("cancel");
}

on_sqlite_and_postgres!(
    classify_batch_loads_stored_history_when_asked:
    classify_batch_on_sqlite_loads_the_stored_history_of_each_lane,
    classify_batch_on_postgres_loads_the_stored_history_of_each_lane
);

fn flow(classification: &Value) -> f64 {
    classification["flow_veh_h_lane"].as_f64().expect("flow")
}

fn site_reason(classification: &Value) -> Option<String> {
    classification["reasons"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|r| r.starts_with("from the sensor's metadata"))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_takes_the_sensor_s_site_and_names_what_it_supplied() {
    let client = connect(no_database()).await;
    // 12 vehicles a minute over a whole carriageway: 720 veh/h on one assumed lane, 240 on 3.
    let event = reading("site/s1", None, 0);
    let alone = success(&call(&client, "classify", json!({"event": event})).await);
    assert_eq!(flow(&alone), 720.0);
    assert_eq!(site_reason(&alone), None);
    let site = json!({"lanes": 3, "time_zone": "Europe/Berlin", "name": "A1 km 12"});
    let at_site = success(&call(&client, "classify", json!({"event": event, "site": site})).await);
    assert_eq!(flow(&at_site), 240.0);
    let supplied = site_reason(&at_site).expect("the site is named");
    assert!(
        supplied.contains("lanes 3") && supplied.contains("time zone Europe/Berlin"),
        "{supplied}"
    );

    let text = tool_error(
        &call(
            &client,
            "classify",
            json!({"event": event, "site": {"lanes": 0, "time_zone": "Mars/Olympus"}}),
        )
        .await,
    );
    for field in ["site.lanes", "site.time_zone"] {
        assert!(text.contains(field), "{field}: {text}");
    }
    client.cancel().await.expect("cancel");
}

async fn classify_batch_and_classify_by_id_use_the_stored_sites(db: &TestDb) {
    db.store()
        .put_sensor(
            traffic_model::reading::SensorId::parse("site/s1").unwrap(),
            traffic_model::sensor::SensorMetadata {
                lanes: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let stored = db.insert(&reading("site/s1", None, 0)).await;
    let events = [reading("site/s1", None, 1), reading("site/s2", None, 1)];
    let client = connect(Database::Connected(db.store().clone())).await;

    let batch = |extra: Value| {
        let mut arguments = json!({"events": events});
        arguments
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        call(&client, "classify_batch", arguments)
    };
    let flows = |structured: &Value| -> Vec<f64> {
        results(structured)
            .iter()
            .map(|r| flow(&r["classification"]))
            .collect()
    };
    // Not asked: nothing is loaded.
    assert_eq!(flows(&success(&batch(json!({})).await)), [720.0, 720.0]);
    // Loaded: s1 has 3 lanes, s2 has no metadata.
    let structured = success(&batch(json!({"stored_sites": true})).await);
    assert_eq!(flows(&structured), [240.0, 720.0]);
    assert!(site_reason(&results(&structured)[0]["classification"]).is_some());
    // Sites given in the call win over the stored ones, sensor by sensor.
    let given = json!({"stored_sites": true, "sites": {"site/s2": {"lanes": 2}}});
    assert_eq!(flows(&success(&batch(given).await)), [240.0, 360.0]);
    let given = json!({"sites": {"site/s1": {"lanes": 4}}});
    assert_eq!(flows(&success(&batch(given).await)), [180.0, 720.0]);

    let text = tool_error(&batch(json!({"sites": {"bad id": {}}, "stored_sites": "yes"})).await);
    for field in ["sites.bad id", "stored_sites must be true or false"] {
        assert!(text.contains(field), "{field}: {text}");
    }

    let by_id = success(&call(&client, "classify_by_id", json!({"id": stored.id})).await);
    assert_eq!(flow(&by_id["classification"]), 240.0);
    client.cancel().await.expect("cancel");
}

on_sqlite_and_postgres!(
    classify_batch_and_classify_by_id_use_the_stored_sites:
    classify_batch_on_sqlite_uses_the_stored_sites,
    classify_batch_on_postgres_uses_the_stored_sites
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_needs_the_events_database_says_so_without_one() {
    let client = connect(Database::Unavailable("DATABASE_URL is not set".into())).await;
    let text = tool_error(&call(&client, "classify_by_id", json!({"id": 1})).await);
    assert_eq!(
        text,
        "classify_by_id needs the events database: DATABASE_URL is not set"
    );
    // So do classify_batch's stored history and stored sites.
    let events = [reading("s1", None, 1), reading("s2", None, 1)];
    for (option, value) in [
        ("stored_history", json!({"readings": 5, "minutes": 10})),
        ("stored_sites", json!(true)),
    ] {
        let arguments = json!({"events": events, option: value});
        let text = tool_error(&call(&client, "classify_batch", arguments).await);
        let needs = format!("{option} needs the events database: DATABASE_URL is not set");
        assert!(text.starts_with(&needs), "{text}");
    }
    // The other tools do not need it.
    assert_classifies(&client, &reading("s1", None, 0)).await;
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_by_id_on_an_unmigrated_database_is_a_tool_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let url = traffic_store::DatabaseUrl::Sqlite(dir.path().join("empty.db"));
    let store = traffic_store::Store::connect(traffic_store::StoreConfig::new(url)).unwrap();
    let client = connect(Database::Connected(store)).await;
    let text = tool_error(&call(&client, "classify_by_id", json!({"id": 1})).await);
    assert!(text.starts_with("could not read event 1: "), "{text}");
    // The server still answers afterwards.
    assert_classifies(&client, &reading("s1", None, 0)).await;
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_bounded_at_10000_readings() {
    let client = connect(no_database()).await;
    let history =
        |n: i64| -> Vec<Value> { (0..n).map(|m| reading("s1", Some(1), m - n)).collect() };
    let event = reading("s1", Some(1), 0);
    let structured = success(
        &call(
            &client,
            "classify",
            json!({"event": event, "history": history(10_000)}),
        )
        .await,
    );
    assert!(has_flag(&structured, "stuck"), "{structured:#}");
    for (tool, args) in [
        ("classify", json!({"event": event})),
        ("classify_batch", json!({"events": [event]})),
    ] {
        let args = with(args, json!({"history": history(10_001)}));
        let text = tool_error(&call(&client, tool, args).await);
        assert!(
            text.contains("history holds 10001 readings; at most 10000 per call"),
            "{tool}: {text}"
        );
    }
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_connection_each_get_their_own_answer() {
    let events: Vec<Value> = (0..64)
        .map(|i| {
            with(
                reading(&format!("s{i}"), Some(1), i),
                json!({"vehicle_count": i * 3}),
            )
        })
        .collect();
    let client = connect(no_database()).await;
    // All 64 calls are in flight at once; each answer is checked against its own event.
    futures::future::join_all(events.iter().map(|event| assert_classifies(&client, event))).await;
    client.cancel().await.expect("cancel");
}

// 6. ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tool_is_a_json_rpc_invalid_params_error() {
    let client = connect(no_database()).await;
    let error = unknown_tool_error(&client, "classify_everything").await;
    assert_eq!(error.code.0, -32602);
    // The connection survives.
    assert_classifies(&client, &reading("s1", None, 0)).await;
    client.cancel().await.expect("cancel");
}

// 7. ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2026_07_28_protocol_classifies_without_initialize() {
    let client = discover_2026(spawn_server(no_database())).await;
    let info = client.peer_info().expect("discovered server");
    assert!(info.capabilities.tools.is_some());
    assert_eq!(server_name(&client).as_deref(), Some(SERVER_NAME));
    list_tools(&client).await;
    assert_classifies(&client, &reading("s1", Some(1), 0)).await;
    let text = tool_error(&call(&client, "classify", json!({})).await);
    assert!(text.contains("event is required"), "{text}");
    unknown_tool_error(&client, "nope").await;
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_2024_and_2025_protocol_version_negotiates_with_initialize_and_classifies() {
    let event = reading("s1", Some(1), 0);
    let expected = expected_classification(&event, &[]);
    // (version, whether its results have `structuredContent`)
    for (version, structured) in [
        (ProtocolVersion::V_2024_11_05, false),
        (ProtocolVersion::V_2025_03_26, false),
        (ProtocolVersion::V_2025_06_18, true),
        (ProtocolVersion::V_2025_11_25, true),
    ] {
        let mut config = ClientConfig::default();
        config.protocol_version = version.clone();
        let client = config
            .serve(spawn_server(no_database()))
            .await
            .unwrap_or_else(|e| panic!("initialize with {version}: {e}"));
        let info = client.peer_info().expect("server info");
        assert_eq!(info.protocol_version, version, "negotiated version");
        list_tools(&client).await;
        let result = call(&client, "classify", json!({"event": event})).await;
        assert!(!is_error(&result), "{version}: {}", text_of(&result));
        // Every version carries the classification as JSON text; structuredContent exists from
        // 2025-06-18 on and, when present, is the same JSON.
        let from_text: Value = serde_json::from_str(&text_of(&result)).expect("JSON text");
        assert_eq!(from_text, expected, "{version}");
        if let Some(structured) = &result.structured_content {
            assert_eq!(structured, &expected, "{version}");
        }
        if structured {
            assert!(
                result.structured_content.is_some(),
                "{version}: structuredContent"
            );
        }
        client.cancel().await.expect("cancel");
    }
}

// The query tools ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_tools_are_listed_only_with_a_database_each_read_only_with_both_schemas() {
    let without = connect(no_database()).await;
    let names: Vec<String> = list_tools(&without)
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names.len(), TOOL_NAMES.len(), "{names:?}");
    without.cancel().await.expect("cancel");

    let db = TestDb::sqlite().await;
    let client = connect(Database::Connected(db.store().clone())).await;
    let tools = list_tools(&client).await;
    assert_eq!(tools.len(), TOOL_NAMES.len() + QUERY_TOOL_NAMES.len());
    for name in QUERY_TOOL_NAMES {
        let t = tool(&tools, name);
        assert!(
            t.description
                .as_deref()
                .is_some_and(|d| d.contains("Read-only")),
            "{name}"
        );
        let annotations = t.annotations.as_ref().expect("annotations");
        assert_eq!(
            (
                annotations.read_only_hint,
                annotations.idempotent_hint,
                annotations.open_world_hint
            ),
            (Some(true), Some(true), Some(false)),
            "{name}"
        );
        assert_eq!(output_schema(&tools, name)["type"], "object", "{name}");
        let input = input_schema(&tools, name);
        for (arg, schema) in input["properties"].as_object().expect("properties") {
            assert!(
                schema.get("description").is_some() || schema.get("$ref").is_some(),
                "{name}.{arg} has no description: {schema}"
            );
        }
    }
    client.cancel().await.expect("cancel");
}

/// Stores `id`'s metadata.
async fn put_sensor(db: &TestDb, id: &str, metadata: Value) {
    let metadata = traffic_model::sensor::SensorMetadata::from_json(metadata).expect("metadata");
    db.store()
        .put_sensor(
            traffic_model::reading::SensorId::parse(id).unwrap(),
            metadata,
        )
        .await
        .expect("put sensor");
}

/// Classifies every pending reading: `jammed` ones congested (LOS F), the others free-flowing.
async fn classify_jams(db: &TestDb, jammed: &std::collections::HashSet<i64>) -> usize {
    use traffic_model::classification::{Classification, Label, LevelOfService};
    let store = db.store();
    let claimed = store
        .claim("test", 1000, std::time::Duration::from_secs(60))
        .await
        .expect("claim");
    let results = claimed
        .iter()
        .map(|e| {
            let jam = jammed.contains(&e.id);
            let verdict = Classification {
                label: if jam {
                    Label::Congested
                } else {
                    Label::FreeFlow
                },
                level_of_service: Some(if jam {
                    LevelOfService::F
                } else {
                    LevelOfService::B
                }),
                flow_veh_h_lane: if jam { 1380.0 } else { 720.0 },
                density_veh_km_lane: Some(if jam { 69.0 } else { 8.2 }),
                confidence: 0.9,
                flags: Vec::new(),
                reasons: vec!["test".into()],
                classifier_version: "test/1".into(),
            };
            (e.id, verdict)
        })
        .collect();
    store
        .complete_many("test", results)
        .await
        .expect("complete")
        .len()
}

/// Three sensors over the last hour, one reading a minute: `A1-N-002` congested from minute
/// 20 to minute 40, the others free-flowing. Returns the first minute's time.
async fn an_hour_of_traffic(db: &TestDb) -> chrono::DateTime<chrono::Utc> {
    for (id, road, lon) in [
        ("A1-N-001", "A1", 13.1),
        ("A1-N-002", "A1", 13.2),
        ("B2-S-001", "B2", 13.9),
    ] {
        let metadata = json!({
            "name": format!("{id} km {lon}"), "road": road, "direction": "northbound",
            "location": {"lon": lon, "lat": 52.5}, "lanes": 2,
        });
        put_sensor(db, id, metadata).await;
    }
    use chrono::DurationRound;
    let now = chrono::Utc::now()
        .duration_trunc(chrono::TimeDelta::minutes(1))
        .unwrap();
    let base = now - chrono::TimeDelta::minutes(60);
    let mut congested = std::collections::HashSet::new();
    for m in 0..60_i64 {
        for id in ["A1-N-001", "A1-N-002", "B2-S-001"] {
            let at = base + chrono::TimeDelta::minutes(m);
            let event = db
                .insert(&traffic_store::test_util::reading_json_at(id, Some(1), at))
                .await;
            if id == "A1-N-002" && (20..40).contains(&m) {
                congested.insert(event.id);
            }
        }
    }
    assert_eq!(classify_jams(db, &congested).await, 180);
    base
}

async fn query_tools_answer_from_the_store(db: &TestDb) {
    let base = an_hour_of_traffic(db).await;
    let minute = |m: i64| (base + chrono::TimeDelta::minutes(m)).to_rfc3339();
    let client = connect(Database::Connected(db.store().clone())).await;
    let tools = list_tools(&client).await;
    let ask = async |name: &'static str, args: Value| {
        let (summary, structured) = answer(&call(&client, name, args.clone()).await);
        assert_matches_schema(
            &format!("{name} {args}"),
            &output_schema(&tools, name),
            &structured,
        );
        (summary, structured)
    };

    // The network now, and during the jam.
    let (summary, now) = ask("traffic_state", json!({})).await;
    assert_eq!(now["summary"]["lanes"], 3, "{now}");
    assert_eq!(now["summary"]["by_label"], json!({"free_flow": 3}));
    assert!(summary.contains("3 lanes"), "{summary}");
    let (summary, jam) = ask("traffic_state", json!({"at": minute(30)})).await;
    assert_eq!(
        jam["summary"]["by_label"],
        json!({"free_flow": 2, "congested": 1}),
        "{jam}"
    );
    assert_eq!(jam["worst_lanes"][0]["sensor_id"], "A1-N-002");
    assert_eq!(jam["worst_lanes"][0]["road"], "A1");
    assert!(
        summary.contains("A1-N-002 lane 1 congested (LOS F"),
        "{summary}"
    );
    let (_, b2) = ask("traffic_state", json!({"at": minute(30), "road": "B2"})).await;
    assert_eq!(b2["summary"]["lanes"], 1);

    // Since when: one period, and the same seen from inside it.
    let (summary, found) = ask(
        "find_congestion",
        json!({"from": minute(0), "to": minute(60), "road": "A1"}),
    )
    .await;
    assert_eq!(found["total"], 1, "{found}");
    let period = &found["periods"][0];
    assert_eq!(period["sensor_id"], "A1-N-002");
    assert_eq!(
        (&period["start"], &period["end"], &period["duration_s"]),
        (
            &json!(base_plus(base, 20)),
            &json!(base_plus(base, 40)),
            &json!(1200)
        )
    );
    assert_eq!(
        (&period["began_before_window"], &period["ongoing"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(period["worst_los"], "F");
    assert!(summary.contains("1 period(s)"), "{summary}");
    let (_, inside) = ask(
        "find_congestion",
        json!({"from": minute(30), "to": minute(35)}),
    )
    .await;
    let period = &inside["periods"][0];
    assert_eq!(
        (&period["began_before_window"], &period["ongoing"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(period["duration_s"], 300);
    let (_, heavy_b2) = ask(
        "find_congestion",
        json!({"from": minute(0), "to": minute(60), "sensor_id": "B2-S-001", "min_label": "heavy"}),
    )
    .await;
    assert_eq!(heavy_b2["total"], 0);

    // The sensors, a page at a time.
    let (_, first) = ask("list_sensors", json!({"prefix": "A1-", "limit": 1})).await;
    assert_eq!(first["items"][0]["sensor_id"], "A1-N-001");
    assert_eq!(first["items"][0]["lanes"][0]["label"], "free_flow");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = ask(
        "list_sensors",
        json!({"prefix": "A1-", "limit": 1, "cursor": cursor}),
    )
    .await;
    assert_eq!(second["items"][0]["sensor_id"], "A1-N-002");
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, boxed) = ask("list_sensors", json!({"bbox": "13.5,52,14,53"})).await;
    assert_eq!(boxed["items"].as_array().unwrap().len(), 1);

    // One sensor, and its series.
    let (summary, info) = ask("sensor_info", json!({"sensor_id": "A1-N-002"})).await;
    assert_eq!(info["metadata"]["road"], "A1");
    assert_eq!(info["lanes"][0]["label"], "free_flow");
    assert!(
        summary.starts_with("A1-N-002 (A1-N-002 km 13.2): lane 1 free_flow"),
        "{summary}"
    );
    let (_, series) = ask(
        "sensor_series",
        json!({"sensor_id": "A1-N-002", "from": minute(0), "to": minute(60), "bucket": "5m"}),
    )
    .await;
    let buckets = series["buckets"].as_array().unwrap();
    let congested: f64 = buckets
        .iter()
        .filter_map(|b| b["minutes_by_label"]["congested"].as_f64())
        .sum();
    assert_eq!(congested, 20.0, "{series}");
    assert_eq!(series["next_from"], Value::Null);
    let (summary, minutes) = ask(
        "sensor_series",
        json!({"sensor_id": "A1-N-002", "from": minute(-300), "to": minute(60), "bucket": "1m"}),
    )
    .await;
    assert_eq!(minutes["buckets"].as_array().unwrap().len(), 288);
    assert_eq!(minutes["next_from"], json!(base_plus(base, -300 + 288)));
    assert!(summary.contains("call again with from"), "{summary}");

    // Wrong calls say how to fix them.
    for (name, args, says) in [
        (
            "sensor_info",
            json!({"sensor_id": "nobody"}),
            "list_sensors finds",
        ),
        (
            "find_congestion",
            json!({"from": "yesterday", "to": minute(1)}),
            "RFC 3339",
        ),
        (
            "find_congestion",
            json!({"from": minute(0), "to": minute(0)}),
            "after `from`",
        ),
        ("list_sensors", json!({"limit": 500}), "from 1 to 100"),
        (
            "list_sensors",
            json!({"cursor": "not an id!"}),
            "next_cursor",
        ),
        (
            "traffic_state",
            json!({"road": "A1", "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            "traffic_state",
            json!({"bbox": "1,2,3"}),
            "minlon,minlat,maxlon,maxlat",
        ),
    ] {
        let error = tool_error(&call(&client, name, args).await);
        assert!(error.contains(says), "{name}: {error}");
    }
    client.cancel().await.expect("cancel");
}
on_sqlite_and_postgres!(query_tools_answer_from_the_store: query_tools_answer_on_sqlite, query_tools_answer_on_postgres);

fn base_plus(base: chrono::DateTime<chrono::Utc>, minutes: i64) -> String {
    (base + chrono::TimeDelta::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

async fn resources_prompts_and_completions_read_the_store(db: &TestDb) {
    use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams, ResourceContents};
    an_hour_of_traffic(db).await;
    // Enough sensors for a second page of resources.
    for n in 0..120 {
        put_sensor(db, &format!("C3-{n:03}"), json!({"road": "C3"})).await;
    }
    let without = connect(no_database()).await;
    let capabilities = &without.peer_info().expect("info").capabilities;
    assert!(
        capabilities.resources.is_none()
            && capabilities.prompts.is_none()
            && capabilities.completions.is_none()
    );
    without.cancel().await.expect("cancel");

    let client = connect(Database::Connected(db.store().clone())).await;
    let capabilities = &client.peer_info().expect("info").capabilities;
    assert!(
        capabilities.resources.is_some()
            && capabilities.prompts.is_some()
            && capabilities.completions.is_some()
    );

    // resources/list: the network, then every sensor in id order, 100 a page.
    let first = client.list_resources(None).await.expect("resources/list");
    assert_eq!(first.resources[0].uri, "traffic://network/state");
    assert_eq!(first.resources[1].uri, "traffic://sensors/A1-N-001");
    assert_eq!(first.resources.len(), 101);
    let cursor = first.next_cursor.clone().expect("a second page");
    let second = client
        .list_resources(Some(
            rmcp::model::PaginatedRequestParams::default().with_cursor(Some(cursor)),
        ))
        .await
        .expect("second page");
    assert_eq!(second.resources.len(), 123 - 100);
    assert_eq!(second.next_cursor, None);
    let templates = client
        .list_all_resource_templates()
        .await
        .expect("templates");
    assert_eq!(templates[0].uri_template, "traffic://sensors/{sensor_id}");

    let read = async |uri: &str| {
        let result = client
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .expect("resources/read");
        let ResourceContents::TextResourceContents {
            text, mime_type, ..
        } = &result.contents[0]
        else {
            panic!("text contents expected: {result:?}");
        };
        assert_eq!(mime_type.as_deref(), Some("application/json"));
        serde_json::from_str::<Value>(text).expect("JSON")
    };
    let network = read("traffic://network/state").await;
    assert_eq!(network["summary"]["lanes"], 3, "{network}");
    let sensor = read("traffic://sensors/A1-N-002").await;
    assert_eq!(sensor["metadata"]["road"], "A1");
    assert_eq!(sensor["lanes"][0]["label"], "free_flow");
    for missing in [
        "traffic://sensors/nobody",
        "traffic://elsewhere",
        "traffic://sensors/bad id",
    ] {
        let error = client
            .read_resource(ReadResourceRequestParams::new(missing))
            .await
            .expect_err("no such resource");
        let rmcp::service::ServiceError::McpError(error) = error else {
            panic!("a JSON-RPC error expected: {error:?}");
        };
        assert_eq!(error.code.0, -32002, "{missing}: {error:?}");
    }

    // Completions: sensor ids in the template and the prompts, roads in the prompts.
    let ids = client
        .complete_resource_argument("traffic://sensors/{sensor_id}", "sensor_id", "A1-N", None)
        .await
        .expect("completion/complete");
    assert_eq!(ids.values, ["A1-N-001", "A1-N-002"]);
    assert_eq!(ids.has_more, Some(false));
    let many = client
        .complete_prompt_argument("incident_briefing", "sensor_id", "C3-", None)
        .await
        .expect("completion/complete");
    assert_eq!((many.values.len(), many.has_more), (100, Some(true)));
    let roads = client
        .complete_prompt_argument("corridor_report", "road", "", None)
        .await
        .expect("completion/complete");
    assert_eq!(roads.values, ["A1", "B2", "C3"]);

    // Prompts name the tools and their arguments.
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["incident_briefing", "corridor_report"]);
    let prompt = |name: &str, arguments: Value| {
        let request = GetPromptRequestParams::new(name).with_arguments(object(arguments));
        client.get_prompt(request)
    };
    let briefing = prompt("incident_briefing", json!({"road": "A1", "hours": "2"}))
        .await
        .expect("prompts/get");
    let text = serde_json::to_string(&briefing.messages).unwrap();
    for expected in [
        "find_congestion",
        "traffic_state",
        "\\\"road\\\": \\\"A1\\\"",
        "last 2 hours",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let report = prompt("corridor_report", json!({"road": "B2"}))
        .await
        .expect("prompts/get");
    let text = serde_json::to_string(&report.messages).unwrap();
    assert!(
        text.contains("list_sensors") && text.contains("last 24 hours"),
        "{text}"
    );
    for (name, arguments) in [
        ("incident_briefing", json!({})),
        ("incident_briefing", json!({"road": "A1", "hours": "0"})),
        ("corridor_report", json!({"hours": "3"})),
        ("no_such_prompt", json!({})),
    ] {
        let error = prompt(name, arguments.clone()).await.expect_err("refused");
        let rmcp::service::ServiceError::McpError(error) = error else {
            panic!("a JSON-RPC error expected: {error:?}");
        };
        assert_eq!(error.code.0, -32602, "{name} {arguments}: {error:?}");
    }
    client.cancel().await.expect("cancel");
}
on_sqlite_and_postgres!(resources_prompts_and_completions_read_the_store: resources_and_prompts_on_sqlite, resources_and_prompts_on_postgres);

/// The A1 on the morning of 2026-03-02: two northbound sensors and one southbound, a reading a
/// minute from 06:00Z; `A1-N-012` lane 1 jams at 07:12Z and is still jammed at 07:30Z.
async fn a1_morning(db: &TestDb) {
    for (id, name, direction, lon) in [
        ("A1-N-010", "A1 km 10.0 northbound", "northbound", 13.40),
        ("A1-N-012", "A1 km 12.0 northbound", "northbound", 13.42),
        ("A1-S-010", "A1 km 10.0 southbound", "southbound", 13.40),
    ] {
        let metadata = json!({
            "name": name, "road": "A1", "direction": direction,
            "location": {"lon": lon, "lat": 52.52}, "lanes": 2, "time_zone": "Europe/Berlin",
        });
        put_sensor(db, id, metadata).await;
    }
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T06:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut jammed = std::collections::HashSet::new();
    for m in 1..=90_i64 {
        for id in ["A1-N-010", "A1-N-012", "A1-S-010"] {
            let at = start + chrono::TimeDelta::minutes(m);
            let jam = id == "A1-N-012" && m >= 72;
            let mut reading = traffic_store::test_util::reading_json_at(id, Some(1), at);
            if jam {
                reading = with(
                    reading,
                    json!({"vehicle_count": 23, "avg_speed_kmh": 12.0, "occupancy_pct": 38.0}),
                );
            }
            let event = db.insert(&reading).await;
            if jam {
                jammed.insert(event.id);
            }
        }
    }
    classify_jams(db, &jammed).await;
}

/// docs/mcp.md's example session is what the server answers: the calls an agent makes for
/// "is the A1 northbound jammed, and since when?" and the summaries it gets. With
/// `UPDATE_DOCS=1` the test writes the session into the document instead of comparing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_session_in_the_docs_is_what_the_server_answers() {
    let db = TestDb::sqlite().await;
    a1_morning(&db).await;
    let client = connect(Database::Connected(db.store().clone())).await;
    let calls = [
        ("list_sensors", json!({"road": "A1"})),
        (
            "traffic_state",
            json!({"road": "A1", "at": "2026-03-02T07:30:00Z"}),
        ),
        (
            "find_congestion",
            json!({"from": "2026-03-02T06:00:00Z", "to": "2026-03-02T07:31:00Z", "road": "A1"}),
        ),
    ];
    let mut session = String::from("```text\n");
    for (name, args) in calls {
        let (summary, structured) = answer(&call(&client, name, args.clone()).await);
        session.push_str(&format!("→ {name} {args}\n← {summary}\n"));
        if name == "find_congestion" {
            let period = &structured["periods"][0];
            session.push_str(&format!("  periods[0]: {period}\n"));
        }
    }
    session.push_str("```\n");
    client.cancel().await.expect("cancel");

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/mcp.md");
    let document = std::fs::read_to_string(&path).expect("docs/mcp.md");
    let (begin, end) = (
        "<!-- example-session:begin -->\n",
        "<!-- example-session:end -->",
    );
    let from = document.find(begin).expect("the begin marker") + begin.len();
    let to = document.find(end).expect("the end marker");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{session}{}", &document[..from], &document[to..]);
        std::fs::write(&path, updated).expect("write docs/mcp.md");
    } else {
        assert_eq!(
            &document[from..to],
            session,
            "docs/mcp.md's example session is stale: run this test with UPDATE_DOCS=1"
        );
    }
}
