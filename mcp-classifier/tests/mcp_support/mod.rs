//! Shared by the MCP server suites (`mcp_in_process`, `mcp_binary`, `mcp_oauth`): readings as
//! JSON, tool-call helpers, JSON Schema validation, a fresh store per test, the built binary.

#![allow(dead_code)]

pub mod binary;
pub mod db;
pub mod oauth;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use rmcp::model::{CallToolRequestParams, CallToolResult, ErrorCode, ErrorData, JsonObject};
use rmcp::model::{ProtocolVersion, Tool};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::IntoTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient, Service};
use serde_json::{Value, json};

/// How long one tool call may take before the test fails (the largest takes well under 1 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The tools the server lists, by name.
pub const TOOL_NAMES: [&str; 3] = ["classify", "classify_batch", "classify_by_id"];

/// The tools it lists besides when it has the events database.
pub const QUERY_TOOL_NAMES: [&str; 5] = [
    "find_congestion",
    "list_sensors",
    "sensor_info",
    "sensor_series",
    "traffic_state",
];

/// The name the server gives in its info.
pub const SERVER_NAME: &str = "smart-traffic-classifier";

/// `t0 + minutes` as RFC 3339.
pub fn at(minutes: i64) -> String {
    traffic_store::test_util::minute(minutes).to_rfc3339()
}

/// A valid reading of `sensor` on `lane` at `t0 + minutes` (a moderately busy lane).
pub use traffic_store::test_util::reading_json as reading;

/// `value` with the fields of `extra` set (a `null` removes the field).
pub fn with(mut value: Value, extra: Value) -> Value {
    if let (Some(body), Value::Object(extra)) = (value.as_object_mut(), extra) {
        for (key, v) in extra {
            if v.is_null() {
                body.remove(&key);
            } else {
                body.insert(key, v);
            }
        }
    }
    value
}

/// The JSON object of a tool call's arguments.
pub fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, got {other}"),
    }
}

/// Calls `name` with `arguments`; a JSON-RPC error is returned as `Err`.
pub async fn try_call<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    name: &'static str,
    arguments: Value,
) -> Result<CallToolResult, ServiceError> {
    let params = CallToolRequestParams::new(name).with_arguments(object(arguments));
    tokio::time::timeout(CALL_TIMEOUT, client.call_tool(params))
        .await
        .unwrap_or_else(|_| panic!("tools/call {name} did not answer within {CALL_TIMEOUT:?}"))
}

/// Calls `name` with `arguments`, failing the test on a JSON-RPC error.
pub async fn call<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    name: &'static str,
    arguments: Value,
) -> CallToolResult {
    try_call(client, name, arguments)
        .await
        .unwrap_or_else(|e| panic!("tools/call {name} failed with a JSON-RPC error: {e}"))
}

/// Calls `name` with the arguments of each case and checks that it answers with a tool error
/// whose text holds every one of the case's needles.
pub async fn assert_tool_errors<'a, S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    name: &'static str,
    cases: impl IntoIterator<Item = (Value, &'a [&'a str])>,
) {
    for (arguments, needles) in cases {
        let text = tool_error(&call(client, name, arguments.clone()).await);
        for needle in needles {
            assert!(
                text.contains(needle),
                "{name} {arguments}: {needle:?} not in {text:?}"
            );
        }
    }
}

/// The server's name as the client learnt it (from `initialize` or `server/discover`).
pub fn server_name<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
) -> Option<String> {
    client
        .peer_info()
        .and_then(|info| info.server_info.as_ref().map(|s| s.name.clone()))
}

/// The listed tools, after checking that they are exactly `TOOL_NAMES` (and all of
/// `QUERY_TOOL_NAMES` when any of them is listed), each listed once.
pub async fn list_tools<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
) -> Vec<Tool> {
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let mut expected = BTreeSet::from(TOOL_NAMES);
    if names.iter().any(|n| QUERY_TOOL_NAMES.contains(n)) {
        expected.extend(QUERY_TOOL_NAMES);
    }
    assert_eq!(names, expected);
    assert_eq!(tools.len(), expected.len(), "each tool listed once");
    tools
}

/// Classifies `event` without history and checks the answer against the rules run directly;
/// returns it.
pub async fn assert_classifies<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    event: &Value,
) -> Value {
    let structured = success(&call(client, "classify", json!({"event": event})).await);
    assert_eq!(
        structured,
        expected_classification(event, &[]),
        "for {event}"
    );
    structured
}

/// Calls the tool `name`, which does not exist, and checks that the answer is a JSON-RPC
/// Invalid params error rather than a tool result; returns the error.
pub async fn unknown_tool_error<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    name: &'static str,
) -> ErrorData {
    let error = try_call(client, name, json!({}))
        .await
        .expect_err("an unknown tool is not a tool result");
    let ServiceError::McpError(error) = error else {
        panic!("expected a JSON-RPC error, got {error:?}");
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    error
}

/// A client on `transport` that skips `initialize` and speaks the 2026-07-28 protocol through
/// `server/discover`, after checking that this is the version in use.
pub async fn discover_2026<T, E, A>(transport: T) -> RunningService<RoleClient, ()>
where
    T: IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let client = ()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("server/discover: {e}"));
    assert_eq!(
        client.peer_info().map(|i| i.protocol_version.clone()),
        Some(ProtocolVersion::V_2026_07_28)
    );
    client
}

