//! The query tools: what an agent asks of the stored traffic — the network's state, one
//! sensor, its series, congestion periods, the sensors — answered by the store's own read
//! queries, the same ones behind the REST API. Read-only; every result is capped and says how
//! to continue. Listed only when the server has the events database.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use rmcp::handler::server::tool::schema_for_output;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use traffic_model::classification::{Flag, Label, LevelOfService};
use traffic_model::place::{BoundingBox, Road};
use traffic_model::reading::{SensorId, parse_timestamp};
use traffic_model::sensor::{Location, SensorMetadata};
use traffic_model::series::{self, BucketSize, Series};
use traffic_store::{
    AgedLane, NetworkFilter, SensorListing, SeriesOutcome, StateItem, StateSummary, Store,
    StoreError,
};

use super::{ClassifierServer, error_text, schema};

/// Lanes listed among the worst, the stale and the flagged in `traffic_state`.
pub const MAX_LISTED_LANES: usize = 20;
/// Buckets one `sensor_series` answer holds (a day of 5-minute buckets).
pub const MAX_SERIES_BUCKETS: usize = 288;
/// The most `find_congestion` and `list_sensors` return per call.
pub const MAX_PAGE: usize = 100;
/// The longest `find_congestion` window.
const MAX_CONGESTION_WINDOW: TimeDelta = TimeDelta::days(31);

/// A lane as an agent reads it: where, what and how old.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LaneBrief {
    pub sensor_id: SensorId,
    /// The lane; null for a whole-carriageway sensor.
    pub lane: Option<u8>,
    /// The sensor's road, from its metadata.
    pub road: Option<String>,
    pub label: Label,
    pub level_of_service: Option<LevelOfService>,
    /// Mean speed, km/h.
    pub avg_speed_kmh: Option<f64>,
    /// Flow, vehicles per hour per lane.
    pub flow_veh_h_lane: f64,
    /// Occupancy, percent.
    pub occupancy_pct: Option<f64>,
    pub flags: Vec<Flag>,
    /// End of the reading's counting interval.
    pub observed_at: DateTime<Utc>,
    /// Seconds from `observed_at` to the moment asked about.
    pub age_s: i64,
    /// No reading for three counting intervals.
    pub stale: bool,
}

impl From<&StateItem> for LaneBrief {
    fn from(item: &StateItem) -> Self {
        let lane = &item.lane.state;
        Self {
            sensor_id: lane.sensor_id.clone(),
            lane: lane.lane,
            road: item.road.clone(),
            label: lane.label,
            level_of_service: lane.level_of_service,
            avg_speed_kmh: lane.avg_speed_kmh,
            flow_veh_h_lane: lane.flow_veh_h_lane,
            occupancy_pct: lane.occupancy_pct,
            flags: lane.flags.clone(),
            observed_at: lane.observed_at,
            age_s: item.lane.age_s,
            stale: item.lane.stale,
        }
    }
}

impl LaneBrief {
    /// "s1 lane 2 congested (LOS F, 23 km/h)".
    fn describe(&self) -> String {
        let mut text = format!("{}{} {}", self.sensor_id, lane_text(self.lane), self.label);
        let mut details = Vec::new();
        if let Some(los) = self.level_of_service {
            details.push(format!("LOS {los}"));
        }
        if let Some(speed) = self.avg_speed_kmh {
            details.push(format!("{speed:.0} km/h"));
        }
        if !details.is_empty() {
            text.push_str(&format!(" ({})", details.join(", ")));
        }
        text
    }
}

