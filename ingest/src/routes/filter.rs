//! Which sensors and lanes a read of the network keeps: by road and place (the sensor's
//! metadata), and by the label and flags of a lane's latest classification.

use traffic_model::classification::Label;
use traffic_model::sensor::SensorMetadata;
use traffic_store::LaneState;

use crate::params::{BoundingBox, Road};

#[derive(Debug, Default)]
pub struct NetworkFilter {
    pub road: Option<Road>,
    pub bbox: Option<BoundingBox>,
    pub label: Option<Label>,
    pub flagged: Option<bool>,
}

impl NetworkFilter {
    /// Whether what is known of a sensor matches: a road or a box needs metadata that has one.
    pub fn admits_sensor(&self, metadata: Option<&SensorMetadata>) -> bool {
        let road_ok = self.road.as_ref().is_none_or(|Road(road)| {
            metadata.and_then(|m| m.road.as_deref()) == Some(road.as_str())
        });
        let place_ok = self.bbox.is_none_or(|bbox| {
            metadata
                .and_then(|m| m.location)
                .is_some_and(|l| bbox.contains(l.lon, l.lat))
        });
        road_ok && place_ok
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
