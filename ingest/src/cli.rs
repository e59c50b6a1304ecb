//! Command line and environment configuration (`ingest --help`), read into [`Settings`].

use std::error::Error;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use service_kit::auth::{ExposeSecret, SecretString, secret};
use service_kit::telemetry::LogFormat;
use traffic_store::{DatabaseUrl, Store, StoreConfig};

use crate::auth::ApiKeys;
use crate::cache::CacheSettings;
use crate::classify::ClassifierLink;
use crate::rate_limit::RateLimit;
use crate::redis::RedisSettings;
use crate::retention::RetentionSettings;
use crate::settings::{DashboardSettings, HttpSettings, Limits, Settings, defaults};

/// Traffic-sensor ingest: stores readings durably and has them classified over MCP.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub serve: ServeArgs,

    /// Log output: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Default, Subcommand)]
pub enum Command {
    /// Serve the REST API (the default when no command is given).
    #[default]
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create the day partitions ahead, build the closed rollup spans and remove what
    /// DATA_RETENTION_DAYS and ROLLUP_RETENTION_DAYS let expire, then print what was done (for
    /// a scheduler; the service does the same every MAINTAIN_S).
    Maintain,
    /// Play synthetic traffic (rush hours, incidents, faulty loops) against a running service
    /// over its REST API, then compare the classifier's labels with the simulator's truth.
    Simulate(SimulateArgs),
}

/// Settings of `ingest simulate`: a heading of their own, apart from the service's settings
/// that every command accepts.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Simulation")]
pub struct SimulateArgs {
    /// Base URL of the running service.
    #[arg(long, env = "INGEST_URL", default_value = "http://127.0.0.1:8080")]
    pub url: reqwest::Url,

    /// Sensors in the network, 0.5–1 km apart along a few motorway corridors.
    #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=2000))]
    pub sensors: usize,

    /// Simulated time to play: whole minutes, e.g. `30m`, `2h`, `1h30m`, `1d` (at most 31d).
    #[arg(long, default_value = "2h", value_parser = crate::simulate::parse_span)]
    pub span: chrono::TimeDelta,

    /// Simulated seconds per second: 720 plays 2 h in 10 s, 1 plays in real time.
    #[arg(long, default_value_t = 720.0, value_parser = crate::simulate::parse_speedup)]
    pub speedup: f64,

    /// Seed of the network, traffic, incidents and faults: the same seed, options and start
    /// give the same readings.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Readings per request: 1 posts each to /v1/events, more go to /v1/events/batch.
    #[arg(long, default_value_t = 100, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub batch: usize,

    /// Start of simulated time, RFC 3339 (default: the span before now, so the data ends now).
    #[arg(long, value_parser = crate::simulate::parse_start)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,

    /// API key, sent as `Authorization: Bearer KEY` on writes and reads.
    #[arg(long, env = "INGEST_API_KEY", hide_env_values = true, value_parser = secret)]
    pub api_key: Option<SecretString>,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub concurrency: usize,
}

