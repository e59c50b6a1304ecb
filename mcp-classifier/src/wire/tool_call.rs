//! The server's hot message: a `tools/call` request, parsed straight into rmcp's types.

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestMethod, CallToolRequestParams, ClientRequest, JsonRpcMessage, JsonRpcRequest,
    JsonRpcVersion2_0, Request, RequestId,
};
use rmcp::service::RxJsonRpcMessage;
use serde::Deserialize;

/// Exactly a `tools/call` request: any other member (a stray `result`, say) is left for rmcp's
/// path to judge.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCallLine {
    #[serde(rename = "jsonrpc")]
    _jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    #[serde(rename = "method")]
    _method: CallToolRequestMethod,
    params: CallToolRequestParams,
}

/// A [`super::HotDecoder`] for servers: the line as a `tools/call` request, if it is one.
pub fn tool_call_request(line: &[u8]) -> Option<RxJsonRpcMessage<RoleServer>> {
    // JSON text is UTF-8 throughout. serde_json checks only the strings it keeps, rmcp's parse
    // keeps them all: a byte that is no UTF-8 in a member skipped here is rmcp's to refuse.
    let line = std::str::from_utf8(line).ok()?;
    let ToolCallLine { id, mut params, .. } = serde_json::from_str(line).ok()?;
    // rmcp keeps a request's `_meta` in its extensions, not in the params.
    let meta = params.meta.take();
    let mut request = Request::new(params);
    if let Some(meta) = meta {
        request.extensions.insert(meta);
    }
    Some(JsonRpcMessage::Request(JsonRpcRequest::new(
        id,
        ClientRequest::CallToolRequest(request),
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_line_that_is_no_utf8_is_left_to_rmcp_even_where_skipped() {
        let call = |extra: &[u8]| {
            [
                &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"classify","#[..],
                extra,
                br#""arguments":{}}}"#,
            ]
            .concat()
        };
        assert!(tool_call_request(&call(b"\"x\":{\"lanes\":2},")).is_some());
        // Found by the mcp_lines fuzz target: invalid UTF-8 in a member of `params` the direct
        // parse skips was taken, where rmcp (and so the transport's doc) refuses the line.
        let line = call(b"\"x\":{\"lan\x81\x81es\":2},");
        assert!(
            serde_json::from_slice::<ToolCallLine>(&line).is_ok(),
            "skipped unread"
        );
        assert!(tool_call_request(&line).is_none());
        assert!(serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(&line).is_err());
    }
}
