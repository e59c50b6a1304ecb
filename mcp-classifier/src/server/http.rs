//! Streamable HTTP at `/mcp`, on hyper with rmcp's tower service.
//!
//! Stateless: every POST is answered on its own (plain JSON, no session), so replicas need no
//! sticky routing and any of them can take any request. `Host` and `Origin` are checked
//! against allow-lists (DNS-rebinding protection; a foreign `Origin` gets 403), an optional
//! bearer token or OAuth access tokens ([`super::oauth`]) guard every request, and bodies are
//! capped. With OAuth, the scope a request needs is read from its body once it has arrived,
//! before rmcp parses it, and the protected resource metadata is served beside `/mcp`.
//!
//! rmcp answers a body it cannot parse with `415` and plain text. The transport asks for `400`
//! with a JSON-RPC error, so `Endpoint` keeps the body it hands to rmcp, and when rmcp refuses
//! it, checks its envelope (one pass, nothing built) to answer with the right JSON-RPC error.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use rmcp::model::{ErrorData, RequestId};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::Instrument;

use service_kit::auth::{SecretString, bearer_token, matches_any};

use super::ClassifierServer;
use super::oauth::{self, Challenge, Grant, Refusal, ResourceServer, Scopes};
use crate::wire::envelope;

/// The MCP endpoint's path.
pub const MCP_PATH: &str = "/mcp";
/// Default cap on a request body: a full `classify_batch` is about 250 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request head; then the connection is closed.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time a request body may take to arrive in full.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Security and limits of the HTTP transport.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Required bearer token (`Authorization: Bearer …`); `None` accepts any caller. Beside
    /// `oauth`, a request presenting exactly this token is granted every scope.
    pub auth_token: Option<SecretString>,
    /// OAuth access tokens required on every request (see [`super::oauth`]).
    pub oauth: Option<Arc<ResourceServer>>,
    /// `Host` values accepted besides loopback and the bound address (e.g. a public name).
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted besides loopback ones (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted; larger ones get 413. 0 means the default.
    pub max_body_bytes: usize,
    /// Time a request body may take to arrive in full, else 408 and the connection closed.
    /// Zero means the default.
    pub body_timeout: Duration,
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
/// (up to a drain timeout) and returns.
pub async fn serve(
    server: ClassifierServer,
    listener: TcpListener,
    options: HttpOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let max_body = if options.max_body_bytes == 0 {
        DEFAULT_MAX_BODY_BYTES
    } else {
        options.max_body_bytes
    };
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        rmcp_config(local, &options, max_body, cancel.clone()),
    );
    let gate = Arc::new(match (options.oauth, options.auth_token) {
        (Some(server), token) => Gate::OAuth { server, token },
        (None, Some(token)) => Gate::Token(token),
        (None, None) => Gate::Open,
    });
    let graceful = GracefulShutdown::new();
    tracing::info!(address = %local, path = MCP_PATH, auth = gate.mode(), "serving MCP over HTTP");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small JSON responses must not wait for Nagle's algorithm (≈40 ms stalls).
        let _ = stream.set_nodelay(true);
        let service = Endpoint {
            mcp: mcp.clone(),
            gate: gate.clone(),
            max_body,
            body_timeout: if options.body_timeout.is_zero() {
                DEFAULT_BODY_TIMEOUT
            } else {
                options.body_timeout
            },
        };
        // Stalled heads and bodies must not hold connections (and descriptors) forever.
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .serve_connection(
                TokioIo::new(stream),
                hyper::service::service_fn(move |req| {
                    let span = tracing::info_span!("mcp_http", sub = tracing::field::Empty);
                    service.clone().handle(req).instrument(span)
                }),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout: closing remaining connections");
    }
    // Only now: rmcp stops waiting on handlers once this fires, which would fail requests
    // still in flight.
    cancel.cancel();
    Ok(())
}

