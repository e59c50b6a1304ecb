//! The classification queue: a `queue` row per stored reading not yet classified (or failed, or
//! queued again by hand), inserted by the statement that stores the reading. Claims are leases;
//! results and failures are written only while the lease is still held, so a worker that
//! stalled past its lease cannot overwrite the work of the worker that took over.
//!
//! A queued event is due when `next_attempt_at` has passed. A claim sets `next_attempt_at` to
//! the lease expiry, so an abandoned lease makes the event due again with no sweeper and one
//! index (`queue_due_idx`) serves both cases. A result deletes the queue row and appends the
//! classification, so the event row itself is never rewritten.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::dsl::not;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::{EventRow, StoredRow};
use super::prepared::Prepared;
use super::{Event, Retry, Store, StoreError};
use traffic_model::classification::Classification;

/// The SET clause of a claim.
macro_rules! claim_changes {
    ($owner:expr, $until:expr) => {
        (
            queue::lease_owner.eq(&$owner),
            queue::lease_until.eq($until),
            queue::next_attempt_at.eq($until),
            queue::attempts.eq(queue::attempts + 1),
        )
    };
}

/// Queued events that can be claimed. `NOT failed` as SQL, not as a bound value, so that the
/// planner can prove every plan, generic ones too, may use the partial index `queue_due_idx`.
macro_rules! claimable {
    () => {
        queue::table.filter(not(queue::failed))
    };
}

/// Ids of up to `limit` events due at `now`, oldest due first.
macro_rules! due_ids {
    ($now:expr, $limit:expr) => {
        claimable!()
            .select(queue::event_id)
            .filter(queue::next_attempt_at.le($now))
            .order((queue::next_attempt_at.asc(), queue::event_id.asc()))
            .limit($limit)
    };
}

/// The events among `ids` that are still due at `now`.
macro_rules! still_due {
    ($ids:expr, $now:expr) => {
        claimable!()
            .filter(queue::event_id.eq_any($ids))
            .filter(queue::next_attempt_at.le($now))
    };
}

/// Event `id`'s queue row, if `owner`'s lease on it is still live at `now`.
macro_rules! leased {
    ($id:expr, $owner:expr, $now:expr) => {
        queue::table
            .filter(queue::event_id.eq($id))
            .filter(queue::lease_owner.eq(&$owner))
            .filter(queue::lease_until.gt($now))
    };
}