/// Settings of the HTTP service.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Binding beyond loopback with no API keys logs a warning.
    #[arg(
        long,
        env = "INGEST_BIND",
        default_value = defaults::BIND,
        global = true
    )]
    pub bind: std::net::SocketAddr,

    /// API keys accepted on writes (comma-separated), sent as `Authorization: Bearer KEY` or
    /// `X-API-Key: KEY`. Unset: writes need no key.
    #[arg(
        long,
        env = "INGEST_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        global = true,
        value_parser = secret
    )]
    pub api_keys: Vec<SecretString>,

    /// Require an API key on reads too.
    #[arg(
        long,
        env = "INGEST_READ_KEYS_REQUIRED",
        default_value_t = false,
        global = true
    )]
    pub read_keys_required: bool,

    /// Largest body of `POST /v1/events`, in bytes (after gzip decoding).
    #[arg(long, env = "INGEST_MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
    pub max_body_bytes: usize,

    /// Largest body of `POST /v1/events/batch`, in bytes (after gzip decoding).
    #[arg(long, env = "INGEST_MAX_BATCH_BYTES", default_value_t = defaults::MAX_BATCH_BYTES, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
    pub max_batch_bytes: usize,

    /// Seconds a request body may take to arrive in full; a slower one gets 408 and its
    /// connection is closed (stalled bodies must not hold connections).
    #[arg(
        long,
        env = "INGEST_BODY_TIMEOUT_S",
        default_value_t = defaults::BODY_TIMEOUT_S,
        global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_s: u64,

    /// Most client connections held open at once; past it new ones wait in the listen
    /// backlog. Default: nine tenths of the open-file limit (raised to its hard maximum at
    /// start-up), so that a flood of connections cannot starve the process of descriptors.
    #[arg(long, env = "INGEST_MAX_CONNECTIONS", global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub max_connections: Option<usize>,

    /// Skip applying migrations at start-up (for operators who run `ingest migrate`).
    #[arg(
        long,
        env = "INGEST_SKIP_MIGRATIONS",
        default_value_t = false,
        global = true
    )]
    pub skip_migrations: bool,

    /// Streamable HTTP endpoints of remote classifiers (comma-separated, used in turn), e.g.
    /// `http://classifier:8001/mcp`. Takes precedence over MCP_COMMAND.
    #[arg(long, env = "MCP_URL", value_delimiter = ',', global = true)]
    pub mcp_url: Vec<String>,

    /// Command starting a classifier that speaks MCP on its stdio, e.g. `mcp-classifier stdio`
    /// (split on whitespace). Unset with MCP_URL unset: the classifier runs in-process.
    #[arg(long, env = "MCP_COMMAND", global = true)]
    pub mcp_command: Option<String>,

    /// Bearer token sent to the MCP_URL classifiers.
    #[arg(
        long,
        env = "MCP_AUTH_TOKEN",
        hide_env_values = true,
        global = true,
        value_parser = secret
    )]
    pub mcp_auth_token: Option<SecretString>,

    /// Classification workers (default: one per core, at least 2); 0 pauses classification
    /// (readings stay pending).
    #[arg(long, env = "CLASSIFY_WORKERS", global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1024))]
    pub classify_workers: Option<usize>,

    /// Events a worker claims per round.
    #[arg(long, env = "CLASSIFY_BATCH", default_value_t = defaults::CLASSIFY_BATCH, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub classify_batch: usize,

    /// Seconds a claim stays valid before other workers may take the events over.
    #[arg(long, env = "CLASSIFY_LEASE_S", default_value_t = defaults::CLASSIFY_LEASE_S, global = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub classify_lease_s: u64,

    /// Seconds a classifier call may take.
    #[arg(long, env = "CLASSIFY_TIMEOUT_S", default_value_t = defaults::CLASSIFY_TIMEOUT_S, global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub classify_timeout_s: u64,

    /// Attempts after which a reading the classifier rejects ends `failed`.
    #[arg(
        long,
        env = "CLASSIFY_MAX_ATTEMPTS",
        default_value_t = defaults::CLASSIFY_MAX_ATTEMPTS,
        global = true, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub classify_max_attempts: u32,

    /// Seconds between safety-net polls of the queue (new readings wake workers at once).
    #[arg(long, env = "CLASSIFY_POLL_S", default_value_t = defaults::CLASSIFY_POLL_S, global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub classify_poll_s: u64,

    /// Seconds between checks of the queue table's dead rows (PostgreSQL): once enough have
    /// piled up it is vacuumed, whether or not autovacuum gets to it; 0 leaves it to autovacuum.
    #[arg(long, env = "QUEUE_VACUUM_S", default_value_t = defaults::QUEUE_VACUUM_S, global = true, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub queue_vacuum_s: u64,

    /// Seconds between builds of the closed 5-minute and hourly rollup spans that series are
    /// summed from (PostgreSQL); 0 leaves building to other replicas.
    #[arg(long, env = "ROLLUP_BUILD_S", default_value_t = defaults::ROLLUP_BUILD_S, global = true, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub rollup_build_s: u64,

    /// Whole UTC days of readings kept besides today's; older ones are removed (PostgreSQL:
    /// whole day partitions dropped) and refused when they arrive. Unset: all are kept.
    #[arg(long, env = "DATA_RETENTION_DAYS", global = true, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub data_retention_days: Option<u32>,

    /// Whole UTC days of 5-minute and hourly rollups kept (PostgreSQL), at least
    /// DATA_RETENTION_DAYS: series older than the readings kept are summed from them. Unset:
    /// all are kept.
    #[arg(long, env = "ROLLUP_RETENTION_DAYS", global = true, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub rollup_retention_days: Option<u32>,

    /// Days of day partitions created ahead of today (PostgreSQL).
    #[arg(long, env = "PARTITIONS_AHEAD_DAYS", default_value_t = defaults::PARTITIONS_AHEAD_DAYS, global = true, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub partitions_ahead_days: u32,

    /// Seconds between upkeep passes: partitions created ahead, expired data removed; 0
    /// leaves them to other replicas or to `ingest maintain` run by a scheduler.
    #[arg(long, env = "MAINTAIN_S", default_value_t = defaults::MAINTAIN_S, global = true, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub maintain_s: u64,

    /// Milliseconds a worker waits after a claim that did not fill a batch, so that the next
    /// claim gathers more readings (fewer, larger claims; adds at most this much lag).
    #[arg(long, env = "CLASSIFY_GATHER_MS", default_value_t = defaults::CLASSIFY_GATHER_MS, global = true, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub classify_gather_ms: u64,

    /// Minutes of earlier readings sent as history with fresh readings.
    #[arg(
        long,
        env = "CLASSIFY_HISTORY_MINUTES",
        default_value_t = defaults::CLASSIFY_HISTORY_MINUTES,
        global = true, value_parser = clap::value_parser!(u64).range(0..=44_640))]
    pub classify_history_minutes: u64,

    /// Most earlier readings sent as history per sensor lane (the sensor-health rules look at
    /// the last few; `card_off` needs its readings to span an hour).
    #[arg(
        long,
        env = "CLASSIFY_HISTORY_READINGS",
        default_value_t = defaults::CLASSIFY_HISTORY_READINGS,
        global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1000))]
    pub classify_history_readings: usize,

    /// `redis://[user:password@]host:port[/db]`: Redis for the read cache, the rate limits and
    /// the live stream's fan-out across replicas. Unset: each process on its own, no cache.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        global = true,
        value_parser = secret
    )]
    pub redis_url: Option<SecretString>,

    /// Milliseconds a Redis command may take before the request goes on without it.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = defaults::REDIS_TIMEOUT_MS, global = true, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_timeout_ms: u64,

    /// Connections to Redis.
    #[arg(long, env = "REDIS_CONNECTIONS", default_value_t = defaults::REDIS_CONNECTIONS, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub redis_connections: usize,

    /// Prefix of every Redis key and channel: deployments sharing one Redis need one each.
    #[arg(long, env = "REDIS_PREFIX", default_value = defaults::REDIS_PREFIX, global = true)]
    pub redis_prefix: String,

    /// Seconds a cached answer is kept (writes retire it at once; this bounds what a write
    /// whose retirement Redis missed could cost).
    #[arg(long, env = "CACHE_TTL_S", default_value_t = defaults::CACHE_TTL_S, global = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub cache_ttl_s: u64,

    /// Milliseconds a cached answer that depends on the clock (the state now, ages, windows
    /// ending now) is kept.
    #[arg(long, env = "CACHE_CLOCK_TTL_MS", default_value_t = defaults::CACHE_CLOCK_TTL_MS, global = true, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub cache_clock_ttl_ms: u64,

    /// Seconds after which a series bucket's readings are taken as settled: the cache keeps
    /// such buckets until a late write into them (a reading that started more than half this
    /// long ago, its classification or re-queue, or the sensor's metadata) retires them
    #[arg(long, env = "CACHE_SETTLED_S", default_value_t = defaults::CACHE_SETTLED_S, global = true, value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub cache_settled_s: u64,

    /// Readings a second each sender (API key, or address when keys are off) may write; a
    /// batch counts its readings. Past it: 429 with Retry-After. Counted in Redis when
    /// REDIS_URL is set (shared by the replicas), else in each process. Unset: no limit.
    #[arg(long, env = "INGEST_RATE_LIMIT", global = true, value_parser = positive_rate)]
    pub rate_limit: Option<f64>,

    /// Readings a sender may send at once beyond INGEST_RATE_LIMIT (default: one second's).
    #[arg(long, env = "INGEST_RATE_BURST", global = true, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub rate_burst: Option<u32>,

    /// The dashboard map's tile URL template ({z}, {x}, {y}, {s}); empty: sensors on a plain
    /// background, nothing fetched from elsewhere
    #[arg(long, env = "DASHBOARD_TILES_URL", default_value = defaults::DASHBOARD_TILES_URL, global = true)]
    pub dashboard_tiles_url: String,

    /// The credit the tiles' provider asks for, shown on the map
    #[arg(long, env = "DASHBOARD_TILES_ATTRIBUTION", default_value = defaults::DASHBOARD_TILES_ATTRIBUTION, global = true)]
    pub dashboard_tiles_attribution: String,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "INGEST_HTTP_WORKERS", global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=512))]
    pub http_workers: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://user:pass@host/db` for PostgreSQL, `sqlite://PATH` for a SQLite file;
    /// unset: the SQLite file `smart_traffic.db` in the working directory.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_parser = secret
    )]
    pub database_url: Option<SecretString>,

    /// Connections in the database pool (default 16 on PostgreSQL, 4 on SQLite).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub database_max_connections: Option<usize>,

    /// Seconds to wait for a pooled connection before answering 503.
    #[arg(
        long,
        env = "DATABASE_ACQUIRE_TIMEOUT_S",
        default_value_t = 5,
        global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub database_acquire_timeout_s: u64,

    /// Longest a single SQL statement may run, in seconds.
    #[arg(
        long,
        env = "DATABASE_STATEMENT_TIMEOUT_S",
        default_value_t = 30,
        global = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub database_statement_timeout_s: u64,
}

