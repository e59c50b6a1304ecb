//! End-to-end: the input matrix. Every hostile input of one table — broken, truncated and
//! mis-encoded bodies, deep nesting, numbers JSON cannot carry, repeated and unknown members,
//! wrong content types and encodings, decompression bombs, oversized heads and bodies, stalled
//! heads and bodies, a 1 GiB declared length, forged `Host` and `Origin`, bad tokens, unknown
//! protocol versions, clients that never read — against every surface: the REST API of one
//! `ingest`, MCP over HTTP of one `mcp-classifier serve`, MCP over stdio of one
//! `mcp-classifier stdio`, over real sockets and pipes.
//!
//! The case-by-case assertions live with each surface's own tests (`hostile_input.rs`,
//! `resource_limits.rs`, ingest's and mcp-classifier's suites); here every case must get its
//! documented answer (docs/api.md, docs/mcp.md), all mismatches reported at once, and after the
//! table the invariants shared by all surfaces must hold: nothing was stored, the process still
//! serves, its resident memory grew by less than a bound and its descriptors came back, and
//! other clients were served within a second while stalled clients hung on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use smart_traffic_e2e::raw::{open_sockets, rss_kib, status_of};
use smart_traffic_e2e::{Classifier, Ingest, TestDatabase, binaries, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The API key of the REST surface and the bearer token of the MCP HTTP surface.
const KEY: &str = "matrix-key";
const TOKEN: &str = "matrix-token";
/// Small limits, so that the cases over them are quick (README settings table).
const REST_BODY_LIMIT: usize = 256 * 1024;
const REST_BATCH_LIMIT: usize = 1024 * 1024;
const MCP_BODY_LIMIT: usize = 256 * 1024;
/// `INGEST_BODY_TIMEOUT_S` and `MCP_BODY_TIMEOUT_S`, as long as the fixed 5 s for a request
/// head: the stalled connections are all held while other clients are served.
const BODY_TIMEOUT_S: u64 = 5;
/// The version `initialize` falls back to: the newest one with the handshake (docs/mcp.md).
const SERVER_VERSION: &str = "2025-11-25";
/// Connections held by each stalled case and by the never-reading stream clients.
const HELD: usize = 20;
/// How long one case may take to be answered (the stalled ones: past the server's timeout).
const ANSWER_WITHIN: Duration = Duration::from_secs(15);
/// How fast another client must be served while the stalled ones hang.
const SERVED_WITHIN: Duration = Duration::from_secs(1);
/// The live stream's heartbeat (docs/api.md).
const STREAM_HEARTBEAT: Duration = Duration::from_secs(15);
/// Descriptors must come back to within this many of the baseline.
const FD_SLACK: usize = 3;

/// Resident memory may grow by less than this over a surface's table, at its peak and after:
/// the HTTP surfaces hold a body of at most 1 MiB at a time besides the 80 connections held
/// (measured: 25 to 40 MiB at the peak); stdio holds one line of up to 16 MiB (docs/mcp.md),
/// which its buffer's growth by doubling makes up to 48 MiB for a moment (measured: 65 MiB).
fn rss_bound_mib(surface: Surface) -> u64 {
    match surface {
        Surface::Rest | Surface::McpHttp => 64,
        Surface::McpStdio => 96,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Surface {
    Rest,
    McpHttp,
    McpStdio,
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rest => "REST",
            Self::McpHttp => "MCP HTTP",
            Self::McpStdio => "MCP stdio",
        })
    }
}

/// The documented answer.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// REST: this status with an `application/problem+json` body of type `/problems/{type}`.
    Problem(u16, &'static str),
    /// REST: a batch answered `200` with nothing accepted and its items rejected.
    NoneAccepted,
    /// Served as it would be without the hostile part: this status (REST: no CORS header).
    Served(u16),
    /// REST: an endless `200 text/event-stream`, held open while the client does not read.
    Stream,
    /// MCP HTTP: this status with a plain-text body (the checks before the body is parsed).
    Plain(u16),
    /// A JSON-RPC error of this code (over HTTP: `400` with it as the body), with the request's
    /// id or `null`.
    RpcError(i64),
    /// A JSON-RPC error of this code to each of this many lines, `id: null`.
    RpcErrors(usize, i64),
    /// A tool result with `isError: true`.
    ToolError,
    /// A result that is no error (a tool result with `isError: false`, or another method's).
    Answer,
    /// `initialize` answered with this `protocolVersion`.
    Version(&'static str),
    /// The connection closed without an answer.
    Closed,
    /// Nothing written back.
    Silence,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Problem(status, kind) => write!(f, "{status} {kind}"),
            Self::NoneAccepted => f.write_str("200, nothing accepted"),
            Self::Served(status) => write!(f, "{status} as usual, no CORS header"),
            Self::Stream => f.write_str("200 event-stream, held"),
            Self::Plain(status) => write!(f, "{status}"),
            Self::RpcError(code) => write!(f, "JSON-RPC {code}"),
            Self::RpcErrors(n, code) => write!(f, "{n} × JSON-RPC {code}"),
            Self::ToolError => f.write_str("tool error"),
            Self::Answer => f.write_str("result"),
            Self::Version(version) => write!(f, "protocolVersion {version}"),
            Self::Closed => f.write_str("closed, no answer"),
            Self::Silence => f.write_str("no reply"),
        }
    }
}

/// What a case sends.
enum Input {
    /// A whole HTTP request; the answer is read.
    Http(Vec<u8>),
    /// An HTTP request, then the client's write side closed: the body breaks off.
    HttpThenEof(Vec<u8>),
    /// The start of an HTTP request on `HELD` connections, then nothing: the server must end
    /// each on its own.
    Stall(Vec<u8>),
    /// A stream request on `HELD` connections whose clients never read past the head.
    Stream(Vec<u8>),
    /// One stdio line (the newline is added).
    Line(Vec<u8>),
    /// One stdio line written in three pieces, 500 ms apart.
    LineInPieces(Vec<u8>),
    /// This many stdio requests written while the client does not read stdout for 2 s.
    Unread(usize),
}

struct Case {
    surface: Surface,
    name: &'static str,
    input: Input,
    expect: Expect,
    /// The JSON-RPC id of a stdio case's request, if it has one.
    id: Option<u64>,
}

/// What one case got, for the report.
struct Outcome {
    surface: Surface,
    name: &'static str,
    expect: String,
    got: Result<String, String>,
}

/// A whole run of one surface.
#[derive(Default)]
struct Run {
    outcomes: Vec<Outcome>,
    /// Invariants broken after (or during) the table.
    broken: Vec<String>,
    figures: Vec<String>,
}

impl Run {
    fn record(&mut self, case: &Case, got: Result<String, String>) {
        self.outcomes.push(Outcome {
            surface: case.surface,
            name: case.name,
            expect: case.expect.to_string(),
            got,
        });
    }

    fn check(&mut self, surface: Surface, ok: bool, what: String) {
        if !ok {
            self.broken.push(format!("{surface}: {what}"));
        }
    }
}

// The table ------------------------------------------------------------------------------------

/// A reading as text, `speed` and `extra` members spliced in; valid as it stands.
fn event(speed: &str, extra: &str) -> String {
    format!(
        r#"{{"sensor_id":"matrix","observed_at":"2026-03-02T07:00:00Z","interval_s":60,"lane":1,"vehicle_count":10,"avg_speed_kmh":{speed},"occupancy_pct":6.0{extra}}}"#
    )
}

/// A `tools/call` of `classify` with `event` (as text) as its reading.
fn classify_call(id: u64, event: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"classify","arguments":{{"event":{event}}}}}}}"#
    )
}