/// Ends `owner`'s lease on event `id` with `changes` (assignments to the queue row), if the
/// lease is still live at `now`; evaluates to whether it was.
macro_rules! end_lease {
    ($store:expr, $id:expr, $owner:expr, $now:expr, ($($change:expr),+ $(,)?)) => {
        with_conn!($store, |conn| {
            diesel::update(leased!($id, $owner, $now))
                .set((
                    $($change,)+
                    queue::lease_owner.eq(None::<String>),
                    queue::lease_until.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)
                .await?
        }) == 1
    };
}

/// The events `ids` as the API shows them.
macro_rules! events_by_id {
    ($ids:expr) => {
        event_states::table
            .select(event_columns!())
            .filter(event_states::id.eq_any($ids))
    };
}

/// The queue columns a claim returns, in [`Lease`]'s order.
macro_rules! lease_columns {
    () => {
        (
            queue::event_id,
            queue::attempts,
            queue::requeued,
            queue::last_error,
        )
    };
}

/// PostgreSQL claims in one statement, with no transaction around it: the due rows are locked
/// (passing over rows other claimers hold), leased, and returned with their readings. The ids
/// are gathered into an array first so that the locking subquery runs exactly once.
const CLAIM_POSTGRES: &str = "\
    WITH leased AS (\
        UPDATE queue q SET lease_owner = $1, lease_until = $2, next_attempt_at = $2, \
                           attempts = q.attempts + 1 \
         WHERE q.event_id = ANY(ARRAY(\
                   SELECT event_id FROM queue \
                    WHERE NOT failed AND next_attempt_at <= $3 \
                    ORDER BY next_attempt_at, event_id LIMIT $4 \
                      FOR UPDATE SKIP LOCKED)) \
        RETURNING q.event_id, q.observed_at, q.attempts, q.requeued, q.last_error) \
    SELECT e.id, e.sensor_id, e.observed_at, e.interval_s, e.lane, e.vehicle_count, \
           e.avg_speed_kmh, e.occupancy_pct, e.speed_limit_kmh, e.lanes, e.received_at, \
           l.event_id, l.attempts, l.requeued, l.last_error \
      FROM leased l JOIN events e ON e.id = l.event_id AND e.observed_at = l.observed_at";

/// PostgreSQL queues event `$1` again at `$2` (see [`Store::requeue`]), if it exists.
const REQUEUE_POSTGRES: &str = "\
    INSERT INTO queue (event_id, observed_at, next_attempt_at, attempts, requeued, failed) \
    SELECT id, observed_at, $2, 0, TRUE, FALSE FROM events WHERE id = $1 \
    ON CONFLICT (event_id) DO UPDATE SET \
        next_attempt_at = excluded.next_attempt_at, attempts = 0, requeued = TRUE, \
        failed = FALSE, lease_owner = NULL, lease_until = NULL";

/// A queue row as a claim leaves it.
#[derive(Debug, Queryable, QueryableByName)]
struct Lease {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    event_id: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    requeued: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    last_error: Option<String>,
}

/// A claimed event: its reading and its lease.
#[derive(Debug, QueryableByName)]
struct ClaimedRow {
    #[diesel(embed)]
    stored: StoredRow,
    #[diesel(embed)]
    lease: Lease,
}

impl ClaimedRow {
    /// Pairs each lease with its event's row (SQLite reads them in two statements).
    fn pair(stored: Vec<StoredRow>, leases: Vec<Lease>) -> Vec<Self> {
        let mut leases: std::collections::HashMap<i64, Lease> =
            leases.into_iter().map(|l| (l.event_id, l)).collect();
        stored
            .into_iter()
            .filter_map(|stored| {
                let lease = leases.remove(&stored.id)?;
                Some(Self { stored, lease })
            })
            .collect()
    }

    fn into_event(self, until: DateTime<Utc>) -> Result<Event, StoreError> {
        let mut row = EventRow::fresh(self.stored);
        row.status = super::Status::Processing.into_str().to_owned();
        row.attempts = self.lease.attempts;
        row.next_attempt_at = Some(until);
        row.requeued = self.lease.requeued;
        row.last_error = self.lease.last_error;
        Event::try_from(row)
    }
}

impl Store {
    /// Leases up to `limit` due events to `owner` for `lease`, oldest due first, counting an
    /// attempt on each. Concurrent claimers never get the same event (PostgreSQL: `FOR UPDATE
    /// SKIP LOCKED`; SQLite: one writer at a time). `owner` must be unique per worker. The
    /// events carry what a worker needs — the reading, the attempts, whether it was queued
    /// again by hand and why the last attempt failed — but not an earlier classification.
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
            let rows: Vec<ClaimedRow> = with_conn!(store, |conn|
                postgres: {
                    use diesel::sql_types::{BigInt, Text, Timestamptz};
                    // Prepared once per connection: planned each time, the join over every
                    // day's partition took 3.7 ms to plan over 31 days, longer than it runs.
                    Prepared::new(CLAIM_POSTGRES)
                        .bind::<Text, _>(owner.clone())
                        .bind::<Timestamptz, _>(until)
                        .bind::<Timestamptz, _>(now)
                        .bind::<BigInt, _>(limit)
                        .load(conn)
                        .await?
                },
                sqlite: {
                    // Optimistic: the UPDATE re-checks that each row is still due, and SQLite
                    // runs one writer at a time, so a row another claimer took is skipped.
                    let ids: Vec<i64> = due_ids!(now, limit).load(conn).await?;
                    let leases: Vec<Lease> = diesel::update(still_due!(ids, now))
                        .set(claim_changes!(owner, until))
                        .returning(lease_columns!())
                        .get_results(conn)
                        .await?;
                    let ids: Vec<i64> = leases.iter().map(|l| l.event_id).collect();
                    let stored: Vec<StoredRow> = events::table
                        .select(stored_columns!(events))
                        .filter(events::id.eq_any(ids))
                        .load(conn)
                        .await?;
                    ClaimedRow::pair(stored, leases)
                }
            );
            let mut events = rows
                .into_iter()
                .map(|row| row.into_event(until))
                .collect::<Result<Vec<_>, _>>()?;
            events.sort_by_key(|e| e.id);
            Ok(events)
        })
        .await
    }

    /// When the next queued event falls due (`None` when nothing is queued), so an idle worker
    /// can sleep exactly until a backoff or a lease runs out.
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(|store| async move {
            let due: Option<DateTime<Utc>> = with_conn!(store, |conn| {
                claimable!()
                    .select(queue::next_attempt_at)
                    .order(queue::next_attempt_at.asc())
                    .first(conn)
                    .await
                    .optional()?
            });
            Ok(due)
        })
        .await
    }

    /// Records a failed attempt if `owner` still holds the lease: due again at the given time,
    /// or `failed` for good. Returns false when the lease was lost.
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
            let (failed, next_attempt_at) = match retry {
                Retry::At(at) => (false, at),
                Retry::Never => (true, now),
            };
            Ok(end_lease!(
                store,
                id,
                owner,
                now,
                (
                    queue::failed.eq(failed),
                    queue::next_attempt_at.eq(next_attempt_at),
                    queue::last_error.eq(&error),
                )
            ))
        })
        .await
    }

    /// Hands a leased event back untouched (a worker shutting down): due at once, and the
    /// attempt it was charged is refunded. Returns false when the lease was lost.
    pub async fn release(&self, id: i64, owner: &str) -> Result<bool, StoreError> {
        let owner = owner.to_owned();
        self.run(move |store| async move {
            let now = super::backend::now();
            Ok(end_lease!(
                store,
                id,
                owner,
                now,
                (
                    queue::next_attempt_at.eq(now),
                    queue::attempts.eq(queue::attempts - 1),
                )
            ))
        })
        .await
    }

    /// Queues an event for classification again, whatever its state, with a fresh attempt
    /// budget; any lease on it is revoked. The previous classification stays visible until
    /// the new one replaces it. Returns the event, or `None` if there is no such id.
    pub async fn requeue(&self, id: i64) -> Result<Option<Event>, StoreError> {
        self.run(move |store| async move {
            let now = super::backend::now();
            let row: Option<EventRow> = with_conn!(store, |conn|
                postgres: {
                    // The queue row names the reading's day, read with it in one statement.
                    diesel::sql_query(REQUEUE_POSTGRES)
                        .bind::<diesel::sql_types::BigInt, _>(id)
                        .bind::<diesel::sql_types::Timestamptz, _>(now)
                        .execute(conn)
                        .await?;
                    events_by_id!([id]).first(conn).await.optional()?
                },
                sqlite: {
                    let stored: Option<i64> = events::table
                        .select(events::id)
                        .filter(events::id.eq(id))
                        .first(conn)
                        .await
                        .optional()?;
                    if stored.is_some() {
                        let fresh = (
                            queue::next_attempt_at.eq(now),
                            queue::attempts.eq(0),
                            queue::requeued.eq(true),
                            queue::failed.eq(false),
                            queue::lease_owner.eq(None::<String>),
                            queue::lease_until.eq(None::<DateTime<Utc>>),
                        );
                        diesel::insert_into(queue::table)
                            .values((queue::event_id.eq(id), fresh.clone()))
                            .on_conflict(queue::event_id)
                            .do_update()
                            .set(fresh)
                            .execute(conn)
                            .await?;
                    }
                    events_by_id!([id]).first(conn).await.optional()?
                }
            );
            row.map(Event::try_from).transpose()
        })
        .await
    }
}

