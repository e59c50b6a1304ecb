//! What [`traffic_model::series`] sums a sensor's buckets from: its readings over a window,
//! with what their classifications said, and on PostgreSQL the stored rollups of the window's
//! whole spans ([`super::rollup`]). The arithmetic is the model's either way, so both
//! backends give the same series.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Double, Nullable, SmallInt, Text};
use traffic_model::reading::SensorId;
use traffic_model::series::{
    BucketSize, Classified, Observation, Plan, Rollup, RollupSpan, Series, zone_or_utc,
};

use super::decode::Decode;
use super::rollup::{self, RollupRow};
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

/// Which of a sensor's readings a query reads one by one.
#[derive(Clone, Copy)]
enum Readings {
    Every,
    /// Those not classified yet (in the queue, with no classification): the ones the rollups
    /// do not hold.
    Unclassified,
}

/// The query for `which` of a sensor lane's readings in a time range, in PostgreSQL's dialect
/// or SQLite's (its parameters: sensor, lane or -1, from, until).
fn readings_sql(which: Readings, postgres: bool) -> String {
    let (source, only) = match which {
        Readings::Every => (
            "events e LEFT JOIN classifications c ON c.event_id = e.id",
            "",
        ),
        Readings::Unclassified => (
            "queue q JOIN events e ON e.id = q.event_id \
             LEFT JOIN classifications c ON c.event_id = e.id",
            "AND c.event_id IS NULL",
        ),
    };
    let (flags, p) = if postgres {
        ("c.flags::text", '$')
    } else {
        ("c.flags", '?')
    };
    format!(
        "SELECT {COLUMNS}, {flags} AS flags FROM {source} \
          WHERE e.sensor_id = {p}1 AND ({p}2 = -1 OR e.lane = {p}2) \
            AND e.observed_at > {p}3 AND e.observed_at < {p}4 {only}"
    )
}

/// The readings of `$key`'s lane (-1: every lane) whose interval starts in `[$from, $to)`,
/// `$which` of them, read on `$conn` (PostgreSQL's when `$postgres`).
macro_rules! load_readings {
    ($conn:expr, $postgres:expr, $which:expr, $key:expr, $lane:expr, $from:expr, $to:expr) => {{
        use diesel_async::RunQueryDsl;
        let (from, to) = ($from, $to);
        let rows: Vec<Row> = diesel::sql_query(readings_sql($which, $postgres))
            .bind::<Text, _>($key)
            .bind::<SmallInt, _>($lane)
            .bind::<UtcTime, _>(from)
            .bind::<UtcTime, _>(to + MAX_INTERVAL)
            .load($conn)
            .await?;
        starting_in(rows.into_iter().map(observation), from, to)?
    }};
}

/// The rollups of `key`'s lane (-1: every lane) that start in `[from, to)`.
async fn load_rollups(
    conn: &mut diesel_async::AsyncPgConnection,
    span: RollupSpan,
    key: &str,
    lane: i16,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Rollup>, StoreError> {
    use diesel_async::RunQueryDsl;
    let rows: Vec<RollupRow> = diesel::sql_query(format!(
        "SELECT {} FROM {} \
          WHERE sensor_id = $1 AND ($2 = -1 OR lane = $2) AND start >= $3 AND start < $4",
        *rollup::SELECT,
        rollup::table(span)
    ))
    .bind::<Text, _>(key)
    .bind::<SmallInt, _>(lane)
    .bind::<UtcTime, _>(from)
    .bind::<UtcTime, _>(to)
    .load(conn)
    .await?;
    rows.into_iter().map(RollupRow::into_rollup).collect()
}

fn starting_in(
    observations: impl Iterator<Item = Result<Observation, StoreError>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Observation>, StoreError> {
    let mut kept = Vec::new();
    for o in observations {
        let o = o?;
        if (from..to).contains(&o.start()) {
            kept.push(o);
        }
    }
    Ok(kept)
}

/// What a series request gets.
#[derive(Debug)]
pub enum SeriesOutcome {
    Series(Series),
    /// The window holds more buckets than allowed.
    TooManyBuckets,
    /// The sensor has neither readings nor metadata.
    UnknownSensor,
}

/// What a series is summed from.
#[derive(Debug, Default)]
pub struct SeriesSources {
    /// Readings summed one by one, in time order.
    pub observations: Vec<Observation>,
    /// Stored sums of the classified readings of whole spans.
    pub rollups: Vec<Rollup>,
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
        let sources = self.series_sources(sensor.clone(), lane, &plan).await?;
        if sources.observations.is_empty()
            && sources.rollups.is_empty()
            && stored.is_none()
            && self.latest_of_sensor(sensor.clone()).await?.is_none()
        {
            return Ok(SeriesOutcome::UnknownSensor);
        }
        Ok(SeriesOutcome::Series(Series {
            buckets: plan.sum(&sources.observations, &sources.rollups),
            sensor_id: sensor,
            bucket: size,
            lane,
            time_zone: zone.name().to_owned(),
            from,
            to,
        }))
    }

    /// What the buckets of `plan` are summed from, for `sensor` (one `lane`, or all). On
    /// PostgreSQL the whole rollup spans of the window come from the rollups (with the
    /// readings of those spans not classified yet), the edges from the readings, all read in
    /// one snapshot; SQLite, and a window no span fits, sum every reading.
    pub async fn series_sources(
        &self,
        sensor: SensorId,
        lane: Option<u8>,
        plan: &Plan,
    ) -> Result<SeriesSources, StoreError> {
        let key = sensor.as_str().to_owned();
        // -1: every lane (a lane number is never negative).
        let lane = lane.map_or(-1, i16::from);
        let (from, to) = plan.window();
        let rollups = plan
            .rollup_span()
            .and_then(|span| Some((span, plan.covered(span)?)));
        self.run(move |store| async move {
            let mut sources = with_conn!(store, |conn|
                postgres: {
                    match rollups {
                        None => SeriesSources {
                            observations: load_readings!(conn, true, Readings::Every, &key, lane, from, to),
                            rollups: Vec::new(),
                        },
                        Some((span, (a, b))) => {
                            let key = key.as_str();
                            conn.build_transaction()
                                .read_only()
                                .repeatable_read()
                                .run(async move |conn| {
                                    // Only built spans are in the rollups.
                                    let built = rollup::watermark(conn).await?;
                                    let b = built.map_or(a, |w| b.min(span.floor(w)).max(a));
                                    let mut observations =
                                        load_readings!(conn, true, Readings::Every, key, lane, from, a);
                                    observations.extend(
                                        load_readings!(conn, true, Readings::Unclassified, key, lane, a, b),
                                    );
                                    observations.extend(
                                        load_readings!(conn, true, Readings::Every, key, lane, b, to),
                                    );
                                    let rollups = load_rollups(conn, span, key, lane, a, b).await?;
                                    Ok::<_, StoreError>(SeriesSources { observations, rollups })
                                })
                                .await?
                        }
                    }
                },
                sqlite: {
                    SeriesSources {
                        observations: load_readings!(conn, false, Readings::Every, &key, lane, from, to),
                        rollups: Vec::new(),
                    }
                }
            );
            sources
                .observations
                .sort_by_key(|o| (o.observed_at, o.lane));
            Ok(sources)
        })
        .await
    }
}