impl DatabaseArgs {
    pub fn store_config(&self) -> Result<StoreConfig, traffic_store::StoreError> {
        let url = DatabaseUrl::parse(self.database_url.as_ref().map(ExposeSecret::expose_secret))?;
        let mut config = StoreConfig::new(url);
        if let Some(n) = self.database_max_connections {
            config.max_connections = n;
        }
        config.acquire_timeout = Duration::from_secs(self.database_acquire_timeout_s);
        config.statement_timeout = Duration::from_secs(self.database_statement_timeout_s);
        Ok(config)
    }
}

impl ServeArgs {
    /// What is kept, and how often the upkeep runs.
    pub fn retention(&self) -> RetentionSettings {
        RetentionSettings {
            readings_days: self.data_retention_days,
            rollups_days: self.rollup_retention_days,
            partitions_ahead_days: self.partitions_ahead_days,
            period: Duration::from_secs(self.maintain_s),
        }
    }

    /// The settings these flags describe, over the database `store`.
    pub fn settings(self, store: StoreConfig) -> Settings {
        let seconds = Duration::from_secs;
        let mut settings = Settings::new(store);
        let retention = self.retention();
        settings.skip_migrations = self.skip_migrations;
        settings.http = HttpSettings {
            bind: self.bind,
            workers: self.http_workers.unwrap_or(settings.http.workers),
            max_connections: self.max_connections,
            limits: Limits {
                max_body_bytes: self.max_body_bytes,
                max_batch_bytes: self.max_batch_bytes,
                body_timeout: seconds(self.body_timeout_s),
            },
        };
        settings.classifier = classifier_link(self.mcp_url, self.mcp_command, self.mcp_auth_token);
        settings.api_keys = ApiKeys::new(self.api_keys, self.read_keys_required);
        let classify = &mut settings.classify;
        classify.workers = self.classify_workers.unwrap_or(classify.workers);
        classify.batch_size = self.classify_batch;
        classify.lease = seconds(self.classify_lease_s);
        classify.call_timeout = seconds(self.classify_timeout_s);
        classify.poll_interval = seconds(self.classify_poll_s);
        classify.gather = Duration::from_millis(self.classify_gather_ms);
        classify.history_window = seconds(self.classify_history_minutes.saturating_mul(60));
        classify.history_readings = self.classify_history_readings;
        classify.queue_vacuum = seconds(self.queue_vacuum_s);
        classify.rollup_build = seconds(self.rollup_build_s);
        classify.retention = retention;
        classify.retry.max_attempts = self.classify_max_attempts;
        settings.redis = self
            .redis_url
            .filter(|url| !url.expose_secret().is_empty())
            .map(|url| RedisSettings {
                url,
                timeout: Duration::from_millis(self.redis_timeout_ms),
                connections: self.redis_connections,
                prefix: self.redis_prefix,
            });
        settings.rate_limit = self.rate_limit.map(|per_second| RateLimit {
            per_second,
            burst: self
                .rate_burst
                .unwrap_or_else(|| per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32),
        });
        settings.dashboard = DashboardSettings {
            tiles_url: self.dashboard_tiles_url,
            tiles_attribution: self.dashboard_tiles_attribution,
        };
        settings.cache = CacheSettings {
            stored: seconds(self.cache_ttl_s),
            clock: Duration::from_millis(self.cache_clock_ttl_ms),
            settled: seconds(self.cache_settled_s),
        };
        settings
    }
}

