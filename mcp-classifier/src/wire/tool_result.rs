//! The client's hot message: the response to a `tools/call`, parsed straight into rmcp's types.
//! Used by ingest's workers on the in-process pipe, whose peer is our own server.

use rmcp::RoleClient;
use rmcp::model::{
    CallToolResult, ContentBlock, JsonRpcMessage, JsonRpcResponse, JsonRpcVersion2_0, MetaObject,
    RequestId, ResultType, ServerResult,
};
use rmcp::service::RxJsonRpcMessage;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Exactly a response whose result has a tool result's members and no others, `content`
/// included: no other result type of the protocol has that shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolResultLine {
    #[serde(rename = "jsonrpc")]
    _jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    result: ToolResult,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ToolResult {
    #[serde(default)]
    result_type: Option<ResultType>,
    content: Vec<ContentBlock>,
    /// Present-but-null stays `Some(Null)`, as rmcp keeps it.
    #[serde(default, deserialize_with = "present")]
    structured_content: Option<Value>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(rename = "_meta", default)]
    meta: Option<MetaObject>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A `mcp_classifier::wire::HotDecoder` for clients: the line as a tool result, if it is one.
pub fn tool_result_response(line: &[u8]) -> Option<RxJsonRpcMessage<RoleClient>> {
    let ToolResultLine { id, result, .. } = serde_json::from_slice(line).ok()?;
    // Anything but a finished result is another variant's business.
    if result
        .result_type
        .as_ref()
        .is_some_and(|t| !t.is_complete())
    {
        return None;
    }
    let mut call = CallToolResult::default();
    call.result_type = result.result_type;
    call.content = result.content;
    call.structured_content = result.structured_content;
    call.is_error = result.is_error;
    call.meta = result.meta;
    Some(JsonRpcMessage::Response(JsonRpcResponse {
        jsonrpc: JsonRpcVersion2_0,
        id,
        result: ServerResult::CallToolResult(call),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    fn rmcp_parse(line: &Value) -> RxJsonRpcMessage<RoleClient> {
        serde_json::from_value(line.clone()).expect("rmcp parses the line")
    }

    fn response(result: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": 3, "result": result})
    }

    #[test]
    fn tool_results_parse_to_what_rmcp_makes_of_them() {
        let structured = json!({"results": [{"index": 0, "classification": {"label": "heavy"}}]});
        let text = json!([{"type": "text", "text": structured.to_string()}]);
        let lines = [
            response(json!({"content": text, "structuredContent": structured})),
            response(
                json!({"content": text, "structuredContent": structured, "isError": false,
                "resultType": "complete", "_meta": {"k": 1}}),
            ),
            response(json!({"content": [{"type": "text", "text": "event: bad"}], "isError": true})),
            response(json!({"content": [], "structuredContent": null})),
        ];
        for line in &lines {
            let slow = rmcp_parse(line);
            assert!(
                matches!(&slow, JsonRpcMessage::Response(r)
                    if matches!(r.result, ServerResult::CallToolResult(_))),
                "{line}"
            );
            let fast = tool_result_response(line.to_string().as_bytes())
                .unwrap_or_else(|| panic!("the direct parse takes {line}"));
            assert_eq!(
                serde_json::to_value(&fast).unwrap(),
                serde_json::to_value(&slow).unwrap(),
                "{line}"
            );
        }
    }

    #[test]
    fn other_results_and_messages_are_left_to_rmcp() {
        let lines = [
            response(json!({})),
            response(json!({"protocolVersion": "2025-06-18", "capabilities": {},
                "serverInfo": {"name": "s", "version": "1"}, "content": []})),
            response(json!({"tools": [], "content": []})),
            response(json!({"content": [], "resultType": "input_required"})),
            json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": "no"}}),
            json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}),
        ];
        for line in lines {
            assert!(
                tool_result_response(line.to_string().as_bytes()).is_none(),
                "{line}"
            );
        }
    }
}