fn initialize(id: u64, version: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"matrix","version":"0"}}}}}}"#
    )
}

fn tools_list(id: u64) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#)
}

fn ping(id: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":"{id}","method":"ping"}}"#)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip stream inflating to `mib` MiB of spaces: one member of 64 KiB, compressed once (the
/// test's compressor is not optimised), repeated.
fn bomb(mib: usize) -> Vec<u8> {
    gzip(&[b' '; 64 * 1024]).repeat(16 * mib)
}

fn nested(depth: usize, closed: bool) -> String {
    let mut text = "[".repeat(depth);
    if closed {
        text.push_str(&"]".repeat(depth));
    }
    text
}

/// How a request's body is framed.
enum Body<'a> {
    /// With its own `Content-Length`.
    Sized(&'a [u8]),
    /// With this `Content-Length`, whatever the bytes.
    Declared(u64, &'a [u8]),
    /// As one chunk of a chunked body.
    Chunked(&'a [u8]),
    /// As it is: the framing, if any, is in the headers given.
    Raw(&'a [u8]),
}

/// `line` (method and path) with the `defaults` headers, each replaced by the `overrides`
/// header of its name (an empty value leaves it out), and `body`.
fn request(
    line: &str,
    defaults: &[(&str, &str)],
    overrides: &[(&str, &str)],
    body: Body,
) -> Vec<u8> {
    let mut headers: Vec<(&str, &str)> = defaults.to_vec();
    for (name, value) in overrides {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            headers.push((name, value));
        }
    }
    let mut bytes = format!("{line} HTTP/1.1\r\n").into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    match body {
        Body::Sized(body) => {
            bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            bytes.extend_from_slice(body);
        }
        Body::Declared(length, body) => {
            bytes.extend_from_slice(format!("Content-Length: {length}\r\n\r\n").as_bytes());
            bytes.extend_from_slice(body);
        }
        Body::Chunked(body) => {
            bytes.extend_from_slice(
                format!("Transfer-Encoding: chunked\r\n\r\n{:x}\r\n", body.len()).as_bytes(),
            );
            bytes.extend_from_slice(body);
            bytes.extend_from_slice(b"\r\n0\r\n\r\n");
        }
        Body::Raw(body) => {
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(body);
        }
    }
    bytes
}

fn rest(line: &str, overrides: &[(&str, &str)], body: Body) -> Vec<u8> {
    let bearer = format!("Bearer {KEY}");
    let defaults = [
        ("Host", "x"),
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
        ("Connection", "close"),
    ];
    request(line, &defaults, overrides, body)
}

fn mcp(overrides: &[(&str, &str)], body: Body) -> Vec<u8> {
    let bearer = format!("Bearer {TOKEN}");
    let defaults = [
        ("Host", "127.0.0.1"),
        ("Authorization", bearer.as_str()),
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Connection", "close"),
    ];
    request("POST /mcp", &defaults, overrides, body)
}

struct Table {
    cases: Vec<Case>,
    next_id: u64,
}

impl Table {
    fn add(&mut self, surface: Surface, name: &'static str, input: Input, expect: Expect) {
        self.cases.push(Case {
            surface,
            name,
            input,
            expect,
            id: None,
        });
    }

    fn rest(&mut self, name: &'static str, input: Input, expect: Expect) {
        self.add(Surface::Rest, name, input, expect);
    }

    fn http(&mut self, name: &'static str, input: Input, expect: Expect) {
        self.add(Surface::McpHttp, name, input, expect);
    }

    /// A stdio line built for its own request id.
    fn stdio(&mut self, name: &'static str, line: impl FnOnce(u64) -> String, expect: Expect) {
        self.next_id += 1;
        let id = self.next_id;
        self.cases.push(Case {
            surface: Surface::McpStdio,
            name,
            input: Input::Line(line(id).into_bytes()),
            expect,
            id: Some(id),
        });
    }

    fn stdio_bytes(&mut self, name: &'static str, input: Input, expect: Expect) {
        self.add(Surface::McpStdio, name, input, expect);
    }
}

/// The matrix: every hostile input, on every surface it applies to, with its documented answer.
fn matrix() -> Vec<Case> {
    use Body::{Chunked, Declared, Raw, Sized};
    use Expect::*;
    let mut t = Table {
        cases: Vec::new(),
        next_id: 100,
    };
    let post = "POST /v1/events";
    let batch = "POST /v1/events/batch";
    let deep_open = nested(100_000, false);
    let deep_closed = nested(100_000, true);
    let deep_member = format!(r#"{{"sensor_id":{deep_closed}}}"#);
    let nan = event("NaN", "");
    let huge_double = event("1e309", "");
    let huge_integer = event("70", "").replace(
        r#""vehicle_count":10"#,
        r#""vehicle_count":184467440737095516160"#,
    );
    let out_of_range = event("70", "").replace(r#""occupancy_pct":6.0"#, r#""occupancy_pct":250"#);
    let repeated = event("70", r#","vehicle_count":50"#);
    let unknown = event("70", r#","colour":"red""#);
    let not_utf8 = event("70", "").into_bytes();
    let not_utf8 = [&not_utf8[..16], b"\xff\xfe", &not_utf8[16..]].concat();
    let utf16: Vec<u8> = event("70", "")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let gzipped_event = gzip(event("70", "").as_bytes());
    let small_bomb = bomb(64); // inflating to 64 MiB; under the body limits as sent
    let big_bomb = bomb(1024); // inflating to 1 GiB
    let oversized = format!(r#"{{"sensor_id":"{}"}}"#, "x".repeat(300 * 1024));
    let too_many = format!("[{}{{}}]", "{},".repeat(10_000));
    let long_header = "h".repeat(200 * 1024);
    let longer_header = "h".repeat(500 * 1024);
    let many_headers: Vec<(String, String)> =
        (0..120).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let many_headers: Vec<(&str, &str)> = many_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let long_token = format!("Bearer {}", "t".repeat(20 * 1024));
    let wrong_bearer = format!("Bearer {KEY}x");

    // REST ------------------------------------------------------------------------------------
    let r = |overrides: &[(&str, &str)], body: Body| Input::Http(rest(post, overrides, body));
    t.rest(
        "truncated JSON",
        r(&[], Sized(br#"{"sensor_id": "#)),
        Problem(400, "malformed-json"),
    );
    t.rest(
        "body cut off by the client",
        Input::HttpThenEof(rest(post, &[], Declared(200, br#"{"sensor_id":"#))),
        Problem(400, "malformed-body"),
    );
    t.rest(
        "corrupt chunked framing",
        r(
            &[("Transfer-Encoding", "chunked")],
            Raw(b"ZZ\r\n{}\r\n0\r\n\r\n"),
        ),
        Problem(400, "malformed-body"),
    );
    t.rest(
        "invalid UTF-8",
        r(&[], Sized(&not_utf8)),
        Problem(400, "malformed-json"),
    );
    t.rest(
        "UTF-16 body, charset=utf-16",
        r(
            &[("Content-Type", "application/json; charset=utf-16")],
            Sized(&utf16),
        ),
        Problem(400, "malformed-json"),
    );
    t.rest(
        "100 000 [ unclosed",
        r(&[], Sized(deep_open.as_bytes())),
        Problem(400, "malformed-json"),
    );
    t.rest(
        "100 000 [ closed, as a member",
        r(&[], Sized(deep_member.as_bytes())),
        Problem(400, "malformed-json"),
    );
    t.rest(
        "100 000 [ unclosed, as a batch",
        Input::Http(rest(batch, &[], Sized(deep_open.as_bytes()))),
        Problem(400, "malformed-json"),
    );
    t.rest(
        "100 000 [ closed, as a batch item",
        Input::Http(rest(
            batch,
            &[],
            Sized(format!("[{deep_closed}]").as_bytes()),
        )),
        NoneAccepted,
    );
    t.rest(
        "100 000 [ as an NDJSON line",
        Input::Http(rest(
            batch,
            &[("Content-Type", "application/x-ndjson")],
            Sized(format!("{deep_open}\n").as_bytes()),
        )),
        NoneAccepted,
    );
    t.rest(
        "NaN",
        r(&[], Sized(nan.as_bytes())),
        Problem(400, "malformed-json"),
    );
    t.rest(
        "1e309",
        r(&[], Sized(huge_double.as_bytes())),
        Problem(400, "malformed-json"),
    );
    t.rest(
        "integer past u64",
        r(&[], Sized(huge_integer.as_bytes())),
        Problem(422, "invalid-reading"),
    );
    t.rest(
        "occupancy 250 %",
        r(&[], Sized(out_of_range.as_bytes())),
        Problem(422, "invalid-reading"),
    );
    t.rest(
        "member given twice",
        r(&[], Sized(repeated.as_bytes())),
        Problem(422, "invalid-reading"),
    );
    t.rest(
        "unknown member",
        r(&[], Sized(unknown.as_bytes())),
        Problem(422, "invalid-reading"),
    );
    t.rest(
        "an array, not a reading",
        r(&[], Sized(b"[]")),
        Problem(422, "invalid-reading"),
    );
    t.rest(
        "Content-Type text/plain",
        r(&[("Content-Type", "text/plain")], Sized(b"{}")),
        Problem(415, "unsupported-media-type"),
    );
    t.rest(
        "no Content-Type",
        r(&[("Content-Type", "")], Sized(b"{}")),
        Problem(415, "unsupported-media-type"),
    );
    t.rest(
        "Content-Type application/xml",
        r(&[("Content-Type", "application/xml")], Sized(b"<reading/>")),
        Problem(415, "unsupported-media-type"),
    );
    t.rest(
        "Content-Encoding br",
        r(&[("Content-Encoding", "br")], Sized(&gzipped_event)),
        Problem(415, "unsupported-media-type"),
    );
    t.rest(
        "Content-Encoding deflate",
        r(&[("Content-Encoding", "deflate")], Sized(&gzipped_event)),
        Problem(415, "unsupported-media-type"),
    );
    t.rest(
        "Content-Encoding gzip, gzip",
        r(&[("Content-Encoding", "gzip, gzip")], Sized(&gzipped_event)),
        Problem(415, "unsupported-media-type"),
    );
    t.rest(
        "gzip that is not gzip",
        r(&[("Content-Encoding", "gzip")], Sized(b"plain text")),
        Problem(400, "malformed-body"),
    );
    t.rest(
        "gzip bomb, 64 MiB inflated",
        r(&[("Content-Encoding", "gzip")], Sized(&small_bomb)),
        Problem(413, "body-too-large"),
    );
    t.rest(
        "gzip bomb, 1 GiB inflated, chunked",
        r(&[("Content-Encoding", "gzip")], Chunked(&big_bomb)),
        Problem(413, "body-too-large"),
    );
    t.rest(
        "gzip bomb, 1 GiB inflated, chunked, as a batch",
        Input::Http(rest(
            batch,
            &[("Content-Encoding", "gzip")],
            Chunked(&big_bomb),
        )),
        Problem(413, "body-too-large"),
    );
    t.rest(
        "300 KiB body",
        r(&[], Sized(oversized.as_bytes())),
        Problem(413, "body-too-large"),
    );
    t.rest(
        "300 KiB body, chunked",
        r(&[], Chunked(oversized.as_bytes())),
        Problem(413, "body-too-large"),
    );
    t.rest(
        "10 001 readings in a batch",
        Input::Http(rest(batch, &[], Sized(too_many.as_bytes()))),
        Problem(413, "too-many-readings"),
    );
    t.rest(
        "1 GiB declared, 3 bytes sent",
        r(&[], Declared(1 << 30, br#"{"s"#)),
        Problem(413, "body-too-large"),
    );
    t.rest(
        "Content-Length not a number",
        Input::Http(rest(
            post,
            &[("Content-Length", "99999999999999999999999")],
            Raw(b""),
        )),
        Problem(400, "malformed-request"),
    );
    t.rest(
        "garbage request line",
        Input::Http(b"GARBAGE\r\n\r\n".to_vec()),
        Problem(400, "malformed-request"),
    );
    t.rest(
        "200 KiB header",
        r(&[("X-Padding", &long_header)], Sized(b"{}")),
        Problem(431, "headers-too-large"),
    );
    t.rest(
        "120 headers",
        r(&many_headers, Sized(b"{}")),
        Problem(431, "headers-too-large"),
    );
    t.rest(
        "stalled head",
        Input::Stall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n".to_vec()),
        Problem(408, "request-timeout"),
    );
    t.rest(
        "stalled body (1000 declared, 1 sent)",
        Input::Stall(rest(post, &[], Declared(1000, b"{"))),
        Problem(408, "body-timeout"),
    );
    t.rest(
        "stalled chunk",
        Input::Stall(rest(
            batch,
            &[("Transfer-Encoding", "chunked")],
            Raw(b"400\r\n[{"),
        )),
        Problem(408, "body-timeout"),
    );
    t.rest(
        "SSE client that never reads",
        Input::Stream(request(
            "GET /v1/stream",
            &[("Host", "x"), ("Accept", "text/event-stream")],
            &[],
            Raw(b""),
        )),
        Stream,
    );
    t.rest(
        "foreign Origin",
        r(&[("Origin", "http://evil.example")], Sized(b"{}")),
        Problem(422, "invalid-reading"),
    );
    t.rest(
        "foreign Host and Origin on a read",
        Input::Http(request(
            "GET /v1/events",
            &[
                ("Host", "evil.example"),
                ("Origin", "http://evil.example"),
                ("Connection", "close"),
            ],
            &[],
            Raw(b""),
        )),
        Served(200),
    );
    t.rest(
        "CORS preflight",
        Input::Http(request(
            "OPTIONS /v1/events",
            &[
                ("Host", "x"),
                ("Origin", "http://evil.example"),
                ("Access-Control-Request-Method", "POST"),
                ("Connection", "close"),
            ],
            &[],
            Raw(b""),
        )),
        Problem(405, "method-not-allowed"),
    );
    t.rest(
        "no API key",
        r(&[("Authorization", "")], Sized(b"{}")),
        Problem(401, "unauthorized"),
    );
    t.rest(
        "wrong API key",
        r(&[("Authorization", &wrong_bearer)], Sized(b"{}")),
        Problem(401, "unauthorized"),
    );
    t.rest(
        "wrong X-API-Key",
        r(
            &[("Authorization", ""), ("X-API-Key", "nope")],
            Sized(b"{}"),
        ),
        Problem(401, "unauthorized"),
    );
    t.rest(
        "20 KiB API key",
        r(&[("Authorization", &long_token)], Sized(b"{}")),
        Problem(401, "unauthorized"),
    );
    t.rest(
        "Basic credentials",
        r(&[("Authorization", "Basic bWF0cml4OmtleQ==")], Sized(b"{}")),
        Problem(401, "unauthorized"),
    );
    t.rest(
        "wrong API key, hostile body",
        r(
            &[("Authorization", "Bearer nope")],
            Sized(deep_open.as_bytes()),
        ),
        Problem(401, "unauthorized"),
    );

    // MCP over HTTP ---------------------------------------------------------------------------
    let m = |overrides: &[(&str, &str)], body: Body| Input::Http(mcp(overrides, body));
    let call = |event: &str| classify_call(5, event);
    t.http(
        "truncated JSON",
        m(&[], Sized(br#"{"jsonrpc":"2.0","id":1,"method":"tools/li"#)),
        RpcError(-32700),
    );
    t.http(
        "body cut off by the client",
        Input::HttpThenEof(mcp(&[], Declared(200, br#"{"jsonrpc":"2.0","#))),
        Plain(400),
    );
    t.http(
        "corrupt chunked framing",
        m(
            &[("Transfer-Encoding", "chunked")],
            Raw(b"ZZ\r\n{}\r\n0\r\n\r\n"),
        ),
        Plain(400),
    );
    t.http(
        "invalid UTF-8 bytes",
        m(
            &[],
            Sized(br#"{"jsonrpc":"2.0","id":1,"method":"p\xffng"}"#),
        ),
        RpcError(-32700),
    );
    t.http(
        "UTF-16 body, charset=utf-16",
        m(
            &[("Content-Type", "application/json; charset=utf-16")],
            Sized(&utf16),
        ),
        RpcError(-32700),
    );
    t.http(
        "100 000 [ unclosed",
        m(&[], Sized(deep_open.as_bytes())),
        RpcError(-32700),
    );
    t.http(
        "100 000 [ closed, as the reading",
        m(&[], Sized(call(&deep_closed).as_bytes())),
        RpcError(-32602),
    );
    t.http(
        "NaN",
        m(&[], Sized(call(&nan).as_bytes())),
        RpcError(-32700),
    );
    t.http(
        "1e309",
        m(&[], Sized(call(&huge_double).as_bytes())),
        RpcError(-32602),
    );
    t.http(
        "integer past u64",
        m(&[], Sized(call(&huge_integer).as_bytes())),
        ToolError,
    );
    t.http(
        "occupancy 250 %",
        m(&[], Sized(call(&out_of_range).as_bytes())),
        ToolError,
    );
    // docs/mcp.md: a repeated member is not detected over MCP; the last copy counts.
    t.http(
        "member given twice",
        m(&[], Sized(call(&repeated).as_bytes())),
        Answer,
    );
    t.http(
        "id given twice",
        m(
            &[],
            Sized(br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}"#),
        ),
        RpcError(-32602),
    );
    t.http(
        "unknown member",
        m(&[], Sized(call(&unknown).as_bytes())),
        ToolError,
    );
    t.http(
        "a batch",
        m(&[], Sized(format!("[{}]", tools_list(1)).as_bytes())),
        RpcError(-32600),
    );
    t.http(
        "Content-Type text/plain",
        m(
            &[("Content-Type", "text/plain")],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(415),
    );
    t.http(
        "no Content-Type",
        m(&[("Content-Type", "")], Sized(tools_list(1).as_bytes())),
        Plain(415),
    );
    t.http(
        "Content-Encoding gzip",
        m(
            &[("Content-Encoding", "gzip")],
            Sized(&gzip(tools_list(1).as_bytes())),
        ),
        RpcError(-32700),
    );
    t.http(
        "gzip bomb, 64 MiB inflated",
        m(&[("Content-Encoding", "gzip")], Sized(&small_bomb)),
        RpcError(-32700),
    );
    t.http(
        "gzip bomb, 1 GiB inflated, chunked",
        m(&[("Content-Encoding", "gzip")], Chunked(&big_bomb)),
        Plain(413),
    );
    t.http(
        "Accept without text/event-stream",
        m(
            &[("Accept", "application/json")],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(406),
    );
    t.http(
        "300 KiB body",
        m(&[], Sized(oversized.as_bytes())),
        Plain(413),
    );
    t.http(
        "300 KiB body, chunked",
        m(&[], Chunked(oversized.as_bytes())),
        Plain(413),
    );
    t.http(
        "1 GiB declared, 3 bytes sent",
        m(&[], Declared(1 << 30, br#"{"j"#)),
        Plain(413),
    );
    t.http(
        "500 KiB header",
        m(
            &[("X-Padding", &longer_header)],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(431),
    );
    t.http(
        "120 headers",
        m(&many_headers, Sized(tools_list(1).as_bytes())),
        Plain(431),
    );
    t.http(
        "stalled head",
        Input::Stall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec()),
        Closed,
    );
    t.http(
        "stalled body (1000 declared, 1 sent)",
        Input::Stall(mcp(&[], Declared(1000, b"{"))),
        Plain(408),
    );
    t.http(
        "foreign Origin",
        m(
            &[("Origin", "http://evil.example")],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(403),
    );
    t.http(
        "Origin null",
        m(&[("Origin", "null")], Sized(tools_list(1).as_bytes())),
        Plain(403),
    );
    t.http(
        "foreign Host",
        m(&[("Host", "evil.example")], Sized(tools_list(1).as_bytes())),
        Plain(403),
    );
    t.http(
        "foreign Host, loopback port",
        m(
            &[("Host", "evil.example:8001")],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(403),
    );
    t.http(
        "no token",
        m(&[("Authorization", "")], Sized(tools_list(1).as_bytes())),
        Plain(401),
    );
    t.http(
        "wrong token",
        m(
            &[("Authorization", &format!("Bearer {TOKEN}x"))],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(401),
    );
    t.http(
        "Basic credentials",
        m(
            &[("Authorization", "Basic bWF0cml4OnRva2Vu")],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(401),
    );
    t.http(
        "20 KiB token",
        m(
            &[("Authorization", &long_token)],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(401),
    );
    t.http(
        "wrong token, hostile body",
        m(
            &[("Authorization", "Bearer nope")],
            Sized(deep_open.as_bytes()),
        ),
        Plain(401),
    );
    t.http(
        "MCP-Protocol-Version 1999-01-01",
        m(
            &[("MCP-Protocol-Version", "1999-01-01")],
            Sized(tools_list(1).as_bytes()),
        ),
        Plain(400),
    );
    t.http(
        "initialize with version 1999-01-01",
        m(
            &[("MCP-Protocol-Version", "")],
            Sized(initialize(1, "1999-01-01").as_bytes()),
        ),
        Version(SERVER_VERSION),
    );
    t.http(
        "GET event stream",
        Input::Http(request(
            "GET /mcp",
            &[
                ("Host", "127.0.0.1"),
                ("Authorization", &format!("Bearer {TOKEN}")),
                ("Accept", "text/event-stream"),
                ("Connection", "close"),
            ],
            &[],
            Raw(b""),
        )),
        Plain(405),
    );

    // MCP over stdio --------------------------------------------------------------------------
    t.stdio(
        "notification before initialize",
        |_| r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(),
        Silence,
    );
    t.stdio(
        "response before initialize",
        |_| r#"{"jsonrpc":"2.0","id":"nobody-asked","result":{}}"#.into(),
        Silence,
    );
    t.stdio(
        "initialize with version 1999-01-01",
        |id| initialize(id, "1999-01-01"),
        Version(SERVER_VERSION),
    );
    t.stdio(
        "initialized",
        |_| r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(),
        Silence,
    );
    t.stdio(
        "truncated JSON",
        |id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/li"#),
        RpcError(-32700),
    );
    t.stdio_bytes(
        "invalid UTF-8",
        Input::Line(br#"{"jsonrpc":"2.0","id":1,"method":"p\xffng"}"#.to_vec()),
        RpcError(-32700),
    );
    t.stdio_bytes(
        "UTF-16 line",
        Input::Line(
            tools_list(1)
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
        ),
        RpcError(-32700),
    );
    t.stdio_bytes(
        "100 000 [ unclosed",
        Input::Line(deep_open.clone().into_bytes()),
        RpcError(-32700),
    );
    t.stdio(
        "100 000 [ closed, as the reading",
        |id| classify_call(id, &deep_closed),
        RpcError(-32602),
    );
    t.stdio("NaN", |id| classify_call(id, &nan), RpcError(-32700));
    t.stdio(
        "1e309",
        |id| classify_call(id, &huge_double),
        RpcError(-32602),
    );
    t.stdio(
        "integer past u64",
        |id| classify_call(id, &huge_integer),
        ToolError,
    );
    t.stdio(
        "occupancy 250 %",
        |id| classify_call(id, &out_of_range),
        ToolError,
    );
    // docs/mcp.md: a repeated member is not detected over MCP; the last copy counts.
    t.stdio(
        "member given twice",
        |id| classify_call(id, &repeated),
        Answer,
    );
    t.stdio(
        "id given twice",
        |id| format!(r#"{{"jsonrpc":"2.0","id":{id},"id":{id},"method":"tools/list"}}"#),
        RpcError(-32602),
    );
    t.stdio(
        "unknown member",
        |id| classify_call(id, &unknown),
        ToolError,
    );
    t.stdio(
        "unknown tool",
        |id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"nope","arguments":{{}}}}}}"#),
        RpcError(-32602),
    );
    t.stdio(
        "unknown method",
        |id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"nope"}}"#),
        RpcError(-32601),
    );
    t.stdio(
        "a batch",
        |id| format!("[{}]", tools_list(id)),
        RpcError(-32600),
    );
    t.stdio_bytes("a number", Input::Line(b"42".to_vec()), RpcError(-32600));
    t.stdio(
        "request _meta naming version 1999-01-01",
        |id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"1999-01-01"}}}}}}"#),
        RpcError(-32022),
    );
    t.stdio(
        "notification with bad params",
        |_| r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":5}"#.into(),
        Silence,
    );
    t.stdio_bytes("blank line", Input::Line(Vec::new()), Silence);
    let bomb_lines = answered_lines(&small_bomb);
    t.stdio_bytes(
        "gzip bomb bytes, 64 MiB inflated",
        Input::Line(small_bomb.clone()),
        RpcErrors(bomb_lines, -32700),
    );
    t.stdio(
        "line over 16 MiB",
        |id| {
            let mut line =
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"pad":""#);
            line.push_str(&"x".repeat(16 * 1024 * 1024 + 10));
            line.push_str(r#""}}"#);
            line
        },
        RpcError(-32600),
    );
    t.next_id += 1;
    t.cases.push(Case {
        surface: Surface::McpStdio,
        name: "line stalled twice on its way",
        input: Input::LineInPieces(tools_list(t.next_id).into_bytes()),
        expect: Answer,
        id: Some(t.next_id),
    });
    t.stdio_bytes(
        "client that does not read 300 answers",
        Input::Unread(300),
        Answer,
    );
    t.cases
}

/// How many lines of `bytes` (split at `\n`, as the stdio transport does) are answered: those
/// not empty once a `\r` at the end and a byte-order mark at the start are taken off.
fn answered_lines(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .map(|line| line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .count()
}

// HTTP on raw sockets --------------------------------------------------------------------------

/// What came back on one connection.
#[derive(Debug, Default)]
struct Reply {
    /// 0 when no status line came.
    status: u16,
    head: String,
    body: Vec<u8>,
    /// The server closed the connection (rather than the wait running out).
    closed: bool,
    /// Time to the end of the answer.
    took: Duration,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn describe(&self) -> String {
        if self.status == 0 {
            return if self.closed {
                "closed, no answer".into()
            } else {
                format!("no answer within {:?}", self.took)
            };
        }
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(160).collect();
        format!("{} {body}", self.status)
    }
}

/// A response's body once its head has been read: complete when its `Content-Length` is there,
/// or its last chunk; `None` while more is to come.
fn complete_body(head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let lower = head.to_ascii_lowercase();
    let length = lower.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    if let Some(length) = length {
        return (body.len() >= length).then(|| body[..length].to_vec());
    }
    if lower.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..end]).ok()?.trim(), 16).ok()?;
            rest = &rest[end + 2..];
            if size == 0 {
                return Some(out);
            }
            if rest.len() < size + 2 {
                return None;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    }
    None
}

/// Sends `bytes` on a new connection to `addr` (closing the write side after them if
/// `then_eof`) while reading the answer, until it is complete, the server closes, or `within`
/// runs out. The write side stays open otherwise: a stalled client is still there.
async fn talk(addr: &str, bytes: Vec<u8>, then_eof: bool, within: Duration) -> Reply {
    let started = Instant::now();
    let stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => {
            return Reply {
                head: format!("connect: {e}"),
                ..Reply::default()
            };
        }
    };
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        // A refused request may be cut off by the server: a failed write is part of the case.
        let _ = writer.write_all(&bytes).await;
        if then_eof {
            let _ = writer.shutdown().await;
        }
        writer
    });
    let deadline = tokio::time::Instant::now() + within;
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut reply = Reply::default();
    loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0) | Err(_)) => {
                reply.closed = true;
                break;
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..at]).into_owned();
            if let Some(body) = complete_body(&head, &received[at + 4..]) {
                reply.body = body;
                reply.head = head;
                break;
            }
        }
    }
    if reply.head.is_empty() {
        let text = String::from_utf8_lossy(&received).into_owned();
        match text.split_once("\r\n\r\n") {
            Some((head, body)) => {
                reply.head = head.to_owned();
                reply.body = body.as_bytes().to_vec();
            }
            None => reply.head = text,
        }
    }
    reply.status = status_of(&reply.head);
    reply.took = started.elapsed();
    writing.abort();
    reply
}

/// Opens a stream: sends `bytes` and reads only until the head and the first event have come.
/// The client then never reads again, holding the connection.
async fn open_stream(addr: &str, bytes: &[u8]) -> (Option<TcpStream>, Reply) {
    let mut reply = Reply::default();
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return (None, reply);
    };
    if stream.write_all(bytes).await.is_err() {
        return (None, reply);
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&received).contains("retry:") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
            Ok(_) => {
                reply.closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&received);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    reply.head = head.to_owned();
    reply.body = body.as_bytes().to_vec();
    reply.status = status_of(head);
    (Some(stream), reply)
}

/// Whether `reply` is the answer `expect` documents on an HTTP surface.
fn judge_http(surface: Surface, expect: &Expect, reply: &Reply) -> Result<String, String> {
    let got = reply.describe();
    let json = reply.json();
    let cors = reply.header("access-control-allow-origin");
    let ok = match expect {
        Expect::Problem(status, kind) => {
            reply.status == *status
                && reply
                    .header("content-type")
                    .is_some_and(|v| v.starts_with("application/problem+json"))
                && json
                    .as_ref()
                    .is_some_and(|p| p["type"] == format!("/problems/{kind}"))
                && cors.is_none()
        }
        Expect::NoneAccepted => {
            reply.status == 200
                && json.as_ref().is_some_and(|b| {
                    b["accepted"] == 0 && b["rejected"].as_array().is_some_and(|r| !r.is_empty())
                })
        }
        Expect::Served(status) => reply.status == *status && cors.is_none(),
        Expect::Stream => {
            reply.status == 200
                && reply
                    .header("content-type")
                    .is_some_and(|v| v.starts_with("text/event-stream"))
                && !reply.closed
        }
        Expect::Plain(status) => {
            reply.status == *status && json.as_ref().is_none_or(|j| j.get("jsonrpc").is_none())
        }
        Expect::RpcError(code) => {
            reply.status == 400
                && reply.header("content-type") == Some("application/json")
                && json
                    .as_ref()
                    .is_some_and(|j| j["error"]["code"] == *code && j.get("id").is_some())
        }
        Expect::ToolError => {
            reply.status == 200
                && json
                    .as_ref()
                    .is_some_and(|j| j["result"]["isError"] == true)
        }
        Expect::Answer => {
            reply.status == 200
                && json
                    .as_ref()
                    .is_some_and(|j| j.get("result").is_some() && j["result"]["isError"] != true)
        }
        Expect::Version(version) => {
            reply.status == 200
                && json
                    .as_ref()
                    .is_some_and(|j| j["result"]["protocolVersion"] == *version)
        }
        Expect::Closed => reply.status == 0 && reply.closed,
        Expect::RpcErrors(..) | Expect::Silence => {
            unreachable!("{surface}: a stdio expectation")
        }
    };
    if ok { Ok(got) } else { Err(got) }
}

/// Samples a process's resident memory until stopped; the highest value seen.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: std::thread::JoinHandle<()>,
}

impl RssPeak {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let task = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                        && status.contains("VmRSS")
                    {
                        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self { stop, peak, task }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

/// A process's open descriptors of any kind.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Waits up to `limit` for `check` to hold; whether it did.
async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs an HTTP surface's cases against the server at `addr` (process `pid`): the stalled ones
/// and the streams held in the background first, `served` checked while they hang, then the
/// others one after the other; then the stalled ones' answers and the descriptors.
async fn run_http_surface<F, Fut>(
    surface: Surface,
    addr: &str,
    pid: u32,
    cases: &[Case],
    served: F,
    run: &mut Run,
) -> (u64, u64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Duration, String>>,
{
    // The baseline once the warm-up's connections are gone (a server keeps a closing one up to
    // a second, for the client to read its answer).
    let mut sockets_before = open_sockets(pid);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = open_sockets(pid);
        if now == sockets_before {
            break;
        }
        sockets_before = now;
    }
    let rss_before = rss_kib(pid);
    let peak = RssPeak::start(pid);

    let mut stalled = Vec::new();
    let mut streams = Vec::new();
    let opened = Instant::now();
    // The streams first (they are held until dropped), then the stalled requests, which the
    // server ends after its timeouts.
    for (index, case) in cases.iter().enumerate() {
        if let Input::Stream(bytes) = &case.input {
            for _ in 0..HELD {
                streams.push((index, open_stream(addr, bytes).await));
            }
        }
    }
    for (index, case) in cases.iter().enumerate() {
        if let Input::Stall(bytes) = &case.input {
            for _ in 0..HELD {
                let (addr, bytes) = (addr.to_owned(), bytes.clone());
                stalled.push((
                    index,
                    tokio::spawn(async move { talk(&addr, bytes, false, ANSWER_WITHIN).await }),
                ));
            }
        }
    }
    let held = stalled.len() + streams.len();
    let all_held = within(Duration::from_secs(10), || {
        open_sockets(pid) >= sockets_before + held
    })
    .await;
    let sockets_held = open_sockets(pid);
    run.check(
        surface,
        all_held,
        format!("{held} held connections: {sockets_held} sockets, {sockets_before} before"),
    );
    // Other clients are served while the stalled ones hang.
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        match served().await {
            Ok(took) => slowest = slowest.max(took),
            Err(e) => run.check(surface, false, format!("another client while stalled: {e}")),
        }
    }
    run.check(
        surface,
        slowest < SERVED_WITHIN,
        format!("another client was served in {slowest:?} while stalled ones hung"),
    );
    run.figures.push(format!(
        "{surface}: {held} stalled and streaming connections held ({sockets_before} sockets before, \
         {sockets_held} while held); other clients served in at most {} ms meanwhile",
        slowest.as_millis()
    ));

    for case in cases {
        let reply = match &case.input {
            Input::Http(bytes) => talk(addr, bytes.clone(), false, ANSWER_WITHIN).await,
            Input::HttpThenEof(bytes) => talk(addr, bytes.clone(), true, ANSWER_WITHIN).await,
            Input::Stall(_) | Input::Stream(_) => continue,
            Input::Line(_) | Input::LineInPieces(_) | Input::Unread(_) => {
                unreachable!("a stdio case on {surface}")
            }
        };
        run.record(case, judge_http(surface, &case.expect, &reply));
    }

    // Every stalled connection got the same answer; streams are still held.
    for (index, case) in cases.iter().enumerate() {
        let mut answers = Vec::new();
        for (_, task) in stalled.iter_mut().filter(|(i, _)| *i == index) {
            let reply = task.await.unwrap();
            answers.push(judge_http(surface, &case.expect, &reply));
        }
        for (_, (_, reply)) in streams.iter().filter(|(i, _)| *i == index) {
            answers.push(judge_http(surface, &case.expect, reply));
        }
        if answers.is_empty() {
            continue;
        }
        let wrong: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
        let got = match wrong.first() {
            None => Ok(format!(
                "{} × {}",
                answers.len(),
                answers[0].as_ref().unwrap()
            )),
            Some(first) => Err(format!("{} of {} got {first}", wrong.len(), answers.len())),
        };
        run.record(case, got);
    }
    let streams_held = open_sockets(pid);
    drop(streams);
    // A server learns that a stream's client has gone when it writes to it the second time
    // after: at the latest the second heartbeat, 30 s after the stream opened (docs/api.md).
    let dropped = Instant::now();
    let release_by = (opened + 2 * STREAM_HEARTBEAT + Duration::from_secs(5))
        .max(dropped + Duration::from_secs(5));
    let back = within(release_by - dropped, || {
        open_sockets(pid) <= sockets_before + FD_SLACK
    })
    .await;
    let released_in = dropped.elapsed();
    let sockets_after = open_sockets(pid);
    run.check(
        surface,
        back,
        format!("sockets back to {sockets_after}, {sockets_before} before"),
    );
    run.figures.push(format!(
        "{surface}: sockets {sockets_before} before, {streams_held} with only the streams left, \
         {sockets_after} {} ms after the stream clients closed",
        released_in.as_millis()
    ));
    let rss_peak = peak.finish();
    let rss_after = rss_kib(pid);
    (rss_before, rss_peak.max(rss_after))
}

fn check_rss(surface: Surface, run: &mut Run, before: u64, peak: u64, after: u64) {
    let bound = rss_bound_mib(surface);
    let grew_mib = after.saturating_sub(before) / 1024;
    let peak_mib = peak.saturating_sub(before) / 1024;
    run.check(
        surface,
        grew_mib < bound && peak_mib < bound,
        format!("resident memory grew by {grew_mib} MiB (peak +{peak_mib} MiB), bound {bound} MiB"),
    );
    run.figures.push(format!(
        "{surface}: VmRSS {before} KiB before, peak {peak} KiB, {after} KiB after (+{} KiB)",
        after.saturating_sub(before)
    ));
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(SERVED_WITHIN * 5)
        .build()
        .unwrap()
}

// The REST surface -----------------------------------------------------------------------------

async fn rest_surface(cases: Vec<Case>) -> Run {
    let started = Instant::now();
    let surface = Surface::Rest;
    let mut run = Run::default();
    let db = TestDatabase::sqlite();
    let body_limit = REST_BODY_LIMIT.to_string();
    let batch_limit = REST_BATCH_LIMIT.to_string();
    let timeout = BODY_TIMEOUT_S.to_string();
    let ingest = Ingest::storing_only(
        &db,
        &[
            ("INGEST_API_KEYS", KEY),
            ("INGEST_MAX_BODY_BYTES", &body_limit),
            ("INGEST_MAX_BATCH_BYTES", &batch_limit),
            ("INGEST_BODY_TIMEOUT_S", &timeout),
        ],
    )
    .await;
    let addr = ingest.url("").trim_start_matches("http://").to_owned();
    let pid = ingest.proc().pid();
    let client = http_client();
    // Warm up: a refused reading, a gzip one, a read.
    for bytes in [
        rest("POST /v1/events", &[], Body::Sized(b"{}")),
        rest(
            "POST /v1/events",
            &[("Content-Encoding", "gzip")],
            Body::Sized(&gzip(b"{}")),
        ),
        request(
            "GET /v1/events",
            &[("Host", "x"), ("Connection", "close")],
            &[],
            Body::Raw(b""),
        ),
    ] {
        talk(&addr, bytes, false, ANSWER_WITHIN).await;
    }
    let served = || {
        let client = client.clone();
        let (health, events) = (ingest.url("/v1/health"), ingest.url("/v1/events"));
        async move {
            let started = Instant::now();
            for url in [health, events] {
                let response = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                if response.status() != 200 {
                    return Err(format!("{url}: {}", response.status()));
                }
            }
            Ok(started.elapsed() / 2)
        }
    };
    let (before, peak) = run_http_surface(surface, &addr, pid, &cases, served, &mut run).await;
    check_rss(surface, &mut run, before, peak, rss_kib(pid));

    let stored = db.int("SELECT count(*) AS v FROM events").await;
    run.check(surface, stored == 0, format!("{stored} events stored"));
    run.check(surface, running(pid), "the process exited".into());
    run.figures
        .push(format!("{surface}: {:?} in all", started.elapsed()));
    run
}

// The MCP HTTP surface -------------------------------------------------------------------------

fn mcp_post(client: &reqwest::Client, url: &str, body: String) -> reqwest::RequestBuilder {
    client
        .post(url)
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body)
}

async fn mcp_http_surface(cases: Vec<Case>) -> Run {
    let started = Instant::now();
    let surface = Surface::McpHttp;
    let mut run = Run::default();
    let body_limit = MCP_BODY_LIMIT.to_string();
    let timeout = BODY_TIMEOUT_S.to_string();
    let classifier = Classifier::serve(
        free_port(),
        &[
            ("MCP_AUTH_TOKEN", TOKEN),
            ("MCP_MAX_BODY_BYTES", &body_limit),
            ("MCP_BODY_TIMEOUT_S", &timeout),
        ],
    );
    let url = classifier.mcp_url();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let pid = classifier.proc().pid();
    let client = http_client();
    for body in [
        tools_list(1),
        classify_call(2, &event("70", "")),
        "oops".into(),
    ] {
        let _ = mcp_post(&client, &url, body).send().await;
    }
    let served = || {
        let request = mcp_post(&client, &url, tools_list(9));
        async move {
            let started = Instant::now();
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body: Value = response.json().await.map_err(|e| e.to_string())?;
            if status != 200 || body["result"]["tools"].as_array().is_none() {
                return Err(format!("tools/list: {status} {body}"));
            }
            Ok(started.elapsed())
        }
    };
    let (before, peak) = run_http_surface(surface, &addr, pid, &cases, served, &mut run).await;
    check_rss(surface, &mut run, before, peak, rss_kib(pid));

    // Still serving: a valid call is classified.
    let answer = mcp_post(&client, &url, classify_call(3, &event("70", "")))
        .send()
        .await;
    let classified = match answer {
        Ok(response) => response.json::<Value>().await.ok(),
        Err(_) => None,
    };
    run.check(
        surface,
        classified
            .as_ref()
            .is_some_and(|c| c["result"]["structuredContent"]["label"].is_string()),
        format!("a valid classify afterwards: {classified:?}"),
    );
    run.check(surface, running(pid), "the process exited".into());
    run.figures
        .push(format!("{surface}: {:?} in all", started.elapsed()));
    run
}

/// Whether process `pid` (a child of this one) still runs: not gone, not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

// The MCP stdio surface ------------------------------------------------------------------------

/// `mcp-classifier stdio` driven through its pipes: lines written to stdin, stdout read line by
/// line on a thread that stops reading while `gate` is held.
struct StdioPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Vec<u8>>,
    gate: Arc<Mutex<()>>,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Variables the binary reads: none may leak in from the environment running the tests.
const CLEARED_PREFIXES: [&str; 4] = ["DATABASE_", "MCP_", "RUST_LOG", "LOG_FORMAT"];

impl StdioPeer {
    fn spawn(program: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mcp-classifier-stdio.log");
        let mut command = Command::new(program);
        command.arg("stdio").current_dir(dir.path());
        for (key, _) in std::env::vars_os() {
            if let Some(key) = key.to_str()
                && CLEARED_PREFIXES.iter().any(|p| key.starts_with(p))
            {
                command.env_remove(key);
            }
        }
        let mut child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let gate = Arc::new(Mutex::new(()));
        let (tx, lines) = mpsc::channel();
        {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                let mut pending = Vec::new();
                loop {
                    drop(gate.lock().unwrap());
                    let n = match stdout.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            gate,
            log,
            _dir: dir,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin is gone")?;
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("write to stdin: {e}"))
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), String> {
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        self.write(&bytes)
    }

    /// The next line on stdout as JSON, within `within`.
    fn next(&self, within: Duration) -> Result<Value, String> {
        let line = self
            .lines
            .recv_timeout(within)
            .map_err(|e| format!("no line on stdout within {within:?} ({e})"))?;
        serde_json::from_slice(&line).map_err(|e| {
            format!(
                "stdout line is not JSON ({e}): {}",
                String::from_utf8_lossy(&line)
            )
        })
    }

    /// Sends a ping with id `sentinel` and returns every reply that came before its answer.
    fn until_sentinel(&mut self, sentinel: &str) -> Result<Vec<Value>, String> {
        self.write_line(ping(sentinel).as_bytes())?;
        let mut replies = Vec::new();
        loop {
            let reply = self.next(ANSWER_WITHIN)?;
            if reply["id"] == sentinel {
                return Ok(replies);
            }
            replies.push(reply);
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for StdioPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn judge_stdio(expect: &Expect, id: Option<u64>, replies: &[Value]) -> Result<String, String> {
    let got = if replies.is_empty() {
        "no reply".to_owned()
    } else {
        replies
            .iter()
            .map(|r| {
                let text = r.to_string();
                text.chars().take(160).collect::<String>()
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let own_id = |r: &Value| id.is_some_and(|id| r["id"] == id);
    let ok = match (expect, replies) {
        (Expect::Silence, []) => true,
        (Expect::RpcError(code), [reply]) => {
            reply["error"]["code"] == *code && (reply["id"].is_null() || own_id(reply))
        }
        (Expect::RpcErrors(n, code), replies) => {
            replies.len() == *n
                && replies
                    .iter()
                    .all(|r| r["error"]["code"] == *code && r["id"].is_null())
        }
        (Expect::ToolError, [reply]) => own_id(reply) && reply["result"]["isError"] == true,
        (Expect::Answer, [reply]) => {
            own_id(reply) && reply.get("result").is_some() && reply["result"]["isError"] != true
        }
        (Expect::Version(version), [reply]) => {
            own_id(reply) && reply["result"]["protocolVersion"] == *version
        }
        _ => false,
    };
    if ok { Ok(got) } else { Err(got) }
}

/// One line case: the line, then a ping; the replies before the ping's answer are the case's,
/// plus, when its own request has not been answered by then, that answer (tool calls run
/// concurrently with the ping).
fn stdio_case(peer: &mut StdioPeer, case: &Case, index: usize) -> Result<String, String> {
    match &case.input {
        Input::Line(line) => peer.write_line(line)?,
        Input::LineInPieces(line) => {
            let third = line.len() / 3;
            for piece in [&line[..third], &line[third..2 * third]] {
                peer.write(piece)?;
                std::thread::sleep(Duration::from_millis(500));
            }
            peer.write_line(&line[2 * third..])?;
        }
        _ => unreachable!("not a line case"),
    }
    let mut replies = peer.until_sentinel(&format!("sentinel-{index}"))?;
    let wants_own = !matches!(case.expect, Expect::Silence | Expect::RpcErrors(..));
    if wants_own && let Some(id) = case.id {
        let answered = replies.iter().any(|r| r["id"] == id || r["id"].is_null());
        if !answered {
            replies.push(peer.next(ANSWER_WITHIN)?);
        }
    }
    judge_stdio(&case.expect, case.id, &replies)
}

/// `n` classify requests written while stdout is not read for 2 s; then every one is answered.
fn unread_case(peer: &mut StdioPeer, n: usize, rss_peak: &mut u64) -> Result<String, String> {
    let pid = peer.child.id();
    let mut stdin = peer.stdin.take().ok_or("stdin is gone")?;
    let paused = peer.gate.lock().unwrap();
    let writer = std::thread::spawn(move || {
        let mut lines = String::new();
        for i in 0..n {
            lines.push_str(&classify_call(10_000 + i as u64, &event("70", "")));
            lines.push('\n');
        }
        let written = stdin
            .write_all(lines.as_bytes())
            .and_then(|()| stdin.flush());
        (stdin, written)
    });
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        *rss_peak = (*rss_peak).max(rss_kib(pid));
    }
    drop(paused);
    let mut answered = 0;
    let mut wrong = Vec::new();
    let deadline = Instant::now() + ANSWER_WITHIN;
    while answered + wrong.len() < n {
        let reply = peer.next(deadline.saturating_duration_since(Instant::now()))?;
        if reply["result"]["isError"] == false {
            answered += 1;
        } else {
            wrong.push(reply);
        }
    }
    let (stdin, written) = writer.join().unwrap();
    peer.stdin = Some(stdin);
    written.map_err(|e| format!("writing the requests: {e}"))?;
    if wrong.is_empty() {
        Ok(format!("{answered} classifications once read again"))
    } else {
        Err(format!(
            "{answered} answered, {} wrong: {}",
            wrong.len(),
            wrong[0]
        ))
    }
}

fn stdio_surface(cases: Vec<Case>) -> Run {
    let started = Instant::now();
    let surface = Surface::McpStdio;
    let mut run = Run::default();
    let mut peer = StdioPeer::spawn(&binaries().classifier);
    let pid = peer.child.id();
    let mut baseline: Option<(u64, usize, RssPeak)> = None;
    let mut unread_peak = 0;
    for (index, case) in cases.iter().enumerate() {
        // The baseline once the session is up (after `initialized`).
        if baseline.is_none() && index > 0 && cases[index - 1].name == "initialized" {
            baseline = Some((rss_kib(pid), open_fds(pid), RssPeak::start(pid)));
        }
        let got = match &case.input {
            Input::Unread(n) => unread_case(&mut peer, *n, &mut unread_peak),
            _ => stdio_case(&mut peer, case, index),
        };
        run.record(case, got);
        if !peer.alive() {
            run.check(
                surface,
                false,
                format!(
                    "the process exited after \"{}\":\n{}",
                    case.name,
                    peer.log_tail()
                ),
            );
            return run;
        }
    }
    // Still serving, promptly.
    let asked = Instant::now();
    let listed = peer
        .write_line(tools_list(1).as_bytes())
        .and_then(|()| peer.next(ANSWER_WITHIN));
    let took = asked.elapsed();
    run.check(
        surface,
        listed
            .as_ref()
            .is_ok_and(|l| l["result"]["tools"].is_array())
            && took < SERVED_WITHIN,
        format!("tools/list after the table: {listed:?} in {took:?}"),
    );
    let classified = peer
        .write_line(classify_call(2, &event("70", "")).as_bytes())
        .and_then(|()| peer.next(ANSWER_WITHIN));
    run.check(
        surface,
        classified
            .as_ref()
            .is_ok_and(|c| c["result"]["structuredContent"]["label"].is_string()),
        format!("a valid classify after the table: {classified:?}"),
    );
    if let Some((rss_before, fds_before, peak)) = baseline {
        let peak = peak.finish().max(unread_peak);
        check_rss(surface, &mut run, rss_before, peak, rss_kib(pid));
        let fds_after = open_fds(pid);
        run.check(
            surface,
            fds_after <= fds_before + FD_SLACK,
            format!("descriptors {fds_after}, {fds_before} before"),
        );
        run.figures.push(format!(
            "{surface}: descriptors {fds_before} before, {fds_after} after"
        ));
    } else {
        run.check(surface, false, "the session never started".into());
    }
    run.check(surface, peer.alive(), "the process exited".into());
    run.figures
        .push(format!("{surface}: {:?} in all", started.elapsed()));
    run
}

// The test -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_hostile_input_gets_its_documented_answer_on_every_surface() {
    let started = Instant::now();
    binaries();
    let built = started.elapsed();
    let mut by_surface = [Vec::new(), Vec::new(), Vec::new()];
    let cases = matrix();
    println!(
        "binaries built in {built:?}, the table in {:?}",
        started.elapsed() - built
    );
    for case in cases {
        let slot = match case.surface {
            Surface::Rest => 0,
            Surface::McpHttp => 1,
            Surface::McpStdio => 2,
        };
        by_surface[slot].push(case);
    }
    let [rest_cases, http_cases, stdio_cases] = by_surface;
    let stdio = tokio::task::spawn_blocking(move || stdio_surface(stdio_cases));
    let (rest, http) = tokio::join!(rest_surface(rest_cases), mcp_http_surface(http_cases));
    let stdio = stdio.await.unwrap();

    let mut mismatches = Vec::new();
    let mut broken = Vec::new();
    println!("| surface | case | documented answer | got |");
    println!("| --- | --- | --- | --- |");
    for run in [&rest, &http, &stdio] {
        for outcome in &run.outcomes {
            let (mark, got) = match &outcome.got {
                Ok(got) => ("", got),
                Err(got) => ("MISMATCH ", got),
            };
            let got: String = got.chars().take(100).collect();
            println!(
                "| {} | {} | {} | {mark}{} |",
                outcome.surface,
                outcome.name,
                outcome.expect,
                got.replace('|', "/").replace('\n', " ")
            );
            if let Err(got) = &outcome.got {
                mismatches.push(format!(
                    "{} / {}: documented {}, got {got}",
                    outcome.surface, outcome.name, outcome.expect
                ));
            }
        }
        broken.extend(run.broken.iter().cloned());
    }
    for run in [&rest, &http, &stdio] {
        for figure in &run.figures {
            println!("{figure}");
        }
    }
    let cases = rest.outcomes.len() + http.outcomes.len() + stdio.outcomes.len();
    println!(
        "{cases} cases, {} mismatches, {} broken invariants, in {:?} ({:?} after the build)",
        mismatches.len(),
        broken.len(),
        started.elapsed(),
        started.elapsed() - built
    );
    assert!(
        mismatches.is_empty() && broken.is_empty(),
        "{} of {cases} cases did not get their documented answer:\n{}\n\
         {} invariants broken:\n{}",
        mismatches.len(),
        mismatches.join("\n"),
        broken.len(),
        broken.join("\n")
    );
}
