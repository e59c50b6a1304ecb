//! MCP over stdin/stdout.
//!
//! tokio's `stdin()`/`stdout()` run every read and write on the blocking thread pool: a thread
//! hand-off per message, which costs more CPU than the classification itself. On Unix, when
//! stdin and stdout are pipes (as when an MCP host spawns the server) they are driven by the
//! reactor instead, like sockets. Anything else — a terminal, a file, Windows, or
//! `MCP_STDIO_PORTABLE=1` — uses tokio's portable handles.
//! Lines are framed by [`crate::wire::LineTransport`], which parses `tools/call` directly.

use rmcp::ServiceExt;
use rmcp::service::ServerInitializeError;
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
    let transport = LineTransport::new(reader, writer, tool_call_request);
    let running = match server.serve(transport).await {
        Ok(running) => running,
        // The host went away before saying anything (a probe, a cancelled start): not a failure.
        Err(ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    running.waiting().await?;
    Ok(())
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