#[derive(diesel::QueryableByName)]
struct DeadRows {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    dead: i64,
}

impl Store {
    /// Vacuums the queue table once it holds at least `min_dead` dead rows, and says whether it
    /// did. Every queue row is deleted within seconds of its insert, so the table is all dead
    /// rows but for the backlog; left to autovacuum alone (which may be off, or busy with a
    /// large table) its due index fills with dead entries that every claim walks through.
    /// PostgreSQL only: SQLite reuses a deleted row's space itself. Concurrent callers (other
    /// replicas) skip a vacuum already running.
    pub async fn vacuum_queue(&self, min_dead: i64) -> Result<bool, StoreError> {
        self.run(move |store| async move {
            Ok(with_conn!(store, |conn|
                postgres: {
                    let dead: Vec<DeadRows> = diesel::sql_query(
                        "SELECT n_dead_tup AS dead FROM pg_stat_user_tables \
                          WHERE relid = 'queue'::regclass",
                    )
                    .load(conn)
                    .await?;
                    let due = dead.iter().map(|d| d.dead).next().unwrap_or(0) >= min_dead;
                    if due {
                        diesel_async::SimpleAsyncConnection::batch_execute(
                            conn,
                            "VACUUM (SKIP_LOCKED) queue",
                        )
                        .await?;
                    }
                    due
                },
                sqlite: {
                    let _ = conn;
                    false
                }
            ))
        })
        .await
    }
}

