use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use diesel::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures::FutureExt;
use secrecy::ExposeSecret;
use tracing::Instrument;

use super::write::Coalescer;
use super::{DatabaseUrl, StoreConfig, StoreError};

pub(super) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

#[derive(Clone)]
pub(super) enum Backend {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// The events store. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    pub(super) backend: Backend,
    pub(super) config: StoreConfig,
    /// Every operation runs as a task on this runtime (the one the store was opened on), never
    /// inside the caller's future; see [`Store::run`].
    runtime: tokio::runtime::Handle,
    /// Started on the first single insert; see [`super::write::Coalescer`].
    coalescer: Arc<OnceLock<Coalescer>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

/// Runs a block with `$conn` bound to a pooled connection and `events`, `queue`,
/// `classifications` and `event_states` naming the table modules of the store's backend. The
/// block is written once and compiled once per backend; the two-block form is for the few
/// statements whose SQL differs between the dialects.
macro_rules! with_conn {
    ($store:expr, |$conn:ident| $body:block) => {
        with_conn!($store, |$conn| postgres: $body, sqlite: $body)
    };
    ($store:expr, |$conn:ident| postgres: $pg:block, sqlite: $lite:block) => {
        match &$store.backend {
            $crate::backend::Backend::Postgres(pool) => with_conn!(@pooled pool, postgres, $conn, $pg),
            $crate::backend::Backend::Sqlite(pool) => with_conn!(@pooled pool, sqlite, $conn, $lite),
        }
    };
    // A connection from `$pool`, with `events` and its neighbours naming that backend's tables.
    // A connection the
    // server ended may not know it yet when it goes back to the pool (the client notices the
    // closed socket a moment later), and the pool's check on recycle would then hand it to the
    // next caller: one that took part in such a failure is closed instead of returned.
    (@pooled $pool:ident, $schema:ident, $conn:ident, $body:block) => {{
        #[allow(unused_imports)]
        use $crate::schema::$schema::{classifications, event_states, events, queue, sensors};
        let mut pooled = $pool.get().await?;
        let outcome = async {
            let $conn = &mut *pooled;
            Ok::<_, $crate::StoreError>($body)
        }
        .await;
        match outcome {
            Ok(value) => value,
            Err(error) => {
                if error.is_unavailable() {
                    drop(deadpool::managed::Object::take(pooled));
                }
                return Err(error.into());
            }
        }
    }};
}

impl Store {
    /// Builds the connection pool. Connections are opened lazily, so this succeeds even while
    /// the database is down; [`Store::ping`] or the first operation tells. Must be called
    /// from within a multi-threaded tokio runtime, which then runs every store operation.
    pub fn connect(config: StoreConfig) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StoreError::NoRuntime)?;
        let backend = match &config.url {
            DatabaseUrl::Postgres(url) => Backend::Postgres(pg_pool(url.expose_secret(), &config)?),
            DatabaseUrl::Sqlite(path) => Backend::Sqlite(sqlite_pool(path, &config)?),
        };
        Ok(Self {
            backend,
            config,
            runtime,
            coalescer: Arc::default(),
        })
    }

    pub(super) fn coalescer(&self) -> &Coalescer {
        self.coalescer.get_or_init(|| {
            // The dispatcher's own copy shares the pool but not this coalescer, so the
            // dispatcher stops when the last store that can send it work is dropped.
            let writer = Self {
                coalescer: Arc::default(),
                ..self.clone()
            };
            Coalescer::start(writer, &self.runtime)
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Runs `work` as a task of its own on the store's runtime and waits for it. If the caller
    /// is cancelled (a client hung up, a timeout fired), the work still runs to completion, so
    /// a write is never abandoned halfway and a connection is never dropped mid-statement.
    /// The latter matters beyond writes: diesel-async's SQLite wrapper, dropped mid-query,
    /// blocks in `block_in_place`, which panics on the current-thread runtimes actix-web uses.
    pub(super) async fn run<T, Fut>(&self, work: impl FnOnce(Store) -> Fut) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = self.runtime.spawn(work(self.clone()).in_current_span());
        task.await.map_err(StoreError::Task)?
    }
}

fn pool_builder_error(
    url: &str,
) -> impl FnOnce(diesel_async::pooled_connection::deadpool::BuildError) -> StoreError {
    let url = url.to_owned();
    move |source| StoreError::Pool { url, source }
}

fn pg_pool(url: &str, config: &StoreConfig) -> Result<Pool<AsyncPgConnection>, StoreError> {
    let statement_timeout_ms = config.statement_timeout.as_millis();
    let read_only = if config.read_only { "on" } else { "off" };
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    manager_config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            // No JIT: the planner's estimates for joins across day partitions put the
            // statement that records classifications past `jit_above_cost`, and compiling it
            // took 270 ms of CPU a run, ten times what running it takes.
            conn.batch_execute(&format!(
                "SET statement_timeout = {statement_timeout_ms}; \
                 SET default_transaction_read_only = {read_only}; \
                 SET jit = off; \
                 SET application_name = 'smart-traffic'"
            ))
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::new_with_config(url, manager_config);
    build_pool(Pool::builder(manager), config).map_err(pool_builder_error(
        &DatabaseUrl::Postgres(url.into()).to_string(),
    ))
}

fn sqlite_pool(
    path: &std::path::Path,
    config: &StoreConfig,
) -> Result<Pool<SqliteConn>, StoreError> {
    let busy_timeout_ms = config.statement_timeout.as_millis();
    let read_only = config.read_only;
    let mut manager_config = ManagerConfig::<SqliteConn>::default();
    manager_config.custom_setup = Box::new(move |path| {
        let path = path.to_owned();
        async move {
            let mut conn = SqliteConn::establish(&path).await?;
            conn.batch_execute(&sqlite_pragmas(busy_timeout_ms))
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            if read_only {
                conn.batch_execute("PRAGMA query_only = ON;")
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            }
            Ok(conn)
        }
        .boxed()
    });
    manager_config.recycling_method = RecyclingMethod::Fast;
    let display = path.display().to_string();
    let manager = AsyncDieselConnectionManager::new_with_config(display.clone(), manager_config);
    build_pool(Pool::builder(manager), config).map_err(pool_builder_error(&display))
}

/// Session settings for every SQLite connection. WAL lets readers run beside the writer;
/// `synchronous = FULL` makes a commit durable before it returns (2xx means durable).
pub(super) fn sqlite_pragmas(busy_timeout_ms: u128) -> String {
    format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; \
         PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON;"
    )
}

fn build_pool<C>(
    builder: diesel_async::pooled_connection::deadpool::PoolBuilder<C>,
    config: &StoreConfig,
) -> Result<Pool<C>, diesel_async::pooled_connection::deadpool::BuildError>
where
    C: diesel_async::pooled_connection::PoolableConnection + Send + 'static,
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager<Type = C>,
{
    let timeout: Option<Duration> = Some(config.acquire_timeout);
    builder
        .max_size(config.max_connections)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
}

/// The current time at the precision both backends store (microseconds), so that a value
/// written and read back compares equal.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// One field of every row, as a single array parameter for PostgreSQL's `unnest`.
pub(super) fn column<'a, R, T>(rows: &'a [R], value: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}
