//! A byte stream into the MCP line transport (`LineCodec`, as stdio and the in-process pipe
//! read it). Input: a byte whose bit 0 picks the side (server: `tools/call` decoded directly;
//! client: tool results), a chunk size, then the stream. Checks: what the stream decodes to does
//! not depend on how it arrives; the direct decoders agree with rmcp's own parse; the operation
//! the HTTP scope check reads (`operation`) is the one rmcp would run, or unknown; an `id`
//! found at the start of a line (`leading_id`, used for lines too long to parse) is never one
//! the whole line does not have; every refusal is a JSON-RPC error code of the transport's.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcp_classifier::wire::{
    HotDecoder, Incoming, LineCodec, Operation, leading_id, operation, tool_call_request,
    tool_result_response,
};
use rmcp::service::{RxJsonRpcMessage, ServiceRole};
use rmcp::{RoleClient, RoleServer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::codec::Decoder;

/// One decoded item in words, to compare two runs.
fn summary<Role: ServiceRole>(item: Incoming<Role>) -> String
where
    RxJsonRpcMessage<Role>: Serialize,
{
    match item {
        Incoming::Message(message) => {
            format!("message {}", serde_json::to_string(&*message).unwrap())
        }
        Incoming::Refused { id, error } => {
            assert!(
                [-32700, -32600, -32602].contains(&error.code.0),
                "unexpected code {}",
                error.code.0
            );
            format!("refused {id:?} {} {}", error.code.0, error.message)
        }
        Incoming::Skipped => "skipped".to_owned(),
    }
}

/// Everything `stream` decodes to, fed in pieces of `chunk` bytes (all at once for 0).
fn decode_all<Role: ServiceRole>(hot: HotDecoder<Role>, stream: &[u8], chunk: usize) -> Vec<String>
where
    RxJsonRpcMessage<Role>: Serialize,
{
    let mut codec = LineCodec::<Role>::new(hot);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = if chunk == 0 {
        vec![stream]
    } else {
        stream.chunks(chunk).collect()
    };
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            out.push(summary(item));
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
        out.push(summary(item));
    }
    out
}

/// The operation rmcp's parse of `message` would run, as `operation` names it. A `tools/call`
/// without a tool name (rmcp keeps it as a custom request, which no tool answers) is unknown.
fn operation_of(message: &Value) -> Operation {
    match message.get("method").and_then(Value::as_str) {
        Some("tools/call") => message["params"]["name"]
            .as_str()
            .map_or(Operation::Unknown, |name| {
                Operation::ToolCall(name.to_owned())
            }),
        Some(method) => Operation::Method(method.to_owned()),
        None => Operation::Response,
    }
}

fn check_line<Role: ServiceRole>(hot: HotDecoder<Role>, line: &[u8])
where
    RxJsonRpcMessage<Role>: Serialize + DeserializeOwned,
{
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let rmcp = serde_json::from_slice::<RxJsonRpcMessage<Role>>(body).ok();
    if let Some(direct) = hot(body) {
        let parsed = rmcp
            .as_ref()
            .expect("decoded directly, yet rmcp refuses it");
        assert_eq!(
            serde_json::to_value(&direct).unwrap(),
            serde_json::to_value(parsed).unwrap(),
            "the direct decoder and rmcp read different messages"
        );
    }
    if let Some(message) = &rmcp {
        let expected = operation_of(&serde_json::to_value(message).unwrap());
        let scanned = operation(body);
        assert!(
            scanned == expected || scanned == Operation::Unknown,
            "the scope check reads {scanned:?}, rmcp runs {expected:?}"
        );
    }
    let whole = leading_id(body);
    let step = (body.len() / 32).max(1);
    for cut in (0..body.len()).step_by(step) {
        if let Some(id) = leading_id(&body[..cut]) {
            assert_eq!(
                Some(&id),
                whole.as_ref(),
                "the id of a prefix of {cut} bytes"
            );
        }
    }
}

fn run<Role: ServiceRole>(hot: HotDecoder<Role>, stream: &[u8], chunk: usize)
where
    RxJsonRpcMessage<Role>: Serialize + DeserializeOwned,
{
    let whole = decode_all::<Role>(hot, stream, 0);
    let pieces = decode_all::<Role>(hot, stream, chunk);
    assert_eq!(whole, pieces, "the outcome depends on the chunking");
    // One item per complete line (the last, unterminated, is no message).
    assert_eq!(whole.len(), stream.iter().filter(|b| **b == b'\n').count());
    for line in stream.split(|b| *b == b'\n') {
        check_line::<Role>(hot, line);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(([side, chunk], stream)) = data.split_first_chunk::<2>().map(|(h, r)| (*h, r)) else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    if side & 1 == 0 {
        run::<RoleServer>(tool_call_request, stream, chunk);
    } else {
        run::<RoleClient>(tool_result_response, stream, chunk);
    }
});
