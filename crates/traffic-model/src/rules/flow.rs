//! Flow per lane: vehicles per hour per lane from a count over an interval.

use crate::reading::Reading;

/// How many lanes a reading's count is spread over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LanesCovered {
    /// The reading is for one lane (`lane` given).
    OneLane,
    /// A whole carriageway of this many lanes (`lanes` given, no `lane`).
    Carriageway(u8),
    /// A whole carriageway of unknown width: counted as one lane.
    Unknown,
}

impl LanesCovered {
    pub(crate) fn of(reading: &Reading) -> Self {
        match (reading.lane(), reading.lanes()) {
            (Some(_), _) => Self::OneLane,
            (None, Some(lanes)) if lanes >= 1 => Self::Carriageway(lanes),
            (None, _) => Self::Unknown,
        }
    }

    /// The divisor: 1 for a lane or an unknown carriageway, else the number of lanes.
    pub(crate) fn count(self) -> f64 {
        match self {
            Self::OneLane | Self::Unknown => 1.0,
            Self::Carriageway(lanes) => f64::from(lanes.max(1)),
        }
    }
}

/// flow = vehicle_count × 3600 / interval_s / lanes covered, in veh/h/ln.
pub(crate) fn flow_veh_h_lane(reading: &Reading) -> f64 {
    // interval_s ≥ 1 for a valid reading; `max(1)` keeps the division safe regardless.
    let interval_s = f64::from(reading.interval_s().max(1));
    f64::from(reading.vehicle_count()) * 3600.0 / interval_s / LanesCovered::of(reading).count()
}

/// The reason line explaining the flow figure.
pub(crate) fn flow_reason(reading: &Reading, flow: f64) -> String {
    let lanes = LanesCovered::of(reading);
    let divisor = match lanes {
        LanesCovered::OneLane => " (one lane)".to_owned(),
        LanesCovered::Carriageway(n) => format!(" / {n} lanes"),
        LanesCovered::Unknown => " (carriageway, lanes unknown: counted as one lane)".to_owned(),
    };
    format!(
        "flow {} veh × 3600 / {} s{divisor} = {flow:.0} veh/h/ln",
        reading.vehicle_count(),
        reading.interval_s()
    )
}
