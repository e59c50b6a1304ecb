//! What the classifier says about a reading: the shape shared by the MCP tools, the store's
//! classification columns and the REST API (same field names everywhere).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Identifies the rule set that produced a classification.
pub const CLASSIFIER_VERSION: &str = concat!("smart-traffic-rules/", env!("CARGO_PKG_VERSION"));

/// Error for a stored or transmitted name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {kind}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
}

/// Declares a string-named enum: serde and schemars names, `as_str`, `FromStr`, `Display`.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// Congestion in words a traffic operator uses.
    Label, "label" {
        /// Vehicles travel at or near free-flow speed (LOS A–B).
        FreeFlow = "free_flow",
        /// Speeds hold but manoeuvring is restricted (LOS C–D).
        Moderate = "moderate",
        /// Near capacity; small disturbances cause slowdowns (LOS E).
        Heavy = "heavy",
        /// Breakdown: queues, stop-and-go (LOS F).
        Congested = "congested",
        /// The reading cannot support any call.
        Unknown = "unknown",
    }
}

named_enum! {
    /// Highway Capacity Manual Level of Service, A (best) to F (breakdown).
    LevelOfService, "level of service" {
        A = "A", B = "B", C = "C", D = "D", E = "E", F = "F",
    }
}

named_enum! {
    /// A data-quality finding about a reading; the reading is kept, the flag tells how far to
    /// trust it.
    Flag, "flag" {
        /// No vehicles counted while the detector reports occupancy.
        ZeroFlowWithOccupancy = "zero_flow_with_occupancy",
        /// Vehicles counted while the detector reports zero occupancy.
        CountWithZeroOccupancy = "count_with_zero_occupancy",
        /// Occupancy at or above the level where loop detectors are usually faulty.
        HighOccupancy = "high_occupancy",
        /// Mean speed above what the road plausibly allows.
        ImplausibleSpeed = "implausible_speed",
        /// Flow above what one lane can carry.
        FlowAboveCapacity = "flow_above_capacity",
        /// The same non-zero reading repeated for many intervals.
        Stuck = "stuck",
        /// Zero occupancy for a long stretch while traffic is expected.
        CardOff = "card_off",
        /// Speed fell far below the sensor's recent median: a possible incident.
        SuddenSpeedDrop = "sudden_speed_drop",
        /// Intervals missing between this reading and the previous one.
        Gap = "gap",
    }
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