fn rmcp_config(
    local: SocketAddr,
    options: &HttpOptions,
    max_body: usize,
    cancel: CancellationToken,
) -> StreamableHttpServerConfig {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !local.ip().is_unspecified() {
        hosts.push(local.ip().to_string());
    }
    hosts.extend(options.allowed_hosts.iter().cloned());
    // The resource URL names this server: clients reach it by that host.
    hosts.extend(
        options
            .oauth
            .as_ref()
            .map(|server| server.resource_host().to_owned()),
    );
    let mut origins: Vec<String> = vec![
        "http://localhost:*".into(),
        "http://127.0.0.1:*".into(),
        "http://[::1]:*".into(),
    ];
    origins.extend(options.allowed_origins.iter().cloned());
    StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(max_body)
        .with_cancellation_token(cancel)
}

/// Who may call, and what each caller may do.
enum Gate {
    Open,
    /// One static bearer token, granting everything.
    Token(SecretString),
    /// OAuth access tokens; the static token, when set, still grants everything (the
    /// service-to-service path: ingest's workers).
    OAuth {
        server: Arc<ResourceServer>,
        token: Option<SecretString>,
    },
}

impl Gate {
    fn mode(&self) -> &'static str {
        match self {
            Self::Open => "none",
            Self::Token(_) => "token",
            Self::OAuth { token: None, .. } => "oauth",
            Self::OAuth { token: Some(_), .. } => "oauth and token",
        }
    }

    /// What the request's bearer token grants, or the refusal to answer with.
    async fn admit(&self, request: &Request<Incoming>) -> Result<Grant, Response<Body>> {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(bearer_token);
        match self {
            Self::Open => Ok(Grant::everything()),
            Self::Token(token) if bearer_matches(presented, token) => Ok(Grant::everything()),
            Self::Token(_) => {
                let mut response = plain(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                Err(response)
            }
            Self::OAuth {
                token: Some(token), ..
            } if bearer_matches(presented, token) => Ok(Grant::everything()),
            Self::OAuth { server, .. } => server
                .authorize(presented)
                .await
                .map_err(|refusal| refused(server.challenge(&refusal))),
        }
    }

    /// The `403 insufficient_scope` to answer when `grant` lacks a scope the message in `body`
    /// needs. A grant of every scope (no OAuth, the static token, a token with both scopes)
    /// reads nothing.
    fn scope_refusal(&self, grant: &Grant, body: &[u8]) -> Option<Response<Body>> {
        let Self::OAuth { server, .. } = self else {
            return None;
        };
        if grant.scopes.contains(Scopes::ALL) {
            return None;
        }
        let needed = oauth::scope::required(&envelope::operation(body));
        (!grant.scopes.contains(needed))
            .then(|| refused(server.challenge(&Refusal::InsufficientScope(needed))))
    }
}

#[derive(Clone)]
struct Endpoint {
    mcp: StreamableHttpService<ClassifierServer, NeverSessionManager>,
    gate: Arc<Gate>,
    max_body: usize,
    body_timeout: Duration,
}

