//! Traffic classification rules (pure: no I/O).
//!
//! [`classify`] turns one [`Reading`] (plus the same detector's earlier readings) into a
//! [`Classification`]; [`classify_at_site`] first lets the sensor's [`Site`] (its metadata) fill
//! what the reading leaves out ([`site`]):
//!
//! 1. [`flow`]: veh/h/ln from the count, the interval and the lanes covered.
//! 2. [`density`]: veh/km/ln from flow / speed, or from occupancy and an effective vehicle length.
//! 3. [`los`]: HCM Level of Service from density ([`level_of_service`]).
//! 4. [`speed`] and [`label`]: the label the LOS implies, made worse (never better) by speed
//!    evidence; contradictions between speed and density are called out.
//! 5. [`quality`] and [`health`]: data-quality flags from the reading alone and from its history.
//! 6. [`confidence`]: 1 minus every named drop, clamped to [0, 1].
//!
//! Every threshold is a field of [`RulesConfig`]; `docs/classification.md` explains the method.

mod confidence;
pub mod config;
mod density;
mod flow;
mod health;
mod label;
mod los;
mod quality;
mod site;
mod speed;

#[cfg(test)]
mod tests;

use crate::classification::{CLASSIFIER_VERSION, Classification};
use crate::reading::Reading;

pub use config::RulesConfig;
pub use los::level_of_service;
pub use site::Site;

use confidence::Assessment;
use flow::LanesCovered;

/// Classifies `reading` with the configuration alone (no sensor metadata); see
/// [`classify_at_site`].
pub fn classify(reading: &Reading, history: &[Reading], config: &RulesConfig) -> Classification {
    classify_at_site(reading, history, &Site::default(), config)
}

/// Classifies `reading`. `history` holds earlier readings of the same sensor and lane in any
/// order; entries of another sensor or lane, or not strictly earlier, are ignored. `site` (the
/// sensor's metadata) fills what the reading leaves out; a value in the reading wins. Never
/// panics.
pub fn classify_at_site(
    reading: &Reading,
    history: &[Reading],
    site: &Site,
    config: &RulesConfig,
) -> Classification {
    let mut notes = Assessment::default();
    let site::Resolved {
        reading,
        config,
        free_flow,
        clock,
    } = site::resolve(reading, site, config, &mut notes);
    let (reading, config) = (reading.as_ref(), config.as_ref());

    let flow = flow::flow_veh_h_lane(reading);
    let flow_reason = flow::flow_reason(reading, flow);
    if LanesCovered::of(reading) == LanesCovered::Unknown {
        notes.drop(config.penalty_unknown_lanes, flow_reason);
    } else {
        notes.note(flow_reason);
    }

    let density = density::estimate(reading, flow, config, &mut notes);
    let los = density.map(|density| {
        let los = level_of_service(density.veh_km_lane, config);
        notes.note(los::reason(density.veh_km_lane, los, config));
        (los, density)
    });

    let speed = speed::evidence(reading, free_flow, config);
    let label = label::decide(los, speed, config, &mut notes);

    let mut flags = quality::flags(reading, flow, config, &mut notes);
    flags.extend(health::flags(reading, history, config, clock, &mut notes));
    flags.sort();
    flags.dedup();

    Classification {
        label,
        level_of_service: los.map(|(los, _)| los),
        flow_veh_h_lane: flow,
        density_veh_km_lane: density.map(|d| d.veh_km_lane),
        confidence: notes.confidence(label),
        flags,
        reasons: notes.into_reasons(),
        classifier_version: CLASSIFIER_VERSION.to_owned(),
    }
}
