//! What [`traffic_model::series`] sums a sensor's buckets from: its readings over a window,
//! with what their classifications said, and on PostgreSQL the stored rollups of the window's
//! whole spans ([`super::rollup`]). The arithmetic is the model's either way, so both
//! backends give the same series.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Bool, Double, Nullable, SmallInt, Text, Timestamptz};
use traffic_model::reading::SensorId;
use traffic_model::series::{
    Bucket, BucketSize, Classified, Observation, Plan, Rollup, RollupSpan, Series, SeriesRetention,
    Tz, zone_or_utc,
};

use super::decode::Decode;
use super::prepared::Prepared;
use super::rollup::{self, RollupRow};
use super::rows::{Counted, LaneAt};
use super::sql_time::UtcTime;
use super::{DatabaseUrl, Store, StoreError};

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

/// The query for a sensor lane's readings in a time range, in PostgreSQL's dialect or
/// SQLite's (its parameters: sensor, lane or -1, from, until).
fn readings_sql(postgres: bool) -> String {
    let (flags, p) = if postgres {
        ("c.flags::text", '$')
    } else {
        ("c.flags", '?')
    };
    format!(
        "SELECT {COLUMNS}, {flags} AS flags \
           FROM events e \
           LEFT JOIN classifications c ON c.event_id = e.id AND c.observed_at = e.observed_at \
          WHERE e.sensor_id = {p}1 AND ({p}2 = -1 OR e.lane = {p}2) \
            AND e.observed_at > {p}3 AND e.observed_at < {p}4"
    )
}

/// The readings of `$key`'s lane (-1: every lane) whose interval starts in `[$from, $to)`,
/// read on `$conn` (PostgreSQL's when `$postgres`).
macro_rules! load_readings {
    ($conn:expr, $postgres:expr, $key:expr, $lane:expr, $from:expr, $to:expr) => {{
        use diesel_async::RunQueryDsl;
        let (from, to) = ($from, $to);
        let rows: Vec<Row> = diesel::sql_query(readings_sql($postgres))
            .bind::<Text, _>($key)
            .bind::<SmallInt, _>($lane)
            .bind::<UtcTime, _>(from)
            .bind::<UtcTime, _>(to + MAX_INTERVAL)
            .load($conn)
            .await?;
        starting_in(rows.into_iter().map(observation), from, to)?
    }};
}

/// How far the rollups are built, the numbered lanes of sensor `$1` (PostgreSQL; see
/// `lanes_of_sensor!`) and whether it has readings of the whole carriageway.
const BUILT_AND_LANES: &str = concat!(
    lanes_of_sensor!(),
    "SELECT (SELECT built_until FROM rollup_watermark) AS built_until, \
            ARRAY(SELECT lane FROM lanes WHERE lane IS NOT NULL) AS lanes, \
            EXISTS (SELECT 1 FROM events WHERE sensor_id = $1 AND lane IS NULL) AS carriageway"
);

#[derive(QueryableByName)]
struct BuiltAndLanes {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    built_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Array<SmallInt>)]
    lanes: Vec<i16>,
    #[diesel(sql_type = Bool)]
    carriageway: bool,
}

/// The lane conditions a query over some of a sensor's lanes is split into, each a range of
/// the index: the numbered lanes in `$2`, and the whole carriageway when `carriageway`.
fn lane_conditions(alias: &str, carriageway: bool) -> Vec<String> {
    let mut conditions = vec![format!("{alias}lane = ANY($2)")];
    if carriageway {
        conditions.push(format!("{alias}lane IS NULL"));
    }
    conditions
}

/// PostgreSQL's readings of a window whose part `[$4, $5)` is read from the rollups
/// (parameters: sensor, numbered lanes, from, rollups from, rollups until, until): those of
/// the edges, and those of the rolled-up part not classified yet, each kept where its interval
/// starts. The last part walks the queue, which holds only what waits for classification,
/// rather than the sensor's readings of the whole part (`OFFSET 0` keeps the planner from
/// turning the walk around).
fn readings_beside_rollups_sql(carriageway: bool) -> String {
    let start = rollup::reading_start("e");
    let longest = format!("interval '{} seconds'", MAX_INTERVAL.num_seconds());
    let mut parts = Vec::new();
    for lanes in lane_conditions("e.", carriageway) {
        let part = |source: &str, from: &str, until: &str, only: &str| {
            format!(
                "SELECT {COLUMNS}, c.flags::text AS flags FROM {source} \
                  LEFT JOIN classifications c \
                    ON c.event_id = e.id AND c.observed_at = e.observed_at \
                  WHERE e.sensor_id = $1 AND {lanes} \
                    AND e.observed_at > {from} AND e.observed_at < {until} + {longest} \
                    AND {start} >= {from} AND {start} < {until} {only}"
            )
        };
        parts.push(part("events e", "$3", "$4", ""));
        parts.push(part("events e", "$5", "$6", ""));
        parts.push(part(
            "queue q CROSS JOIN LATERAL \
             (SELECT * FROM events \
               WHERE id = q.event_id AND observed_at = q.observed_at OFFSET 0) e",
            "$4",
            "$5",
            "AND c.event_id IS NULL",
        ));
    }
    parts.join(" UNION ALL ")
}