impl Endpoint {
    async fn handle(mut self, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        if request.uri().path() != MCP_PATH {
            if let Gate::OAuth { server, .. } = &*self.gate
                && server.serves_metadata_at(request.uri().path())
            {
                let document = server.metadata();
                return self.metadata(request, document).await;
            }
            return Ok(plain(
                StatusCode::NOT_FOUND,
                "not found: the MCP endpoint is /mcp",
            ));
        }
        let grant = match self.gate.admit(&request).await {
            Ok(grant) => grant,
            Err(refusal) => return Ok(refusal),
        };
        if let Some(subject) = &grant.subject {
            tracing::Span::current().record("sub", subject.as_str());
        }
        if request.method() != Method::POST {
            return self.mcp.call(request).await;
        }
        let (parts, body) = request.into_parts();
        // A declared length over the limit is refused before anything is read: waiting for a
        // body that will be refused would hold the connection until the body timeout.
        if body
            .size_hint()
            .exact()
            .is_some_and(|length| length > self.max_body as u64)
        {
            let handed = Handed::new(None);
            let reached = handed.reached.clone();
            let response = self.mcp.call(Request::from_parts(parts, handed)).await?;
            if !reached.load(Ordering::Relaxed) {
                return Ok(response);
            }
            return Ok(too_large(self.max_body));
        }
        let Ok(read) =
            tokio::time::timeout(self.body_timeout, read_body(body, self.max_body)).await
        else {
            let mut response = plain(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            );
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return Ok(response);
        };
        let (handed, verdict) = match read {
            Ok(Read::Whole(bytes)) => {
                if let Some(refusal) = self.gate.scope_refusal(&grant, &bytes) {
                    return Ok(refusal);
                }
                (Handed::new(Some(bytes.clone())), Verdict::Whole(bytes))
            }
            // rmcp answers 413, once the headers have passed its checks.
            Ok(Read::OverLimit(bytes)) => (Handed::new(Some(bytes)), Verdict::OverLimit),
            Err(e) => {
                tracing::debug!(error = %e, "reading a request body failed");
                (Handed::new(None), Verdict::Unreadable)
            }
        };
        // rmcp checks the headers (Host, Origin, Accept, Content-Type, protocol version) before
        // it reads the body, and those answers come first: ours stand only once it has read.
        let reached = handed.reached.clone();
        let response = self.mcp.call(Request::from_parts(parts, handed)).await?;
        if !reached.load(Ordering::Relaxed) {
            return Ok(response);
        }
        Ok(match verdict {
            Verdict::Unreadable => plain(
                StatusCode::BAD_REQUEST,
                "the request body could not be read to its end",
            ),
            // rmcp refuses a body it cannot parse with 415; only then is the body examined,
            // so a sound request pays for no second pass.
            Verdict::Whole(bytes) if response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                match envelope::check(&bytes) {
                    Err(error) => json_rpc_error(None, &error),
                    // A sound envelope that rmcp still could not parse: the params are wrong.
                    Ok(kind) => {
                        json_rpc_error(envelope::leading_id(&bytes).as_ref(), &kind.unparsed())
                    }
                }
            }
            Verdict::Whole(_) | Verdict::OverLimit => response,
        })
    }

    /// The protected resource metadata, to a GET that passes rmcp's own `Host` and `Origin`
    /// checks: rmcp runs them on any request first, and answers a GET on this stateless
    /// endpoint with 405 once they pass; any other answer is its refusal.
    async fn metadata(
        mut self,
        request: Request<Incoming>,
        document: Bytes,
    ) -> Result<Response<Body>, Infallible> {
        if request.method() != Method::GET {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: GET");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
            return Ok(response);
        }
        let (parts, _) = request.into_parts();
        let checked = self
            .mcp
            .call(Request::from_parts(parts, Handed::new(None)))
            .await?;
        if checked.status() != StatusCode::METHOD_NOT_ALLOWED {
            return Ok(checked);
        }
        let mut response = Response::new(Full::new(document).boxed());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("max-age=300"),
        );
        Ok(response)
    }
}

/// What [`Endpoint`] read of a POST body before handing the request to rmcp.
enum Verdict {
    /// The whole body, kept to explain rmcp's refusal if it comes.
    Whole(Bytes),
    /// Over the body limit, for rmcp to refuse.
    OverLimit,
    /// The client broke off or garbled the body.
    Unreadable,
}

enum Read {
    Whole(Bytes),
    /// Cut off once past the limit; the rest is left unread.
    OverLimit(Bytes),
}

/// Reads a body up to `limit` bytes, keeping a single-frame body without a copy.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Read, hyper::Error> {
    let expected = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut length = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        length = length.saturating_add(data.len());
        match &mut joined {
            Some(buffer) => buffer.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut buffer =
                    BytesMut::with_capacity(expected.max(length).min(limit.saturating_add(1)));
                buffer.extend_from_slice(&first);
                buffer.extend_from_slice(&data);
                joined = Some(buffer);
            }
        }
        if length > limit {
            return Ok(Read::OverLimit(joined.map_or(first, BytesMut::freeze)));
        }
    }
    Ok(Read::Whole(joined.map_or(first, BytesMut::freeze)))
}

