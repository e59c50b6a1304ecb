use std::net::SocketAddr;
use std::process::ExitCode;

// Parsing and classifying many small JSON documents is allocation-bound; mimalloc halves the
// time glibc's allocator takes there (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use mcp_classifier::server::http::{self, HttpOptions};
use mcp_classifier::server::oauth::{OAuthSettings, ResourceServer};
use mcp_classifier::server::{ClassifierServer, Database};
use service_kit::auth::{ExposeSecret, SecretString, secret};
use service_kit::telemetry::{self, LogFormat, error_chain};
use traffic_model::rules::RulesConfig;
use traffic_store::{DatabaseUrl, Store, StoreConfig};

/// MCP server classifying traffic-sensor readings (tools: classify, classify_by_id,
/// classify_batch).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,

    /// The events database read by `classify_by_id` (read-only): `postgres://…` or
    /// `sqlite://PATH`; unset: `smart_traffic.db` in the working directory, if it exists.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, value_parser = secret)]
    database_url: Option<SecretString>,

    /// Log output on stderr: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Speak MCP over stdin/stdout (for Claude Desktop and other MCP hosts). Logs go to stderr.
    Stdio,
    /// Serve MCP over Streamable HTTP at /mcp.
    Serve {
        /// Address to listen on. Binding beyond loopback without MCP_AUTH_TOKEN or OAuth logs a
        /// warning.
        #[arg(long, env = "MCP_BIND", default_value = "127.0.0.1:8001")]
        bind: SocketAddr,
        /// Bearer token every request must present (`Authorization: Bearer …`). With OAuth set
        /// too, this token still grants every scope (service-to-service calls).
        #[arg(long, env = "MCP_AUTH_TOKEN", hide_env_values = true, value_parser = secret)]
        auth_token: Option<SecretString>,
        /// OAuth: the authorization server's issuer identifier (the `iss` of its tokens). With
        /// MCP_OAUTH_JWKS and MCP_RESOURCE_URL, every request needs an access token it issued.
        #[arg(long, env = "MCP_OAUTH_ISSUER")]
        oauth_issuer: Option<String>,
        /// OAuth: the issuer's public keys (JWK Set), a file path or an https:// URL (http://
        /// only on a loopback host).
        #[arg(long, env = "MCP_OAUTH_JWKS")]
        oauth_jwks: Option<String>,
        /// OAuth: this server's public URL, e.g. https://traffic.example.com/mcp: the audience
        /// tokens must name and the `resource` of its protected resource metadata.
        #[arg(long, env = "MCP_RESOURCE_URL")]
        resource_url: Option<String>,
        /// Extra accepted `Host` names, comma-separated (loopback, the bind address and the
        /// host of MCP_RESOURCE_URL always are).
        #[arg(long, env = "MCP_ALLOWED_HOSTS", value_delimiter = ',')]
        allowed_hosts: Vec<String>,
        /// Extra accepted browser origins, comma-separated, e.g. `https://agent.example.com`.
        #[arg(long, env = "MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
        allowed_origins: Vec<String>,
        /// Largest request body in bytes.
        #[arg(long, env = "MCP_MAX_BODY_BYTES", default_value_t = http::DEFAULT_MAX_BODY_BYTES,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 30))]
        max_body_bytes: usize,
        /// Seconds a request body may take to arrive in full (then 408, connection closed).
        #[arg(long, env = "MCP_BODY_TIMEOUT_S", default_value_t = http::DEFAULT_BODY_TIMEOUT.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        body_timeout_s: u64,
    },
}

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Err(e) = telemetry::init(cli.log_format) {
        eprintln!("mcp-classifier: cannot start logging: {e}");
        return ExitCode::FAILURE;
    }
    // stdio is one ordered stream: a single thread serves it without cross-thread hand-offs.
    // HTTP serves many connections: one worker per core.
    let mut builder = match cli.mode {
        Mode::Stdio => tokio::runtime::Builder::new_current_thread(),
        Mode::Serve { .. } => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %error_chain(&*e), "mcp-classifier failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let server = ClassifierServer::new(
        RulesConfig::default(),
        open_database(cli.database_url.as_ref().map(ExposeSecret::expose_secret)),
    );
    match cli.mode {
        Mode::Stdio => mcp_classifier::server::stdio::serve(server).await,
        Mode::Serve {
            bind,
            auth_token,
            oauth_issuer,
            oauth_jwks,
            resource_url,
            allowed_hosts,
            allowed_origins,
            max_body_bytes,
            body_timeout_s,
        } => {
            let auth_token = auth_token.filter(|t| !t.expose_secret().is_empty());
            let oauth = match OAuthSettings::from_values(
                oauth_issuer.as_deref(),
                oauth_jwks.as_deref(),
                resource_url.as_deref(),
            )? {
                Some(settings) => {
                    tracing::info!(issuer = %settings.issuer, resource = %settings.resource.url,
                        "OAuth: every request needs an access token of this issuer for this resource");
                    Some(std::sync::Arc::new(ResourceServer::start(&settings).await?))
                }
                None => None,
            };
            if !bind.ip().is_loopback() && auth_token.is_none() && oauth.is_none() {
                tracing::warn!(%bind, "listening beyond loopback without MCP_AUTH_TOKEN or OAuth: anyone who can reach it may call the tools");
            }
            let listener = tokio::net::TcpListener::bind(bind).await?;
            let options = HttpOptions {
                auth_token,
                oauth,
                allowed_hosts,
                allowed_origins,
                max_body_bytes,
                body_timeout: std::time::Duration::from_secs(body_timeout_s),
            };
            http::serve(server, listener, options, telemetry::shutdown_signal()).await?;
            Ok(())
        }
    }
}

/// Longest an agent's query may run on the database.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The database for `classify_by_id`. Never created or migrated here: the classifier only
/// reads what ingest wrote. A missing default SQLite file means "no database".
fn open_database(raw: Option<&str>) -> Database {
    let url = match DatabaseUrl::parse(raw) {
        Ok(url) => url,
        Err(e) => return Database::Unavailable(e.to_string()),
    };
    if let DatabaseUrl::Sqlite(path) = &url
        && !path.exists()
    {
        let why = if raw.is_some_and(|r| !r.trim().is_empty()) {
            format!(
                "the SQLite file {} named by DATABASE_URL does not exist",
                path.display()
            )
        } else {
            format!(
                "no database configured (DATABASE_URL is unset and {} does not exist)",
                path.display()
            )
        };
        return Database::Unavailable(why);
    }
    match Store::connect(StoreConfig::reader(url, QUERY_TIMEOUT)) {
        Ok(store) => Database::Connected(store),
        Err(e) => Database::Unavailable(error_chain(&e)),
    }
}
