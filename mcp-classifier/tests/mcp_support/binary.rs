//! The built `mcp-classifier` binary as the suites that run it (`mcp_binary`, `mcp_oauth`) start
//! it: a child in an empty temporary directory with a clean environment, killed when its guard
//! drops; the HTTP server and the requests sent to it.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-classifier");
/// How long a child may take to exit once told to (stdin closed, SIGTERM).
pub const EXIT_WITHIN: Duration = Duration::from_secs(5);
/// How long the HTTP server may take to start listening.
pub const START_WITHIN: Duration = Duration::from_secs(20);

/// Variables the binary reads; none may leak in from the environment running the tests.
pub const SERVER_ENV: [&str; 14] = [
    "DATABASE_URL",
    "LOG_FORMAT",
    "MCP_BIND",
    "MCP_AUTH_TOKEN",
    "MCP_ALLOWED_HOSTS",
    "MCP_ALLOWED_ORIGINS",
    "MCP_MAX_BODY_BYTES",
    "MCP_BODY_TIMEOUT_S",
    "MCP_OAUTH_ISSUER",
    "MCP_OAUTH_JWKS",
    "MCP_RESOURCE_URL",
    "RUST_LOG",
    "SSL_CERT_DIR",
    "SSL_CERT_FILE",
];

/// A spawned binary, killed (and reaped) on drop unless it has exited.
pub struct ChildGuard {
    pub child: Child,
    _dir: tempfile::TempDir,
}

impl ChildGuard {
    pub fn spawn(mut command: Command, dir: tempfile::TempDir) -> Self {
        let child = command.spawn().expect("spawn mcp-classifier");
        Self { child, _dir: dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the child exits within `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `EXIT_WITHIN` for the exit `after` should bring, and checks its status is 0.
    pub fn exits_with_status_0(&mut self, after: &str) {
        let status = self.wait_for_exit(EXIT_WITHIN);
        assert_exited_with_status_0(status, after, "");
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.pid());
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Fails unless `status` is an exit with status 0 (`None`: still running after `EXIT_WITHIN`);
/// `log` is added to the failure message.
pub fn assert_exited_with_status_0(status: Option<ExitStatus>, after: &str, log: &str) {
    let status =
        status.unwrap_or_else(|| panic!("still running {EXIT_WITHIN:?} after {after}{log}"));
    assert!(status.success(), "exit status {status} after {after}{log}");
}

/// `mcp-classifier ARGS` in a fresh empty directory with a clean environment.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir.path());
    for name in SERVER_ENV {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    (command, dir)
}

/// Reads a pipe to its end on a thread; the receiver gets everything read.
pub fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx
}

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw-test","version":"0"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
pub const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

pub fn classify_request(id: u64, event: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "classify", "arguments": {"event": event}}})
    .to_string()
}

/// A port nobody listens on (now).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

pub struct HttpServer {
    pub child: ChildGuard,
    pub addr: SocketAddr,
}

impl HttpServer {
    /// `mcp-classifier serve --bind 127.0.0.1:PORT`, once it accepts connections. Its log goes
    /// to the test's own stdout and stderr.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::spawn(env, Stdio::inherit()).0
    }

    /// As [`Self::start`], with the log (stderr) read on a thread: the receiver gets all of
    /// it once the server has exited (or been dropped).
    pub fn start_logged(env: &[(&str, &str)]) -> (Self, mpsc::Receiver<String>) {
        let (server, stderr) = Self::spawn(env, Stdio::piped());
        (server, drain(stderr.expect("piped stderr")))
    }

    fn spawn(env: &[(&str, &str)], stderr: Stdio) -> (Self, Option<ChildStderr>) {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (mut command, dir) = command(&["serve", "--bind", &addr.to_string()], env);
        command.stdin(Stdio::null()).stderr(stderr);
        let mut child = ChildGuard::spawn(command, dir);
        let stderr = child.child.stderr.take();
        let deadline = Instant::now() + START_WITHIN;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = child.child.try_wait().expect("try_wait") {
                panic!("mcp-classifier serve exited with {status} before listening on {addr}");
            }
            assert!(
                Instant::now() < deadline,
                "not listening on {addr} after {START_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        (Self { child, addr }, stderr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

pub fn rmcp_transport(
    server: &HttpServer,
    token: Option<&str>,
) -> StreamableHttpClientTransport<reqwest::Client> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp"));
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    StreamableHttpClientTransport::with_client(http_client(), config)
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// A POST as an MCP client sends it, with `headers` added (or replacing the defaults).
pub async fn post(url: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Answer {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut map = HeaderMap::new();
    for (name, value) in [
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
    ]
    .iter()
    .chain(headers)
    {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    let response = http_client()
        .post(url)
        .headers(map)
        .body(body.as_ref().to_vec())
        .send()
        .await
        .expect("POST");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

/// Checks a 200 JSON-RPC response to request `id` and returns its result.
pub fn json_rpc_result(answer: &Answer, id: u64) -> Value {
    assert_eq!(answer.status, 200, "body: {}", answer.body);
    let message = answer.json();
    assert_eq!(message["jsonrpc"], "2.0", "{message}");
    assert_eq!(message["id"], json!(id), "{message}");
    assert!(message.get("error").is_none(), "{message}");
    message["result"].clone()
}

pub const HTTP_VERSION: (&str, &str) = ("mcp-protocol-version", "2025-11-25");