/// Rows per multi-row completion statement.
const COMPLETE_CHUNK: usize = 1000;

/// The `SET … WHERE` of both backends' `lane_state` upserts, `$row` naming the stored row: a
/// row moves only forward in `observed_at`.
macro_rules! lane_state_update {
    ($row:literal) => {
        concat!(
            "event_id = excluded.event_id, observed_at = excluded.observed_at, ",
            "interval_s = excluded.interval_s, vehicle_count = excluded.vehicle_count, ",
            "avg_speed_kmh = excluded.avg_speed_kmh, occupancy_pct = excluded.occupancy_pct, ",
            "label = excluded.label, level_of_service = excluded.level_of_service, ",
            "flow_veh_h_lane = excluded.flow_veh_h_lane, ",
            "density_veh_km_lane = excluded.density_veh_km_lane, ",
            "confidence = excluded.confidence, flags = excluded.flags, ",
            "classified_at = excluded.classified_at ",
            "WHERE excluded.observed_at >= ",
            $row,
            ".observed_at"
        )
    };
}

#[derive(diesel::QueryableByName)]
struct ReturnedId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// PostgreSQL records a chunk of results in one statement: the queue rows still leased to the
/// worker are deleted and their classifications appended (or replace an earlier one, for an
/// event queued again by hand). The results come column by column, one array each: a statement
/// of fixed text, planned in a few milliseconds, where a VALUES list of 11 000 parameters took
/// PostgreSQL longer to plan than to run. It is planned each time, not prepared: a custom plan
/// sees how many results the arrays hold, and the plans tuned below rely on that.
///
/// The lease owner and the time come from `v` (a column of every result row) rather than as
/// constants. Compared with constants, `lease_owner` and `lease_until` (NULL in most rows of the
/// statistics) would make the planner expect one matching queue row, scan the queue first and
/// rescan the whole result list for each of its rows. As join conditions they restrict nothing
/// before the join: each result is a primary-key probe.
///
/// The same statement moves each lane's `lane_state` row to the chunk's newest reading of that
/// lane, unless the row already holds a newer one (a late reading), in key order so that two
/// workers' chunks lock shared lanes in one order; and adds the readings' shares to the
/// rollups ([`super::rollup`]), taking back the share of a re-queued reading's earlier
/// classification (`old`, read from the statement's snapshot, before `written` replaced it).
static COMPLETE_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{COMPLETE_POSTGRES_HEAD}, \
        old AS (\
            SELECT c.event_id, c.observed_at, c.label, c.level_of_service, c.flow_veh_h_lane, \
                   c.flags \
              FROM done JOIN classifications c \
                ON c.event_id = done.event_id AND c.observed_at = done.observed_at \
             WHERE done.requeued), \
        {} \
        SELECT event_id AS id FROM written",
        *super::rollup::RECORD_SHARES
    )
});