/// The classifier's link: MCP_URL, else MCP_COMMAND, else in-process.
fn classifier_link(
    mcp_url: Vec<String>,
    mcp_command: Option<String>,
    token: Option<SecretString>,
) -> ClassifierLink {
    let urls: Vec<String> = mcp_url
        .iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    let command: Vec<String> = mcp_command
        .as_deref()
        .map(|c| c.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if !urls.is_empty() {
        if !command.is_empty() {
            tracing::warn!("both MCP_URL and MCP_COMMAND are set: using MCP_URL");
        }
        let token = token.filter(|t| !t.expose_secret().is_empty());
        ClassifierLink::Http { urls, token }
    } else if !command.is_empty() {
        ClassifierLink::Command(command)
    } else {
        ClassifierLink::InProcess
    }
}

pub type BoxError = Box<dyn Error + Send + Sync>;

/// A rate in readings per second: finite and above zero.
fn positive_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1e9 => Ok(rate),
        _ => Err(format!(
            "`{raw}` is not a rate above 0 (readings per second)"
        )),
    }
}

/// `ingest serve`: run the service until SIGTERM or SIGINT.
pub async fn serve(database: &DatabaseArgs, args: ServeArgs) -> Result<(), BoxError> {
    let settings = args.settings(database.store_config()?);
    let application = crate::app::Application::build(settings).await?;
    application.run_until_stopped().await?;
    Ok(())
}

