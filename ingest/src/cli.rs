//! Command line and environment configuration (`ingest --help`).

use std::error::Error;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mcp_classifier::store::{DatabaseUrl, Store, StoreConfig};

use mcp_classifier::telemetry::LogFormat;

/// Traffic-sensor ingest: stores readings durably and has them classified over MCP.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Log output: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, Subcommand)]
pub enum Command {
    /// Apply pending database migrations and exit.
    #[default]
    Migrate,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://user:pass@host/db` for PostgreSQL, `sqlite://PATH` for a SQLite file;
    /// unset: the SQLite file `smart_traffic.db` in the working directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Connections in the database pool (default 16 on PostgreSQL, 4 on SQLite).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", global = true)]
    pub database_max_connections: Option<usize>,

    /// Seconds to wait for a pooled connection before answering 503.
    #[arg(
        long,
        env = "DATABASE_ACQUIRE_TIMEOUT_S",
        default_value_t = 5,
        global = true
    )]
    pub database_acquire_timeout_s: u64,

    /// Longest a single SQL statement may run, in seconds.
    #[arg(
        long,
        env = "DATABASE_STATEMENT_TIMEOUT_S",
        default_value_t = 30,
        global = true
    )]
    pub database_statement_timeout_s: u64,
}

impl DatabaseArgs {
    pub fn store_config(&self) -> Result<StoreConfig, mcp_classifier::store::StoreError> {
        let url = DatabaseUrl::parse(self.database_url.as_deref())?;
        let mut config = StoreConfig::new(url);
        if let Some(n) = self.database_max_connections {
            config.max_connections = n.max(1);
        }
        config.acquire_timeout = Duration::from_secs(self.database_acquire_timeout_s.max(1));
        config.statement_timeout = Duration::from_secs(self.database_statement_timeout_s.max(1));
        Ok(config)
    }
}

pub type BoxError = Box<dyn Error + Send + Sync>;

/// `ingest migrate`: bring the schema up to date, for operators who migrate before deploying.
pub async fn migrate(database: &DatabaseArgs) -> Result<(), BoxError> {
    let config = database.store_config()?;
    tracing::info!(database = %config.url, "applying migrations");
    let store = Store::connect(config)?;
    let applied = store.migrate().await?;
    tracing::info!(count = applied.len(), "schema up to date");
    Ok(())
}