fn lane_text(lane: Option<u8>) -> String {
    lane.map_or_else(String::new, |l| format!(" lane {l}"))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficStateArgs {
    /// The moment to look at, RFC 3339 with an offset; now when absent. Each lane's latest
    /// reading at or before it counts.
    #[schemars(example = &"2026-12-02T07:30:00Z")]
    pub at: Option<String>,
    /// Only sensors on this road (the exact name in the sensors' metadata).
    #[schemars(example = &"A1")]
    pub road: Option<Road>,
    /// Only sensors inside this WGS84 box, `minlon,minlat,maxlon,maxlat` in degrees.
    pub bbox: Option<BoundingBox>,
    /// Only lanes whose latest label is this one.
    pub label: Option<Label>,
}

/// The network at a moment.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrafficStateOutput {
    pub at: DateTime<Utc>,
    /// Counts over every lane kept: lanes, stale, flagged, lanes per label.
    pub summary: StateSummary,
    /// The worst lanes, worst first (label, then Level of Service, then speed); at most 20.
    pub worst_lanes: Vec<LaneBrief>,
    /// Lanes with no reading for three counting intervals; at most 20 (`summary.stale`
    /// counts them all).
    pub stale_lanes: Vec<LaneBrief>,
    /// Lanes whose latest reading has data-quality flags; at most 20 (`summary.flagged`
    /// counts them all).
    pub flagged_lanes: Vec<LaneBrief>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorArgs {
    /// The sensor's id (`list_sensors` finds ids by prefix, road or place).
    #[schemars(example = &"A1-N-012")]
    pub sensor_id: SensorId,
}

/// A sensor: what is known about it, each lane's latest state, and its day so far.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SensorInfo {
    pub sensor_id: SensorId,
    /// Name, road, direction, location, lanes, speed limit, time zone…; null when none was
    /// stored.
    pub metadata: Option<SensorMetadata>,
    /// Each lane's latest classified reading with its age.
    pub lanes: Vec<AgedLane>,
    /// Today so far, in the sensor's time zone.
    pub today: Today,
}

/// A sensor's local day so far.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Today {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub time_zone: String,
    pub readings: u32,
    pub classified: u32,
    /// Minutes of classified readings per label.
    pub minutes_by_label: std::collections::BTreeMap<Label, f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorSeriesArgs {
    /// The sensor's id.
    #[schemars(example = &"A1-N-012")]
    pub sensor_id: SensorId,
    /// Readings whose interval starts at or after this (RFC 3339); a day before `to` when
    /// absent.
    #[schemars(example = &"2026-12-02T00:00:00+01:00")]
    pub from: Option<String>,
    /// … and before this (RFC 3339); now when absent. At most 366 days after `from`.
    pub to: Option<String>,
    /// Bucket length: `1m`, `5m` (the default), `15m`, `1h`, or `1d` (local days in the
    /// sensor's time zone).
    pub bucket: Option<BucketSize>,
    /// Only this lane (0–32); every lane when absent.
    #[schemars(range(min = 0, max = 32))]
    pub lane: Option<u8>,
}

/// A sensor's series, at most 288 buckets.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SeriesOutput {
    #[serde(flatten)]
    pub series: Series,
    /// Set when the window holds more than 288 buckets: call again with this as `from`.
    pub next_from: Option<DateTime<Utc>>,
}

/// The label a congestion period is at least.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MinLabel {
    /// Heavy or congested.
    Heavy,
    /// Congested only (LOS F, breakdown).
    #[default]
    Congested,
}

impl MinLabel {
    fn admits(self, label: Label) -> bool {
        label.severity() >= self.label().severity()
    }

    fn label(self) -> Label {
        match self {
            Self::Heavy => Label::Heavy,
            Self::Congested => Label::Congested,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindCongestionArgs {
    /// Start of the window, RFC 3339 with an offset.
    #[schemars(example = &"2026-12-02T06:00:00Z")]
    pub from: String,
    /// End of the window, RFC 3339; at most 31 days after `from`.
    #[schemars(example = &"2026-12-02T10:00:00Z")]
    pub to: String,
    /// Only sensors on this road.
    pub road: Option<Road>,
    /// Only this sensor.
    pub sensor_id: Option<SensorId>,
    /// `congested` (the default) or `heavy` (heavy or congested).
    pub min_label: Option<MinLabel>,
    /// Periods per answer, 1–100 (default 50).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous answer, with the same other arguments.
    pub cursor: Option<String>,
}

/// A stretch of time a lane spent at or above the label asked for.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CongestionPeriod {
    pub sensor_id: SensorId,
    /// The lane; null for a whole-carriageway sensor.
    pub lane: Option<u8>,
    pub road: Option<String>,
    /// When the lane's first reading at the label was observed; `from` when the period began
    /// before the window.
    pub start: DateTime<Utc>,
    /// When the lane's first reading below it was observed; null while it lasts.
    pub end: Option<DateTime<Utc>>,
    /// Seconds from `start` to `end` (to the window's end while it lasts).
    pub duration_s: i64,
    /// The period had begun before the window (ask again with an earlier `from`).
    pub began_before_window: bool,
    /// Still at the label at the window's end.
    pub ongoing: bool,
    /// The worst label of the period.
    pub worst_label: Label,
    /// The worst Level of Service among its readings in the window (and the one before the
    /// window when it had begun before).
    pub worst_los: Option<LevelOfService>,
}

/// Congestion periods in a window, by start.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CongestionOutput {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub min_label: Label,
    /// Periods in the window in all.
    pub total: usize,
    pub periods: Vec<CongestionPeriod>,
    /// Pass as `cursor` for the next periods; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSensorsArgs {
    /// Only sensors whose id starts with this.
    #[schemars(example = &"A1-")]
    pub prefix: Option<String>,
    /// Only sensors on this road.
    pub road: Option<Road>,
    /// Only sensors inside this WGS84 box, `minlon,minlat,maxlon,maxlat` in degrees.
    pub bbox: Option<BoundingBox>,
    /// Sensors per answer, 1–100 (default 50).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous answer, with the same other arguments.
    pub cursor: Option<String>,
}

/// A sensor in a listing.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SensorBrief {
    pub sensor_id: String,
    pub name: Option<String>,
    pub road: Option<String>,
    pub direction: Option<String>,
    pub location: Option<Location>,
    /// Each lane's latest label.
    pub lanes: Vec<LaneLabel>,
}