const COMPLETE_POSTGRES_HEAD: &str = concat!(
    "\
    WITH v AS (\
        SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::float8[], $5::float8[], \
                             $6::float8[], $7::text[]::jsonb[], $8::text[]::jsonb[], $9::text[], \
                             $10::text[], $11::timestamptz[]) \
            AS v(id, label, level_of_service, flow, density, confidence, flags, reasons, \
                 version, owner, at)), \
    done AS (\
        DELETE FROM queue q USING v \
         WHERE q.event_id = v.id AND q.lease_owner = v.owner AND q.lease_until > v.at \
        RETURNING q.event_id, q.observed_at, q.attempts, q.requeued), \
    written AS (\
    INSERT INTO classifications AS c (event_id, observed_at, label, level_of_service, \
        flow_veh_h_lane, density_veh_km_lane, confidence, flags, reasons, classifier_version, \
        classified_at, attempts) \
    SELECT v.id, done.observed_at, v.label, v.level_of_service, v.flow, v.density, \
           v.confidence, v.flags, v.reasons, v.version, v.at, done.attempts \
      FROM done JOIN v ON v.id = done.event_id \
    ON CONFLICT (event_id, observed_at) DO UPDATE SET \
        label = excluded.label, level_of_service = excluded.level_of_service, \
        flow_veh_h_lane = excluded.flow_veh_h_lane, \
        density_veh_km_lane = excluded.density_veh_km_lane, confidence = excluded.confidence, \
        flags = excluded.flags, reasons = excluded.reasons, \
        classifier_version = excluded.classifier_version, \
        classified_at = excluded.classified_at, attempts = excluded.attempts \
    RETURNING c.event_id, c.observed_at, c.label, c.level_of_service, c.flow_veh_h_lane, \
              c.density_veh_km_lane, c.confidence, c.flags, c.classified_at), \
    recorded AS (\
        SELECT e.sensor_id, e.lane, e.id, e.observed_at, e.interval_s, e.vehicle_count, \
               e.avg_speed_kmh, e.occupancy_pct, w.label, w.level_of_service, \
               w.flow_veh_h_lane, w.density_veh_km_lane, w.confidence, w.flags, w.classified_at \
          FROM written w JOIN events e ON e.id = w.event_id AND e.observed_at = w.observed_at), \
    newest AS (\
        SELECT DISTINCT ON (sensor_id, lane) * FROM recorded \
         ORDER BY sensor_id, lane, observed_at DESC), \
    state AS (\
        INSERT INTO lane_state AS s SELECT * FROM newest \
        ON CONFLICT (sensor_id, lane) DO UPDATE SET ",
    lane_state_update!("s"),
    ")"
);

