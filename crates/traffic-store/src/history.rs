//! The recent readings of many sensor lanes at once: the history pool a batch of fresh readings
//! is classified with. A dialect fork with one plan: each lane's newest rows walked backwards on
//! the `(sensor_id, lane, observed_at)` index up to the limit — PostgreSQL with LATERAL, SQLite
//! with a correlated `IN (… LIMIT n)`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::sql_types::{Array, BigInt, SmallInt, Text};

use super::model::StoredRow;
use super::sql_time::UtcTime;
use super::{Store, StoreError};
use traffic_model::reading::{Reading, SensorId};

/// One sensor lane and the time its history must precede.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneHistory {
    pub sensor_id: SensorId,
    pub lane: Option<u8>,
    pub before: DateTime<Utc>,
}

impl LaneHistory {
    /// Each lane of `readings` with its earliest reading's time: the stored history a batch
    /// needs (its later readings are history for each other).
    pub fn before_each_lane<'a>(readings: impl IntoIterator<Item = &'a Reading>) -> Vec<Self> {
        let mut earliest: BTreeMap<(&SensorId, Option<u8>), DateTime<Utc>> = BTreeMap::new();
        for reading in readings {
            let at = reading.observed_at();
            earliest
                .entry((reading.sensor_id(), reading.lane()))
                .and_modify(|t| *t = (*t).min(at))
                .or_insert(at);
        }
        earliest
            .into_iter()
            .map(|((sensor_id, lane), before)| Self {
                sensor_id: sensor_id.clone(),
                lane,
                before,
            })
            .collect()
    }
}

/// The columns of a [`StoredRow`].
const READING_COLUMNS: &str = "e.id, e.sensor_id, e.observed_at, e.interval_s, e.lane, \
     e.vehicle_count, e.avg_speed_kmh, e.occupancy_pct, e.speed_limit_kmh, e.lanes, e.received_at";

impl Store {
    /// For each lane, up to `per_lane` of its readings observed in `[before − window, before)`,
    /// newest first per lane; all of them in one list.
    pub async fn recent_history(
        &self,
        lanes: Vec<LaneHistory>,
        per_lane: usize,
        window: Duration,
    ) -> Result<Vec<Reading>, StoreError> {
        if lanes.is_empty() || per_lane == 0 {
            return Ok(Vec::new());
        }
        let window = TimeDelta::from_std(window).unwrap_or(TimeDelta::hours(1));
        let per_lane = i64::try_from(per_lane).unwrap_or(i64::MAX);
        self.run(move |store| async move {
            let (with_lane, without_lane): (Vec<_>, Vec<_>) = lanes.into_iter().partition(|l| l.lane.is_some());
            let mut readings = Vec::new();
            for (group, laned) in [(with_lane, true), (without_lane, false)] {
                if group.is_empty() {
                    continue;
                }
                let sensors: Vec<String> = group.iter().map(|l| l.sensor_id.as_str().to_owned()).collect();
                let lane_numbers: Vec<i16> = group.iter().map(|l| l.lane.map(i16::from).unwrap_or(-1)).collect();
                let froms: Vec<DateTime<Utc>> = group.iter().map(|l| l.before - window).collect();
                let befores: Vec<DateTime<Utc>> = group.iter().map(|l| l.before).collect();
                with_conn!(store, |conn|
                    postgres: {
                        use diesel_async::RunQueryDsl;
                        let lane_match = if laned { "e.lane = k.lane" } else { "e.lane IS NULL" };
                        let sql = format!(
                            "SELECT {READING_COLUMNS} \
                             FROM unnest($1::text[], $2::int2[], $3::timestamptz[], $4::timestamptz[]) \
                                  AS k(sensor_id, lane, since, before) \
                             CROSS JOIN LATERAL ( \
                                 SELECT * FROM events e \
                                 WHERE e.sensor_id = k.sensor_id AND {lane_match} \
                                   AND e.observed_at >= k.since AND e.observed_at < k.before \
                                 ORDER BY e.observed_at DESC LIMIT $5) e"
                        );
                        let rows: Vec<StoredRow> = diesel::sql_query(sql)
                            .bind::<Array<Text>, _>(sensors)
                            .bind::<Array<SmallInt>, _>(lane_numbers)
                            .bind::<Array<UtcTime>, _>(froms)
                            .bind::<Array<UtcTime>, _>(befores)
                            .bind::<BigInt, _>(per_lane)
                            .load(conn)
                            .await?;
                        for row in rows {
                            readings.push(row.into_reading()?);
                        }
                    },
                    sqlite: {
                        use diesel_async::RunQueryDsl;
                        let lane_match = if laned { "h.lane = k.column2" } else { "h.lane IS NULL" };
                        let values: Vec<String> = (0..sensors.len())
                            .map(|i| format!("(?{}, ?{}, ?{}, ?{})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
                            .collect();
                        let limit = 4 * sensors.len() + 1;
                        // Per lane, the newest rows walked backwards on the lane's index and cut
                        // at the limit, as PostgreSQL's LATERAL does: ranking every row of the
                        // window first read and sorted the whole window of each lane.
                        let sql = format!(
                            "SELECT {READING_COLUMNS} FROM (VALUES {values}) AS k \
                             JOIN events e ON e.id IN ( \
                                 SELECT h.id FROM events h \
                                 WHERE h.sensor_id = k.column1 AND {lane_match} \
                                   AND h.observed_at >= k.column3 AND h.observed_at < k.column4 \
                                 ORDER BY h.observed_at DESC LIMIT ?{limit})",
                            values = values.join(", ")
                        );
                        let mut query = diesel::sql_query(sql).into_boxed();
                        for i in 0..sensors.len() {
                            query = query
                                .bind::<Text, _>(sensors[i].clone())
                                .bind::<SmallInt, _>(lane_numbers[i])
                                .bind::<UtcTime, _>(froms[i])
                                .bind::<UtcTime, _>(befores[i]);
                        }
                        let rows: Vec<StoredRow> = query.bind::<BigInt, _>(per_lane).load(conn).await?;
                        for row in rows {
                            readings.push(row.into_reading()?);
                        }
                    }
                );
            }
            Ok(readings)
        })
        .await
    }
}
