//! Command line and environment configuration (`ingest --help`).

use std::error::Error;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use traffic_store::{DatabaseUrl, Store, StoreConfig};

use service_kit::telemetry::LogFormat;

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

#[derive(Debug, Clone, Copy, Default, Subcommand)]
pub enum Command {
    /// Serve the REST API (the default when no command is given).
    #[default]
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

/// Settings of the HTTP service.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Binding beyond loopback with no API keys logs a warning.
    #[arg(
        long,
        env = "INGEST_BIND",
        default_value = "127.0.0.1:8080",
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
        global = true
    )]
    pub api_keys: Vec<String>,

    /// Require an API key on reads too.
    #[arg(
        long,
        env = "INGEST_READ_KEYS_REQUIRED",
        default_value_t = false,
        global = true
    )]
    pub read_keys_required: bool,

    /// Largest body of `POST /v1/events`, in bytes (after gzip decoding).
    #[arg(long, env = "INGEST_MAX_BODY_BYTES", default_value_t = 64 * 1024, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
    pub max_body_bytes: usize,

    /// Largest body of `POST /v1/events/batch`, in bytes (after gzip decoding).
    #[arg(long, env = "INGEST_MAX_BATCH_BYTES", default_value_t = 16 * 1024 * 1024, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
    pub max_batch_bytes: usize,

    /// Seconds a request body may take to arrive in full; a slower one gets 408 and its
    /// connection is closed (stalled bodies must not hold connections).
    #[arg(
        long,
        env = "INGEST_BODY_TIMEOUT_S",
        default_value_t = 30,
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
    #[arg(long, env = "MCP_AUTH_TOKEN", hide_env_values = true, global = true)]
    pub mcp_auth_token: Option<String>,

    /// Classification workers (default: one per core, at least 2); 0 pauses classification
    /// (readings stay pending).
    #[arg(long, env = "CLASSIFY_WORKERS", global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1024))]
    pub classify_workers: Option<usize>,

    /// Events a worker claims per round.
    #[arg(long, env = "CLASSIFY_BATCH", default_value_t = 1000, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub classify_batch: usize,

    /// Seconds a claim stays valid before other workers may take the events over.
    #[arg(long, env = "CLASSIFY_LEASE_S", default_value_t = 60, global = true, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub classify_lease_s: u64,

    /// Seconds a classifier call may take.
    #[arg(long, env = "CLASSIFY_TIMEOUT_S", default_value_t = 15, global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub classify_timeout_s: u64,

    /// Attempts after which a reading the classifier rejects ends `failed`.
    #[arg(
        long,
        env = "CLASSIFY_MAX_ATTEMPTS",
        default_value_t = 5,
        global = true, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub classify_max_attempts: u32,

    /// Seconds between safety-net polls of the queue (new readings wake workers at once).
    #[arg(long, env = "CLASSIFY_POLL_S", default_value_t = 5, global = true, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub classify_poll_s: u64,

    /// Milliseconds a worker waits after a claim that did not fill a batch, so that the next
    /// claim gathers more readings (fewer, larger claims; adds at most this much lag).
    #[arg(long, env = "CLASSIFY_GATHER_MS", default_value_t = 50, global = true, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub classify_gather_ms: u64,

    /// Minutes of earlier readings sent as history with fresh readings.
    #[arg(
        long,
        env = "CLASSIFY_HISTORY_MINUTES",
        default_value_t = 70,
        global = true, value_parser = clap::value_parser!(u64).range(0..=44_640))]
    pub classify_history_minutes: u64,

    /// Most earlier readings sent as history per sensor lane (the sensor-health rules look at
    /// the last few; `card_off` needs its readings to span an hour).
    #[arg(
        long,
        env = "CLASSIFY_HISTORY_READINGS",
        default_value_t = 24,
        global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1000))]
    pub classify_history_readings: usize,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "INGEST_HTTP_WORKERS", global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=512))]
    pub http_workers: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://user:pass@host/db` for PostgreSQL, `sqlite://PATH` for a SQLite file;
    /// unset: the SQLite file `smart_traffic.db` in the working directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

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
        let url = DatabaseUrl::parse(self.database_url.as_deref())?;
        let mut config = StoreConfig::new(url);
        if let Some(n) = self.database_max_connections {
            config.max_connections = n;
        }
        config.acquire_timeout = Duration::from_secs(self.database_acquire_timeout_s);
        config.statement_timeout = Duration::from_secs(self.database_statement_timeout_s);
        Ok(config)
    }
}

pub type BoxError = Box<dyn Error + Send + Sync>;

/// `ingest serve`: run the service until SIGTERM or SIGINT.
pub async fn serve(database: &DatabaseArgs, args: ServeArgs) -> Result<(), BoxError> {
    let application = crate::app::Application::build(database.store_config()?, args).await?;
    application.run_until_stopped().await?;
    Ok(())
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

    use super::Cli;

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
}
