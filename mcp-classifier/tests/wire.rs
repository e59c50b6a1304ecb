//! `wire::LineTransport` and its direct `tools/call` parse: the same messages as rmcp's own
//! parse, and its line rules: blank lines draw nothing; unparsable, wrong-shape and oversized
//! lines draw a JSON-RPC error; our errors, echoed back, draw nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mcp_classifier::server::{ClassifierServer, Database};
use mcp_classifier::wire::{LineTransport, tool_call_request};
use rmcp::RoleServer;
use rmcp::ServiceExt;
use rmcp::model::{ClientRequest, JsonRpcMessage, RequestMetaObject};
use rmcp::service::RxJsonRpcMessage;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use traffic_model::rules::RulesConfig;

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"classify","arguments":{"event":{"sensor_id":"s-1","observed_at":"2026-03-02T07:00:00Z","vehicle_count":12,"avg_speed_kmh":87.5,"occupancy_pct":9.0}}}}"#;

fn rmcp_parse(line: &str) -> RxJsonRpcMessage<RoleServer> {
    serde_json::from_str(line).expect("rmcp parses the line")
}

/// The request's `_meta` as rmcp's extensions carry it, and the params' own `meta`.
fn metas(message: &RxJsonRpcMessage<RoleServer>) -> (Option<Value>, Option<Value>) {
    let JsonRpcMessage::Request(request) = message else {
        panic!("not a request: {message:?}");
    };
    let ClientRequest::CallToolRequest(call) = &request.request else {
        panic!("not tools/call: {message:?}");
    };
    let in_extensions = call
        .extensions
        .get::<RequestMetaObject>()
        .map(|meta| serde_json::to_value(&meta.0).unwrap());
    let in_params = call
        .params
        .meta
        .as_ref()
        .map(|meta| serde_json::to_value(meta).unwrap());
    (in_extensions, in_params)
}

#[test]
fn a_tool_call_parses_to_what_rmcp_makes_of_it() {
    let mut with_meta: Value = serde_json::from_str(CALL).unwrap();
    with_meta["params"]["_meta"] = json!({"progressToken": "p-1"});
    let mut string_id: Value = serde_json::from_str(CALL).unwrap();
    string_id["id"] = json!("call-9");
    let mut extra_param: Value = serde_json::from_str(CALL).unwrap();
    extra_param["params"]["future_field"] = json!(true);
    let lines = [
        CALL.to_owned(),
        with_meta.to_string(),
        string_id.to_string(),
        extra_param.to_string(),
    ];
    for line in &lines {
        let fast = tool_call_request(line.as_bytes()).expect("the direct parse takes it");
        let slow = rmcp_parse(line);
        assert!(matches!(
            &fast,
            JsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::CallToolRequest(_))
        ));
        assert_eq!(
            serde_json::to_value(&fast).unwrap(),
            serde_json::to_value(&slow).unwrap(),
            "{line}"
        );
        assert_eq!(metas(&fast), metas(&slow), "{line}");
    }
    assert_eq!(
        metas(&tool_call_request(lines[1].as_bytes()).unwrap()).0,
        Some(json!({"progressToken": "p-1"}))
    );
}

#[test]
fn anything_but_a_plain_tool_call_is_left_to_rmcp() {
    let call: Value = serde_json::from_str(CALL).unwrap();
    let mut stray_result = call.clone();
    stray_result["result"] = json!({});
    let mut notification = call.clone();
    notification.as_object_mut().unwrap().remove("id");
    let mut old_version = call.clone();
    old_version["jsonrpc"] = json!("1.0");
    let mut other_method = call.clone();
    other_method["method"] = json!("tools/list");
    let mut nameless = call;
    nameless["params"].as_object_mut().unwrap().remove("name");
    for line in [
        stray_result,
        notification,
        old_version,
        other_method,
        nameless,
    ] {
        assert!(
            tool_call_request(line.to_string().as_bytes()).is_none(),
            "{line}"
        );
    }
    assert!(tool_call_request(b"not json").is_none());
}

/// A classifier served over `LineTransport` on one end of a pipe; the test writes raw lines to
/// the other end.
struct RawPeer {
    write: tokio::io::WriteHalf<DuplexStream>,
    read: BufReader<tokio::io::ReadHalf<DuplexStream>>,
}