impl Store {
    /// Records many classifications, one statement per chunk on PostgreSQL, each only if
    /// `owner` still holds that event's lease. Returns the ids recorded; nothing is written for
    /// the others, whose lease expired, was taken over, or was revoked by a re-queue.
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
                let ids: Vec<i64> = with_conn!(store, |conn|
                    postgres: {
                        use super::backend::column;
                        let rows = chunk
                            .iter()
                            .map(|(id, c)| Ok((*id, c, json_text(&c.flags)?, json_text(&c.reasons)?)))
                            .collect::<Result<Vec<_>, StoreError>>()?;
                        let ids: Vec<ReturnedId> = diesel::sql_query(COMPLETE_POSTGRES.as_str())
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
                            .await?;
                        ids.into_iter().map(|r| r.id).collect()
                    },
                    sqlite: {
                        // One writer at a time: the queue rows still leased are deleted and
                        // their results written in one IMMEDIATE transaction. diesel builds
                        // SQLite's multi-row INSERT only on its synchronous connection.
                        let chunk = chunk.to_vec();
                        let owner = owner.clone();
                        conn.spawn_blocking(move |conn| {
                            conn.immediate_transaction(|conn| {
                                sqlite::complete(conn, &owner, now, &chunk)
                            })
                        })
                        .await?
                    }
                );
                done.extend(ids);
            }
            Ok(done)
        })
        .await
    }
}

/// SQLite, one writer at a time: the queue rows still leased are deleted and their results
/// written in one IMMEDIATE transaction. diesel builds SQLite's multi-row INSERT only on its
/// synchronous connection.
mod sqlite {
    use std::collections::HashMap;

    use chrono::{DateTime, Utc};
    use diesel::prelude::*;
    use diesel::upsert::excluded;
    use traffic_model::classification::Classification;

    use crate::schema::sqlite::{classifications, events, queue};

    /// Records the results of `chunk` whose lease `owner` still holds at `now`; their ids.
    pub(super) fn complete(
        conn: &mut SqliteConnection,
        owner: &str,
        now: DateTime<Utc>,
        chunk: &[(i64, Classification)],
    ) -> QueryResult<Vec<i64>> {
        let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        let leased: HashMap<i64, i32> = diesel::delete(
            queue::table
                .filter(queue::event_id.eq_any(ids))
                .filter(queue::lease_owner.eq(owner))
                .filter(queue::lease_until.gt(now)),
        )
        .returning((queue::event_id, queue::attempts))
        .get_results::<(i64, i32)>(conn)?
        .into_iter()
        .collect();
        let readings: HashMap<i64, ReadingColumns> = events::table
            .select(ReadingColumns::as_select())
            .filter(events::id.eq_any(leased.keys().copied()))
            .load::<ReadingColumns>(conn)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut values = Vec::with_capacity(leased.len());
        for (id, c) in chunk {
            let (Some(attempts), Some(reading)) = (leased.get(id), readings.get(id)) else {
                continue;
            };
            let observed_at = &reading.observed_at;
            let json = |value: serde_json::Result<serde_json::Value>| {
                value.map_err(|e| diesel::result::Error::SerializationError(e.into()))
            };
            values.push((
                classifications::event_id.eq(*id),
                classifications::observed_at.eq(*observed_at),
                classifications::label.eq(c.label.into_str()),
                classifications::level_of_service.eq(c.level_of_service.map(|l| l.into_str())),
                classifications::flow_veh_h_lane.eq(c.flow_veh_h_lane),
                classifications::density_veh_km_lane.eq(c.density_veh_km_lane),
                classifications::confidence.eq(c.confidence),
                classifications::flags.eq(json(serde_json::to_value(&c.flags))?),
                classifications::reasons.eq(json(serde_json::to_value(&c.reasons))?),
                classifications::classifier_version.eq(c.classifier_version.as_str()),
                classifications::classified_at.eq(now),
                classifications::attempts.eq(*attempts),
            ));
        }
        diesel::insert_into(classifications::table)
            .values(values)
            .on_conflict(classifications::event_id)
            .do_update()
            .set((
                classifications::label.eq(excluded(classifications::label)),
                classifications::level_of_service.eq(excluded(classifications::level_of_service)),
                classifications::flow_veh_h_lane.eq(excluded(classifications::flow_veh_h_lane)),
                classifications::density_veh_km_lane
                    .eq(excluded(classifications::density_veh_km_lane)),
                classifications::confidence.eq(excluded(classifications::confidence)),
                classifications::flags.eq(excluded(classifications::flags)),
                classifications::reasons.eq(excluded(classifications::reasons)),
                classifications::classifier_version
                    .eq(excluded(classifications::classifier_version)),
                classifications::classified_at.eq(excluded(classifications::classified_at)),
                classifications::attempts.eq(excluded(classifications::attempts)),
            ))
            .execute(conn)?;
        newest_per_lane(conn, now, chunk, &readings)?;
        Ok(leased.into_keys().collect())
    }

