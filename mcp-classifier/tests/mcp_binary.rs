//! The built `mcp-classifier` binary: MCP over stdio and over Streamable HTTP, its HTTP guards
//! (Host/Origin, bearer token, body limit) and its shutdown.
//!
//! Every child runs in an empty temporary directory (no `.env`, no `smart_traffic.db`) with the
//! server's environment variables removed, and is killed when its guard drops, even when the
//! test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mcp_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mcp_support::binary::*;
use mcp_support::db::{TestDb, on_sqlite_and_postgres};
use mcp_support::*;
use rmcp::model::ErrorCode;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, Service, ServiceExt};
use serde_json::{Value, json};
use tokio::process::ChildStderr;

/// rmcp's child-process transport to `mcp-classifier stdio` run with `env`, with its stderr
/// handle when `stderr` is piped. tokio kills the child if it is dropped; the directory must
/// outlive it.
fn stdio_transport(
    env: &[(&str, &str)],
    stderr: Stdio,
) -> (TokioChildProcess, Option<ChildStderr>, tempfile::TempDir) {
    let (std_command, dir) = command(&["stdio"], env);
    let mut command = tokio::process::Command::from(std_command);
    command.kill_on_drop(true);
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(stderr)
        .spawn()
        .expect("spawn mcp-classifier stdio");
    (transport, stderr, dir)
}

/// A client that has completed `initialize` with `mcp-classifier stdio` run with `env` (whose
/// log goes to the test's stderr).
async fn stdio_client(env: &[(&str, &str)]) -> (RunningService<RoleClient, ()>, tempfile::TempDir) {
    let (transport, _, dir) = stdio_transport(env, Stdio::inherit());
    let client = ().serve(transport).await.expect("initialize over stdio");
    (client, dir)
}

// 8. stdio -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_serves_the_tools_to_an_rmcp_child_process_client() {
    serves_the_tools_over_stdio(&[]).await;
}

/// The portable stdin/stdout path (tokio's handles, as on Windows), forced on this platform.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_serves_the_tools_through_the_portable_handles_too() {
    let log = serves_the_tools_over_stdio(&[
        ("MCP_STDIO_PORTABLE", "1"),
        ("RUST_LOG", "mcp_classifier=debug"),
    ])
    .await;
    assert!(
        log.contains("stdio through tokio's portable handles"),
        "the portable path was not taken: {log}"
    );
}

/// Lists and calls the tools through `mcp-classifier stdio` run with `env`; returns its log.
async fn serves_the_tools_over_stdio(env: &[(&str, &str)]) -> String {
    let (transport, stderr, _dir) = stdio_transport(env, Stdio::piped());
    let log = tokio::spawn(async move {
        let mut log = String::new();
        if let Some(mut stderr) = stderr {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut log).await;
        }
        log
    });
    let client = ().serve(transport).await.expect("initialize over stdio");
    assert_eq!(server_name(&client).as_deref(), Some(SERVER_NAME));
    list_tools(&client).await;
    assert_classifies(&client, &reading("loop/A1:n.3", Some(1), 0)).await;

    let text = tool_error(&call(&client, "classify", json!({"event": {"sensor_id": "s1"}})).await);
    assert!(text.contains("event.observed_at is required"), "{text}");

    // No DATABASE_URL and no smart_traffic.db in the working directory.
    let text = tool_error(&call(&client, "classify_by_id", json!({"id": 1})).await);
    assert!(
        text.starts_with("classify_by_id needs the events database: no database configured"),
        "{text}"
    );
    client.cancel().await.expect("cancel");
    tokio::time::timeout(Duration::from_secs(10), log)
        .await
        .expect("the server exits once stdin closes")
        .expect("its log")
}

