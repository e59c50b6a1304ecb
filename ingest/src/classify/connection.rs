//! One MCP client connection to the classifier, over whichever transport is configured, with
//! reconnection: a lost connection is dropped and the next call opens a new one (after a
//! backoff), so a classifier that is down only delays work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mcp_classifier::server::{ClassifierServer, Database};
use mcp_classifier::wire::{LineTransport, tool_call_request, tool_result_response};
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use service_kit::auth::{ExposeSecret, SecretString};
use traffic_model::rules::RulesConfig;
use traffic_store::Store;

use super::health::{ClassifierHealth, LinkState};
use super::link_error::{call_error, connect_error};

/// Where the classifier runs.
#[derive(Debug, Clone)]
pub enum ClassifierLink {
    /// In this process, behind an in-memory duplex pipe (full MCP JSON-RPC), with the default
    /// rules and this process's store for `classify_by_id`.
    InProcess,
    /// A child process speaking MCP over its stdio (`MCP_COMMAND`); restarted when it dies.
    Command(Vec<String>),
    /// Streamable HTTP endpoints (`MCP_URL`), used in turn; optional bearer token.
    Http {
        urls: Vec<String>,
        token: Option<SecretString>,
    },
}

impl ClassifierLink {
    pub fn describe(&self) -> String {
        match self {
            ClassifierLink::InProcess => "in-process".into(),
            ClassifierLink::Command(argv) => format!("stdio: {}", argv.join(" ")),
            ClassifierLink::Http { urls, .. } => format!("http: {}", urls.join(", ")),
        }
    }
}

/// Why a call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("could not connect to the classifier: {0}")]
    Connect(String),
    #[error("the classifier did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the call to the classifier failed: {0}")]
    Service(String),
}

const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

pub struct Connection {
    link: ClassifierLink,
    /// The database the in-process classifier reads for `classify_by_id`.
    store: Store,
    health: Arc<ClassifierHealth>,
    slot: usize,
    service: Option<RunningService<RoleClient, ()>>,
    next_url: AtomicUsize,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Connection {
    pub fn new(
        link: ClassifierLink,
        store: Store,
        health: Arc<ClassifierHealth>,
        slot: usize,
    ) -> Self {
        Self {
            link,
            store,
            health,
            slot,
            service: None,
            next_url: AtomicUsize::new(slot),
            failures: 0,
            retry_at: None,
        }
    }

    /// Calls `tool`; a transport failure or timeout drops the connection for the next call
    /// to replace.
    pub async fn call(
        &mut self,
        tool: &'static str,
        arguments: JsonObject,
        timeout: Duration,
    ) -> Result<CallToolResult, CallError> {
        // Opening a connection (the MCP handshake) gets the same deadline as a call.
        let peer = match tokio::time::timeout(timeout, self.connected()).await {
            Ok(connected) => connected?.peer().clone(),
            Err(_) => {
                self.lost("connecting timed out");
                return Err(CallError::Timeout(timeout));
            }
        };
        let params = CallToolRequestParams::new(tool).with_arguments(arguments);
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => {
                let error = call_error(&e);
                if matches!(e, rmcp::ServiceError::McpError(_)) {
                    // A JSON-RPC error from a live server: the connection itself is fine.
                    return Err(CallError::Service(error));
                }
                self.lost(&error);
                Err(CallError::Service(error))
            }
            Err(_) => {
                self.lost("call timed out");
                Err(CallError::Timeout(timeout))
            }
        }
    }

    async fn connected(&mut self) -> Result<&RunningService<RoleClient, ()>, CallError> {
        if self
            .service
            .as_ref()
            .is_some_and(|s| s.is_transport_closed())
        {
            self.lost("the connection closed");
        }
        if self.service.is_none() {
            if let Some(at) = self.retry_at
                && Instant::now() < at
            {
                return Err(CallError::Connect("waiting before reconnecting".into()));
            }
            match self.open().await {
                Ok(service) => {
                    tracing::info!(link = %self.link.describe(), "connected to the classifier");
                    self.failures = 0;
                    self.retry_at = None;
                    self.health.set(self.slot, LinkState::Connected, None);
                    self.service = Some(service);
                }
                Err(e) => {
                    self.failures = self.failures.saturating_add(1);
                    let backoff = RECONNECT_MIN
                        .saturating_mul(2u32.saturating_pow(self.failures.min(16)))
                        .min(RECONNECT_MAX);
                    self.retry_at = Some(Instant::now() + backoff);
                    tracing::warn!(error = %e, ?backoff, "classifier unreachable");
                    self.health.set(self.slot, LinkState::Down, Some(e.clone()));
                    return Err(CallError::Connect(e));
                }
            }
        }
        self.service
            .as_ref()
            .ok_or_else(|| CallError::Connect("no connection".into()))
    }

    fn lost(&mut self, why: &str) {
        if self.service.take().is_some() {
            tracing::warn!(
                reason = why,
                "lost the classifier connection; will reconnect"
            );
        }
        self.health
            .set(self.slot, LinkState::Down, Some(why.to_owned()));
    }

    async fn open(&self) -> Result<RunningService<RoleClient, ()>, String> {
        match &self.link {
            ClassifierLink::InProcess => {
                let (client_side, server_side) = tokio::io::duplex(1 << 20);
                let (server_read, server_write) = tokio::io::split(server_side);
                let (client_read, client_write) = tokio::io::split(client_side);
                let server = ClassifierServer::new(
                    RulesConfig::default(),
                    Database::Connected(self.store.clone()),
                );
                let server_side = LineTransport::new(server_read, server_write, tool_call_request);
                tokio::spawn(async move {
                    match server.serve(server_side).await {
                        Ok(running) => {
                            let _ = running.waiting().await;
                        }
                        Err(e) => tracing::warn!(error = %e, "in-process classifier stopped"),
                    }
                });
                let client_side =
                    LineTransport::new(client_read, client_write, tool_result_response);
                ().serve(client_side).await.map_err(|e| connect_error(&e))
            }
            ClassifierLink::Command(argv) => {
                let (program, args) = argv.split_first().ok_or("MCP_COMMAND is empty")?;
                let mut command = tokio::process::Command::new(program);
                command.args(args).kill_on_drop(true);
                let (transport, _) = TokioChildProcess::builder(command)
                    .stderr(std::process::Stdio::inherit())
                    .spawn()
                    .map_err(|e| format!("could not start {program}: {e}"))?;
                ().serve(transport).await.map_err(|e| connect_error(&e))
            }
            ClassifierLink::Http { urls, token } => {
                let index = self.next_url.fetch_add(1, Ordering::Relaxed) % urls.len().max(1);
                let url = urls.get(index).ok_or("MCP_URL is empty")?;
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                if let Some(token) = token {
                    config = config.auth_header(token.expose_secret());
                }
                let transport = StreamableHttpClientTransport::from_config(config);
                ().serve(transport)
                    .await
                    .map_err(|e| format!("{url}: {}", connect_error(&e)))
            }
        }
    }
}
