//! PostgreSQL's 5-minute and hourly sums of each sensor lane's classified readings
//! (`rollup_5m`, `rollup_1h`): how they are built, how the statement that records
//! classifications keeps the built ones right, and how a series reads them back as
//! [`Rollup`]s.
//!
//! A 5-minute span is built once, after it has closed, by `build_rollups()` (the migration's
//! function, called by [`Store::build_rollups`]), which adds it to its hour's row and moves the
//! watermark `rollup_watermark` past it.
//! Readings classified later into a built span — late readings, re-queued ones — are added by
//! the recording statement: every column is a sum of one share per reading, so it adds the
//! reading's share and takes back the earlier classification's share. Fresh readings, the
//! classification path's bulk, land above the watermark and touch no rollup. The shares are
//! written here once, as SQL, from the same rules as [`traffic_model::series::Sums::add`]; a
//! test checks them against a build from scratch.

use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::pg::data_types::PgInterval;
use diesel::sql_types::{Array, BigInt, Double, Integer, Interval, Nullable, Timestamptz};
use strum::VariantArray;
use traffic_model::classification::{Flag, Label, LevelOfService};
use traffic_model::series::{Rollup, RollupSpan, Sums};

use super::decode::Decode;
use super::{Store, StoreError};

/// When the counting interval of a reading (an `events` row named `row`) starts: the span
/// holding this instant holds the reading.
pub(crate) fn reading_start(row: &str) -> String {
    format!("{row}.observed_at - {row}.interval_s * interval '1 second'")
}

/// The table holding a span's sums.
pub(crate) fn table(span: RollupSpan) -> &'static str {
    match span {
        RollupSpan::FiveMinutes => "rollup_5m",
        RollupSpan::Hour => "rollup_1h",
    }
}

/// Each sum column with one reading's share of it, in the `shares` rows of
/// [`RECORD_SHARES`]: the reading's columns, its classification's, and `sign` (1 to add, −1
/// to take back).
fn columns() -> Vec<(String, String)> {
    let mut columns: Vec<(String, String)> = [
        ("readings", "1"),
        ("vehicles", "vehicle_count"),
        ("seconds", "interval_s"),
        ("flow_weighted", "flow * interval_s"),
        (
            "speed_vehicles",
            "CASE WHEN avg_speed_kmh IS NOT NULL AND vehicle_count > 0 \
             THEN vehicle_count ELSE 0 END",
        ),
        (
            "speed_weighted",
            "CASE WHEN vehicle_count > 0 \
             THEN coalesce(avg_speed_kmh * vehicle_count, 0) ELSE 0 END",
        ),
        (
            "occupancy_seconds",
            "CASE WHEN occupancy_pct IS NOT NULL THEN interval_s ELSE 0 END",
        ),
        (
            "occupancy_weighted",
            "coalesce(occupancy_pct * interval_s, 0)",
        ),
    ]
    .into_iter()
    .map(|(name, share)| (name.to_owned(), share.to_owned()))
    .collect();
    for label in Label::VARIANTS {
        let name = label.into_str();
        columns.push((
            format!("{name}_s"),
            format!("CASE label WHEN '{name}' THEN interval_s ELSE 0 END"),
        ));
    }
    for los in LevelOfService::VARIANTS {
        let name = los.into_str();
        columns.push((
            format!("los_{}_s", name.to_lowercase()),
            format!("CASE level_of_service WHEN '{name}' THEN interval_s ELSE 0 END"),
        ));
    }
    for flag in Flag::VARIANTS {
        let name = flag.into_str();
        columns.push((format!("flag_{name}"), format!("(flags ? '{name}')::int")));
    }
    columns
}