impl RawPeer {
    fn start() -> Self {
        let (server_io, peer_io) = tokio::io::duplex(64 * 1024);
        let (read, write) = tokio::io::split(server_io);
        let transport = LineTransport::new(read, write, tool_call_request);
        let server = ClassifierServer::new(
            RulesConfig::default(),
            Database::Unavailable("no database (test)".into()),
        );
        tokio::spawn(async move {
            if let Ok(running) = server.serve(transport).await {
                let _ = running.waiting().await;
            }
        });
        let (read, write) = tokio::io::split(peer_io);
        Self {
            write,
            read: BufReader::new(read),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.unwrap();
    }

    async fn receive(&mut self) -> Value {
        let mut line = String::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.read.read_line(&mut line),
        )
        .await
        .expect("an answer within 10 s")
        .unwrap();
        assert!(read > 0, "the server closed the pipe");
        serde_json::from_str(&line).unwrap()
    }

    async fn initialize(&mut self) {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}});
        self.send(format!("{init}\n").as_bytes()).await;
        let answer = self.receive().await;
        assert_eq!(answer["id"], 0, "{answer}");
        self.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .await;
    }

    async fn ping(&mut self, id: u64) {
        self.send(format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\n").as_bytes())
            .await;
        let answer = self.receive().await;
        assert_eq!(answer["id"], id, "{answer}");
        assert!(answer.get("result").is_some(), "{answer}");
    }
}

#[tokio::test]
async fn lines_keep_rmcp_rules_and_tool_calls_are_answered() {
    let mut peer = RawPeer::start();
    peer.initialize().await;

    // A tool call with CRLF and a byte-order mark, then blank lines: the call is answered, the
    // blank lines draw no reply (the next reply is the ping's).
    peer.send(format!("\u{feff}{CALL}\r\n\n\r\n").as_bytes())
        .await;
    let answer = peer.receive().await;
    assert_eq!(answer["id"], 7, "{answer}");
    // 12 vehicles a minute at 87.5 km/h: 720 veh/h, 8.2 veh/km, inside HCM's B band.
    let classification = &answer["result"]["structuredContent"];
    assert_eq!(classification["level_of_service"], "B", "{answer}");
    assert_eq!(classification["label"], "free_flow", "{answer}");
    peer.ping(8).await;

    // Well-formed JSON of no JSON-RPC shape: Invalid Request, and the session goes on.
    peer.send(b"{\"hello\":1}\n").await;
    let answer = peer.receive().await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    peer.ping(9).await;
}

/// The error reply to a line that could not be a message: `id` present and null unless given.
fn assert_refused(answer: &Value, id: Value, code: i64, words: &str) {
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer.get("id"), Some(&id), "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    let message = answer["error"]["message"].as_str().expect("a message");
    assert!(message.contains(words), "{message}");
}

#[tokio::test]
async fn unparsable_lines_get_a_parse_error_which_an_echoing_peer_cannot_bounce_back() {
    let mut peer = RawPeer::start();
    peer.initialize().await;

    peer.send(b"not json at all\n").await;
    let answer = peer.receive().await;
    assert_refused(&answer, Value::Null, -32700, "not valid JSON");
    // A peer that echoes sends our error back: a response, which draws nothing (the next
    // reply is the ping's).
    peer.send(format!("{answer}\n").as_bytes()).await;
    peer.ping(10).await;

    peer.send(b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]\n")
        .await;
    let answer = peer.receive().await;
    assert_refused(&answer, Value::Null, -32600, "batches");
    peer.send(format!("{answer}\n").as_bytes()).await;
    peer.ping(11).await;
}

#[tokio::test]
async fn a_line_over_16_mib_is_answered_with_its_id_and_the_session_goes_on() {
    let mut peer = RawPeer::start();
    peer.initialize().await;
    let over = 16 * 1024 * 1024 + 10;

    let mut long =
        br#"{"jsonrpc":"2.0","id":"big-1","method":"tools/call","params":{"pad":""#.to_vec();
    long.resize(over, b'x');
    long.extend_from_slice(b"\"}}\n");
    peer.send(&long).await;
    assert_refused(
        &peer.receive().await,
        json!("big-1"),
        -32600,
        "exceeds the 16 MiB limit",
    );
    peer.ping(12).await;

    // No id at the line's start: a null one.
    peer.send(&vec![b'x'; over]).await;
    peer.send(b"\n").await;
    assert_refused(&peer.receive().await, Value::Null, -32600, "16 MiB");
    peer.ping(13).await;
}
