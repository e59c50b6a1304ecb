//! The classification queue: claims are leases; results and failures are written only while
//! the lease is still held, so a worker that stalled past its lease cannot overwrite the work
//! of the worker that took over.
//!
//! A pending event is due when `next_attempt_at` has passed. A claimed event is `processing`
//! and its `next_attempt_at` is set to the lease expiry, so an abandoned lease makes the event
//! due again with no sweeper and one index (`events_due_idx`) serves both cases.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::model::{EventRow, to_events};
use super::{Event, Retry, Status, Store, StoreError};
use traffic_model::classification::Classification;

/// The SET clause of a claim.
macro_rules! claim_changes {
    ($owner:expr, $until:expr) => {
        (
            events::status.eq(Status::Processing.into_str()),
            events::lease_owner.eq(&$owner),
            events::lease_until.eq($until),
            events::next_attempt_at.eq($until),
            events::attempts.eq(events::attempts + 1),
        )
    };
}

/// Ids of up to `limit` events due at `now`, oldest due first.
macro_rules! due_ids {
    ($now:expr, $limit:expr) => {
        events::table
            .select(events::id)
            .filter(events::status.eq_any(DUE))
            .filter(events::next_attempt_at.le($now))
            .order((events::next_attempt_at.asc(), events::id.asc()))
            .limit($limit)
    };
}

/// The events among `ids` that are still due at `now`.
macro_rules! still_due {
    ($ids:expr, $now:expr) => {
        events::table
            .filter(events::id.eq_any($ids))
            .filter(events::status.eq_any(DUE))
            .filter(events::next_attempt_at.le($now))
    };
}

/// Event `id`, if `owner`'s lease on it is still live at `now`.
macro_rules! leased {
    ($id:expr, $owner:expr, $now:expr) => {
        events::table
            .filter(events::id.eq($id))
            .filter(events::status.eq(Status::Processing.into_str()))
            .filter(events::lease_owner.eq(&$owner))
            .filter(events::lease_until.gt($now))
    };
}

const DUE: [&str; 2] = [Status::Pending.into_str(), Status::Processing.into_str()];

impl Store {
    /// Leases up to `limit` due events to `owner` for `lease`, oldest due first, counting an
    /// attempt on each. Concurrent claimers never get the same event (PostgreSQL: `FOR UPDATE
    /// SKIP LOCKED`; SQLite: one writer at a time). `owner` must be unique per worker.
    pub async fn claim(
        &self,
        owner: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Event>, StoreError> {
        let owner = owner.to_owned();
        self.run(move |store| async move {
            let now = super::backend::now();
            let until = now + TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows: Vec<EventRow> = with_conn!(store, |conn|
                postgres: {
                    // The row locks taken by SKIP LOCKED hold until commit, so concurrent
                    // claimers pass over these rows instead of waiting on them. Locked and due
                    // when locked, the rows need no second dueness check: the UPDATE goes by
                    // primary key, where a re-check would let the planner walk the whole queue
                    // index and filter it against the id list.
                    conn.transaction(async |conn| {
                        let ids: Vec<i64> = due_ids!(now, limit)
                            .for_update()
                            .skip_locked()
                            .load(conn)
                            .await?;
                        Ok::<_, StoreError>(
                            diesel::update(events::table.filter(events::id.eq_any(ids)))
                                .set(claim_changes!(owner, until))
                                .returning(event_columns!())
                                .get_results(conn)
                                .await?,
                        )
                    })
                    .await?
                },
                sqlite: {
                    // Optimistic: the UPDATE re-checks that each row is still due, and SQLite
                    // runs one writer at a time, so a row another claimer took is skipped.
                    let ids: Vec<i64> = due_ids!(now, limit).load(conn).await?;
                    diesel::update(still_due!(ids, now))
                        .set(claim_changes!(owner, until))
                        .returning(event_columns!())
                        .get_results(conn)
                        .await?
                }
            );
            let mut events = to_events(rows)?;
            events.sort_by_key(|e| e.id);
            Ok(events)
        })
        .await
    }

    /// When the next pending or leased event falls due (`None` when nothing is queued), so an
    /// idle worker can sleep exactly until a backoff or a lease runs out.
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(|store| async move {
            let due: Option<DateTime<Utc>> = with_conn!(store, |conn| {
                events::table
                    .filter(events::status.eq_any(DUE))
                    .select(events::next_attempt_at)
                    .order(events::next_attempt_at.asc())
                    .first(conn)
                    .await
                    .optional()?
            });
            Ok(due)
        })
        .await
    }