/// `ingest maintain`: one upkeep pass, reported as JSON on standard output.
pub async fn maintain(database: &DatabaseArgs, args: &ServeArgs) -> Result<(), BoxError> {
    let retention = args.retention();
    retention.check()?;
    let store = Store::connect(database.store_config()?)?;
    let rollups_built_until = crate::classify::maintenance::build_closed_rollups(&store).await?;
    let done = crate::retention::upkeep(&store, &retention, chrono::Utc::now()).await?;
    let report = MaintainReport {
        rollups_built_until,
        done,
        retained: store.retained().await?,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// What `ingest maintain` prints.
#[derive(serde::Serialize)]
struct MaintainReport {
    rollups_built_until: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(flatten)]
    done: crate::retention::Upkeep,
    retained: traffic_store::Retained,
}

/// `ingest migrate`: bring the schema up to date, for operators who migrate before deploying.
pub async fn migrate(database: &DatabaseArgs) -> Result<(), BoxError> {
    let config = database.store_config()?;
    tracing::info!(database = %config.url, "applying migrations");
    let store = Store::connect(config)?;
    let applied = store.migrate().await?;
    tracing::info!(count = applied.len(), "schema up to date");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{ClassifierLink, Cli, ExposeSecret};

    #[test]
    fn a_value_out_of_range_is_refused_naming_the_setting_and_its_range() {
        for (flag, value, range) in [
            ("--classify-batch", "0", "1..=10000"),
            ("--classify-batch", "20000", "1..=10000"),
            ("--classify-lease-s", "0", "1..=86400"),
            ("--database-max-connections", "0", "1..=10000"),
            ("--body-timeout-s", "0", "1..=3600"),
            ("--http-workers", "0", "1..=512"),
        ] {
            let error = Cli::try_parse_from(["ingest", flag, value])
                .expect_err("out of range")
                .to_string();
            assert!(
                error.contains(flag) && error.contains(range),
                "{flag} {value}: {error}"
            );
        }
    }

    #[test]
    fn values_at_the_ends_of_their_ranges_are_taken_as_given() {
        let cli = Cli::try_parse_from([
            "ingest",
            "--classify-batch",
            "10000",
            "--classify-workers",
            "0",
        ])
        .expect("in range");
        assert_eq!(cli.serve.classify_batch, 10_000);
        assert_eq!(cli.serve.classify_workers, Some(0));
    }

    fn settings(args: &[&str]) -> crate::settings::Settings {
        let cli = Cli::try_parse_from(args).expect("valid flags");
        let store = cli.database.store_config().expect("a database URL");
        cli.serve.settings(store)
    }

    #[test]
    fn no_flags_give_the_default_settings() {
        let mut given = settings(&["ingest"]);
        // A setting clap reads from the environment like any other; `.ci/run` exports it for
        // the suite.
        let exported = std::env::var("REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty());
        let read = given.redis.take().map(|r| r.url.expose_secret().to_owned());
        assert_eq!(read, exported.map(|u| u.trim().to_owned()));
        let default = crate::settings::Settings::new(given.store.clone());
        assert_eq!(format!("{given:?}"), format!("{default:?}"));
    }

    #[test]
    fn mcp_url_wins_over_mcp_command_and_carries_the_token() {
        let given = settings(&[
            "ingest",
            "--mcp-url",
            "http://a/mcp, ,http://b/mcp",
            "--mcp-command",
            "mcp-classifier stdio",
            "--mcp-auth-token",
            "tok",
        ]);
        let ClassifierLink::Http { urls, token } = given.classifier else {
            panic!("not HTTP: {:?}", given.classifier);
        };
        assert_eq!(urls, ["http://a/mcp", "http://b/mcp"]);
        assert_eq!(
            token.map(|t| t.expose_secret().to_owned()).as_deref(),
            Some("tok")
        );
        let given = settings(&["ingest", "--mcp-command", " mcp-classifier  stdio "]);
        assert!(
            matches!(&given.classifier, ClassifierLink::Command(argv) if argv == &["mcp-classifier", "stdio"]),
            "{:?}",
            given.classifier
        );
    }

    #[test]
    fn secrets_never_show_in_the_settings_debug_output() {
        let given = settings(&[
            "ingest",
            "--api-keys",
            "key-one-1f2e,key-two-3d4c",
            "--database-url",
            "postgres://app:pw-9a8b@db/traffic",
            "--mcp-url",
            "http://c/mcp",
            "--mcp-auth-token",
            "tok-5e6f",
            "--redis-url",
            "redis://:rpw-7c6d@cache:6379",
        ]);
        let shown = format!("{given:?}");
        for secret in [
            "key-one-1f2e",
            "key-two-3d4c",
            "pw-9a8b",
            "tok-5e6f",
            "rpw-7c6d",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
