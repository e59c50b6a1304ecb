//! The application: state shared by the handlers, and the HTTP server bound to its own
//! listener (port 0 in tests).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::web::Data;
use actix_web::{App, HttpServer};
use mcp_classifier::store::{Store, StoreConfig};
use tokio::sync::Notify;

use crate::auth::ApiKeys;
use crate::cli::{BoxError, ServeArgs};
use crate::metrics::Metrics;
use crate::{request, routes};

/// Body size limits, in decoded bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch_bytes: usize,
}

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    pub auth: ApiKeys,
    pub limits: Limits,
    /// Signalled when events become due, so classification workers need not poll.
    pub queue: Arc<Notify>,
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
        let auth = ApiKeys::new(args.api_keys.clone(), args.read_keys_required);
        if !args.bind.ip().is_loopback() && !auth.is_enabled() {
            tracing::warn!(bind = %args.bind, "listening beyond loopback without INGEST_API_KEYS: anyone who can reach it may write readings");
        }
        let state = Data::new(AppState {
            store,
            metrics: Metrics::new()?,
            auth,
            limits: Limits {
                max_body_bytes: args.max_body_bytes,
                max_batch_bytes: args.max_batch_bytes,
            },
            queue: Arc::new(Notify::new()),
        });
        let listener = TcpListener::bind(args.bind)?;
        let address = listener.local_addr()?;
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(Compress::default())
                .wrap(from_fn(request::observe))
                .configure(routes::configure)
        })
        .listen(listener)?;
        if let Some(workers) = args.http_workers {
            server = server.workers(workers.max(1));
        }
        tracing::info!(%address, "ingest listening");
        Ok(Self {
            address,
            server: server.run(),
            state,
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
        self.server.await?;
        tracing::info!("ingest stopped");
        Ok(())
    }
}
