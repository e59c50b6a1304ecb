use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::StoreError;

/// Where the events live, chosen by the scheme of `DATABASE_URL`.
#[derive(Clone)]
pub enum DatabaseUrl {
    /// `postgres://…` or `postgresql://…`, passed to the driver unchanged; a secret, since it
    /// may hold a password.
    Postgres(SecretString),
    /// `sqlite://PATH` (relative or absolute), or the default file when `DATABASE_URL` is unset.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// The SQLite file used when `DATABASE_URL` is unset or empty.
    pub const DEFAULT_SQLITE_PATH: &'static str = "smart_traffic.db";

    pub fn parse(raw: Option<&str>) -> Result<Self, StoreError> {
        let raw = raw.map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return Ok(Self::Sqlite(PathBuf::from(Self::DEFAULT_SQLITE_PATH)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.into()));
        }
        match raw.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
            _ => Err(StoreError::InvalidUrl(redact(raw))),
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

/// Shows the URL without its password, fit for logs.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(url) => f.write_str(&redact(url.expose_secret())),
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Postgres(a), Self::Postgres(b)) => a.expose_secret() == b.expose_secret(),
            (Self::Sqlite(a), Self::Sqlite(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for DatabaseUrl {}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Replaces the password of `scheme://user:password@host…` with `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// How to reach the database and how patient to be with it.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: DatabaseUrl,
    /// Pool size. SQLite serialises writers anyway; a few connections serve concurrent readers.
    pub max_connections: usize,
    /// How long an operation waits for a pooled connection (and for a new one to connect).
    pub acquire_timeout: Duration,
    /// Longest a single statement may run (PostgreSQL `statement_timeout`, SQLite `busy_timeout`).
    pub statement_timeout: Duration,
    /// Every connection refuses writes (PostgreSQL `default_transaction_read_only`, SQLite
    /// `query_only`): for a reader such as the MCP server, whose callers must never write or
    /// hold the locks a write takes.
    pub read_only: bool,
}

impl StoreConfig {
    pub fn new(url: DatabaseUrl) -> Self {
        let max_connections = match url {
            DatabaseUrl::Postgres(_) => 16,
            DatabaseUrl::Sqlite(_) => 4,
        };
        Self {
            url,
            max_connections,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            read_only: false,
        }
    }

    /// A reader's configuration: read-only connections whose statements stop after
    /// `statement_timeout`.
    pub fn reader(url: DatabaseUrl, statement_timeout: Duration) -> Self {
        Self {
            statement_timeout,
            read_only: true,
            ..Self::new(url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_or_empty_url_means_the_default_sqlite_file() {
        let default = DatabaseUrl::Sqlite(PathBuf::from("smart_traffic.db"));
        assert_eq!(DatabaseUrl::parse(None).unwrap(), default);
        assert_eq!(DatabaseUrl::parse(Some("  ")).unwrap(), default);
    }

    #[test]
    fn scheme_selects_the_backend() {
        assert_eq!(
            DatabaseUrl::parse(Some("postgres://u@h/db")).unwrap(),
            DatabaseUrl::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            DatabaseUrl::parse(Some("postgresql://h/db"))
                .unwrap()
                .backend_name(),
            "postgres"
        );
        assert_eq!(
            DatabaseUrl::parse(Some("sqlite:///var/lib/st.db")).unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("/var/lib/st.db"))
        );
        assert_eq!(
            DatabaseUrl::parse(Some("sqlite://data/st.db")).unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("data/st.db"))
        );
    }

    #[test]
    fn other_schemes_are_refused_without_echoing_a_password() {
        let err = DatabaseUrl::parse(Some("mysql://root:hunter2@h/db")).unwrap_err();
        assert!(matches!(err, StoreError::InvalidUrl(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(DatabaseUrl::parse(Some("sqlite://")).is_err());
    }

    #[test]
    fn display_hides_the_password() {
        let url = DatabaseUrl::parse(Some(
            "postgres://app:s3cret@db:5432/traffic?sslmode=require",
        ))
        .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db:5432/traffic?sslmode=require"
        );
    }
}