/// The body handed to rmcp: the bytes read (or none, when we answer instead), and a flag set
/// once rmcp starts reading it, which tells that its header checks have passed.
struct Handed {
    bytes: Option<Bytes>,
    reached: Arc<AtomicBool>,
}

impl Handed {
    fn new(bytes: Option<Bytes>) -> Self {
        Self {
            bytes,
            reached: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Why a withheld body ends in an error: rmcp then stops without parsing anything.
#[derive(Debug)]
struct Withheld;

impl std::fmt::Display for Withheld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body was answered before it reached the MCP service")
    }
}

impl hyper::body::Body for Handed {
    type Data = Bytes;
    type Error = Withheld;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Withheld>>> {
        let this = self.get_mut();
        if this.reached.swap(true, Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(match this.bytes.take() {
            Some(bytes) => Ok(Frame::data(bytes)),
            None => Err(Withheld),
        }))
    }

    fn size_hint(&self) -> SizeHint {
        self.bytes.as_ref().map_or_else(SizeHint::default, |bytes| {
            SizeHint::with_exact(bytes.len() as u64)
        })
    }
}

/// `400 Bad Request` with a JSON-RPC error as its body.
fn json_rpc_error(id: Option<&RequestId>, error: &ErrorData) -> Response<Body> {
    let body = Bytes::from(envelope::error_reply(id, error));
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// `413` for a body whose declared length is over `limit`, in rmcp's words for a body that
/// grows past it; the connection is closed, its body unread.
fn too_large(limit: usize) -> Response<Body> {
    let mut response = plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Payload Too Large: request body exceeds {limit} bytes"),
    );
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// Whether the presented bearer token is exactly the expected one (compared in constant time).
fn bearer_matches(presented: Option<&str>, expected: &SecretString) -> bool {
    presented.is_some_and(|presented| matches_any(presented, [expected]))
}

/// A refusal as plain text, with its headers (`WWW-Authenticate`, `Retry-After`).
fn refused(challenge: Challenge) -> Response<Body> {
    let mut response = plain(challenge.status, challenge.text);
    response.headers_mut().extend(challenge.headers);
    response
}

fn plain(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(text.into()).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_matching_bearer_token_passes() {
        let tok = SecretString::from("tok");
        assert!(bearer_matches(bearer_token("Bearer tok"), &tok));
        assert!(!bearer_matches(bearer_token("Bearer nope"), &tok));
        assert!(!bearer_matches(bearer_token("Basic tok"), &tok));
        assert!(!bearer_matches(None, &tok));
    }

    /// Starts the server on a loopback port with a 1 KiB body limit and a 30 s body timeout.
    async fn small_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = ClassifierServer::new(
            traffic_model::rules::RulesConfig::default(),
            crate::server::Database::Unavailable("none".into()),
        );
        let options = HttpOptions {
            max_body_bytes: 1024,
            ..HttpOptions::default()
        };
        tokio::spawn(serve(server, listener, options, std::future::pending()));
        addr
    }

    /// Writes `head` and a few bytes of body, and returns what comes back within 2 s.
    async fn answer_to(addr: SocketAddr, head: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(b"{\"js").await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_the_body_arrives() {
        let addr = small_server().await;
        let post = |host: &str| {
            format!(
                "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\nContent-Length: 1073741824\r\n\r\n"
            )
        };
        let answer = answer_to(addr, &post("127.0.0.1")).await;
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
        assert!(
            answer.ends_with("Payload Too Large: request body exceeds 1024 bytes"),
            "{answer}"
        );
        // The checks of the head still come first.
        let answer = answer_to(addr, &post("evil.example")).await;
        assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    }
}
