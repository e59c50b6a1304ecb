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
        let url = self.config.url.clone();
        let busy_timeout_ms = self.config.statement_timeout.as_millis();
        let applied = match url {
            DatabaseUrl::Postgres(url) => {
                // A dedicated connection: the advisory lock belongs to its session.
                let conn = <AsyncPgConnection as diesel_async::AsyncConnection>::establish(
                    url.expose_secret(),
                )
                .await
                .map_err(StoreError::MigrationConnect)?;
                tokio::task::spawn_blocking(move || migrate_postgres(conn))
                    .await
                    .map_err(StoreError::Task)?
            }
            DatabaseUrl::Sqlite(path) => tokio::task::spawn_blocking(move || {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(StoreError::MigrationConnect)?;
                migrate_sqlite(&mut conn, busy_timeout_ms)
            })
            .await
            .map_err(StoreError::Task)?,
        }?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied database migrations");
        }
        Ok(applied)
    }

    /// True when every embedded migration has been applied.
    pub async fn is_migrated(&self) -> Result<bool, StoreError> {
        let url = self.config.url.clone();
        match url {
            DatabaseUrl::Postgres(url) => {
                let conn = <AsyncPgConnection as diesel_async::AsyncConnection>::establish(
                    url.expose_secret(),
                )
                .await
                .map_err(StoreError::MigrationConnect)?;
                tokio::task::spawn_blocking(move || {
                    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
                    conn.has_pending_migration(POSTGRES).map(|pending| !pending)
                })
                .await
                .map_err(StoreError::Task)?
            }
            DatabaseUrl::Sqlite(path) => tokio::task::spawn_blocking(move || {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(StoreError::MigrationConnect)?;
                conn.has_pending_migration(SQLITE).map(|pending| !pending)
            })
            .await
            .map_err(StoreError::Task)?,
        }
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
        let url = self.config.url.clone();
        let version = version.to_owned();
        let applied = match url {
            DatabaseUrl::Postgres(url) => {
                let conn = <AsyncPgConnection as diesel_async::AsyncConnection>::establish(
                    url.expose_secret(),
                )
                .await
                .map_err(StoreError::MigrationConnect)?;
                tokio::task::spawn_blocking(move || {
                    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
                    apply(&mut conn, POSTGRES, &version)
                })
                .await
            }
            DatabaseUrl::Sqlite(path) => {
                tokio::task::spawn_blocking(move || {
                    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                        .map_err(|e| Box::new(e) as BoxError)?;
                    apply(&mut conn, SQLITE, &version)
                })
                .await
            }
        };
        applied
            .map_err(StoreError::Task)?
            .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

fn versions(applied: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    applied.into_iter().map(|v| v.to_string()).collect()
}

fn migrate_postgres(conn: AsyncPgConnection) -> Result<Vec<String>, StoreError> {
    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)?;
    let result = conn.run_pending_migrations(POSTGRES).map(versions);
    // Closing the session would release the lock too; unlocking keeps the intent explicit.
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)?;
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