/// The largest call the tools take: 1000 events and 10,000 readings of history (≈ 1.4 MB in,
/// ≈ 1 MB out), checked against the rules run directly.
async fn assert_a_full_batch_round_trips<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
) {
    let history: Vec<Value> = (1..=10_000)
        .map(|m| reading(&format!("s{}", m % 10), Some(1), -m))
        .collect();
    let events: Vec<Value> = (0..1000)
        .map(|i| {
            with(
                reading(&format!("s{}", i % 10), Some(1), i),
                json!({"vehicle_count": i % 50}),
            )
        })
        .collect();
    let structured = success(
        &call(
            client,
            "classify_batch",
            json!({"events": events, "history": history}),
        )
        .await,
    );
    let results = structured["results"].as_array().expect("results");
    assert_eq!(results.len(), 1000);
    let mut all = history.clone();
    all.extend(events.iter().cloned());
    for i in [0, 1, 499, 998, 999] {
        assert_eq!(results[i]["index"], json!(i));
        assert_eq!(
            results[i]["classification"],
            expected_classification(&events[i], &all),
            "event {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_carries_the_largest_call_and_its_answer() {
    let (client, _dir) = stdio_client(&[]).await;
    assert_a_full_batch_round_trips(&client).await;
    // The connection still works afterwards.
    assert_classifies(&client, &reading("s1", None, 0)).await;
    client.cancel().await.expect("cancel");
}

async fn stdio_classifies_a_stored_event_from_database_url(db: &TestDb) {
    db.insert_minutes("s1", Some(3), 0..5).await;
    let stored = db.insert(&reading("s1", Some(3), 5)).await;
    let (client, _dir) = stdio_client(&[("DATABASE_URL", &db.url())]).await;
    let structured = success(&call(&client, "classify_by_id", json!({"id": stored.id})).await);
    assert_eq!(structured["event"]["id"], json!(stored.id));
    assert!(
        has_flag(&structured["classification"], "stuck"),
        "{structured:#}"
    );
    let text = tool_error(&call(&client, "classify_by_id", json!({"id": stored.id + 100})).await);
    assert_eq!(text, format!("no event with id {}", stored.id + 100));
    client.cancel().await.expect("cancel");
}

on_sqlite_and_postgres!(
    stdio_classifies_a_stored_event_from_database_url:
    stdio_with_a_sqlite_database_url_classifies_a_stored_event,
    stdio_with_a_postgres_database_url_classifies_a_stored_event
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_speaks_the_2026_07_28_protocol_without_initialize() {
    let (transport, _, _dir) = stdio_transport(&[], Stdio::inherit());
    let client = discover_2026(transport).await;
    assert_classifies(&client, &reading("s1", Some(1), 0)).await;
    client.cancel().await.expect("cancel");
}

/// One `classify_by_id` call over stdio with `DATABASE_URL=url`; returns the error text.
async fn classify_by_id_error_with_database_url(url: &str) -> String {
    let (client, _dir) = stdio_client(&[("DATABASE_URL", url)]).await;
    let text = tool_error(&call(&client, "classify_by_id", json!({"id": 1})).await);
    client.cancel().await.expect("cancel");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_with_an_unreachable_database_reports_it_without_the_password() {
    // Nothing listens on port 1: the connection is refused at once.
    let text =
        classify_by_id_error_with_database_url("postgres://user:hunter2@127.0.0.1:1/events").await;
    assert!(text.starts_with("could not read event 1: "), "{text}");
    assert!(!text.contains("hunter2"), "the password leaks: {text}");
    let text = classify_by_id_error_with_database_url("mysql://root:hunter2@db/events").await;
    assert!(
        text.starts_with("classify_by_id needs the events database: "),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "the password leaks: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_with_database_url_naming_a_missing_sqlite_file_says_that_file_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing.db");
    let text =
        classify_by_id_error_with_database_url(&format!("sqlite://{}", path.display())).await;
    assert!(
        text.starts_with("classify_by_id needs the events database: "),
        "{text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        !text.contains("DATABASE_URL is unset"),
        "DATABASE_URL is set: {text}"
    );
    assert!(!path.exists(), "the classifier never creates the database");
}

/// Reads a pipe line by line on a thread; the receiver gets each line (without its line end,
/// bytes that are not UTF-8 replaced) and is hung up on at the end.
fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut line = Vec::new();
        while pipe.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            if tx
                .send(text.strip_suffix('\r').unwrap_or(text).to_owned())
                .is_err()
            {
                return;
            }
            line.clear();
        }
    });
    rx
}

