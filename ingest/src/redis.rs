//! The Redis connection (fred), shared by the response cache, the rate limits and the live
//! stream's fan-out: a pool of clients that reconnect by themselves, commands that fail at once
//! while the connection is down and give up after a timeout. Redis only ever speeds things up or
//! shares them across replicas: a failed command makes its caller fall back to what it does
//! without Redis, and an outage is logged once, when it begins, and once when it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fred::prelude::{
    Builder, ClientLike, Config, Error as RedisError, Options, Pool, ReconnectPolicy,
};
use prometheus::IntCounter;
use secrecy::{ExposeSecret, SecretString};

/// Where Redis is and how long a command may take.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]` (a secret: it may hold a password).
    pub url: SecretString,
    /// Longest wait for one command; past it the caller goes on without Redis.
    pub timeout: Duration,
    /// Connections in the pool.
    pub connections: usize,
    /// Prefix of every key and channel.
    pub prefix: String,
}

/// While Redis is down, how often one caller tries it again (the others go on without it, so
/// that an outage costs requests nothing, not a timeout each).
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// How long start-up waits for the first connections.
const CONNECT_WAIT: Duration = Duration::from_secs(2);

/// How every client of ours connects: reconnecting forever, with timeouts.
fn builder(settings: &RedisSettings) -> Result<Builder, RedisError> {
    let config = Config::from_url(settings.url.expose_secret())?;
    let mut builder = Builder::from_config(config);
    builder
        .with_config(|config| config.fail_fast = false)
        .with_connection_config(|config| {
            config.connection_timeout = settings.timeout.max(Duration::from_secs(1));
            config.internal_command_timeout = settings.timeout.max(Duration::from_secs(1));
        })
        .with_performance_config(|config| config.default_command_timeout = settings.timeout)
        // Forever, from 50 ms up to 2 s between attempts.
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 2000, 2));
    Ok(builder)
}

/// A pool of Redis connections and what is known of their health.
#[derive(Clone)]
pub struct Redis {
    pool: Pool,
    settings: Arc<RedisSettings>,
    prefix: Arc<str>,
    options: Options,
    down: Arc<AtomicBool>,
    /// When a caller last tried Redis while it was down, in milliseconds since `started`.
    tried: Arc<AtomicU64>,
    started: Instant,
    errors: IntCounter,
}

/// Redis as `/v1/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedisStatus {
    /// The last command succeeded.
    Up,
    /// The last command failed: every request is answered from the database meanwhile.
    Degraded,
}

impl Redis {
    /// Builds the pool and starts connecting in the background: a Redis that is down at start-up
    /// is a degraded service, not a failed start. `errors` counts failed commands.
    pub async fn connect(settings: &RedisSettings, errors: IntCounter) -> Result<Self, RedisError> {
        let pool = builder(settings)?.build_pool(settings.connections.max(1))?;
        pool.connect();
        let redis = Self {
            pool,
            settings: Arc::new(settings.clone()),
            prefix: settings.prefix.as_str().into(),
            options: Options {
                fail_fast: true,
                max_attempts: Some(1),
                timeout: Some(settings.timeout),
                ..Options::default()
            },
            down: Arc::new(AtomicBool::new(false)),
            tried: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            errors,
        };
        // Wait a moment for the first connections, so that a Redis that is up serves the
        // first requests; one that is down is tried again in the background.
        let connected = tokio::time::timeout(CONNECT_WAIT, redis.pool.wait_for_connect()).await;
        match connected {
            Ok(Ok(())) => tracing::info!("connected to Redis"),
            Ok(Err(e)) => redis.failed(&e),
            Err(_) => redis.failed(&RedisError::new(
                fred::error::ErrorKind::Timeout,
                "no connection to Redis yet",
            )),
        }
        Ok(redis)
    }

    /// A client of the pool whose commands fail at once while disconnected and give up after
    /// the timeout; `None` while Redis is down, but for one caller a second, who tries it again.
    pub fn commands(&self) -> Option<fred::clients::WithOptions<fred::clients::Client>> {
        if self.down.load(Ordering::Relaxed) {
            let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let last = self.tried.load(Ordering::Relaxed);
            let due = now.saturating_sub(last) >= RETRY_EVERY.as_millis() as u64;
            if !due
                || self
                    .tried
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return None;
            }
        }
        Some(self.pool.next().with_options(&self.options))
    }

    /// `name` in this deployment's key space.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// A client of its own for `SUBSCRIBE` (a subscribed connection can do nothing else),
    /// connecting in the background and subscribing again after each reconnection.
    pub fn subscriber(&self) -> Result<fred::clients::SubscriberClient, RedisError> {
        let subscriber = builder(&self.settings)?.build_subscriber_client()?;
        subscriber.connect();
        subscriber.manage_subscriptions();
        Ok(subscriber)
    }

    /// Notes how a command went and returns its value, if any: the first failure of an outage
    /// and the first success after it are logged, every failure is counted.
    pub fn outcome<T>(&self, what: &'static str, result: Result<T, RedisError>) -> Option<T> {
        match result {
            Ok(value) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(what, "Redis answers again");
                }
                Some(value)
            }
            Err(e) => {
                tracing::debug!(what, error = %e, "Redis command failed");
                self.failed(&e);
                None
            }
        }
    }

    fn failed(&self, error: &RedisError) {
        self.errors.inc();
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %error, "Redis is unavailable: answering from the database and limiting in this process until it returns");
        }
    }

    /// Asks Redis whether it answers, within the command timeout.
    pub async fn probe(&self) -> RedisStatus {
        let commands = self.pool.next().with_options(&self.options);
        let answered: Result<(), RedisError> = commands.ping(None).await;
        self.outcome("ping", answered);
        self.status()
    }

    pub fn status(&self) -> RedisStatus {
        if self.down.load(Ordering::Relaxed) {
            RedisStatus::Degraded
        } else {
            RedisStatus::Up
        }
    }
}
