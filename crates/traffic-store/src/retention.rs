//! Retention: readings (with their classifications) and rollups older than their limits are
//! removed, and `retention_watermark` says from when what is left reaches back, so that a
//! series over an older window can say what it is summed from.
//!
//! PostgreSQL drops whole day partitions (`drop_event_partitions()` in the migration: no
//! `DELETE`, no dead rows, no vacuum), and only days whose rollups are built and whose readings
//! are all classified or given up on. Rollups, a row per lane and span, are deleted in small
//! batches. SQLite deletes readings in small batches, each its own short write transaction,
//! and keeps no rollups.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::pg::data_types::PgInterval;
use diesel::sql_types::{Integer, Interval, Nullable};

use super::sql_time::UtcTime;
use super::{Store, StoreError};

/// Rows per `DELETE`: each batch holds its locks (SQLite: the database's write lock) for
/// milliseconds, so writers go on between batches.
const BATCH: i64 = 5_000;

/// Longest wait for the lock a partition's drop takes on its parents; a day not dropped now
/// is dropped by a later pass.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// From when what is stored reaches back, once retention has removed something older.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName, serde::Serialize)]
pub struct Retained {
    /// Readings and their classifications are kept from here on (`None`: all of them).
    #[diesel(sql_type = Nullable<UtcTime>)]
    pub readings_from: Option<DateTime<Utc>>,
    /// Rollups are kept from here on (`None`: all of them).
    #[diesel(sql_type = Nullable<UtcTime>)]
    pub rollups_from: Option<DateTime<Utc>>,
}

/// What one pass of retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Day partitions of readings dropped (PostgreSQL).
    pub days: u32,
    /// Readings deleted one by one (SQLite).
    pub readings: u64,
    /// Rollup rows deleted (PostgreSQL).
    pub rollups: u64,
}

#[derive(QueryableByName)]
struct Dropped {
    #[diesel(sql_type = Integer)]
    dropped: i32,
}

impl Store {
    /// From when what is stored reaches back.
    pub async fn retained(&self) -> Result<Retained, StoreError> {
        self.run(|store| async move {
            Ok(with_conn!(store, |conn| {
                use diesel_async::RunQueryDsl;
                diesel::sql_query("SELECT readings_from, rollups_from FROM retention_watermark")
                    .get_result::<Retained>(conn)
                    .await?
            }))
        })
        .await
    }

    /// Removes the readings observed before `readings_before` and the rollups of spans
    /// starting before `rollups_before` (`None`: keep them), as far as the rules above allow.
    pub async fn remove_expired(
        &self,
        readings_before: Option<DateTime<Utc>>,
        rollups_before: Option<DateTime<Utc>>,
    ) -> Result<Removed, StoreError> {
        let mut removed = Removed::default();
        if let Some(before) = readings_before {
            let (days, readings) = self.remove_readings(before).await?;
            removed.days = days;
            removed.readings = readings;
        }
        if let Some(before) = rollups_before {
            removed.rollups = self.remove_rollups(before).await?;
        }
        Ok(removed)
    }

    /// The day partitions dropped (PostgreSQL) or readings deleted (SQLite).
    async fn remove_readings(&self, before: DateTime<Utc>) -> Result<(u32, u64), StoreError> {
        self.run(move |store| async move {
            Ok(with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    let wait = i64::try_from(LOCK_WAIT.as_micros()).unwrap_or(i64::MAX);
                    let dropped: Dropped =
                        diesel::sql_query("SELECT drop_event_partitions($1, $2) AS dropped")
                            .bind::<UtcTime, _>(before)
                            .bind::<Interval, _>(PgInterval::from_microseconds(wait))
                            .get_result(conn)
                            .await?;
                    (u32::try_from(dropped.dropped).unwrap_or(0), 0)
                },
                sqlite: {
                    let mut deleted = 0;
                    loop {
                        let batch = conn
                            .spawn_blocking(move |conn| {
                                conn.immediate_transaction(|conn| sqlite::delete_batch(conn, before))
                            })
                            .await?;
                        deleted += batch;
                        if batch < BATCH as u64 {
                            break;
                        }
                    }
                    (0, deleted)
                }
            ))
        })
        .await
    }

    /// Rollup rows deleted, in batches (PostgreSQL; SQLite keeps none).
    async fn remove_rollups(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.run(move |store| async move {
            Ok(with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    let mut deleted = 0;
                    for table in ["rollup_5m", "rollup_1h"] {
                        loop {
                            let batch = diesel::sql_query(format!(
                                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(\
                                     SELECT ctid FROM {table} WHERE start < $1 LIMIT {BATCH}))"
                            ))
                            .bind::<UtcTime, _>(before)
                            .execute(conn)
                            .await?;
                            deleted += batch as u64;
                            if batch < BATCH as usize {
                                break;
                            }
                        }
                    }
                    diesel::sql_query(
                        "UPDATE retention_watermark SET rollups_from = $1 \
                          WHERE rollups_from IS NULL OR rollups_from < $1",
                    )
                    .bind::<UtcTime, _>(before)
                    .execute(conn)
                    .await?;
                    deleted
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

/// SQLite's batches.
mod sqlite {
    use chrono::{DateTime, Utc};
    use diesel::dsl::{exists, not};
    use diesel::prelude::*;

    use super::BATCH;
    use crate::schema::sqlite::{classifications, events, queue};
    use crate::sql_time::UtcTime;

    /// Deletes up to [`BATCH`] of the oldest readings observed before `before` that wait for
    /// no classification, with their classifications and queue rows; the last batch (fewer
    /// than [`BATCH`]) also clears the lane states that old and moves the watermark.
    pub(super) fn delete_batch(
        conn: &mut SqliteConnection,
        before: DateTime<Utc>,
    ) -> QueryResult<u64> {
        let waiting = queue::table
            .filter(queue::event_id.eq(events::id))
            .filter(queue::failed.eq(false));
        let ids: Vec<i64> = events::table
            .select(events::id)
            .filter(events::observed_at.lt(before))
            .filter(not(exists(waiting)))
            .order(events::observed_at.asc())
            .limit(BATCH)
            .load(conn)?;
        diesel::delete(classifications::table.filter(classifications::event_id.eq_any(&ids)))
            .execute(conn)?;
        diesel::delete(queue::table.filter(queue::event_id.eq_any(&ids))).execute(conn)?;
        let deleted =
            diesel::delete(events::table.filter(events::id.eq_any(&ids))).execute(conn)?;
        if deleted < BATCH as usize {
            diesel::sql_query("DELETE FROM lane_state WHERE observed_at < ?")
                .bind::<UtcTime, _>(before)
                .execute(conn)?;
            diesel::sql_query(
                "UPDATE retention_watermark SET readings_from = ? \
                  WHERE readings_from IS NULL OR readings_from < ?",
            )
            .bind::<UtcTime, _>(before)
            .bind::<UtcTime, _>(before)
            .execute(conn)?;
        }
        Ok(deleted as u64)
    }
}
