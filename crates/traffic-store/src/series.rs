//! A sensor's series: its readings over a window, with what their classifications said,
//! summed up by [`traffic_model::series`] — one range scan of the sensor's readings, the same
//! rows from either backend, so both give the same series.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Double, Nullable, SmallInt, Text};
use traffic_model::reading::SensorId;
use traffic_model::series::{BucketSize, Classified, Observation, Plan, Series, zone_or_utc};

use super::decode::Decode;
use super::rows::{Counted, LaneAt};
use super::sql_time::UtcTime;
use super::{Store, StoreError};

/// The longest counting interval a reading may have: a reading whose interval starts in the
/// window ends at most this long after it.
const MAX_INTERVAL: TimeDelta = TimeDelta::hours(1);

/// A reading as either backend returns it, with what its classification said if it has one.
#[derive(QueryableByName)]
struct Row {
    #[diesel(embed)]
    at: LaneAt,
    #[diesel(embed)]
    counted: Counted,
    #[diesel(sql_type = Nullable<SmallInt>)]
    lanes: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    label: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    level_of_service: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    flow_veh_h_lane: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    flags: Option<String>,
}

fn observation(r: Row) -> Result<Observation, StoreError> {
    let d = Decode(0);
    let interval_s = d.count(r.counted.interval_s)?;
    let vehicle_count = d.count(r.counted.vehicle_count)?;
    let classified = match r.label {
        None => None,
        Some(label) => Some(Classified {
            label: d.label(&label)?,
            level_of_service: d.los(r.level_of_service.as_deref())?,
            flags: r
                .flags
                .as_deref()
                .map(|f| d.flags(f))
                .transpose()?
                .unwrap_or_default(),
        }),
    };
    // Not classified yet: the reading's own flow, over the lanes it covers.
    let own_flow = || {
        let lanes = if r.at.lane.is_some() {
            1.0
        } else {
            f64::from(r.lanes.unwrap_or(1).max(1))
        };
        f64::from(vehicle_count) * 3600.0 / f64::from(interval_s.max(1)) / lanes
    };
    Ok(Observation {
        lane: d.lane(r.at.lane)?,
        observed_at: r.at.observed_at,
        interval_s,
        vehicle_count,
        avg_speed_kmh: r.counted.avg_speed_kmh,
        occupancy_pct: r.counted.occupancy_pct,
        flow_veh_h_lane: r.flow_veh_h_lane.unwrap_or_else(own_flow),
        classified,
    })
}

const COLUMNS: &str = "e.sensor_id, e.lane, e.observed_at, e.interval_s, e.vehicle_count, e.avg_speed_kmh, \
    e.occupancy_pct, e.lanes, c.label, c.level_of_service, c.flow_veh_h_lane";

/// What a series request gets.
#[derive(Debug)]
pub enum SeriesOutcome {
    Series(Series),
    /// The window holds more buckets than allowed.
    TooManyBuckets,
    /// The sensor has neither readings nor metadata.
    UnknownSensor,
}

impl Store {
    /// `sensor`'s series (one `lane`, or all) over `[from, to)` in buckets of `size`, aligned
    /// in the sensor's time zone; at most `max_buckets`.
    pub async fn series(
        &self,
        sensor: SensorId,
        lane: Option<u8>,
        size: BucketSize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_buckets: usize,
    ) -> Result<SeriesOutcome, StoreError> {
        let stored = self.sensor(sensor.clone()).await?;
        let zone = zone_or_utc(
            stored
                .as_ref()
                .and_then(|s| s.metadata.time_zone.as_deref()),
        );
        let Some(plan) = Plan::new(size, zone, from, to, max_buckets) else {
            return Ok(SeriesOutcome::TooManyBuckets);
        };
        let observations = self.observations(sensor.clone(), lane, from, to).await?;
        if observations.is_empty()
            && stored.is_none()
            && self.latest_of_sensor(sensor.clone()).await?.is_none()
        {
            return Ok(SeriesOutcome::UnknownSensor);
        }
        Ok(SeriesOutcome::Series(Series {
            buckets: plan.sum(&observations),
            sensor_id: sensor,
            bucket: size,
            lane,
            time_zone: zone.name().to_owned(),
            from,
            to,
        }))
    }

    /// The readings of `sensor` (of one `lane`, or all) whose counting interval starts in
    /// `[from, to)`, in time order, each with its classification when it has one.
    pub async fn observations(
        &self,
        sensor: SensorId,
        lane: Option<u8>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Observation>, StoreError> {
        let key = sensor.as_str().to_owned();
        // -1: every lane (a lane number is never negative).
        let lane = lane.map_or(-1, i16::from);
        let until = to + MAX_INTERVAL;
        self.run(move |store| async move {
            let mut observations: Vec<Observation> = with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    let rows: Vec<Row> = diesel::sql_query(format!(
                        "SELECT {COLUMNS}, c.flags::text AS flags \
                           FROM events e LEFT JOIN classifications c ON c.event_id = e.id \
                          WHERE e.sensor_id = $1 AND ($2 = -1 OR e.lane = $2) \
                            AND e.observed_at > $3 AND e.observed_at < $4"
                    ))
                    .bind::<Text, _>(key)
                    .bind::<SmallInt, _>(lane)
                    .bind::<UtcTime, _>(from)
                    .bind::<UtcTime, _>(until)
                    .load(conn)
                    .await?;
                    rows.into_iter().map(observation).collect::<Result<_, _>>()?
                },
                sqlite: {
                    use diesel_async::RunQueryDsl;
                    let rows: Vec<Row> = diesel::sql_query(format!(
                        "SELECT {COLUMNS}, c.flags AS flags \
                           FROM events e LEFT JOIN classifications c ON c.event_id = e.id \
                          WHERE e.sensor_id = ?1 AND (?2 = -1 OR e.lane = ?2) \
                            AND e.observed_at > ?3 AND e.observed_at < ?4"
                    ))
                    .bind::<Text, _>(key)
                    .bind::<SmallInt, _>(lane)
                    .bind::<UtcTime, _>(from)
                    .bind::<UtcTime, _>(until)
                    .load(conn)
                    .await?;
                    rows.into_iter().map(observation).collect::<Result<_, _>>()?
                }
            );
            observations.retain(|o| (from..to).contains(&o.start()));
            observations.sort_by_key(|o| (o.observed_at, o.lane));
            Ok(observations)
        })
        .await
    }
}