/// A lane's latest label.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LaneLabel {
    pub lane: Option<u8>,
    pub label: Label,
    pub level_of_service: Option<LevelOfService>,
    pub age_s: i64,
    pub stale: bool,
}

/// Sensors in id order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SensorsOutput {
    pub items: Vec<SensorBrief>,
    /// Pass as `cursor` for the next sensors; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<SensorListing> for SensorBrief {
    fn from(sensor: SensorListing) -> Self {
        let metadata = sensor.metadata.unwrap_or_default();
        Self {
            sensor_id: sensor.sensor_id,
            name: metadata.name,
            road: metadata.road,
            direction: metadata.direction,
            location: metadata.location,
            lanes: sensor
                .lanes
                .into_iter()
                .map(|l| LaneLabel {
                    lane: l.state.lane,
                    label: l.state.label,
                    level_of_service: l.state.level_of_service,
                    age_s: l.age_s,
                    stale: l.stale,
                })
                .collect(),
        }
    }
}

#[tool_router(router = query_router, vis = "pub(super)")]
impl ClassifierServer {
    /// The network now or at a moment.
    #[tool(
        name = "traffic_state",
        title = "Traffic state of the network",
        description = "The traffic network now, or at a past moment (`at`): how many sensor \
lanes are free_flow, moderate, heavy, congested or unknown, the worst lanes (label, HCM Level \
of Service A-F, speed km/h, flow veh/h/lane), the stale lanes (no reading for three counting \
intervals) and those with data-quality flags; at most 20 lanes in each list, the summary counts \
all. Filter by `road`, `bbox` (minlon,minlat,maxlon,maxlat) or `label`. Read-only.",
        input_schema = schema::input::<TrafficStateArgs>(),
        output_schema = schema_for_output::<TrafficStateOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn traffic_state(&self, arguments: JsonObject) -> Result<CallToolResult, CallToolResult> {
        let args: TrafficStateArgs = parse_args(arguments)?;
        let at = args.at.as_deref().map(|t| moment("at", t)).transpose()?;
        let store = self.query_store()?;
        let filter = NetworkFilter {
            road: args.road,
            bbox: args.bbox,
            label: args.label,
            ..NetworkFilter::default()
        };
        let output = overview(store, at, &filter)
            .await
            .map_err(|e| store_error("the network state", &e))?;
        structured(output.describe(), &output)
    }

