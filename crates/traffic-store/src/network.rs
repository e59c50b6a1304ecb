//! The network as its readers see it — each sensor lane's latest classification with its age,
//! its sensor's road and place, kept by a filter — for the REST API and the MCP tools alike.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use traffic_model::classification::Label;
use traffic_model::place::{BoundingBox, Road};
use traffic_model::reading::SensorId;
use traffic_model::sensor::{Location, SensorMetadata};

use super::{LaneState, Store, StoreError};

/// Which sensors and lanes a read of the network keeps: by id, road and place (the sensor's
/// metadata), and by the label and flags of a lane's latest classification.
#[derive(Debug, Clone, Default)]
pub struct NetworkFilter {
    /// Sensors whose id starts with this.
    pub id_prefix: Option<String>,
    pub road: Option<Road>,
    pub bbox: Option<BoundingBox>,
    pub label: Option<Label>,
    pub flagged: Option<bool>,
}

impl NetworkFilter {
    /// Whether what is known of a sensor matches: a road or a box needs metadata that has one.
    pub fn admits_sensor(&self, id: &SensorId, metadata: Option<&SensorMetadata>) -> bool {
        let id_ok = self
            .id_prefix
            .as_deref()
            .is_none_or(|prefix| id.as_str().starts_with(prefix));
        let road_ok = self.road.as_ref().is_none_or(|Road(road)| {
            metadata.and_then(|m| m.road.as_deref()) == Some(road.as_str())
        });
        let place_ok = self.bbox.is_none_or(|bbox| {
            metadata
                .and_then(|m| m.location)
                .is_some_and(|l| bbox.contains(l.lon, l.lat))
        });
        id_ok && road_ok && place_ok
    }

    /// Whether a lane's latest classification matches the label and flag conditions.
    pub fn admits_lane(&self, lane: &LaneState) -> bool {
        self.label.is_none_or(|label| lane.label == label)
            && self
                .flagged
                .is_none_or(|flagged| flagged != lane.flags.is_empty())
    }

    /// Whether the lane conditions ask anything (a sensor then needs a matching lane).
    pub fn has_lane_conditions(&self) -> bool {
        self.label.is_some() || self.flagged.is_some()
    }
}

/// A lane's latest classification, with its age at a moment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
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

/// A lane's latest classification at a moment, with its sensor's road and place.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StateItem {
    #[serde(flatten)]
    pub lane: AgedLane,
    /// The sensor's road, from its metadata.
    pub road: Option<String>,
    /// The sensor's place, from its metadata.
    pub location: Option<Location>,
}

/// Counts over the lanes of a state.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct StateSummary {
    pub lanes: usize,
    pub stale: usize,
    pub flagged: usize,
    /// Lanes per label.
    pub by_label: BTreeMap<Label, usize>,
}

/// The network at `at`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NetworkState {
    pub at: DateTime<Utc>,
    pub summary: StateSummary,
    /// One per sensor lane, by sensor id then lane (a whole carriageway first).
    pub items: Vec<StateItem>,
}

/// A sensor: what is known about it and each lane's latest classification.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SensorListing {
    pub sensor_id: String,
    /// Its metadata; null when none was stored.
    pub metadata: Option<SensorMetadata>,
    /// When the metadata last changed; null without metadata.
    pub metadata_updated_at: Option<DateTime<Utc>>,
    /// Each lane's latest classified reading, by lane (a whole carriageway first); empty
    /// before the sensor's first reading is classified.
    pub lanes: Vec<AgedLane>,
}

/// A page of sensors in id order.
#[derive(Debug, Clone)]
pub struct SensorListingPage {
    pub items: Vec<SensorListing>,
    /// The last sensor of this page when more follow.
    pub next_after: Option<SensorId>,
}

impl Store {
    /// The lanes `filter` keeps at `at` (now when `None`), with their sensors' road and place.
    pub async fn network_state(
        &self,
        at: Option<DateTime<Utc>>,
        filter: &NetworkFilter,
    ) -> Result<NetworkState, StoreError> {
        let moment = at.unwrap_or_else(Utc::now);
        let lanes = self.lane_states(at, None).await?;
        let sensors: BTreeSet<_> = lanes.iter().map(|l| l.sensor_id.clone()).collect();
        let metadata = self.metadata_of(sensors).await?;
        let mut summary = StateSummary::default();
        let items: Vec<StateItem> = lanes
            .into_iter()
            .filter_map(|lane| {
                let known = metadata.get(&lane.sensor_id);
                (filter.admits_sensor(&lane.sensor_id, known) && filter.admits_lane(&lane)).then(
                    || StateItem {
                        road: known.and_then(|m| m.road.clone()),
                        location: known.and_then(|m| m.location),
                        lane: AgedLane::at(lane, moment),
                    },
                )
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

    /// Sensors in id order after `after` — those with metadata and those with a classified
    /// reading — that `filter` keeps (a lane condition needs a matching lane), `limit` at most.
    pub async fn sensor_listing(
        &self,
        filter: &NetworkFilter,
        after: Option<&SensorId>,
        limit: usize,
    ) -> Result<SensorListingPage, StoreError> {
        let now = Utc::now();
        let mut sensors: BTreeMap<SensorId, SensorListing> = BTreeMap::new();
        for sensor in self.all_sensors().await? {
            sensors.insert(
                sensor.sensor_id.clone(),
                SensorListing {
                    sensor_id: sensor.sensor_id.to_string(),
                    metadata: Some(sensor.metadata),
                    metadata_updated_at: Some(sensor.updated_at),
                    lanes: Vec::new(),
                },
            );
        }
        for lane in self.lane_states(None, None).await? {
            sensors
                .entry(lane.sensor_id.clone())
                .or_insert_with(|| SensorListing {
                    sensor_id: lane.sensor_id.to_string(),
                    metadata: None,
                    metadata_updated_at: None,
                    lanes: Vec::new(),
                })
                .lanes
                .push(AgedLane::at(lane, now));
        }
        let mut kept = sensors
            .into_iter()
            .filter(|(id, _)| after.is_none_or(|after| id > after))
            .filter(|(id, sensor)| {
                filter.admits_sensor(id, sensor.metadata.as_ref())
                    && (!filter.has_lane_conditions()
                        || sensor.lanes.iter().any(|l| filter.admits_lane(&l.state)))
            });
        let mut items = Vec::new();
        let mut last = None;
        for (id, sensor) in kept.by_ref().take(limit) {
            items.push(sensor);
            last = Some(id);
        }
        let next_after = kept.next().and(last);
        Ok(SensorListingPage { items, next_after })
    }
}
