//! Logging for both binaries: `tracing` to stderr (stdout may carry MCP JSON-RPC), filtered by
//! `RUST_LOG` (default `info`), as text or JSON.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::TryInitError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init(format: LogFormat) -> Result<(), TryInitError> {
    use tracing_subscriber::prelude::*;
    // rmcp logs every stateless HTTP request three times at info: per-request noise, and CPU.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    }
}

/// An error with its chain of causes, on one line, for logs and error messages.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Completes on SIGTERM or Ctrl-C (SIGINT): the signal to stop accepting work and drain.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// signal that arrives in between (a server has said it listens, its loop has not started)
/// would otherwise get the default action and kill the process. Call it within the runtime.
#[cfg(unix)]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::warn!(error = %e, signal = name, "cannot listen for the signal");
            None
        }
    };
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    let interrupt = received(listen(SignalKind::interrupt(), "SIGINT"));
    let terminate = received(listen(SignalKind::terminate(), "SIGTERM"));
    async move {
        tokio::select! {
            () = interrupt => tracing::info!("received SIGINT"),
            () = terminate => tracing::info!("received SIGTERM"),
        }
    }
}

/// Completes on Ctrl-C: the signal to stop accepting work and drain.
#[cfg(not(unix))]
pub async fn shutdown_signal() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
    tracing::info!("received Ctrl-C");
}