    /// One sensor: metadata, lanes, today.
    #[tool(
        name = "sensor_info",
        title = "A sensor and its lanes",
        description = "One sensor: its metadata (name, road, direction, location, lanes, speed \
limit, free-flow speed, time zone), each lane's latest classification (label, Level of Service, \
speed km/h, flow veh/h/lane, occupancy %, flags, age in seconds, stale) and today so far in its \
time zone (minutes per label). Read-only.",
        input_schema = schema::input::<SensorArgs>(),
        output_schema = schema_for_output::<SensorInfo>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn sensor_info(&self, arguments: JsonObject) -> Result<CallToolResult, CallToolResult> {
        let args: SensorArgs = parse_args(arguments)?;
        let store = self.query_store()?;
        let info = sensor_info(store, args.sensor_id)
            .await
            .map_err(|e| store_error("the sensor", &e))?
            .ok_or_else(|| error_text(unknown_sensor()))?;
        let lanes: Vec<String> = info
            .lanes
            .iter()
            .map(|l| {
                format!(
                    "{} {}{}",
                    l.state
                        .lane
                        .map_or("whole carriageway".to_owned(), |n| format!("lane {n}")),
                    l.state.label,
                    if l.stale { " (stale)" } else { "" }
                )
            })
            .collect();
        let name = info.metadata.as_ref().and_then(|m| m.name.clone());
        let text = format!(
            "{}{}: {}. Today ({}): {}.",
            info.sensor_id,
            name.map_or_else(String::new, |n| format!(" ({n})")),
            if lanes.is_empty() {
                "no classified reading yet".to_owned()
            } else {
                lanes.join(", ")
            },
            info.today.time_zone,
            minutes_text(&info.today.minutes_by_label)
        );
        structured(text, &info)
    }

