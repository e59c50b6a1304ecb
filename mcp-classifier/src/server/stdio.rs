//! MCP over stdin/stdout.
//!
//! tokio's `stdin()`/`stdout()` run every read and write on the blocking thread pool: a thread
//! hand-off per message, which costs more CPU than the classification itself. On Unix, when
//! stdin and stdout are pipes (as when an MCP host spawns the server) they are driven by the
//! reactor instead, like sockets. Anything else — a terminal, a file, Windows, or
//! `MCP_STDIO_PORTABLE=1` — uses tokio's portable handles.
//! Lines are framed by [`crate::wire::LineTransport`], which parses `tools/call` directly.

use std::future::Future;

use rmcp::model::{ClientRequest, GetMeta, JsonRpcMessage, ProtocolVersion};
use rmcp::service::{RxJsonRpcMessage, ServerInitializeError, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServiceExt};
use tokio::io::{AsyncRead, AsyncWrite};

use super::ClassifierServer;
use crate::wire::{LineTransport, tool_call_request};

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Serves until the client closes stdin. Nothing else may write to stdout.
pub async fn serve(
    server: ClassifierServer,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (reader, writer) = streams();
    serve_on(server, reader, writer).await
}

/// Serves MCP over the lines of `reader` and `writer` until `reader` ends.
async fn serve_on(
    server: ClassifierServer,
    reader: impl AsyncRead + Send + Unpin + 'static,
    writer: impl AsyncWrite + Send + Unpin + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let transport = RequestsFirst {
        inner: LineTransport::new(reader, writer, tool_call_request),
        begun: false,
    };
    let running = match server.serve(transport).await {
        Ok(running) => running,
        // The host went away before saying anything (a probe, a cancelled start): not a failure.
        Err(ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    running.waiting().await?;
    Ok(())
}

/// A transport on which the session begins with a request. rmcp ends the session, and with
/// it the process, when a notification or a response comes before the request that begins it
/// (`initialize`, or with 2026-07-28 a request carrying its protocol version); JSON-RPC never
/// answers those, so they are dropped here instead, and the session goes on.
struct RequestsFirst<T> {
    inner: T,
    begun: bool,
}

/// Whether `request` begins the session, as rmcp's server decides: `initialize`, or a request
/// other than a ping or `server/discover` that carries the 2026-07-28 request metadata.
fn begins_session(request: &ClientRequest) -> bool {
    match request {
        ClientRequest::InitializeRequest(_) => true,
        ClientRequest::PingRequest(_) | ClientRequest::DiscoverRequest(_) => false,
        other => other
            .get_meta()
            .missing_required_keys(&ProtocolVersion::V_2026_07_28)
            .is_empty(),
    }
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for RequestsFirst<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let message = self.inner.receive().await?;
            if self.begun {
                return Some(message);
            }
            if let JsonRpcMessage::Request(request) = &message {
                self.begun = begins_session(&request.request);
                return Some(message);
            }
            tracing::debug!("ignoring a notification or response before the session began");
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inner.close().await
    }
}

/// Set to `1` to use tokio's portable stdin/stdout handles even where pipes could be driven by
/// the reactor (the path Windows always takes; for diagnosis, and so that it is tested).
pub const PORTABLE_ENV: &str = "MCP_STDIO_PORTABLE";

fn streams() -> (Reader, Writer) {
    let portable = std::env::var_os(PORTABLE_ENV).is_some_and(|v| v == "1");
    if !portable {
        #[cfg(unix)]
        return reactor::streams();
    }
    tracing::debug!("stdio through tokio's portable handles");
    (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
}

#[cfg(unix)]
mod reactor {
    use std::io;
    use std::os::fd::AsFd;

    use tokio::net::unix::pipe;

    use super::{Reader, Writer};

    /// Each of stdin and stdout as a reactor-driven pipe when it is one, else tokio's handle.
    pub(super) fn streams() -> (Reader, Writer) {
        let reader: Reader = match stdin_pipe() {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdin()),
        };
        let writer: Writer = match stdout_pipe() {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdout()),
        };
        (reader, writer)
    }

    fn stdin_pipe() -> io::Result<pipe::Receiver> {
        pipe::Receiver::from_owned_fd(io::stdin().as_fd().try_clone_to_owned()?)
    }

    fn stdout_pipe() -> io::Result<pipe::Sender> {
        pipe::Sender::from_owned_fd(io::stdout().as_fd().try_clone_to_owned()?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::server::Database;

    /// A notification and a response before `initialize` are not answered, and do not end the
    /// session: `initialize` and the requests after it are served.
    #[tokio::test]
    async fn notifications_and_responses_before_initialize_do_not_end_the_session() {
        let (client, server_side) = tokio::io::duplex(64 * 1024);
        let (server_reader, server_writer) = tokio::io::split(server_side);
        let server = ClassifierServer::new(
            traffic_model::rules::RulesConfig::default(),
            Database::Unavailable("none".into()),
        );
        let serving = tokio::spawn(serve_on(server, server_reader, server_writer));
        let (client_reader, mut client_writer) = tokio::io::split(client);
        let mut replies = BufReader::new(client_reader).lines();
        for line in [
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":"nobody-asked","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        ] {
            client_writer.write_all(line.as_bytes()).await.unwrap();
            client_writer.write_all(b"\n").await.unwrap();
        }
        let within = Duration::from_secs(10);
        for id in [1, 2] {
            let line = tokio::time::timeout(within, replies.next_line())
                .await
                .expect("a reply in time")
                .unwrap()
                .expect("a line");
            let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(reply["id"], id, "{line}");
            assert!(reply.get("result").is_some(), "{line}");
        }
        client_writer.shutdown().await.unwrap();
        let ended = tokio::time::timeout(within, serving).await.expect("ends");
        assert!(ended.unwrap().is_ok(), "the session ends cleanly");
    }
}