/// `mcp-classifier stdio` run with `env` and spoken to through its pipes, byte for byte: stdin
/// piped (`None` unless `stdin` is), stdout read line by line and stderr to its end on threads.
struct RawStdio {
    child: ChildGuard,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl RawStdio {
    fn spawn(env: &[(&str, &str)], stdin: Stdio) -> Self {
        let (mut command, dir) = command(&["stdio"], env);
        command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(command, dir);
        let stdout = lines_of(child.child.stdout.take().expect("stdout"));
        let stderr = drain(child.child.stderr.take().expect("stderr"));
        Self {
            stdin: child.child.stdin.take(),
            child,
            stdout,
            stderr,
        }
    }

    /// Writes `bytes` to stdin and flushes it.
    fn write(&mut self, bytes: impl AsRef<[u8]>) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(bytes.as_ref()).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// The next line on stdout.
    fn next_line(&self) -> String {
        self.stdout
            .recv_timeout(START_WITHIN)
            .expect("a line on stdout")
    }

    /// Closes stdin, checks that the process then exits with status 0, and returns the lines of
    /// stdout not yet read and all of stderr.
    fn close_stdin_and_exit(mut self) -> (Vec<String>, String) {
        drop(self.stdin.take());
        let status = self.child.wait_for_exit(EXIT_WITHIN);
        let stderr = self.stderr.recv_timeout(EXIT_WITHIN).unwrap_or_default();
        assert_exited_with_status_0(status, "stdin closed", &format!("; stderr:\n{stderr}"));
        let mut stdout = Vec::new();
        loop {
            match self.stdout.recv_timeout(EXIT_WITHIN) {
                Ok(line) => stdout.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stdout still open after the exit"),
            }
        }
        (stdout, stderr)
    }
}

/// Every line of stdout as a JSON-RPC 2.0 message, by id for responses.
fn json_rpc_lines(stdout: &[String]) -> Vec<Value> {
    stdout
        .iter()
        .map(|line| {
            let message: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
            assert_eq!(message["jsonrpc"], "2.0", "not JSON-RPC 2.0: {line}");
            let is_response = message.get("id").is_some()
                && (message.get("result").is_some() != message.get("error").is_some());
            let is_request_or_notification = message["method"].is_string();
            assert!(
                is_response || is_request_or_notification,
                "neither a response nor a request: {line}"
            );
            message
        })
        .collect()
}

fn response(messages: &[Value], id: u64) -> &Value {
    messages
        .iter()
        .find(|m| m["id"] == json!(id) && m.get("method").is_none())
        .unwrap_or_else(|| panic!("no response to request {id} in {messages:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_stdout_carries_only_json_rpc_and_the_process_exits_when_stdin_closes() {
    // Debug logging makes any log line that strays onto stdout show.
    let mut stdio = RawStdio::spawn(&[("RUST_LOG", "debug")], Stdio::piped());
    let event = reading("s1", Some(1), 0);
    for line in [
        INITIALIZE.to_owned(),
        INITIALIZED.to_owned(),
        TOOLS_LIST.to_owned(),
        classify_request(3, &event),
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope","arguments":{}}}"#
            .to_owned(),
    ] {
        stdio.write(format!("{line}\n"));
    }
    let (stdout, stderr) = stdio.close_stdin_and_exit();
    assert!(!stderr.is_empty(), "logs go to stderr");

    let messages = json_rpc_lines(&stdout);
    let init = response(&messages, 1);
    assert_eq!(init["result"]["serverInfo"]["name"], SERVER_NAME, "{init}");
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    let listed: BTreeSet<&str> = response(&messages, 2)["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(listed, BTreeSet::from(TOOL_NAMES));
    let classified = &response(&messages, 3)["result"];
    assert_eq!(classified["isError"], json!(false), "{classified}");
    assert_eq!(
        classified["structuredContent"],
        expected_classification(&event, &[])
    );
    assert_eq!(
        response(&messages, 4)["error"]["code"],
        json!(ErrorCode::INVALID_PARAMS.0)
    );
}

/// Checks a JSON-RPC error reply to something that could not be a message (`id` null unless
/// given) and returns its message.
fn assert_json_rpc_error(message: &Value, id: &Value, code: i64) -> String {
    assert_eq!(message["jsonrpc"], "2.0", "{message}");
    assert_eq!(message.get("id"), Some(id), "{message}");
    assert_eq!(message["error"]["code"], code, "{message}");
    let text = message["error"]["message"]
        .as_str()
        .expect("an error message");
    assert!(!text.contains("::"), "no Rust paths in {text}");
    text.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_answers_unparsable_and_oversized_lines_with_json_rpc_errors() {
    let mut stdio = RawStdio::spawn(&[], Stdio::piped());
    stdio.write(format!("{INITIALIZE}\n{INITIALIZED}\nnot json\n"));
    // Over the 16 MiB line limit, with its id at the start.
    let mut long = br#"{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"pad":""#.to_vec();
    long.resize(16 * 1024 * 1024 + 10, b'x');
    long.extend_from_slice(b"\"}}\n");
    stdio.write(&long);
    stdio.write(format!("{TOOLS_LIST}\n"));
    let messages = json_rpc_lines(&stdio.close_stdin_and_exit().0);

    let parse_errors: Vec<&Value> = messages
        .iter()
        .filter(|m| m["error"]["code"] == json!(-32700))
        .collect();
    assert_eq!(parse_errors.len(), 1, "{messages:#?}");
    let text = assert_json_rpc_error(parse_errors[0], &Value::Null, -32700);
    assert!(text.contains("not valid JSON"), "{text}");
    let text = assert_json_rpc_error(response(&messages, 21), &json!(21), -32600);
    assert!(text.contains("exceeds the 16 MiB limit"), "{text}");
    // The session went on.
    assert_eq!(
        response(&messages, 2)["result"]["tools"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(messages.len(), 4, "nothing else is answered: {messages:#?}");
}

// 10. shutdown (stdio) -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_exits_with_status_0_when_the_client_closes_stdin_after_initialize() {
    let mut stdio = RawStdio::spawn(&[], Stdio::piped());
    stdio.write(format!("{INITIALIZE}\n"));
    let line = stdio.next_line();
    let answer: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(answer["id"], 1, "{line}");
    stdio.write(format!("{INITIALIZED}\n"));
    let (rest, _) = stdio.close_stdin_and_exit();
    assert!(rest.is_empty(), "nothing more on stdout: {rest:?}");
}

// 9. Streamable HTTP ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_serves_the_tools_to_the_rmcp_streamable_http_client() {
    let server = HttpServer::start(&[]);
    let client = ().serve(rmcp_transport(&server, None)).await.expect("initialize over HTTP");
    assert_eq!(server_name(&client).as_deref(), Some(SERVER_NAME));
    list_tools(&client).await;
    let event = reading("s1", Some(2), 0);
    assert_classifies(&client, &event).await;
    let events: Vec<Value> = (0..8).map(|m| reading("A", Some(1), m)).collect();
    let structured = success(&call(&client, "classify_batch", json!({"events": events})).await);
    assert!(has_flag(
        &structured["results"][7]["classification"],
        "stuck"
    ));
    unknown_tool_error(&client, "nope").await;
    client.cancel().await.expect("cancel");

    // The 2026-07-28 protocol, without initialize.
    let client = discover_2026(rmcp_transport(&server, None)).await;
    assert_classifies(&client, &event).await;
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_carries_the_largest_call_and_its_answer_within_the_default_body_limit() {
    let server = HttpServer::start(&[]);
    let client = ().serve(rmcp_transport(&server, None)).await.expect("initialize over HTTP");
    assert_a_full_batch_round_trips(&client).await;
    client.cancel().await.expect("cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_each_post_on_its_own_without_a_session() {
    let server = HttpServer::start(&[]);
    let answer = post(&server.url("/mcp"), &[], INITIALIZE).await;
    let result = json_rpc_result(&answer, 1);
    assert_eq!(result["serverInfo"]["name"], SERVER_NAME);
    assert!(
        answer.headers.get("mcp-session-id").is_none(),
        "stateless: no session id"
    );
    assert!(
        answer
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "plain JSON responses: {:?}",
        answer.headers
    );
    // A tools/call needs no earlier initialize.
    let event = reading("s1", None, 0);
    let answer = post(
        &server.url("/mcp"),
        &[HTTP_VERSION],
        &classify_request(7, &event),
    )
    .await;
    let result = json_rpc_result(&answer, 7);
    assert_eq!(
        result["structuredContent"],
        expected_classification(&event, &[])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_rejects_a_foreign_origin_or_host_with_403() {
    let server = HttpServer::start(&[]);
    let url = server.url("/mcp");
    let answer = post(&url, &[("origin", "http://evil.example.com")], INITIALIZE).await;
    assert_eq!(answer.status, 403, "foreign Origin: {}", answer.body);
    assert_eq!(answer.body, "Forbidden: Origin header is not allowed");
    let answer = post(&url, &[("origin", "null")], INITIALIZE).await;
    assert_eq!(answer.status, 403, "Origin null: {}", answer.body);
    let answer = post(&url, &[("host", "evil.example.com")], INITIALIZE).await;
    assert_eq!(answer.status, 403, "foreign Host: {}", answer.body);
    assert_eq!(answer.body, "Forbidden: Host header is not allowed");
    let answer = post(
        &url,
        &[("host", &format!("evil.example.com:{}", server.addr.port()))],
        INITIALIZE,
    )
    .await;
    assert_eq!(
        answer.status, 403,
        "foreign Host with port: {}",
        answer.body
    );
    // Loopback names and origins are allowed.
    let port = server.addr.port();
    for (name, value) in [
        ("origin", format!("http://localhost:{port}")),
        ("origin", "http://127.0.0.1:3000".to_owned()),
        ("host", format!("localhost:{port}")),
    ] {
        let answer = post(&url, &[(name, &value)], INITIALIZE).await;
        json_rpc_result(&answer, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_a_body_over_mcp_max_body_bytes_with_413() {
    let server = HttpServer::start(&[("MCP_MAX_BODY_BYTES", "2048")]);
    let url = server.url("/mcp");
    let events: Vec<Value> = (0..40).map(|m| reading("s1", Some(1), m)).collect();
    let big = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                     "params": {"name": "classify_batch", "arguments": {"events": events}}})
    .to_string();
    assert!(big.len() > 2048);
    let answer = post(&url, &[HTTP_VERSION], &big).await;
    assert_eq!(
        answer.status,
        413,
        "body of {} bytes: {}",
        big.len(),
        answer.body
    );
    assert_eq!(
        answer.body,
        "Payload Too Large: request body exceeds 2048 bytes"
    );
    // Without a Content-Length (chunked), the body is cut off as it streams in.
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAccept: application/json, text/event-stream\r\n\
             Content-Type: application/json\r\nMCP-Protocol-Version: 2025-11-25\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        server.addr,
        big.len()
    );
    let response = raw_http(server.addr, request.as_bytes(), || {}, b"");
    assert!(
        response.starts_with("HTTP/1.1 413 "),
        "chunked body over the limit: {response}"
    );
    // Below the limit all is well.
    let small = classify_request(6, &reading("s1", Some(1), 0));
    assert!(small.len() < 2048);
    json_rpc_result(&post(&url, &[HTTP_VERSION], &small).await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_404_off_the_mcp_path() {
    let server = HttpServer::start(&[]);
    let response = http_client()
        .get(server.url("/other"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 404);
    let answer = post(&server.url("/mcp/extra"), &[], INITIALIZE).await;
    assert_eq!(answer.status, 404);
    let answer = post(&server.url("/"), &[], INITIALIZE).await;
    assert_eq!(answer.status, 404);
    // Stateless: no standalone SSE stream to GET on /mcp itself.
    let response = http_client()
        .get(server.url("/mcp"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_with_mcp_auth_token_requires_that_bearer_token() {
    let server = HttpServer::start(&[("MCP_AUTH_TOKEN", "s3cret")]);
    let url = server.url("/mcp");
    for (case, headers) in [
        ("no Authorization", vec![]),
        ("wrong token", vec![("authorization", "Bearer s3cret-not")]),
        (
            "prefix of the token",
            vec![("authorization", "Bearer s3cre")],
        ),
        ("not a bearer", vec![("authorization", "Basic s3cret")]),
    ] {
        let answer = post(&url, &headers, INITIALIZE).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.body);
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{case}");
    }
    let answer = post(&url, &[("authorization", "Bearer s3cret")], INITIALIZE).await;
    let result = json_rpc_result(&answer, 1);
    assert_eq!(result["serverInfo"]["name"], SERVER_NAME);

    // rmcp's client with the token works; without it, it cannot start.
    let client =
        ().serve(rmcp_transport(&server, Some("s3cret")))
            .await
            .expect("initialize with the token");
    assert_classifies(&client, &reading("s1", None, 0)).await;
    client.cancel().await.expect("cancel");
    assert!(().serve(rmcp_transport(&server, None)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_accepts_the_bearer_scheme_in_any_case() {
    let server = HttpServer::start(&[("MCP_AUTH_TOKEN", "s3cret")]);
    for scheme in ["bearer", "BEARER"] {
        let authorization = format!("{scheme} s3cret");
        let answer = post(
            &server.url("/mcp"),
            &[("authorization", &authorization)],
            INITIALIZE,
        )
        .await;
        json_rpc_result(&answer, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_accepts_a_notification_with_202() {
    let server = HttpServer::start(&[]);
    let answer = post(&server.url("/mcp"), &[HTTP_VERSION], INITIALIZED).await;
    assert_eq!(answer.status, 202, "body: {}", answer.body);
    assert_eq!(answer.body, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_rejects_an_unsupported_protocol_version_header_with_400() {
    let server = HttpServer::start(&[]);
    let answer = post(
        &server.url("/mcp"),
        &[("mcp-protocol-version", "1999-01-01")],
        TOOLS_LIST,
    )
    .await;
    assert_eq!(answer.status, 400, "body: {}", answer.body);
    assert!(
        answer
            .body
            .contains("Unsupported MCP-Protocol-Version: 1999-01-01"),
        "{}",
        answer.body
    );
    // A supported one is fine.
    let answer = post(&server.url("/mcp"), &[HTTP_VERSION], TOOLS_LIST).await;
    assert_eq!(
        json_rpc_result(&answer, 2)["tools"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

/// Checks a `400` whose body is a JSON-RPC error, and returns its message.
fn assert_http_json_rpc_error(answer: &Answer, id: &Value, code: i64) -> String {
    assert_eq!(answer.status, 400, "body: {}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{}",
        answer.body
    );
    assert_json_rpc_error(&answer.json(), id, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_a_body_that_is_no_json_rpc_message_with_400_and_a_json_rpc_error() {
    let server = HttpServer::start(&[]);
    let url = server.url("/mcp");
    let batch = format!("[{TOOLS_LIST}]");
    for (case, body, code, words) in [
        (
            "not JSON",
            &b"{\"jsonrpc\": \"2.0\", oops"[..],
            -32700,
            "not valid JSON",
        ),
        ("empty", b"", -32700, "not valid JSON"),
        (
            "not UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xFFng\"}",
            -32700,
            "not valid UTF-8",
        ),
        ("a batch", batch.as_bytes(), -32600, "batches"),
        ("a number", b"42", -32600, "a message is a JSON object"),
        (
            "no JSON-RPC object",
            br#"{"hello":1}"#,
            -32600,
            r#""jsonrpc" must be "2.0""#,
        ),
        (
            "a null request id",
            br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            -32600,
            r#""id" must be"#,
        ),
    ] {
        let answer = post(&url, &[HTTP_VERSION], body).await;
        let text = assert_http_json_rpc_error(&answer, &Value::Null, code);
        assert!(text.contains(words), "{case}: {text}");
    }
    let batch = assert_http_json_rpc_error(
        &post(&url, &[HTTP_VERSION], &batch).await,
        &Value::Null,
        -32600,
    );
    assert!(
        batch.contains("not supported by this protocol version"),
        "{batch}"
    );
    // A sound envelope whose params rmcp cannot take: Invalid params, to the request's id.
    let answer = post(
        &url,
        &[HTTP_VERSION],
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":5}"#,
    )
    .await;
    assert_http_json_rpc_error(&answer, &json!(3), -32602);
    // Sound messages are served as before.
    json_rpc_result(&post(&url, &[HTTP_VERSION], TOOLS_LIST).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_a_body_only_once_the_guards_before_it_have_passed() {
    let server = HttpServer::start(&[("MCP_AUTH_TOKEN", "s3cret"), ("MCP_MAX_BODY_BYTES", "2048")]);
    let url = server.url("/mcp");
    let token = ("authorization", "Bearer s3cret");
    let garbage = "not json";
    let answer = post(&url, &[HTTP_VERSION], garbage).await;
    assert_eq!(answer.status, 401, "no token: {}", answer.body);
    let answer = post(
        &url,
        &[token, ("origin", "http://evil.example.com")],
        garbage,
    )
    .await;
    assert_eq!(answer.status, 403, "foreign Origin: {}", answer.body);
    let answer = post(&url, &[token, ("host", "evil.example.com")], garbage).await;
    assert_eq!(answer.status, 403, "foreign Host: {}", answer.body);
    let answer = post(&url, &[token, ("content-type", "text/plain")], garbage).await;
    assert_eq!(
        answer.status, 415,
        "not JSON by its Content-Type: {}",
        answer.body
    );
    let answer = post(&url, &[token, HTTP_VERSION], "x".repeat(3000)).await;
    assert_eq!(answer.status, 413, "over the body limit: {}", answer.body);
    let answer = post(&url, &[token, HTTP_VERSION], garbage).await;
    assert_http_json_rpc_error(&answer, &Value::Null, -32700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_closes_connections_whose_head_or_body_stalls() {
    let server = HttpServer::start(&[("MCP_BODY_TIMEOUT_S", "1")]);
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // A body announced and never sent, and a head never finished.
        let mut body = TcpStream::connect(addr).expect("connect");
        body.write_all(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{",
        )
        .expect("write");
        let mut head = TcpStream::connect(addr).expect("connect");
        head.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .expect("write");
        for (name, stream, within, status) in [
            ("stalled body", &mut body, 5, Some("408")),
            ("stalled head", &mut head, 10, None),
        ] {
            stream
                .set_read_timeout(Some(Duration::from_secs(within)))
                .expect("read timeout");
            let mut answer = Vec::new();
            let closed = stream.read_to_end(&mut answer);
            assert!(
                closed.is_ok(),
                "{name}: still open after {within} s: {closed:?}"
            );
            let answer = String::from_utf8_lossy(&answer);
            if let Some(status) = status {
                assert!(
                    answer.starts_with(&format!("HTTP/1.1 {status}")),
                    "{name}: {answer}"
                );
            }
        }
    })
    .await
    .expect("the stalled connections are closed");
}

// 10. shutdown (HTTP) --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_exits_with_status_0_on_sigterm() {
    let mut server = HttpServer::start(&[]);
    json_rpc_result(&post(&server.url("/mcp"), &[], INITIALIZE).await, 1);
    server.child.signal("-TERM");
    server.child.exits_with_status_0("SIGTERM");
    assert!(
        TcpStream::connect_timeout(&server.addr, Duration::from_millis(500)).is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_exits_promptly_on_sigterm_while_a_client_holds_an_idle_keep_alive_connection() {
    let mut server = HttpServer::start(&[]);
    // A pooled HTTP/1.1 client keeps its connection open after the response.
    let client = http_client();
    let response = client
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(INITIALIZE)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.expect("body");
    server.child.signal("-TERM");
    server
        .child
        .exits_with_status_0("SIGTERM despite the idle connection");
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_exits_with_status_0_on_sigint() {
    let mut server = HttpServer::start(&[]);
    server.child.signal("-INT");
    server.child.exits_with_status_0("SIGINT");
}

/// Sends `first`, runs `between`, sends `rest`, and returns the raw response, read until the
/// server closes the connection.
fn raw_http(addr: SocketAddr, first: &[u8], between: impl FnOnce(), rest: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream.write_all(first).expect("write the first part");
    stream.flush().expect("flush");
    between();
    stream.write_all(rest).expect("write the rest");
    stream.flush().expect("flush");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// Sends a POST to `/mcp` in two parts with `between` run after the first, and returns the raw
/// HTTP/1.1 response (the connection is closed by the server after it).
fn post_in_two_parts(addr: SocketAddr, body: &str, between: impl FnOnce()) -> String {
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json, text/event-stream\r\n\
         Content-Type: application/json\r\nMCP-Protocol-Version: 2025-11-25\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    raw_http(
        addr,
        format!("{head}{first}").as_bytes(),
        between,
        rest.as_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_finishes_a_request_in_flight_at_sigterm_before_exiting_with_status_0() {
    let mut server = HttpServer::start(&[]);
    let event = reading("s1", Some(1), 0);
    // A long history makes the call take a moment, as real work does.
    let history: Vec<Value> = (1..=5000).map(|m| reading("s1", Some(1), -m)).collect();
    let request = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                         "params": {"name": "classify", "arguments": {"event": event, "history": history}}})
    .to_string();
    // The request is in flight (its head and half its body received) when SIGTERM arrives.
    let response = post_in_two_parts(server.addr, &request, || {
        std::thread::sleep(Duration::from_millis(200));
        server.child.signal("-TERM");
        std::thread::sleep(Duration::from_millis(300));
    });
    let status_line = response.lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        status_line, "HTTP/1.1 200 OK",
        "the in-flight request is answered, not aborted; response:\n{response}"
    );
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let message: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(message["id"], 9);
    assert_eq!(
        message["result"]["structuredContent"],
        expected_classification(&event, &history)
    );
    server
        .child
        .exits_with_status_0("SIGTERM, once the request is answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_exits_with_status_0_when_stdin_closes_before_any_message() {
    let (stdout, _) = RawStdio::spawn(&[], Stdio::null()).close_stdin_and_exit();
    assert!(stdout.is_empty(), "nothing on stdout: {stdout:?}");
}