    /// Records a failed attempt if `owner` still holds the lease: back to `pending` until
    /// the given time, or `failed` for good. Returns false when the lease was lost.
    pub async fn fail(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry: Retry,
    ) -> Result<bool, StoreError> {
        let owner = owner.to_owned();
        let error = error.to_owned();
        self.run(move |store| async move {
            let now = super::backend::now();
            let (status, next_attempt_at) = match retry {
                Retry::At(at) => (Status::Pending, at),
                Retry::Never => (Status::Failed, now),
            };
            let updated = with_conn!(store, |conn| {
                diesel::update(leased!(id, owner, now))
                    .set((
                        events::status.eq(status.into_str()),
                        events::next_attempt_at.eq(next_attempt_at),
                        events::last_error.eq(&error),
                        events::lease_owner.eq(None::<String>),
                        events::lease_until.eq(None::<DateTime<Utc>>),
                    ))
                    .execute(conn)
                    .await?
            });
            Ok(updated == 1)
        })
        .await
    }

    /// Hands a leased event back untouched (a worker shutting down): due at once, and the
    /// attempt it was charged is refunded. Returns false when the lease was lost.
    pub async fn release(&self, id: i64, owner: &str) -> Result<bool, StoreError> {
        let owner = owner.to_owned();
        self.run(move |store| async move {
            let now = super::backend::now();
            let updated = with_conn!(store, |conn| {
                diesel::update(leased!(id, owner, now))
                    .set((
                        events::status.eq(Status::Pending.into_str()),
                        events::next_attempt_at.eq(now),
                        events::attempts.eq(events::attempts - 1),
                        events::lease_owner.eq(None::<String>),
                        events::lease_until.eq(None::<DateTime<Utc>>),
                    ))
                    .execute(conn)
                    .await?
            });
            Ok(updated == 1)
        })
        .await
    }

    /// Queues an event for classification again, whatever its state, with a fresh attempt
    /// budget; any lease on it is revoked. The previous classification stays visible until
    /// the new one replaces it. Returns the event, or `None` if there is no such id.
    pub async fn requeue(&self, id: i64) -> Result<Option<Event>, StoreError> {
        self.run(move |store| async move {
            let now = super::backend::now();
            let row: Option<EventRow> = with_conn!(store, |conn| {
                diesel::update(events::table.filter(events::id.eq(id)))
                    .set((
                        events::status.eq(Status::Pending.into_str()),
                        events::next_attempt_at.eq(now),
                        events::attempts.eq(0),
                        events::requeued.eq(true),
                        events::lease_owner.eq(None::<String>),
                        events::lease_until.eq(None::<DateTime<Utc>>),
                    ))
                    .returning(event_columns!())
                    .get_result(conn)
                    .await
                    .optional()?
            });
            row.map(Event::try_from).transpose()
        })
        .await
    }
}

/// Rows per multi-row completion statement.
const COMPLETE_CHUNK: usize = 1000;

#[derive(diesel::QueryableByName)]
struct ReturnedId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// The SET clause of a completion, reading the result columns of `v`.
const COMPLETE_SET: &str = "status = 'classified', label = v.label, \
     level_of_service = v.level_of_service, flow_veh_h_lane = v.flow, \
     density_veh_km_lane = v.density, confidence = v.confidence, flags = v.flags, \
     reasons = v.reasons, classifier_version = v.version, classified_at = v.at, \
     lease_owner = NULL, lease_until = NULL, last_error = NULL, requeued = FALSE";

/// The lease guard of a completion, and what it returns.
///
/// The lease owner and the time come from `v` (a column of every result row) rather than as
/// constants. Compared with constants, `lease_owner` and `lease_until` (NULL in almost every row
/// of the statistics) would make PostgreSQL's planner expect one row from `events`, scan it
/// first and rescan the whole result list for every leased row (1000 results took 1.5 s). As
/// join conditions they restrict nothing before the join: each result is a primary-key probe
/// (or a hash join while the table is small). The guard names no `status`: only a claim sets
/// `lease_owner` and every way out of `processing` clears it.
const COMPLETE_GUARD: &str = "events.id = v.id AND events.lease_owner = v.owner \
     AND events.lease_until > v.at RETURNING events.id AS id";

/// PostgreSQL takes the results column by column, one array each: a statement of fixed text,
/// planned in a fraction of a millisecond, where a VALUES list of 11 000 parameters took
/// PostgreSQL longer to plan than to run the ids' lookups.
fn complete_many_postgres() -> String {
    format!(
        "UPDATE events SET {COMPLETE_SET} \
         FROM unnest($1::int8[], $2::text[], $3::text[], $4::float8[], $5::float8[], \
                     $6::float8[], $7::text[]::jsonb[], $8::text[]::jsonb[], $9::text[], \
                     $10::text[], $11::timestamptz[]) \
              AS v(id, label, level_of_service, flow, density, confidence, flags, reasons, \
                   version, owner, at) \
         WHERE {COMPLETE_GUARD}"
    )
}