    /// A sensor's series.
    #[tool(
        name = "sensor_series",
        title = "A sensor's time series",
        description = "A sensor's readings summed up in time buckets (`1m`, `5m`, `15m`, `1h`, \
`1d` local days) over `from`..`to` (RFC 3339; default the last day): per bucket readings, \
vehicles, flow veh/h/lane, mean speed km/h, mean occupancy %, the prevailing and worst label \
and Level of Service, minutes per label, flags counted — as GET /v1/sensors/{id}/series. At \
most 288 buckets per answer; `next_from` continues. Read-only.",
        input_schema = schema::input::<SensorSeriesArgs>(),
        output_schema = schema_for_output::<SeriesOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn sensor_series(&self, arguments: JsonObject) -> Result<CallToolResult, CallToolResult> {
        let args: SensorSeriesArgs = parse_args(arguments)?;
        let to = args
            .to
            .as_deref()
            .map(|t| moment("to", t))
            .transpose()?
            .unwrap_or_else(Utc::now);
        let from = args
            .from
            .as_deref()
            .map(|t| moment("from", t))
            .transpose()?
            .unwrap_or(to - TimeDelta::days(1));
        if from >= to || to - from > series::MAX_WINDOW {
            return Err(error_text(format!(
                "`to` must be after `from`, by at most {} days",
                series::MAX_WINDOW.num_days()
            )));
        }
        if args.lane.is_some_and(|l| l > 32) {
            return Err(error_text("`lane` must be from 0 to 32".to_owned()));
        }
        let size = args.bucket.unwrap_or(BucketSize::FiveMinutes);
        let store = self.query_store()?;
        let outcome = store
            .series(
                args.sensor_id,
                args.lane,
                size,
                from,
                to,
                series::MAX_BUCKETS,
            )
            .await
            .map_err(|e| store_error("the series", &e))?;
        let mut series = match outcome {
            SeriesOutcome::Series(series) => series,
            SeriesOutcome::UnknownSensor => return Err(error_text(unknown_sensor())),
            SeriesOutcome::BeforeRetention(readings_from) => {
                return Err(error_text(traffic_store::before_retention(readings_from)));
            }
            SeriesOutcome::TooManyBuckets => {
                return Err(error_text(format!(
                    "the window holds more than {} buckets of {size}: use a longer `bucket` or a shorter window",
                    series::MAX_BUCKETS
                )));
            }
        };
        let next_from = series.buckets.get(MAX_SERIES_BUCKETS).map(|b| b.start);
        series.buckets.truncate(MAX_SERIES_BUCKETS);
        let busiest = series
            .buckets
            .iter()
            .filter_map(|b| b.flow_veh_h_lane.map(|f| (f, b)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let vehicles: u64 = series.buckets.iter().map(|b| b.vehicles).sum();
        let mut text = format!(
            "{} buckets of {} for {} ({}): {} vehicles.",
            series.buckets.len(),
            size,
            series.sensor_id,
            series.time_zone,
            vehicles
        );
        if let Some((flow, bucket)) = busiest {
            text.push_str(&format!(
                " Highest flow {flow:.0} veh/h/lane at {}.",
                bucket.start.to_rfc3339()
            ));
        }
        if let Some(next) = next_from {
            text.push_str(&format!(
                " More buckets follow: call again with from = {}.",
                next.to_rfc3339()
            ));
        }
        structured(text, &SeriesOutput { series, next_from })
    }

    /// Congestion periods from the label transitions.
    #[tool(
        name = "find_congestion",
        title = "Find congestion periods",
        description = "Periods in a window (`from`, `to`, RFC 3339, at most 31 days) when \
sensor lanes were congested (or, with `min_label: heavy`, heavy or congested): sensor, lane, \
road, start, end (null while it lasts), duration in seconds, the worst label and Level of \
Service — from the lanes' label changes. Filter by `road` or `sensor_id`. Sorted by start; at \
most 100 per answer (default 50), `next_cursor` continues. Read-only.",
        input_schema = schema::input::<FindCongestionArgs>(),
        output_schema = schema_for_output::<CongestionOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn find_congestion(
        &self,
        arguments: JsonObject,
    ) -> Result<CallToolResult, CallToolResult> {
        let args: FindCongestionArgs = parse_args(arguments)?;
        let from = moment("from", &args.from)?;
        let to = moment("to", &args.to)?;
        if from >= to || to - from > MAX_CONGESTION_WINDOW {
            return Err(error_text(
                "`to` must be after `from`, by at most 31 days".to_owned(),
            ));
        }
        let limit = page_size(args.limit)?;
        let offset = match args.cursor.as_deref() {
            None => 0,
            Some(c) => c.parse::<usize>().map_err(|_| {
                error_text("`cursor` must be the `next_cursor` of an earlier answer".to_owned())
            })?,
        };
        let min = args.min_label.unwrap_or_default();
        let store = self.query_store()?;
        let periods = congestion(store, from, to, args.road, args.sensor_id, min).await?;
        let total = periods.len();
        let page: Vec<CongestionPeriod> = periods.into_iter().skip(offset).take(limit).collect();
        let next_cursor = (offset + page.len() < total).then(|| (offset + page.len()).to_string());
        let mut text = format!(
            "{total} period(s) at or above {} between {} and {}.",
            min.label(),
            from.to_rfc3339(),
            to.to_rfc3339()
        );
        for p in page.iter().take(5) {
            text.push_str(&format!(
                " {}{}: {} from {}{} ({} min{}).",
                p.sensor_id,
                lane_text(p.lane),
                p.worst_label,
                p.start.to_rfc3339(),
                p.end.map_or_else(
                    || ", ongoing".to_owned(),
                    |e| format!(" to {}", e.to_rfc3339())
                ),
                p.duration_s / 60,
                if p.began_before_window {
                    ", began before the window"
                } else {
                    ""
                }
            ));
        }
        structured(
            text,
            &CongestionOutput {
                from,
                to,
                min_label: min.label(),
                total,
                periods: page,
                next_cursor,
            },
        )
    }

    /// The sensors, by id prefix, road or place.
    #[tool(
        name = "list_sensors",
        title = "List sensors",
        description = "Sensors in id order, with name, road, direction, location and each \
lane's latest label and Level of Service; filter by id `prefix`, `road` or `bbox` \
(minlon,minlat,maxlon,maxlat). At most 100 per answer (default 50); `next_cursor` continues. \
Read-only.",
        input_schema = schema::input::<ListSensorsArgs>(),
        output_schema = schema_for_output::<SensorsOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn list_sensors(&self, arguments: JsonObject) -> Result<CallToolResult, CallToolResult> {
        let args: ListSensorsArgs = parse_args(arguments)?;
        let limit = page_size(args.limit)?;
        let after = args
            .cursor
            .as_deref()
            .map(|c| {
                SensorId::parse(c).map_err(|_| {
                    error_text("`cursor` must be the `next_cursor` of an earlier answer".to_owned())
                })
            })
            .transpose()?;
        let store = self.query_store()?;
        let filter = NetworkFilter {
            id_prefix: args.prefix,
            road: args.road,
            bbox: args.bbox,
            ..NetworkFilter::default()
        };
        let page = store
            .sensor_listing(&filter, after.as_ref(), limit)
            .await
            .map_err(|e| store_error("the sensors", &e))?;
        let output = SensorsOutput {
            items: page.items.into_iter().map(SensorBrief::from).collect(),
            next_cursor: page.next_after.map(|id| id.to_string()),
        };
        let named: Vec<String> = output
            .items
            .iter()
            .map(|s| match &s.name {
                Some(name) => format!("{} ({name})", s.sensor_id),
                None => s.sensor_id.clone(),
            })
            .collect();
        let text = format!(
            "{} sensor(s): {}{}",
            named.len(),
            named.join(", "),
            if output.next_cursor.is_some() {
                "; more follow (pass next_cursor as cursor)."
            } else {
                "."
            }
        );
        structured(text, &output)
    }
}

impl ClassifierServer {
    fn query_store(&self) -> Result<&Store, CallToolResult> {
        self.store(
            "this tool",
            "set DATABASE_URL to the ingest service's database",
        )
    }
}

/// `arguments` as `T`, or a tool error that says what is wrong.
fn parse_args<T: DeserializeOwned>(arguments: JsonObject) -> Result<T, CallToolResult> {
    serde_json::from_value(serde_json::Value::Object(arguments)).map_err(|e| {
        error_text(format!(
            "invalid arguments: {e}; the tool's inputSchema lists each argument"
        ))
    })
}

fn moment(name: &str, raw: &str) -> Result<DateTime<Utc>, CallToolResult> {
    parse_timestamp(raw).map_err(|_| {
        error_text(format!(
            "`{name}` must be an RFC 3339 time with an offset, e.g. 2026-12-02T07:30:00Z"
        ))
    })
}

fn page_size(limit: Option<usize>) -> Result<usize, CallToolResult> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=MAX_PAGE) => Ok(n),
        Some(_) => Err(error_text(format!("`limit` must be from 1 to {MAX_PAGE}"))),
    }
}