/// The CTEs, for the statement that records classifications, that add the shares of the
/// readings in `recorded` (the classifications just recorded, beside their readings) to both
/// tables and take back
/// those of `old` (the classifications they replaced), for the readings of built spans only.
/// The watermark is read FOR SHARE, so that a build waits for this statement or this statement
/// for the build (see `build_rollups()` in the migration). Rows are upserted in key order, so
/// that two workers' statements lock shared rows in one order.
pub(crate) static RECORD_SHARES: LazyLock<String> = LazyLock::new(|| {
    let columns = columns();
    let names = columns
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let shares = columns
        .iter()
        .map(|(name, share)| format!("sum(sign * ({share})) AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let regrouped = columns
        .iter()
        .map(|(name, _)| format!("sum({name})"))
        .collect::<Vec<_>>()
        .join(", ");
    let added = columns
        .iter()
        .map(|(name, _)| format!("{name} = r.{name} + excluded.{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let span_of = |row: &str| {
        format!(
            "date_bin('5 minutes', {}, timestamptz 'epoch')",
            reading_start(row)
        )
    };
    let (span, span_e) = (span_of("r"), span_of("e"));
    format!(
        "watermark AS (SELECT built_until FROM rollup_watermark FOR SHARE), \
        shares AS (\
            SELECT r.sensor_id, r.lane, {span} AS start, 1 AS sign, r.interval_s, \
                   r.vehicle_count, r.avg_speed_kmh, r.occupancy_pct, r.label, \
                   r.level_of_service, r.flow_veh_h_lane AS flow, r.flags \
              FROM recorded r CROSS JOIN watermark w \
             WHERE r.observed_at - r.interval_s * interval '1 second' < w.built_until \
            UNION ALL \
            SELECT e.sensor_id, e.lane, {span_e}, -1, e.interval_s, e.vehicle_count, \
                   e.avg_speed_kmh, e.occupancy_pct, o.label, o.level_of_service, \
                   o.flow_veh_h_lane, o.flags \
              FROM old o JOIN events e ON e.id = o.event_id AND e.observed_at = o.observed_at \
             CROSS JOIN watermark w \
             WHERE e.observed_at - e.interval_s * interval '1 second' < w.built_until), \
        five AS (\
            SELECT sensor_id, lane, start, {shares} FROM shares GROUP BY sensor_id, lane, start), \
        five_written AS (\
            INSERT INTO rollup_5m AS r (sensor_id, lane, start, {names}) \
            SELECT * FROM five ORDER BY sensor_id, lane, start \
            ON CONFLICT (sensor_id, lane, start) DO UPDATE SET {added}), \
        hour_written AS (\
            INSERT INTO rollup_1h AS r (sensor_id, lane, start, {names}) \
            SELECT sensor_id, lane, date_bin('1 hour', start, timestamptz 'epoch') AS hour, \
                   {regrouped} \
              FROM five GROUP BY sensor_id, lane, hour ORDER BY sensor_id, lane, hour \
            ON CONFLICT (sensor_id, lane, start) DO UPDATE SET {added})"
    )
});

/// The columns of a stored span, read back as a [`Rollup`].
pub(crate) static SELECT: LazyLock<String> = LazyLock::new(|| {
    let listed = |prefix: &str, suffix: &str, names: Vec<String>| {
        names
            .iter()
            .map(|n| format!("{prefix}{n}{suffix}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "start, readings, vehicles, seconds, flow_weighted, speed_vehicles, speed_weighted, \
         occupancy_seconds, occupancy_weighted, ARRAY[{}] AS labels, ARRAY[{}] AS los, \
         ARRAY[{}]::int8[] AS flags",
        listed(
            "",
            "_s",
            Label::VARIANTS
                .iter()
                .map(|l| l.into_str().to_owned())
                .collect()
        ),
        listed(
            "los_",
            "_s",
            LevelOfService::VARIANTS
                .iter()
                .map(|l| l.into_str().to_lowercase())
                .collect()
        ),
        listed(
            "flag_",
            "",
            Flag::VARIANTS
                .iter()
                .map(|f| f.into_str().to_owned())
                .collect()
        ),
    )
});

/// One row of [`SELECT`].
#[derive(QueryableByName)]
pub(crate) struct RollupRow {
    #[diesel(sql_type = Timestamptz)]
    start: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    readings: i32,
    #[diesel(sql_type = BigInt)]
    vehicles: i64,
    #[diesel(sql_type = BigInt)]
    seconds: i64,
    #[diesel(sql_type = Double)]
    flow_weighted: f64,
    #[diesel(sql_type = BigInt)]
    speed_vehicles: i64,
    #[diesel(sql_type = Double)]
    speed_weighted: f64,
    #[diesel(sql_type = BigInt)]
    occupancy_seconds: i64,
    #[diesel(sql_type = Double)]
    occupancy_weighted: f64,
    #[diesel(sql_type = Array<BigInt>)]
    labels: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    los: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    flags: Vec<i64>,
}

impl RollupRow {
    pub(crate) fn into_rollup(self) -> Result<Rollup, StoreError> {
        let d = Decode(0);
        let count = |value: i64| {
            u32::try_from(value).map_err(|e| d.corrupt(format!("a rollup of {}: {e}", self.start)))
        };
        // Every reading counted is classified: readings not classified yet are not stored here.
        let readings = count(i64::from(self.readings))?;
        let seconds = |values: &[i64]| values.iter().map(|s| *s as f64).collect::<Vec<_>>();
        let flags = Flag::VARIANTS
            .iter()
            .zip(&self.flags)
            .map(|(flag, n)| Ok((*flag, count(*n)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Rollup {
            start: self.start,
            sums: Sums {
                readings,
                classified: readings,
                vehicles: u64::from(count(self.vehicles)?),
                flow_seconds: self.seconds as f64,
                flow_weighted: self.flow_weighted,
                speed_vehicles: self.speed_vehicles as f64,
                speed_weighted: self.speed_weighted,
                occupancy_seconds: self.occupancy_seconds as f64,
                occupancy_weighted: self.occupancy_weighted,
                los_seconds: LevelOfService::VARIANTS
                    .iter()
                    .copied()
                    .zip(seconds(&self.los))
                    .collect(),
                label_seconds: Label::VARIANTS
                    .iter()
                    .copied()
                    .zip(seconds(&self.labels))
                    .collect(),
                flags,
            },
        })
    }
}

/// The watermark as a row.
#[derive(QueryableByName)]
pub(crate) struct Watermark {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub built_until: Option<DateTime<Utc>>,
}

/// How far the rollups are built: every span starting before it is in them.
pub(crate) async fn watermark(
    conn: &mut diesel_async::AsyncPgConnection,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    use diesel_async::RunQueryDsl;
    let rows: Vec<Watermark> = diesel::sql_query("SELECT built_until FROM rollup_watermark")
        .load(conn)
        .await?;
    Ok(rows.into_iter().next().and_then(|w| w.built_until))
}

impl Store {
    /// How far the rollups are built: every span starting before it is summed in them. `None`
    /// before the first build, and on SQLite (which keeps none).
    pub async fn rollups_built_until(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(move |store| async move {
            Ok(with_conn!(store, |conn|
                postgres: { watermark(conn).await? },
                sqlite: {
                    let _ = conn;
                    None
                }
            ))
        })
        .await
    }

    /// Builds the rollups of the spans that start before `upto` and are not built yet, at most
    /// `step` of them in one transaction, and returns the new watermark; `None` when nothing
    /// was due, another replica is building, or the backend keeps no rollups (SQLite sums
    /// every reading).
    pub async fn build_rollups(
        &self,
        upto: DateTime<Utc>,
        step: TimeDelta,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(move |store| async move {
            Ok(with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    let built: Vec<Watermark> = diesel::sql_query(
                        "SELECT build_rollups($1, $2) AS built_until",
                    )
                    .bind::<Timestamptz, _>(upto)
                    .bind::<Interval, _>(PgInterval::from_microseconds(
                        step.num_microseconds().unwrap_or(i64::MAX),
                    ))
                    .load(conn)
                    .await?;
                    built.into_iter().next().and_then(|w| w.built_until)
                },
                sqlite: {
                    let _ = conn;
                    None
                }
            ))
        })
        .await
    }
}
