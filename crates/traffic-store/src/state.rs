//! The network's state: each sensor lane's latest classified reading — now, from `lane_state`
//! (one row per lane, moved forward as classifications are recorded), or at an earlier moment,
//! probing each lane of `lane_state` once on the readings' `(sensor_id, lane, observed_at)`
//! index. Neither reads the readings in bulk, so both cost the number of lanes, not of readings.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use schemars::JsonSchema;
use serde::Serialize;
use traffic_model::classification::{Flag, Label, LevelOfService};
use traffic_model::reading::SensorId;

use super::decode::Decode;
use super::rows::{Counted, LaneAt};
use super::sql_time::UtcTime;
use super::{Store, StoreError};

/// A lane's classified reading: what the lane looked like at `observed_at`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LaneState {
    pub sensor_id: SensorId,
    /// The lane; `null` for a whole-carriageway sensor.
    pub lane: Option<u8>,
    /// The reading's event id (`GET /v1/events/{id}` has its reasons).
    pub event_id: i64,
    /// End of the reading's counting interval.
    pub observed_at: DateTime<Utc>,
    pub interval_s: u32,
    pub vehicle_count: u32,
    pub avg_speed_kmh: Option<f64>,
    pub occupancy_pct: Option<f64>,
    pub label: Label,
    pub level_of_service: Option<LevelOfService>,
    pub flow_veh_h_lane: f64,
    pub density_veh_km_lane: Option<f64>,
    pub confidence: f64,
    pub flags: Vec<Flag>,
    pub classified_at: DateTime<Utc>,
}

impl LaneState {
    /// Seconds from `observed_at` to `at` (0 when `at` is earlier).
    pub fn age_s(&self, at: DateTime<Utc>) -> i64 {
        (at - self.observed_at).num_seconds().max(0)
    }

    /// Older at `at` than three of the lane's counting intervals: at least two readings are
    /// missing, so the state may no longer hold.
    pub fn is_stale(&self, at: DateTime<Utc>) -> bool {
        self.age_s(at) > 3 * i64::from(self.interval_s)
    }
}

/// The columns of a [`LaneState`], from `events e` joined to `classifications c`.
const EVENT_COLUMNS: &str = "e.sensor_id, e.lane, e.id AS event_id, e.observed_at, e.interval_s, \
    e.vehicle_count, e.avg_speed_kmh, e.occupancy_pct, c.label, c.level_of_service, \
    c.flow_veh_h_lane, c.density_veh_km_lane, c.confidence, c.flags, c.classified_at";

/// The same columns as `lane_state` holds them.
const LANE_STATE_COLUMNS: &str = "sensor_id, lane, event_id, observed_at, interval_s, \
    vehicle_count, avg_speed_kmh, occupancy_pct, label, level_of_service, flow_veh_h_lane, \
    density_veh_km_lane, confidence, flags, classified_at";

/// A row as either backend returns it, before its values are checked.
#[derive(QueryableByName)]
struct Row {
    #[diesel(embed)]
    at: LaneAt,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    #[diesel(embed)]
    counted: Counted,
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = Nullable<Text>)]
    level_of_service: Option<String>,
    #[diesel(sql_type = Double)]
    flow_veh_h_lane: f64,
    #[diesel(sql_type = Nullable<Double>)]
    density_veh_km_lane: Option<f64>,
    #[diesel(sql_type = Double)]
    confidence: f64,
    #[diesel(sql_type = Text)]
    flags: String,
    #[diesel(sql_type = UtcTime)]
    classified_at: DateTime<Utc>,
}

impl TryFrom<Row> for LaneState {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        let d = Decode(r.event_id);
        let (sensor_id, lane) = r.at.decode(&d)?;
        Ok(LaneState {
            sensor_id,
            lane,
            event_id: r.event_id,
            observed_at: r.at.observed_at,
            interval_s: d.count(r.counted.interval_s)?,
            vehicle_count: d.count(r.counted.vehicle_count)?,
            avg_speed_kmh: r.counted.avg_speed_kmh,
            occupancy_pct: r.counted.occupancy_pct,
            label: d.label(&r.label)?,
            level_of_service: d.los(r.level_of_service.as_deref())?,
            flow_veh_h_lane: r.flow_veh_h_lane,
            density_veh_km_lane: r.density_veh_km_lane,
            confidence: r.confidence,
            flags: d.flags(&r.flags)?,
            classified_at: r.classified_at,
        })
    }
}

