//! Batches whose sender needs only counts: no rows come back, so neither `RETURNING` nor the
//! look-up of the rows that collided is paid for.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use diesel::ExpressionMethods;
use diesel::sql_types::{Array, Double, Integer, Nullable, SmallInt, Text, Timestamptz};

use super::INSERT_CHUNK;
use crate::backend::column;
use crate::prepared::Prepared;
use crate::{Store, StoreError};
use traffic_model::reading::Reading;

/// What a counted batch insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertCounts {
    /// Readings stored now.
    pub inserted: usize,
    /// Readings that were already stored, or repeated an earlier reading of the same batch.
    pub duplicates: usize,
}

/// PostgreSQL takes the batch column by column: nine arrays and the time, instead of eleven
/// parameters per reading, so the statement stays the same whatever the batch size and is
/// prepared once per connection.
const UNNEST_INSERT: &str = "\
    INSERT INTO events (sensor_id, observed_at, interval_s, lane, vehicle_count, avg_speed_kmh, \
                        occupancy_pct, speed_limit_kmh, lanes, received_at) \
    SELECT r.*, $10 \
      FROM unnest($1::text[], $2::timestamptz[], $3::int4[], $4::int2[], $5::int4[], \
                  $6::float8[], $7::float8[], $8::int2[], $9::int2[]) AS r \
    ON CONFLICT DO NOTHING";

/// [`UNNEST_INSERT`] returning the rows it stored, as [`crate::model::StoredRow`]s.
pub(super) static UNNEST_INSERT_RETURNING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{UNNEST_INSERT} RETURNING id, sensor_id, observed_at, interval_s, lane, vehicle_count, \
         avg_speed_kmh, occupancy_pct, speed_limit_kmh, lanes, received_at"
    )
});

impl Store {
    /// Stores many readings as pending events in one transaction and says how many were new.
    /// Idempotent on each reading's key like [`Store::insert`], a repeat inside the batch
    /// counting as a duplicate; no rows come back.
    pub async fn insert_many_counted(
        &self,
        readings: Vec<Reading>,
    ) -> Result<InsertCounts, StoreError> {
        if readings.is_empty() {
            return Ok(InsertCounts::default());
        }
        let total = readings.len();
        let readings = Arc::new(readings);
        let inserted = self
            .with_partitions(&readings, || {
                self.insert_counted_once(Arc::clone(&readings))
            })
            .await?;
        Ok(InsertCounts {
            inserted,
            duplicates: total - inserted,
        })
    }

    /// One try of [`Store::insert_many_counted`]: the rows it stored.
    async fn insert_counted_once(&self, readings: Arc<Vec<Reading>>) -> Result<usize, StoreError> {
        self.run(move |store| async move {
            let now = crate::backend::now();
            Ok(with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    unnest_insert(UNNEST_INSERT, &readings, now).execute(conn).await?
                },
                sqlite: {
                    conn.spawn_blocking(move |conn| {
                        use diesel::RunQueryDsl;
                        conn.immediate_transaction(|conn| {
                            let mut inserted = 0;
                            for chunk in readings.chunks(INSERT_CHUNK) {
                                let values: Vec<_> =
                                    chunk.iter().map(|r| reading_values!(r, now)).collect();
                                inserted += diesel::insert_into(events::table)
                                    .values(values)
                                    .on_conflict_do_nothing()
                                    .execute(conn)?;
                            }
                            Ok::<_, diesel::result::Error>(inserted)
                        })
                    })
                    .await?
                }
            ))
        })
        .await
    }
}

/// `sql` ([`UNNEST_INSERT`], perhaps with a `RETURNING`) with `readings` bound as one array
/// per column.
pub(super) fn unnest_insert(sql: &str, readings: &[Reading], now: DateTime<Utc>) -> Prepared {
    Prepared::new(sql)
        .bind::<Array<Text>, _>(column(readings, |r| r.sensor_id().as_str().to_owned()))
        .bind::<Array<Timestamptz>, _>(column(readings, Reading::observed_at))
        .bind::<Array<Integer>, _>(column(readings, |r| r.interval_s() as i32))
        .bind::<Array<Nullable<SmallInt>>, _>(column(readings, |r| r.lane().map(i16::from)))
        .bind::<Array<Integer>, _>(column(readings, |r| r.vehicle_count() as i32))
        .bind::<Array<Nullable<Double>>, _>(column(readings, Reading::avg_speed_kmh))
        .bind::<Array<Nullable<Double>>, _>(column(readings, Reading::occupancy_pct))
        .bind::<Array<Nullable<SmallInt>>, _>(column(readings, |r| {
            r.speed_limit_kmh().map(|v| v as i16)
        }))
        .bind::<Array<Nullable<SmallInt>>, _>(column(readings, |r| r.lanes().map(i16::from)))
        .bind::<Timestamptz, _>(now)
}