/// The concatenated text content blocks of a result.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// The structured content of a successful call, after checking that the call succeeded and that
/// the text content is the same JSON (for clients that only read text).
pub fn success(result: &CallToolResult) -> Value {
    assert!(
        !is_error(result),
        "expected success, got a tool error: {}",
        text_of(result)
    );
    let structured = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structuredContent in {result:?}"));
    let text = text_of(result);
    let from_text: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("text content is not JSON ({e}): {text}"));
    assert_eq!(
        from_text, structured,
        "text content and structuredContent differ"
    );
    structured
}

/// A query tool's answer: its summary for a model to quote, and its structured content, after
/// checking that the call succeeded and that the second text block is the same JSON.
pub fn answer(result: &CallToolResult) -> (String, Value) {
    assert!(
        !is_error(result),
        "expected success, got a tool error: {}",
        text_of(result)
    );
    let texts: Vec<String> = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect();
    let [summary, json] = &texts[..] else {
        panic!("expected a summary and the JSON, got {texts:?}");
    };
    let structured = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("no structuredContent in {result:?}"));
    let from_text: Value = serde_json::from_str(json).expect("the second block is JSON");
    assert_eq!(
        from_text, structured,
        "text JSON and structuredContent differ"
    );
    (summary.clone(), structured)
}

/// The text of a tool error (`isError: true`), after checking that it is one.
pub fn tool_error(result: &CallToolResult) -> String {
    assert!(
        is_error(result),
        "expected a tool error, got success: {result:?}"
    );
    let text = text_of(result);
    assert!(!text.is_empty(), "tool error without text: {result:?}");
    text
}

/// Every violation of `schema` by `instance`, in words (empty when valid). Formats are checked.
pub fn schema_violations(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("not a valid JSON Schema ({e}): {schema:#}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}: {e}", e.schema_path(), e.instance_path()))
        .collect()
}

/// Panics, naming every violation, when `instance` does not match `schema`.
pub fn assert_matches_schema(what: &str, schema: &Value, instance: &Value) {
    let violations = schema_violations(schema, instance);
    assert!(
        violations.is_empty(),
        "{what} does not match its schema:\n  {}\ninstance: {instance:#}\nschema: {schema:#}",
        violations.join("\n  ")
    );
}

/// The field names of a JSON object, sorted.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// The flags of a classification as strings.
pub fn flags(classification: &Value) -> Vec<String> {
    classification["flags"]
        .as_array()
        .unwrap_or_else(|| panic!("no flags array in {classification}"))
        .iter()
        .map(|f| f.as_str().expect("flag is a string").to_owned())
        .collect()
}

pub fn has_flag(classification: &Value, flag: &str) -> bool {
    flags(classification).iter().any(|f| f == flag)
}

/// The fields of a classification, sorted.
pub const CLASSIFICATION_FIELDS: [&str; 8] = [
    "classifier_version",
    "confidence",
    "density_veh_km_lane",
    "flags",
    "flow_veh_h_lane",
    "label",
    "level_of_service",
    "reasons",
];

/// Checks the shape and value ranges of one classification.
pub fn assert_classification(value: &Value) {
    assert_eq!(keys(value), CLASSIFICATION_FIELDS, "in {value:#}");
    let label = value["label"].as_str().expect("label");
    assert!(
        ["free_flow", "moderate", "heavy", "congested", "unknown"].contains(&label),
        "label {label}"
    );
    let los = &value["level_of_service"];
    assert!(
        los.is_null() || ["A", "B", "C", "D", "E", "F"].contains(&los.as_str().unwrap_or("?")),
        "level_of_service {los}"
    );
    assert!(value["flow_veh_h_lane"].as_f64().expect("flow") >= 0.0);
    let confidence = value["confidence"].as_f64().expect("confidence");
    assert!((0.0..=1.0).contains(&confidence), "confidence {confidence}");
    assert!(
        !value["reasons"].as_array().expect("reasons").is_empty(),
        "a classification gives its reasons"
    );
    assert!(
        value["classifier_version"]
            .as_str()
            .expect("classifier_version")
            .starts_with("smart-traffic-rules/")
    );
}

/// The classification `traffic_model::rules` gives directly, as JSON (what every transport must
/// return for the same reading and history).
pub fn expected_classification(event: &Value, history: &[Value]) -> Value {
    use traffic_model::reading::Reading;
    let parse = |v: &Value| Reading::from_json(v.clone(), Utc::now()).expect("valid reading");
    let history: Vec<Reading> = history.iter().map(parse).collect();
    let classification = traffic_model::rules::classify(
        &parse(event),
        &history,
        &traffic_model::rules::RulesConfig::default(),
    );
    serde_json::to_value(classification).expect("classification as JSON")
}
