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
    #[error("invalid cursor: {0}")]
    InvalidCursor(&'static str),
    #[error("the store must be opened inside a tokio runtime")]
    NoRuntime,
    #[error("the store's writer has stopped (its runtime is shutting down)")]
    Stopped,
    #[error("the database task did not finish")]
    Task(#[source] tokio::task::JoinError),
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        StoreError::Unavailable(e)
    }
}

impl StoreError {
    /// True when the database could not be reached (as opposed to a query it refused); such
    /// failures are worth retrying and map to 503 over HTTP.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::MigrationConnect(_)
                | StoreError::Query(Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _))
                | StoreError::Query(Error::DatabaseError(
                    DatabaseErrorKind::UnableToSendCommand,
                    _
                ))
                | StoreError::Query(Error::BrokenTransactionManager)
        )
    }
}
