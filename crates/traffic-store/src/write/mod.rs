//! Storing readings: idempotent on the reading's key, one multi-row statement per chunk.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
// No RunQueryDsl at module level: the two backends' branches each import their own (async/sync).
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::AsyncConnection;

use super::model::{EventRow, ReadingKey, StoredRow, reading_key};
use super::{Event, Inserted, Store, StoreError};
pub use bulk::InsertCounts;
pub(super) use coalesce::Coalescer;
use traffic_model::reading::Reading;

/// Rows per INSERT: 11 bound values each stays far below both backends' parameter limits
/// (65 535 on PostgreSQL, 32 766 on SQLite).
const INSERT_CHUNK: usize = 1000;

/// The VALUES of one reading, against whichever `events` module is in scope.
macro_rules! reading_values {
    ($reading:expr, $now:expr) => {{
        let r: &Reading = $reading;
        (
            events::sensor_id.eq(r.sensor_id().as_str().to_owned()),
            events::observed_at.eq(r.observed_at()),
            events::interval_s.eq(r.interval_s() as i32),
            events::lane.eq(r.lane().map(i16::from)),
            events::vehicle_count.eq(r.vehicle_count() as i32),
            events::avg_speed_kmh.eq(r.avg_speed_kmh()),
            events::occupancy_pct.eq(r.occupancy_pct()),
            events::speed_limit_kmh.eq(r.speed_limit_kmh().map(|v| v as i16)),
            events::lanes.eq(r.lanes().map(i16::from)),
            events::received_at.eq($now),
        )
    }};
}

mod bulk;
mod coalesce;

impl Store {
    /// Stores one reading as a pending event. A reading already stored (same sensor, lane and
    /// `observed_at`) is not stored again: the first copy comes back with `duplicate: true`.
    /// Concurrent calls share multi-row statements (see [`coalesce`]); each returns once its
    /// own row is committed, and a caller that goes away does not stop the write.
    pub async fn insert(&self, reading: Reading) -> Result<Inserted, StoreError> {
        self.coalescer().insert(reading).await
    }

    /// Inserts `readings` in one statement per [`INSERT_CHUNK`] and pairs every input with
    /// its row; one transaction when there is more than one statement. The outer error means
    /// nothing was stored. Otherwise each reading has its own result, and a reading whose
    /// row was stored now always has its event: only a reading that collided with an earlier
    /// row can fail, when that row could not be read back.
    async fn insert_chunk(
        &self,
        readings: Arc<Vec<Reading>>,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        self.with_partitions(&readings, || self.insert_chunk_once(Arc::clone(&readings)))
            .await
    }

    /// One try of [`Store::insert_chunk`].
    async fn insert_chunk_once(
        &self,
        readings: Arc<Vec<Reading>>,
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let now = super::backend::now();
        let (fresh, existing) = with_conn!(self, |conn|
            postgres: {
                use diesel_async::RunQueryDsl;
                // The rows bound column by column to one prepared statement of fixed text
                // (see `bulk`), returned as stored.
                macro_rules! returning {
                    ($conn:ident, $chunk:ident) => {
                        bulk::unnest_insert(bulk::UNNEST_INSERT_RETURNING.as_str(), $chunk, now)
                            .load($conn)
                            .await?
                    };
                }
                if readings.len() <= INSERT_CHUNK {
                    // One INSERT is atomic on its own; the follow-up only reads committed rows.
                    // Skipping BEGIN/COMMIT saves two round trips on every single POST.
                    insert_chunks!(conn, &readings, |chunk| returning!(conn, chunk), .await)
                } else {
                    conn.transaction(async |conn| {
                        let (fresh, existing) =
                            insert_chunks!(conn, &readings, |chunk| returning!(conn, chunk), .await);
                        Ok::<_, StoreError>((fresh, Ok(existing?)))
                    })
                    .await?
                }
            },
            sqlite: {
                // diesel builds SQLite's multi-row INSERT only on its synchronous connection;
                // IMMEDIATE takes the write lock first, so concurrent writers queue rather
                // than fail on a lock upgrade.
                let readings = Arc::clone(&readings);
                conn.spawn_blocking(move |conn| {
                    use diesel::RunQueryDsl;
                    conn.immediate_transaction(|conn| {
                        let (fresh, existing) = insert_chunks!(conn, &readings, |chunk| {
                            let values: Vec<_> =
                                chunk.iter().map(|r| reading_values!(r, now)).collect();
                            diesel::insert_into(events::table)
                                .values(values)
                                .on_conflict_do_nothing()
                                .returning(stored_columns!(events))
                                .get_results(conn)?
                        },);
                        Ok::<_, diesel::result::Error>((fresh, Ok(existing?)))
                    })
                })
                .await?
            }
        );
        Ok(match_inputs(
            &readings,
            fresh,
            existing.map_err(StoreError::from),
        ))
    }
}

