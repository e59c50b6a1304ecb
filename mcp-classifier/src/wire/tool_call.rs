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
    let ToolCallLine { id, mut params, .. } = serde_json::from_slice(line).ok()?;
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
