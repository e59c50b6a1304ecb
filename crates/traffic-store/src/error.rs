use diesel_async::pooled_connection::deadpool::PoolError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DATABASE_URL {0:?} is neither postgres://… nor sqlite://PATH")]
    InvalidUrl(String),
    #[error("could not create the connection pool for {url}")]
    Pool {
        url: String,
        #[source]
        source: diesel_async::pooled_connection::deadpool::BuildError,
    },
    #[error("database unavailable: no connection within the timeout")]
    Unavailable(#[source] PoolError),
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    #[error("could not connect to the database to run migrations")]
    MigrationConnect(#[source] diesel::ConnectionError),
    #[error("running database migrations failed: {0}")]
    Migration(String),
    #[error("event {id} holds values the application does not accept: {reason}")]
    CorruptRow { id: i64, reason: String },
    /// Sensor metadata that breaks a rule (a merge patch whose result does): nothing written.
    #[error(transparent)]
    InvalidMetadata(traffic_model::sensor::MetadataError),
    #[error("invalid cursor: {0}")]
    InvalidCursor(&'static str),
    #[error("the store must be opened inside a tokio runtime")]
    NoRuntime,
    #[error("the store's writer has stopped (its runtime is shutting down)")]
    Stopped,
    #[error("the database task did not finish")]
    Task(#[source] tokio::task::JoinError),
    /// One failure of a statement that served several readings, given to each of them.
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        StoreError::Unavailable(e)
    }
}

impl StoreError {
    /// True when the database could not be reached or could not serve the statement for a
    /// reason of its own (shutting down, restarting, out of connections, a statement
    /// cancelled), as opposed to a query it refused; such failures are worth retrying and
    /// map to 503 over HTTP.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            StoreError::Shared(inner) => inner.is_unavailable(),
            StoreError::Unavailable(_) | StoreError::MigrationConnect(_) => true,
            StoreError::Query(Error::BrokenTransactionManager) => true,
            StoreError::Query(Error::DatabaseError(kind, info)) => match kind {
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ReadOnlyTransaction
                | DatabaseErrorKind::SerializationFailure => true,
                // diesel folds every other SQLSTATE into `Unknown` and keeps only the message.
                DatabaseErrorKind::Unknown => is_operational(info.message()),
                _ => false,
            },
            _ => false,
        }
    }
}

impl StoreError {
    /// True when the database refused a write for want of space (SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `53100`): nothing was written, and retrying helps only once an operator
    /// has made room. A subset of [`StoreError::is_unavailable`].
    pub fn is_storage_full(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            StoreError::Shared(inner) => inner.is_storage_full(),
            StoreError::Query(Error::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                STORAGE_FULL
                    .iter()
                    .any(|start| info.message().starts_with(start))
            }
            _ => false,
        }
    }
}

/// Out of space, by the start of the message: PostgreSQL's 53100, SQLite's `SQLITE_FULL`.
const STORAGE_FULL: &[&str] = &["could not extend file", "database or disk is full"];

/// The server's own conditions, by the start of their messages (PostgreSQL's SQLSTATE in
/// brackets, then SQLite's). A connection that dies without a word is `UnableToSendCommand`.
const OPERATIONAL: &[&str] = &[
    // 57P01 admin shutdown, pg_terminate_backend, 57P02 crash of another backend,
    // 57P05 idle session timeout, 25P03 idle-in-transaction timeout
    "terminating connection",
    // 57014 statement timeout or pg_cancel_backend, 55P03 lock timeout
    "canceling statement due to",
    // 57P03 starting up, shutting down, in recovery, not yet accepting connections
    "the database system is",
    // 53300 too many connections
    "sorry, too many clients",
    "remaining connection slots are reserved",
    // 53200 out of memory (53100 disk full: STORAGE_FULL)
    "out of memory",
    // 40P01
    "deadlock detected",
    // SQLITE_BUSY, SQLITE_IOERR (SQLITE_FULL: STORAGE_FULL)
    "database is locked",
    "disk I/O error",
];

fn is_operational(message: &str) -> bool {
    OPERATIONAL
        .iter()
        .chain(STORAGE_FULL)
        .any(|start| message.starts_with(start))
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};

    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> StoreError {
        StoreError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn a_connection_ended_by_the_server_is_unavailable() {
        for message in [
            "terminating connection due to administrator command",
            "terminating connection due to unexpected postmaster exit",
            "canceling statement due to statement timeout",
            "canceling statement due to user request",
            "the database system is shutting down",
            "the database system is starting up",
            "sorry, too many clients already",
        ] {
            let error = database_error(DatabaseErrorKind::Unknown, message);
            assert!(error.is_unavailable(), "{message}");
            assert!(StoreError::Shared(std::sync::Arc::new(error)).is_unavailable());
        }
        let closed = database_error(DatabaseErrorKind::UnableToSendCommand, "connection closed");
        assert!(closed.is_unavailable());
    }

    #[test]
    fn a_write_refused_for_want_of_space_is_storage_full_and_unavailable() {
        for message in [
            "database or disk is full",
            "could not extend file \"base/16384/16397\": No space left on device",
        ] {
            let error = database_error(DatabaseErrorKind::Unknown, message);
            assert!(
                error.is_storage_full() && error.is_unavailable(),
                "{message}"
            );
            assert!(StoreError::Shared(std::sync::Arc::new(error)).is_storage_full());
        }
        let busy = database_error(DatabaseErrorKind::Unknown, "database is locked");
        assert!(busy.is_unavailable() && !busy.is_storage_full());
    }

    #[test]
    fn a_query_the_database_refuses_is_not_unavailable() {
        for (kind, message) in [
            (DatabaseErrorKind::Unknown, "column \"x\" does not exist"),
            (
                DatabaseErrorKind::Unknown,
                "syntax error at or near \"SELEC\"",
            ),
            (
                DatabaseErrorKind::CheckViolation,
                "new row violates check constraint",
            ),
            (DatabaseErrorKind::UniqueViolation, "duplicate key value"),
        ] {
            assert!(!database_error(kind, message).is_unavailable(), "{message}");
        }
    }
}