fn unknown_sensor() -> String {
    "no such sensor (no readings and no metadata); list_sensors finds sensors by id prefix, \
road or place"
        .to_owned()
}

fn store_error(what: &str, e: &StoreError) -> CallToolResult {
    error_text(format!(
        "could not read {what}: {}",
        service_kit::telemetry::error_chain(e)
    ))
}

fn minutes_text(minutes: &std::collections::BTreeMap<Label, f64>) -> String {
    if minutes.is_empty() {
        return "no classified reading".to_owned();
    }
    minutes
        .iter()
        .map(|(label, m)| format!("{m:.0} min {label}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A result with `output` as structured content, `text` first for a model to quote, and the
/// same JSON as text for clients that do not read structured content.
fn structured<T: Serialize>(text: String, output: &T) -> Result<CallToolResult, CallToolResult> {
    let value = serde_json::to_value(output)
        .map_err(|e| error_text(format!("could not encode the result: {e}")))?;
    let mut result = CallToolResult::success(vec![
        ContentBlock::text(text),
        ContentBlock::text(value.to_string()),
    ]);
    result.structured_content = Some(value);
    Ok(result)
}

/// The network at `at` (now when `None`) as [`TrafficStateOutput`] has it: counts over every
/// lane `filter` keeps, the worst, stale and flagged lanes capped.
pub(super) async fn overview(
    store: &Store,
    at: Option<DateTime<Utc>>,
    filter: &NetworkFilter,
) -> Result<TrafficStateOutput, StoreError> {
    let network = store.network_state(at, filter).await?;
    let mut worst: Vec<&StateItem> = network.items.iter().collect();
    worst.sort_by(|a, b| {
        let (a, b) = (&a.lane.state, &b.lane.state);
        b.label
            .severity()
            .cmp(&a.label.severity())
            .then(b.level_of_service.cmp(&a.level_of_service))
            .then(
                a.avg_speed_kmh
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.avg_speed_kmh.unwrap_or(f64::MAX)),
            )
    });
    let listed = |keep: &dyn Fn(&StateItem) -> bool| -> Vec<LaneBrief> {
        worst
            .iter()
            .filter(|i| keep(i))
            .take(MAX_LISTED_LANES)
            .map(|i| LaneBrief::from(*i))
            .collect()
    };
    Ok(TrafficStateOutput {
        at: network.at,
        worst_lanes: listed(&|i| i.lane.state.label.severity() > 0),
        stale_lanes: listed(&|i| i.lane.stale),
        flagged_lanes: listed(&|i| !i.lane.state.flags.is_empty()),
        summary: network.summary,
    })
}

impl TrafficStateOutput {
    /// "At …: 3 lanes — 2 free_flow, 1 congested; 0 stale, 0 flagged. Worst: …".
    fn describe(&self) -> String {
        let summary = &self.summary;
        let mut text = format!(
            "At {}: {} lanes — {}; {} stale, {} flagged.",
            self.at.to_rfc3339(),
            summary.lanes,
            summary
                .by_label
                .iter()
                .map(|(label, n)| format!("{n} {label}"))
                .collect::<Vec<_>>()
                .join(", "),
            summary.stale,
            summary.flagged
        );
        if !self.worst_lanes.is_empty() {
            let worst: Vec<String> = self
                .worst_lanes
                .iter()
                .take(5)
                .map(LaneBrief::describe)
                .collect();
            text.push_str(&format!(" Worst: {}.", worst.join("; ")));
        }
        text
    }
}

/// `sensor`'s metadata, lanes and local day so far; `None` for a sensor the store does not
/// know.
pub(super) async fn sensor_info(
    store: &Store,
    sensor: SensorId,
) -> Result<Option<SensorInfo>, StoreError> {
    let now = Utc::now();
    let stored = store.sensor(sensor.clone()).await?;
    let zone = traffic_model::series::zone_or_utc(
        stored
            .as_ref()
            .and_then(|s| s.metadata.time_zone.as_deref()),
    );
    let (day_start, _) = BucketSize::Day.bucket_of(now, zone);
    let series = match store
        .series(sensor.clone(), None, BucketSize::Day, day_start, now, 2)
        .await?
    {
        SeriesOutcome::Series(series) => series,
        _ => return Ok(None),
    };
    let lanes = store
        .lane_states(None, Some(sensor.clone()))
        .await?
        .into_iter()
        .map(|lane| AgedLane::at(lane, now))
        .collect();
    let day = series.buckets.into_iter().next();
    Ok(Some(SensorInfo {
        sensor_id: sensor,
        metadata: stored.map(|s| s.metadata),
        lanes,
        today: Today {
            from: day_start,
            to: now,
            time_zone: series.time_zone,
            readings: day.as_ref().map_or(0, |d| d.readings),
            classified: day.as_ref().map_or(0, |d| d.classified),
            minutes_by_label: day.map(|d| d.minutes_by_label).unwrap_or_default(),
        },
    }))
}

/// The periods in `[from, to)` when lanes were at `min` or worse, with their roads.
async fn congestion(
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    road: Option<Road>,
    sensor: Option<SensorId>,
    min: MinLabel,
) -> Result<Vec<CongestionPeriod>, CallToolResult> {
    let failed = |e: StoreError| store_error("the congestion periods", &e);
    let roads: HashMap<SensorId, String> = store
        .all_sensors()
        .await
        .map_err(failed)?
        .into_iter()
        .filter_map(|s| Some((s.sensor_id, s.metadata.road?)))
        .collect();
    let sensors: Option<Vec<SensorId>> = match (&sensor, &road) {
        (Some(id), _) => Some(vec![id.clone()]),
        (None, Some(Road(road))) => Some(
            roads
                .iter()
                .filter(|(_, own)| *own == road)
                .map(|(id, _)| id.clone())
                .collect(),
        ),
        (None, None) => None,
    };
    let labels: Vec<Label> = [Label::Heavy, Label::Congested]
        .into_iter()
        .filter(|l| min.admits(*l))
        .collect();
    let periods = store
        .congestion_periods(&labels, from, to, sensors.as_deref())
        .await
        .map_err(failed)?;
    Ok(periods
        .into_iter()
        .map(|p| CongestionPeriod {
            road: roads.get(&p.sensor_id).cloned(),
            duration_s: (p.end.unwrap_or(to) - p.start).num_seconds(),
            ongoing: p.end.is_none(),
            sensor_id: p.sensor_id,
            lane: p.lane,
            start: p.start,
            end: p.end,
            began_before_window: p.began_before_window,
            worst_label: p.worst_label,
            worst_los: p.worst_los,
        })
        .collect())
}
