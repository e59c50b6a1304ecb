//! Embedded schema migrations, applied at start-up unless the operator migrates separately.
//! Safe when several processes start at once against one empty database: PostgreSQL runs them
//! under an advisory lock, SQLite inside one `BEGIN IMMEDIATE` transaction.

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::ExposeSecret;

use super::backend::sqlite_pragmas;
use super::{DatabaseUrl, Store, StoreError};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Arbitrary but fixed key of the PostgreSQL advisory lock serialising migrations.
const MIGRATION_LOCK_KEY: i64 = 0x5354_5241_4646_4943; // "STRAFFIC"

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Store {
    /// Applies every pending migration; returns the versions applied (empty when up to date).
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let busy_timeout_ms = self.config.statement_timeout.as_millis();
        let applied = on_own_connection(self.config.url.clone(), migrate_postgres, move |conn| {
            migrate_sqlite(conn, busy_timeout_ms)
        })
        .await??;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied database migrations");
        }
        Ok(applied)
    }

    /// True when every embedded migration has been applied.
    pub async fn is_migrated(&self) -> Result<bool, StoreError> {
        on_own_connection(
            self.config.url.clone(),
            |conn| conn.has_pending_migration(POSTGRES),
            |conn| conn.has_pending_migration(SQLITE),
        )
        .await?
        .map(|pending| !pending)
        .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

#[cfg(feature = "test-util")]
impl Store {
    /// Applies the embedded migrations older than `version` (`YYYYMMDDNNNNNN`) to a fresh
    /// database: the schema an earlier release left, for testing an upgrade.
    pub async fn migrate_before(&self, version: &str) -> Result<(), StoreError> {
        use diesel::migration::MigrationSource;
        fn apply<DB: diesel::backend::Backend>(
            conn: &mut (impl MigrationHarness<DB> + diesel::migration::MigrationConnection),
            source: EmbeddedMigrations,
            version: &str,
        ) -> Result<(), BoxError> {
            conn.setup()?;
            for migration in MigrationSource::<DB>::migrations(&source)? {
                if migration.name().version().to_string().as_str() < version {
                    conn.run_migration(&*migration)?;
                }
            }
            Ok(())
        }
        let (pg_version, sqlite_version) = (version.to_owned(), version.to_owned());
        on_own_connection(
            self.config.url.clone(),
            move |conn| apply(conn, POSTGRES, &pg_version),
            move |conn| apply(conn, SQLITE, &sqlite_version),
        )
        .await?
        .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

type PgHarness = AsyncConnectionWrapper<AsyncPgConnection>;

/// Runs `postgres` or `sqlite`, whichever matches `url`, on a connection of its own rather than
/// the pool's (PostgreSQL's advisory lock belongs to its session) and on a blocking thread, as
/// diesel's migration harness is synchronous.
async fn on_own_connection<T: Send + 'static>(
    url: DatabaseUrl,
    postgres: impl FnOnce(&mut PgHarness) -> T + Send + 'static,
    sqlite: impl FnOnce(&mut SqliteConnection) -> T + Send + 'static,
) -> Result<T, StoreError> {
    match url {
        DatabaseUrl::Postgres(url) => {
            let conn = <AsyncPgConnection as diesel_async::AsyncConnection>::establish(
                url.expose_secret(),
            )
            .await
            .map_err(StoreError::MigrationConnect)?;
            tokio::task::spawn_blocking(move || postgres(&mut PgHarness::from(conn)))
                .await
                .map_err(StoreError::Task)
        }
        DatabaseUrl::Sqlite(path) => tokio::task::spawn_blocking(move || {
            let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                .map_err(StoreError::MigrationConnect)?;
            Ok(sqlite(&mut conn))
        })
        .await
        .map_err(StoreError::Task)?,
    }
}

fn versions(applied: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    applied.into_iter().map(|v| v.to_string()).collect()
}

fn migrate_postgres(conn: &mut PgHarness) -> Result<Vec<String>, StoreError> {
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(conn)?;
    let result = conn.run_pending_migrations(POSTGRES).map(versions);
    // Closing the session would release the lock too; unlocking keeps the intent explicit.
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(conn)?;
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

fn migrate_sqlite(
    conn: &mut SqliteConnection,
    busy_timeout_ms: u128,
) -> Result<Vec<String>, StoreError> {
    conn.batch_execute(&sqlite_pragmas(busy_timeout_ms))?;
    // IMMEDIATE takes the write lock up front: a second process waits (busy_timeout), then
    // finds the migrations applied. Each migration's own transaction nests as a savepoint.
    conn.immediate_transaction(|conn| {
        conn.run_pending_migrations(SQLITE)
            .map(versions)
            .map_err(MigrationFailed)
    })
    .map_err(|e| StoreError::Migration(e.to_string()))
}

/// A migration error inside a diesel transaction (which needs `From<diesel::result::Error>`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct MigrationFailed(BoxError);

impl From<diesel::result::Error> for MigrationFailed {
    fn from(e: diesel::result::Error) -> Self {
        Self(Box::new(e))
    }
}
