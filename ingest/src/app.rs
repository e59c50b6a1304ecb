//! The application: state shared by the handlers, and the HTTP server bound to its own
//! listener (port 0 in tests).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::App;
use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::web::Data;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use traffic_store::Store;

use crate::cache::Cache;
use crate::classify::health::ClassifierHealth;
use crate::classify::{Downstream, Workers};
use crate::cli::BoxError;
use crate::metrics::Metrics;
use crate::problem::Problem;
use crate::rate_limit::Limiter;
use crate::redis::Redis;
use crate::retention::RetentionSettings;
use crate::server::{self, ServerOptions};
use crate::settings::{DashboardSettings, Limits, Settings};
use crate::stream::{self, hub::Hub};
use crate::{request, routes, unread_body};

/// Items a stream client may fall behind before it is dropped.
const STREAM_LAG: usize = 4096;
/// Items kept for clients that reconnect with `Last-Event-ID`.
const STREAM_KEEP: usize = 10_000;
/// How long items are still built after the last client left, for it to come back.
const STREAM_LINGER: std::time::Duration = std::time::Duration::from_secs(300);

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Signalled when events become due, so classification workers need not poll.
    pub queue: Arc<Notify>,
    /// The classification workers' link to the classifier, for readiness.
    pub classifier: Arc<ClassifierHealth>,
    /// The live stream's fan-out in this process.
    pub hub: Arc<Hub>,
    /// Cached answers of the reads (Redis; off without it).
    pub cache: Cache,
    /// Redis, when configured, for readiness.
    pub redis: Option<Redis>,
    /// Readings per second per sender.
    pub limiter: Limiter,
    /// What the dashboard's map draws under the sensors.
    pub dashboard: DashboardSettings,
    /// What is kept: readings older are refused.
    pub retention: RetentionSettings,
}

impl AppState {
    /// Spends `readings` of the rate limit of the request's sender: `429` when over it.
    pub async fn admit(
        &self,
        request: &actix_web::HttpRequest,
        readings: usize,
    ) -> Result<(), Problem> {
        self.limiter
            .admit(request, readings)
            .await
            .map_err(|limited| Problem::rate_limited(limited.retry_after, &limited.limit))
    }

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
    /// The stream's listener and item builder.
    feed: JoinSet<()>,
}

impl Application {
    /// Opens the store (migrating unless told not to), binds the listener and builds the server.
    pub async fn build(settings: Settings) -> Result<Self, BoxError> {
        let Settings {
            store,
            skip_migrations,
            http,
            api_keys,
            classifier,
            classify,
            redis,
            cache,
            rate_limit,
            dashboard,
        } = settings;
        classify.retention.check()?;
        tracing::info!(database = %store.url, "opening the store");
        let store = Store::connect(store)?;
        if skip_migrations {
            tracing::info!("skipping migrations (INGEST_SKIP_MIGRATIONS)");
        } else {
            store.migrate().await?;
        }
        // Today's partition and the days ahead exist before the first request rather than
        // being raced by it (a write that finds none would create it while the request waits).
        let ahead = classify.retention.partitions_ahead_days;
        if let Err(e) = store
            .create_partitions_ahead(chrono::Utc::now(), ahead)
            .await
        {
            tracing::warn!(error = %service_kit::telemetry::error_chain(&e), "could not create the day partitions ahead; writes create their own");
        }
        if !http.bind.ip().is_loopback() && !api_keys.is_enabled() {
            tracing::warn!(bind = %http.bind, "listening beyond loopback without INGEST_API_KEYS: anyone who can reach it may write readings");
        }
        let api_keys = Arc::new(api_keys);
        let metrics = Metrics::new()?;
        let redis = match &redis {
            Some(settings) => Some(Redis::connect(settings, metrics.redis_errors.clone()).await?),
            None => None,
        };
        let cache = Cache::new(redis.clone(), cache, metrics.cache_lookups.clone());
        let hub = Arc::new(Hub::new(STREAM_LAG, STREAM_KEEP, STREAM_LINGER));
        let (announcer, feed) = stream::start(store.clone(), Arc::clone(&hub), redis.clone());
        let state = Data::new(AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            limits: http.limits,
            queue: Arc::new(Notify::new()),
            classifier: Arc::new(ClassifierHealth::new(
                classifier.describe(),
                classify.workers,
            )),
            hub,
            cache: cache.clone(),
            limiter: Limiter::new(rate_limit, redis.clone()),
            redis,
            dashboard,
            retention: classify.retention.clone(),
        });
        let listener = TcpListener::bind(http.bind)?;
        let address = listener.local_addr()?;
        let max_connections = http.max_connections.or_else(connection_budget);
        if let Some(connections) = max_connections {
            tracing::info!(connections, "most client connections held at once");
        }
        let options = ServerOptions {
            workers: http.workers,
            max_connections,
        };
        let app_state = state.clone();
        let (server, stopping) = server::run(listener, &options, move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(Compress::default())
                .wrap(from_fn(request::observe))
                .wrap(from_fn(unread_body::close_connection))
                .configure(|config| routes::configure(config, &api_keys))
        })?;
        tracing::info!(%address, "ingest listening");
        // Stream responses never end by themselves: end them when the stop begins, or the
        // stop would wait for them until its timeout.
        let hub = Arc::clone(&state.hub);
        tokio::spawn(async move {
            stopping.notified().await;
            hub.close();
        });
        let workers = Workers::start(
            store,
            classifier,
            classify,
            metrics.classify.clone(),
            Arc::clone(&state.queue),
            Arc::clone(&state.classifier),
            Downstream {
                stream: announcer,
                cache,
            },
        );
        Ok(Self {
            address,
            server,
            state,
            workers,
            feed,
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
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let served = self.server.await;
        tracing::info!("HTTP server stopped; stopping classification workers");
        self.workers.stop().await;
        self.feed.abort_all();
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
