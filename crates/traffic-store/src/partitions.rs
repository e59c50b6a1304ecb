//! PostgreSQL keeps readings and their classifications in one partition per UTC day
//! (`events_p20261204`, `classifications_p20261204`; the migration's `create_event_partitions`
//! makes them). The days ahead are created by the service's upkeep before their readings
//! arrive; a reading for a day that has none (a back-filled one, say) has it created on the
//! spot and its write retried. SQLite keeps one table and needs none of this.

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Integer, Timestamptz};
use traffic_model::reading::Reading;

use super::{Store, StoreError};

#[derive(QueryableByName)]
struct Created {
    #[diesel(sql_type = Integer)]
    created: i32,
}

impl StoreError {
    /// True when a row was refused because no partition holds its `observed_at`.
    pub(crate) fn is_missing_partition(&self) -> bool {
        use diesel::result::Error;
        match self {
            StoreError::Shared(inner) => inner.is_missing_partition(),
            // SQLSTATE 23514, which diesel reports as a check violation.
            StoreError::Query(Error::DatabaseError(_, info)) => {
                info.message().starts_with("no partition of relation")
            }
            _ => false,
        }
    }
}

impl Store {
    /// Creates the day partitions holding `moments` that do not exist yet; returns how many
    /// days it created (always 0 on SQLite).
    pub async fn create_partitions(&self, moments: Vec<DateTime<Utc>>) -> Result<u32, StoreError> {
        if moments.is_empty() {
            return Ok(0);
        }
        self.run(move |store| async move {
            Ok(with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    let created: Created = diesel::sql_query(
                        "SELECT create_event_partitions($1) AS created",
                    )
                    .bind::<Array<Timestamptz>, _>(moments)
                    .get_result(conn)
                    .await?;
                    u32::try_from(created.created).unwrap_or(0)
                },
                sqlite: {
                    let _ = conn;
                    0
                }
            ))
        })
        .await
    }

    /// Creates the partitions of the UTC day of `now` and of the `days` after it that do not
    /// exist yet; returns how many it created.
    pub async fn create_partitions_ahead(
        &self,
        now: DateTime<Utc>,
        days: u32,
    ) -> Result<u32, StoreError> {
        let moments = (0..=i64::from(days))
            .map(|day| now + TimeDelta::days(day))
            .collect();
        self.create_partitions(moments).await
    }

    /// Runs `write` and, when it was refused for want of a partition, creates the partitions of
    /// `readings` and runs it once more.
    pub(crate) async fn with_partitions<T, Fut>(
        &self,
        readings: &[Reading],
        write: impl Fn() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        match write().await {
            Err(e) if e.is_missing_partition() => {
                let created = self
                    .create_partitions(readings.iter().map(Reading::observed_at).collect())
                    .await?;
                tracing::info!(
                    created,
                    "created day partitions for readings that needed them"
                );
                write().await
            }
            done => done,
        }
    }
}

#[derive(diesel::QueryableByName)]
struct StalePartition {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

impl Store {
    /// Analyses each day partition of `events` and `classifications` whose rows changed by at
    /// least `min_changed` (and a tenth) since it was last analysed, and returns how many it
    /// did. Without statistics the planner guesses, and its guesses for a partition filling up
    /// turned the stream's look-ups by id into scans of the whole day (843 ms for 500 ids
    /// instead of 11 ms); autovacuum analyses them where it runs, but it may be off or busy.
    /// PostgreSQL only; a partition another session is analysing is skipped.
    pub async fn analyze_partitions(&self, min_changed: i64) -> Result<usize, StoreError> {
        self.run(move |store| async move {
            Ok(with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    let stale: Vec<StalePartition> = diesel::sql_query(
                        "SELECT format('%I.%I', s.schemaname, s.relname) AS name \
                           FROM pg_stat_user_tables s JOIN pg_inherits i ON i.inhrelid = s.relid \
                          WHERE i.inhparent IN ('events'::regclass, 'classifications'::regclass) \
                            AND s.n_mod_since_analyze >= GREATEST($1, s.n_live_tup / 10)",
                    )
                    .bind::<diesel::sql_types::BigInt, _>(min_changed)
                    .load(conn)
                    .await?;
                    for partition in &stale {
                        diesel_async::SimpleAsyncConnection::batch_execute(
                            conn,
                            &format!("ANALYZE (SKIP_LOCKED) {}", partition.name),
                        )
                        .await?;
                    }
                    stale.len()
                },
                sqlite: {
                    let _ = conn;
                    0
                }
            ))
        })
        .await
    }
}
