//! The application: state shared by the handlers, and the HTTP server bound to its own
//! listener (port 0 in tests).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::App;
use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::web::Data;
use tokio::sync::Notify;
use traffic_store::{Store, StoreConfig};

use crate::auth::ApiKeys;
use crate::body::BodyRules;
use crate::classify::health::ClassifierHealth;
use crate::classify::{ClassifierLink, ClassifyConfig, Workers};
use crate::cli::{BoxError, ServeArgs};
use crate::metrics::Metrics;
use crate::server::{self, ServerOptions};
use crate::{request, routes, unread_body};

/// Body size limits, in decoded bytes, and the time a body may take to arrive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch_bytes: usize,
    pub body_timeout: std::time::Duration,
}

impl Limits {
    /// The rules for the body of a single reading.
    pub fn reading(&self) -> BodyRules {
        BodyRules {
            limit: self.max_body_bytes,
            deadline: self.body_timeout,
        }
    }

    /// The rules for the body of a batch.
    pub fn batch(&self) -> BodyRules {
        BodyRules {
            limit: self.max_batch_bytes,
            deadline: self.body_timeout,
        }
    }
}

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Signalled when events become due, so classification workers need not poll.
    pub queue: Arc<Notify>,
    /// The classification workers' link to the classifier, for readiness.
    pub classifier: Arc<ClassifierHealth>,
}

impl AppState {
    pub fn wake_workers(&self) {
        self.queue.notify_waiters();
        self.queue.notify_one();
    }
}

pub struct Application {
    address: SocketAddr,
    server: Server,
    state: Data<AppState>,
    workers: Workers,
}

impl Application {
    /// Opens the store (migrating unless told not to), binds the listener and builds the server.
    pub async fn build(store_config: StoreConfig, args: ServeArgs) -> Result<Self, BoxError> {
        tracing::info!(database = %store_config.url, "opening the store");
        let store = Store::connect(store_config)?;
        if args.skip_migrations {
            tracing::info!("skipping migrations (INGEST_SKIP_MIGRATIONS)");
        } else {
            store.migrate().await?;
        }
        let auth = Arc::new(ApiKeys::new(args.api_keys.clone(), args.read_keys_required));
        if !args.bind.ip().is_loopback() && !auth.is_enabled() {
            tracing::warn!(bind = %args.bind, "listening beyond loopback without INGEST_API_KEYS: anyone who can reach it may write readings");
        }
        let transport = transport(&args, &store);
        let classify = classify_config(&args);
        let metrics = Metrics::new()?;
        let state = Data::new(AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            limits: Limits {
                max_body_bytes: args.max_body_bytes,
                max_batch_bytes: args.max_batch_bytes,
                body_timeout: std::time::Duration::from_secs(args.body_timeout_s),
            },
            queue: Arc::new(Notify::new()),
            classifier: Arc::new(ClassifierHealth::new(
                transport.describe(),
                classify.workers,
            )),
        });
        let listener = TcpListener::bind(args.bind)?;
        let address = listener.local_addr()?;
        let max_connections = args.max_connections.or_else(connection_budget);
        if let Some(connections) = max_connections {
            tracing::info!(connections, "most client connections held at once");
        }
        let options = ServerOptions {
            workers: args
                .http_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            max_connections,
        };
        let app_state = state.clone();
        let server = server::run(listener, &options, move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(Compress::default())
                .wrap(from_fn(request::observe))
                .wrap(from_fn(unread_body::close_connection))
                .configure(|config| routes::configure(config, &auth))
        })?;
        tracing::info!(%address, "ingest listening");
        let workers = Workers::start(
            store,
            transport,
            classify,
            metrics.classify.clone(),
            Arc::clone(&state.queue),
            Arc::clone(&state.classifier),
        );
        Ok(Self {
            address,
            server,
            state,
            workers,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn state(&self) -> Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM/SIGINT (or the server handle's stop): stops accepting, lets
    /// in-flight requests finish, then returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        tracing::info!("HTTP server stopped; stopping classification workers");
        self.workers.stop().await;
        tracing::info!("ingest stopped");
        served
    }

    /// Stops the HTTP server as SIGTERM would (for tests and embedding).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Nine tenths of the open-file limit, after raising the soft limit to the hard one: the
/// rest stays free for the database pool, the classifier and logs when connections flood in.
fn connection_budget() -> Option<usize> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => usize::try_from(limit / 10 * 9).ok(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; connections are not capped");
            None
        }
    }
}

/// The classifier's transport from the configuration: MCP_URL, else MCP_COMMAND, else in-process.
fn transport(args: &ServeArgs, store: &Store) -> ClassifierLink {
    let urls: Vec<String> = args
        .mcp_url
        .iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    let command: Vec<String> = args
        .mcp_command
        .as_deref()
        .map(|c| c.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if !urls.is_empty() {
        if !command.is_empty() {
            tracing::warn!("both MCP_URL and MCP_COMMAND are set: using MCP_URL");
        }
        let token = args.mcp_auth_token.clone().filter(|t| !t.is_empty());
        ClassifierLink::Http { urls, token }
    } else if !command.is_empty() {
        ClassifierLink::Command(command)
    } else {
        ClassifierLink::InProcess {
            store: store.clone(),
            rules: Arc::new(traffic_model::rules::RulesConfig::default()),
        }
    }
}

/// One classification worker per core: each spends its time on the CPU of this process, of the
/// classifier or of the database, and more workers than cores only contend (measured on two
/// cores: 2 workers classified 8 % more readings per second than 4, with less CPU per reading).
/// At least two, so that one claims or writes while another waits for the classifier.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

fn classify_config(args: &ServeArgs) -> ClassifyConfig {
    let seconds = std::time::Duration::from_secs;
    ClassifyConfig {
        workers: args.classify_workers.unwrap_or_else(default_workers),
        batch_size: args.classify_batch,
        lease: seconds(args.classify_lease_s),
        call_timeout: seconds(args.classify_timeout_s),
        poll_interval: seconds(args.classify_poll_s),
        gather: std::time::Duration::from_millis(args.classify_gather_ms),
        history_window: std::time::Duration::from_secs(
            args.classify_history_minutes.saturating_mul(60),
        ),
        history_readings: args.classify_history_readings,
        retry: traffic_store::RetryPolicy {
            max_attempts: args.classify_max_attempts,
            ..Default::default()
        },
    }
}