/// The rollups of `span` in `[$3, $4)` (parameters: sensor, numbered lanes, from, until).
fn rollups_sql(span: RollupSpan, carriageway: bool) -> String {
    lane_conditions("", carriageway)
        .into_iter()
        .map(|lanes| {
            format!(
                "SELECT {} FROM {} \
                  WHERE sensor_id = $1 AND {lanes} AND start >= $3 AND start < $4",
                *rollup::SELECT,
                rollup::table(span)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// `key`'s `lane` (all when `None`) over `[from, to)`, the covered part `[a, b)` from the
/// rollups of `span` as far as they are built, all in one snapshot: the watermark and the
/// lanes, then the readings and the rollups, sent together.
async fn load_beside_rollups(
    conn: &mut diesel_async::AsyncPgConnection,
    span: RollupSpan,
    key: &str,
    lane: Option<u8>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    (a, b): (DateTime<Utc>, DateTime<Utc>),
) -> Result<SeriesSources, StoreError> {
    use diesel_async::RunQueryDsl;
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async move |conn| {
            let found: BuiltAndLanes = Prepared::new(BUILT_AND_LANES)
                .bind::<Text, _>(key.to_owned())
                .get_result(conn)
                .await?;
            // Only built spans are in the rollups.
            let b = found.built_until.map_or(a, |w| b.min(span.floor(w)).max(a));
            let (lanes, carriageway) = match lane {
                Some(lane) => (vec![i16::from(lane)], false),
                None => (found.lanes, found.carriageway),
            };
            let readings = Prepared::new(readings_beside_rollups_sql(carriageway))
                .bind::<Text, _>(key.to_owned())
                .bind::<Array<SmallInt>, _>(lanes.clone())
                .bind::<UtcTime, _>(from)
                .bind::<UtcTime, _>(a)
                .bind::<UtcTime, _>(b)
                .bind::<UtcTime, _>(to)
                .load::<Row>(&mut &*conn);
            let rollups = Prepared::new(rollups_sql(span, carriageway))
                .bind::<Text, _>(key.to_owned())
                .bind::<Array<SmallInt>, _>(lanes)
                .bind::<UtcTime, _>(a)
                .bind::<UtcTime, _>(b)
                .load::<RollupRow>(&mut &*conn);
            let (readings, rollups) = futures::try_join!(readings, rollups)?;
            Ok::<_, StoreError>(SeriesSources {
                observations: readings
                    .into_iter()
                    .map(observation)
                    .collect::<Result<_, _>>()?,
                rollups: rollups
                    .into_iter()
                    .map(RollupRow::into_rollup)
                    .collect::<Result<_, _>>()?,
            })
        })
        .await
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
    /// The window reaches back before the readings still kept (from the moment given), and
    /// its buckets cannot be summed from rollups (SQLite, 1-minute buckets, a zone whose
    /// offset is not a whole number of 5 minutes).
    BeforeRetention(DateTime<Utc>),
}

/// Why a window that reaches back before the readings kept (from `readings_from`) has no
/// series in the buckets asked for, and what would.
pub fn before_retention(readings_from: DateTime<Utc>) -> String {
    format!(
        "readings are kept from {}; earlier buckets are summed from the 5-minute and hourly \
         rollups (PostgreSQL), which fit buckets of 5 minutes or longer: ask for such buckets, \
         or a window from then on",
        readings_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// What a series is summed from.
#[derive(Debug, Default)]
pub struct SeriesSources {
    /// Readings summed one by one, in time order.
    pub observations: Vec<Observation>,
    /// Stored sums of the classified readings of whole spans.
    pub rollups: Vec<Rollup>,
}

/// A series request before its buckets are summed: the sensor's time zone, the buckets of
/// the window, and whether the sensor has metadata.
#[derive(Debug)]
pub struct SeriesFrame {
    pub sensor: SensorId,
    pub lane: Option<u8>,
    pub zone: Tz,
    pub plan: Plan,
    registered: bool,
    /// Set when the window reaches back before the readings still kept.
    retention: Option<SeriesRetention>,
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
        let Some(frame) = self
            .series_frame(sensor, lane, size, (from, to), max_buckets)
            .await?
        else {
            return Ok(SeriesOutcome::TooManyBuckets);
        };
        let buckets = self
            .series_buckets(&frame.sensor, lane, &frame.plan)
            .await?;
        self.finish_series(frame, buckets).await
    }

    /// The frame of `sensor`'s series over `window`; `None` when it needs more than
    /// `max_buckets`.
    pub async fn series_frame(
        &self,
        sensor: SensorId,
        lane: Option<u8>,
        size: BucketSize,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        max_buckets: usize,
    ) -> Result<Option<SeriesFrame>, StoreError> {
        // Two small reads on connections of their own, at once: every series waits for both.
        let (stored, retained) = futures::try_join!(self.sensor(sensor.clone()), self.retained())?;
        let zone = zone_or_utc(
            stored
                .as_ref()
                .and_then(|s| s.metadata.time_zone.as_deref()),
        );
        Ok(
            Plan::new(size, zone, from, to, max_buckets).map(|plan| SeriesFrame {
                retention: retained
                    .readings_from
                    .filter(|kept| plan.window().0 < *kept)
                    .map(|readings_from| SeriesRetention {
                        readings_from,
                        rollups_from: retained.rollups_from,
                    }),
                sensor,
                lane,
                zone,
                plan,
                registered: stored.is_some(),
            }),
        )
    }

    /// Whether the buckets of `plan` are summed from every reading of its window: always on
    /// SQLite; on PostgreSQL when no stored rollup span fits its buckets (1-minute buckets, a
    /// zone whose offset is not a whole number of 5 minutes). A cache of settled buckets saves
    /// work only then: rollups are already the database's own.
    pub fn sums_every_reading(&self, plan: &Plan) -> bool {
        matches!(self.config().url, DatabaseUrl::Sqlite(_)) || plan.rollup_span().is_none()
    }

    /// The buckets of `plan`, summed from what the database holds now.
    pub async fn series_buckets(
        &self,
        sensor: &SensorId,
        lane: Option<u8>,
        plan: &Plan,
    ) -> Result<Vec<Bucket>, StoreError> {
        let sources = self.series_sources(sensor.clone(), lane, plan).await?;
        Ok(plan.sum(&sources.observations, &sources.rollups))
    }

    /// The series of `frame` with its `buckets`; `BeforeRetention` when the window reaches
    /// back before the readings kept and nothing else can sum it, `UnknownSensor` when the
    /// sensor has neither metadata nor any reading.
    pub async fn finish_series(
        &self,
        frame: SeriesFrame,
        buckets: Vec<Bucket>,
    ) -> Result<SeriesOutcome, StoreError> {
        // First: a sensor whose readings retention removed is not unknown for that.
        if let Some(retention) = frame.retention
            && self.sums_every_reading(&frame.plan)
        {
            return Ok(SeriesOutcome::BeforeRetention(retention.readings_from));
        }
        if !frame.registered
            && buckets.iter().all(|b| b.readings == 0)
            && self.latest_of_sensor(frame.sensor.clone()).await?.is_none()
        {
            return Ok(SeriesOutcome::UnknownSensor);
        }
        let (from, to) = frame.plan.window();
        Ok(SeriesOutcome::Series(Series {
            buckets,
            sensor_id: frame.sensor,
            bucket: frame.plan.size(),
            lane: frame.lane,
            time_zone: frame.zone.name().to_owned(),
            from,
            to,
            retention: frame.retention,
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
        let lane_or_all = lane.map_or(-1, i16::from);
        let (from, to) = plan.window();
        let rollups = plan
            .rollup_span()
            .and_then(|span| Some((span, plan.covered(span)?)));
        self.run(move |store| async move {
            let mut sources = with_conn!(store, |conn|
                postgres: {
                    match rollups {
                        None => SeriesSources {
                            observations: load_readings!(conn, true, &key, lane_or_all, from, to),
                            rollups: Vec::new(),
                        },
                        Some((span, covered)) => {
                            load_beside_rollups(conn, span, &key, lane, (from, to), covered).await?
                        }
                    }
                },
                sqlite: {
                    SeriesSources {
                        observations: load_readings!(conn, false, &key, lane_or_all, from, to),
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