/// SQLite has no arrays: `UPDATE … FROM (VALUES …)`, 11 parameters per result.
fn complete_many_sqlite(rows: usize) -> String {
    const COLUMNS: [&str; 11] = [
        "id",
        "label",
        "level_of_service",
        "flow",
        "density",
        "confidence",
        "flags",
        "reasons",
        "version",
        "owner",
        "at",
    ];
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=COLUMNS.len())
                .map(|column| format!("?{}", row * COLUMNS.len() + column))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    // VALUES columns are named column1…; the subquery gives them the names the SET reads.
    let renamed: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, name)| format!("column{} AS {name}", i + 1))
        .collect();
    format!(
        "UPDATE events SET {COMPLETE_SET} \
         FROM (SELECT {renamed} FROM (VALUES {values})) AS v \
         WHERE {COMPLETE_GUARD}",
        renamed = renamed.join(", "),
        values = values.join(", "),
    )
}

impl Store {
    /// Records many classifications in one statement per chunk, each only if `owner` still
    /// holds that event's lease. Returns the ids recorded; nothing is written for the others,
    /// whose lease expired, was taken over, or was revoked by a re-queue.
    pub async fn complete_many(
        &self,
        owner: &str,
        results: Vec<(i64, Classification)>,
    ) -> Result<Vec<i64>, StoreError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let owner = owner.to_owned();
        self.run(move |store| async move {
            use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz};
            let now = super::backend::now();
            let mut done = Vec::with_capacity(results.len());
            for chunk in results.chunks(COMPLETE_CHUNK) {
                let rows = chunk
                    .iter()
                    .map(|(id, c)| Ok((*id, c, json_text(&c.flags)?, json_text(&c.reasons)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let ids: Vec<ReturnedId> = with_conn!(store, |conn|
                    postgres: {
                        use super::backend::column;
                        diesel::sql_query(complete_many_postgres())
                            .bind::<Array<BigInt>, _>(column(&rows, |r| r.0))
                            .bind::<Array<Text>, _>(column(&rows, |r| r.1.label.into_str()))
                            .bind::<Array<Nullable<Text>>, _>(column(&rows, |r| {
                                r.1.level_of_service.map(|l| l.into_str())
                            }))
                            .bind::<Array<Double>, _>(column(&rows, |r| r.1.flow_veh_h_lane))
                            .bind::<Array<Nullable<Double>>, _>(column(&rows, |r| {
                                r.1.density_veh_km_lane
                            }))
                            .bind::<Array<Double>, _>(column(&rows, |r| r.1.confidence))
                            .bind::<Array<Text>, _>(column(&rows, |r| r.2.as_str()))
                            .bind::<Array<Text>, _>(column(&rows, |r| r.3.as_str()))
                            .bind::<Array<Text>, _>(column(&rows, |r| {
                                r.1.classifier_version.as_str()
                            }))
                            .bind::<Array<Text>, _>(column(&rows, |_| owner.as_str()))
                            .bind::<Array<Timestamptz>, _>(column(&rows, |_| now))
                            .load(conn)
                            .await?
                    },
                    sqlite: {
                        let mut query =
                            diesel::sql_query(complete_many_sqlite(rows.len())).into_boxed();
                        for (id, c, flags, reasons) in &rows {
                            query = query
                                .bind::<BigInt, _>(*id)
                                .bind::<Text, _>(c.label.into_str())
                                .bind::<Nullable<Text>, _>(c.level_of_service.map(|l| l.into_str()))
                                .bind::<Double, _>(c.flow_veh_h_lane)
                                .bind::<Nullable<Double>, _>(c.density_veh_km_lane)
                                .bind::<Double, _>(c.confidence)
                                .bind::<Text, _>(flags.as_str())
                                .bind::<Text, _>(reasons.as_str())
                                .bind::<Text, _>(c.classifier_version.as_str())
                                .bind::<Text, _>(owner.as_str())
                                .bind::<diesel::sql_types::TimestamptzSqlite, _>(now);
                        }
                        query.load(conn).await?
                    }
                );
                done.extend(ids.into_iter().map(|r| r.id));
            }
            Ok(done)
        })
        .await
    }
}

/// JSON text of a flag or reason list, for binding as text.
fn json_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Query(diesel::result::Error::SerializationError(e.into())))
}