    /// The reading columns `lane_state` copies.
    #[derive(Queryable, Selectable)]
    #[diesel(table_name = events)]
    #[diesel(check_for_backend(diesel::sqlite::Sqlite))]
    pub(super) struct ReadingColumns {
        id: i64,
        sensor_id: String,
        lane: Option<i16>,
        observed_at: DateTime<Utc>,
        interval_s: i32,
        vehicle_count: i32,
        avg_speed_kmh: Option<f64>,
        occupancy_pct: Option<f64>,
    }

    /// Moves each lane's `lane_state` row to the newest of its readings recorded here, unless
    /// it holds a newer one already (a late reading).
    fn newest_per_lane(
        conn: &mut SqliteConnection,
        now: DateTime<Utc>,
        chunk: &[(i64, Classification)],
        readings: &HashMap<i64, ReadingColumns>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Double, Integer, Nullable, SmallInt, Text};
        let mut newest: HashMap<(&str, Option<i16>), (&ReadingColumns, &Classification)> =
            HashMap::new();
        for (id, c) in chunk {
            let Some(r) = readings.get(id) else { continue };
            let slot = newest
                .entry((r.sensor_id.as_str(), r.lane))
                .or_insert((r, c));
            if r.observed_at > slot.0.observed_at {
                *slot = (r, c);
            }
        }
        for (r, c) in newest.into_values() {
            let flags = serde_json::to_string(&c.flags)
                .map_err(|e| diesel::result::Error::SerializationError(e.into()))?;
            diesel::sql_query(UPSERT_LANE_STATE)
                .bind::<Text, _>(&r.sensor_id)
                .bind::<Nullable<SmallInt>, _>(r.lane)
                .bind::<BigInt, _>(r.id)
                .bind::<diesel::sql_types::TimestamptzSqlite, _>(r.observed_at)
                .bind::<Integer, _>(r.interval_s)
                .bind::<Integer, _>(r.vehicle_count)
                .bind::<Nullable<Double>, _>(r.avg_speed_kmh)
                .bind::<Nullable<Double>, _>(r.occupancy_pct)
                .bind::<Text, _>(c.label.into_str())
                .bind::<Nullable<Text>, _>(c.level_of_service.map(|l| l.into_str()))
                .bind::<Double, _>(c.flow_veh_h_lane)
                .bind::<Nullable<Double>, _>(c.density_veh_km_lane)
                .bind::<Double, _>(c.confidence)
                .bind::<Text, _>(flags)
                .bind::<diesel::sql_types::TimestamptzSqlite, _>(now)
                .execute(conn)?;
        }
        Ok(())
    }

    const UPSERT_LANE_STATE: &str = concat!(
        "\
        INSERT INTO lane_state (sensor_id, lane, event_id, observed_at, interval_s, \
            vehicle_count, avg_speed_kmh, occupancy_pct, label, level_of_service, \
            flow_veh_h_lane, density_veh_km_lane, confidence, flags, classified_at) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, json(?), ?) \
        ON CONFLICT (sensor_id, ifnull(lane, -1)) DO UPDATE SET ",
        lane_state_update!("lane_state")
    );
}

/// JSON text of a flag or reason list, for binding as text.
fn json_text<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Query(diesel::result::Error::SerializationError(e.into())))
}