impl Store {
    /// Each lane's latest classified reading observed at or before `at` (`None`: the latest of
    /// all), of every sensor or only of `sensor`, ordered by sensor and lane (a whole
    /// carriageway first). A lane classified only after `at` is left out.
    pub async fn lane_states(
        &self,
        at: Option<DateTime<Utc>>,
        sensor: Option<SensorId>,
    ) -> Result<Vec<LaneState>, StoreError> {
        // An empty id matches every sensor (no sensor has one).
        let only = sensor.map(|id| id.as_str().to_owned()).unwrap_or_default();
        self.run(move |store| async move {
            let rows: Vec<Row> = with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    let pg_columns = |columns: &str| columns.replace("flags,", "flags::text AS flags,");
                    match at {
                        None => {
                            diesel::sql_query(format!(
                                "SELECT {} FROM lane_state WHERE $1 IN ('', sensor_id)",
                                pg_columns(LANE_STATE_COLUMNS)
                            ))
                            .bind::<Text, _>(only)
                            .load(conn)
                            .await?
                        }
                        // A lane and a whole carriageway are probed apart: `lane = $x` and
                        // `lane IS NULL` each walk the index, `IS NOT DISTINCT FROM` would not.
                        Some(at) => {
                            let probe = |lane_match: &str| {
                                format!(
                                    "SELECT x.* FROM lane_state l CROSS JOIN LATERAL ( \
                                         SELECT {} FROM events e \
                                         JOIN classifications c ON c.event_id = e.id \
                                          AND c.observed_at = e.observed_at \
                                         WHERE e.sensor_id = l.sensor_id AND {lane_match} \
                                           AND e.observed_at <= $1 \
                                         ORDER BY e.observed_at DESC LIMIT 1) x \
                                     WHERE $2 IN ('', l.sensor_id)",
                                    pg_columns(EVENT_COLUMNS)
                                )
                            };
                            diesel::sql_query(format!(
                                "{} AND l.lane IS NOT NULL UNION ALL {} AND l.lane IS NULL",
                                probe("e.lane = l.lane"),
                                probe("e.lane IS NULL")
                            ))
                            .bind::<UtcTime, _>(at)
                            .bind::<Text, _>(only)
                            .load(conn)
                            .await?
                        }
                    }
                },
                sqlite: {
                    use diesel_async::RunQueryDsl;
                    match at {
                        None => {
                            diesel::sql_query(format!(
                                "SELECT {LANE_STATE_COLUMNS} FROM lane_state WHERE ? IN ('', sensor_id)"
                            ))
                            .bind::<Text, _>(only)
                            .load(conn)
                            .await?
                        }
                        Some(at) => {
                            diesel::sql_query(format!(
                                "SELECT {EVENT_COLUMNS} FROM lane_state l \
                                 JOIN events e ON e.id = ( \
                                     SELECT p.id FROM events p \
                                     JOIN classifications pc ON pc.event_id = p.id \
                                     WHERE p.sensor_id = l.sensor_id AND p.lane IS l.lane \
                                       AND p.observed_at <= ?1 \
                                     ORDER BY p.observed_at DESC LIMIT 1) \
                                 JOIN classifications c ON c.event_id = e.id \
                                 WHERE ?2 IN ('', l.sensor_id)"
                            ))
                            .bind::<UtcTime, _>(at)
                            .bind::<Text, _>(only)
                            .load(conn)
                            .await?
                        }
                    }
                }
            );
            let mut states = rows
                .into_iter()
                .map(LaneState::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            states.sort_by(|a, b| (&a.sensor_id, a.lane).cmp(&(&b.sensor_id, b.lane)));
            Ok(states)
        })
        .await
    }
}