/// The one result of an insert of one reading.
fn only(mut results: Vec<Result<Inserted, StoreError>>) -> Result<Inserted, StoreError> {
    match (results.pop(), results.is_empty()) {
        (Some(one), true) => one,
        _ => Err(StoreError::CorruptRow {
            id: 0,
            reason: "an insert of one reading did not return exactly one row".into(),
        }),
    }
}

/// Inserts `readings` chunk by chunk, `$insert` storing each `$chunk` and evaluating to the rows
/// it created: those rows, and the already stored rows the others collided with — or the error
/// that kept those from being read (the rows created stay created: without a transaction each
/// INSERT commits on its own). `$($await)*` is `.await` on an async connection and nothing on a
/// synchronous one.
macro_rules! insert_chunks {
    ($conn:ident, $readings:expr, |$chunk:ident| $insert:expr, $($await:tt)*) => {{
        let readings: &[Reading] = $readings;
        let mut fresh: Vec<StoredRow> = Vec::with_capacity(readings.len());
        let mut existing: Result<Vec<EventRow>, diesel::result::Error> = Ok(Vec::new());
        for $chunk in readings.chunks(INSERT_CHUNK) {
            let created: Vec<StoredRow> = $insert;
            let (sensors, times) = collided($chunk, &created);
            fresh.extend(created);
            if let (false, Ok(found)) = (sensors.is_empty(), existing.as_mut()) {
                // Over-fetches the sensors × times product; match_inputs keeps exact keys.
                let lookup: Result<Vec<EventRow>, _> = event_states::table
                    .select(event_columns!())
                    .filter(event_states::sensor_id.eq_any(sensors))
                    .filter(event_states::observed_at.eq_any(times))
                    .load($conn)
                    $($await)*;
                match lookup {
                    Ok(rows) => found.extend(rows),
                    Err(e) => existing = Err(e),
                }
            }
        }
        (fresh, existing)
    }};
}
use insert_chunks;

/// Sensors and times of the readings in `chunk` that the INSERT did not create.
fn collided(chunk: &[Reading], fresh: &[StoredRow]) -> (Vec<String>, Vec<DateTime<Utc>>) {
    let fresh_keys: HashSet<ReadingKey> = fresh.iter().map(StoredRow::key).collect();
    let missing: Vec<&Reading> = chunk
        .iter()
        .filter(|r| !fresh_keys.contains(&reading_key(r)))
        .collect();
    (
        unique(missing.iter().map(|r| r.sensor_id().as_str()))
            .into_iter()
            .map(str::to_owned)
            .collect(),
        unique(missing.iter().map(|r| r.observed_at())),
    )
}

fn unique<T: Eq + std::hash::Hash + Copy>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|item| seen.insert(*item)).collect()
}

/// Pairs each input with its row: `fresh` rows were created now, `existing` ones were there
/// before. The first input naming a fresh row owns it; every other input naming a stored key
/// is a duplicate.
fn match_inputs(
    readings: &[Reading],
    fresh: Vec<StoredRow>,
    existing: Result<Vec<EventRow>, StoreError>,
) -> Vec<Result<Inserted, StoreError>> {
    let mut by_key: HashMap<ReadingKey, (Event, bool)> = HashMap::with_capacity(readings.len());
    let (existing, lookup_error) = match existing {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(Arc::new(e))),
    };
    let mut unreadable: Option<Arc<StoreError>> = None;
    // Fresh rows come first, so they win over the same row found again.
    let rows = fresh
        .into_iter()
        .map(|row| (EventRow::fresh(row), true))
        .chain(existing.into_iter().map(|row| (row, false)));
    for (row, inserted_now) in rows {
        let key = row.stored.key();
        if let std::collections::hash_map::Entry::Vacant(slot) = by_key.entry(key) {
            match Event::try_from(row) {
                Ok(event) => {
                    slot.insert((event, inserted_now));
                }
                Err(e) => unreadable = Some(Arc::new(e)),
            }
        }
    }
    readings
        .iter()
        .map(|reading| {
            let key = reading_key(reading);
            let Some((event, unclaimed)) = by_key.get_mut(&key) else {
                let cause = lookup_error.clone().or_else(|| unreadable.clone());
                return Err(match cause {
                    Some(cause) => StoreError::Shared(cause),
                    None => StoreError::CorruptRow {
                        id: 0,
                        reason: format!("reading {key:?} was neither inserted nor found"),
                    },
                });
            };
            let duplicate = !*unclaimed;
            *unclaimed = false;
            Ok(Inserted {
                event: event.clone(),
                duplicate,
            })
        })
        .collect()
}
