//! What the classifier says about a reading: the shape shared by the MCP tools, the store's
//! classification columns and the REST API (same field names everywhere).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use strum::{Display, EnumString, IntoStaticStr, VariantArray};

/// Identifies the rule set that produced a classification.
pub const CLASSIFIER_VERSION: &str = concat!("smart-traffic-rules/", env!("CARGO_PKG_VERSION"));

/// Error for a stored or transmitted name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {kind}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
}

/// A string-named enum: what its values are called in [`UnknownName`].
pub trait Named {
    const KIND: &'static str;
}

impl UnknownName {
    /// The parse error of a [`Named`] enum, for strum's `EnumString`:
    /// `#[strum(parse_err_ty = UnknownName, parse_err_fn = UnknownName::of::<Self>)]`.
    pub fn of<T: Named>(value: &str) -> Self {
        Self {
            kind: T::KIND,
            value: value.to_owned(),
        }
    }
}

// Each enum's names are spelt once for serde (and so schemars) and once for strum (`FromStr`,
// `Display`, `into_str`) by the same rule; the store's tests check that the two agree.

/// Congestion in words a traffic operator uses.
#[derive(EnumString, Display, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case", const_into_str)]
#[strum(parse_err_ty = UnknownName, parse_err_fn = UnknownName::of::<Self>)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// Vehicles travel at or near free-flow speed (LOS A–B).
    FreeFlow,
    /// Speeds hold but manoeuvring is restricted (LOS C–D).
    Moderate,
    /// Near capacity; small disturbances cause slowdowns (LOS E).
    Heavy,
    /// Breakdown: queues, stop-and-go (LOS F).
    Congested,
    /// The reading cannot support any call.
    Unknown,
}

impl Label {
    /// How bad the traffic is: free flow (and unknown, which says nothing) 0, moderate 1,
    /// heavy 2, congested 3.
    pub fn severity(self) -> u8 {
        match self {
            Label::FreeFlow | Label::Unknown => 0,
            Label::Moderate => 1,
            Label::Heavy => 2,
            Label::Congested => 3,
        }
    }
}

impl Named for Label {
    const KIND: &'static str = "label";
}

/// Highway Capacity Manual Level of Service, A (best) to F (breakdown).
#[derive(EnumString, Display, IntoStaticStr, VariantArray)]
#[strum(const_into_str)]
#[strum(parse_err_ty = UnknownName, parse_err_fn = UnknownName::of::<Self>)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum LevelOfService {
    A,
    B,
    C,
    D,
    E,
    F,
}

impl Named for LevelOfService {
    const KIND: &'static str = "level of service";
}

/// A data-quality finding about a reading; the reading is kept, the flag tells how far to
/// trust it.
#[derive(EnumString, Display, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case", const_into_str)]
#[strum(parse_err_ty = UnknownName, parse_err_fn = UnknownName::of::<Self>)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// No vehicles counted while the detector reports occupancy.
    ZeroFlowWithOccupancy,
    /// Vehicles counted while the detector reports zero occupancy.
    CountWithZeroOccupancy,
    /// Occupancy at or above the level where loop detectors are usually faulty.
    HighOccupancy,
    /// Mean speed above what the road plausibly allows.
    ImplausibleSpeed,
    /// Flow above what one lane can carry.
    FlowAboveCapacity,
    /// The same non-zero reading repeated for many intervals.
    Stuck,
    /// Zero occupancy for a long stretch while traffic is expected.
    CardOff,
    /// Speed fell far below the sensor's recent median: a possible incident.
    SuddenSpeedDrop,
    /// Intervals missing between this reading and the previous one.
    Gap,
}

impl Named for Flag {
    const KIND: &'static str = "flag";
}

/// The classifier's verdict on one reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// Congestion label.
    pub label: Label,
    /// HCM Level of Service from density; null when density cannot be derived.
    pub level_of_service: Option<LevelOfService>,
    /// Flow in vehicles per hour per lane.
    pub flow_veh_h_lane: f64,
    /// Density in vehicles per kilometre per lane; null when neither speed nor occupancy is known.
    pub density_veh_km_lane: Option<f64>,
    /// How far the call can be trusted, 0 (not at all) to 1.
    pub confidence: f64,
    /// Data-quality findings.
    pub flags: Vec<Flag>,
    /// Why: each names the value and the threshold it crossed.
    pub reasons: Vec<String>,
    /// The rule set that produced this classification.
    pub classifier_version: String,
}
