//! `GET /v1/state`: the network at a moment — each sensor lane's latest classification.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use traffic_model::classification::Label;
use traffic_model::sensor::Location;
use traffic_store::LaneState;

use super::filter::NetworkFilter;
use crate::app::AppState;
use crate::negotiate::{self, Representation};
use crate::params::{BoundingBox, Road, Timestamp};
use crate::problem::Problem;
use crate::query::Query;
use crate::{csv_body, geojson};

/// The parameters of `GET /v1/state`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    /// The moment (RFC 3339); now when absent. Each lane's latest reading observed at or
    /// before it counts.
    at: Option<Timestamp>,
    /// Only sensors on this road (their metadata's `road`)
    road: Option<Road>,
    /// Only sensors inside this box (their metadata's `location`)
    bbox: Option<BoundingBox>,
    /// Only lanes with this label
    label: Option<Label>,
    /// Only lanes whose classification has flags (true) or has none (false)
    flagged: Option<bool>,
}

/// The network at `at`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NetworkState {
    pub at: DateTime<Utc>,
    pub summary: StateSummary,
    /// One per sensor lane, by sensor id then lane (a whole carriageway first).
    pub items: Vec<StateItem>,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct StateSummary {
    pub lanes: usize,
    pub stale: usize,
    pub flagged: usize,
    /// Lanes per label.
    pub by_label: BTreeMap<Label, usize>,
}

/// A lane's latest classification, with its age at a moment.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AgedLane {
    #[serde(flatten)]
    pub state: LaneState,
    /// Seconds from `observed_at` to the moment asked about.
    pub age_s: i64,
    /// Older than three of the lane's counting intervals: readings are missing.
    pub stale: bool,
}

impl AgedLane {
    pub fn at(state: LaneState, moment: DateTime<Utc>) -> Self {
        Self {
            age_s: state.age_s(moment),
            stale: state.is_stale(moment),
            state,
        }
    }
}

/// A lane's latest classification at `at`, with its sensor's road and place.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StateItem {
    #[serde(flatten)]
    pub lane: AgedLane,
    /// The sensor's road, from its metadata.
    pub road: Option<String>,
    /// The sensor's place, from its metadata.
    pub location: Option<Location>,
}

/// What the state answers in.
pub const FORMATS: &[Representation] = &[
    Representation::Json,
    Representation::Csv,
    Representation::GeoJson,
];

/// `GET /v1/state?at=&road=&bbox=&label=&flagged=`.
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    Query(query): Query<StateQuery>,
) -> Result<HttpResponse, Problem> {
    let format = negotiate::choose(&request, FORMATS)?;
    let at = query.at.map(|t| t.0);
    let network = network_state(&state, at, query.filter()).await?;
    match format {
        Representation::Csv => csv_body::response(&network.items, None),
        Representation::GeoJson => geojson::state(&network),
        _ => Ok(HttpResponse::Ok().json(network)),
    }
}

impl StateQuery {
    fn filter(self) -> NetworkFilter {
        NetworkFilter {
            road: self.road,
            bbox: self.bbox,
            label: self.label,
            flagged: self.flagged,
        }
    }
}

/// The lanes `filter` keeps at `at` (now when `None`), with their sensors' road and place.
pub async fn network_state(
    state: &AppState,
    at: Option<DateTime<Utc>>,
    filter: NetworkFilter,
) -> Result<NetworkState, Problem> {
    let moment = at.unwrap_or_else(Utc::now);
    let lanes = state.store.lane_states(at, None).await?;
    let sensors: BTreeSet<_> = lanes.iter().map(|l| l.sensor_id.clone()).collect();
    let metadata = state.store.metadata_of(sensors).await?;
    let mut summary = StateSummary::default();
    let items: Vec<StateItem> = lanes
        .into_iter()
        .filter_map(|lane| {
            let known = metadata.get(&lane.sensor_id);
            (filter.admits_sensor(known) && filter.admits_lane(&lane)).then(|| StateItem {
                road: known.and_then(|m| m.road.clone()),
                location: known.and_then(|m| m.location),
                lane: AgedLane::at(lane, moment),
            })
        })
        .inspect(|item| {
            summary.lanes += 1;
            summary.stale += usize::from(item.lane.stale);
            summary.flagged += usize::from(!item.lane.state.flags.is_empty());
            *summary.by_label.entry(item.lane.state.label).or_default() += 1;
        })
        .collect();
    Ok(NetworkState {
        at: moment,
        summary,
        items,
    })
}
