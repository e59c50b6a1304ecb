//! HCM Level of Service from density.

use strum::VariantArray;

use crate::classification::{Label, LevelOfService};

use super::config::RulesConfig;

/// The HCM Level of Service of a density in veh/km/ln: the first band whose upper bound the
/// density does not exceed (bounds inclusive), F above LOS E's bound. Monotonic in density for
/// any configuration; a NaN density (never produced by the rules) is F.
pub fn level_of_service(density_veh_km_lane: f64, config: &RulesConfig) -> LevelOfService {
    let bounds = config.los_upper_bounds_veh_km_lane();
    bounds
        .iter()
        .zip(LevelOfService::VARIANTS.iter().copied())
        .find(|(bound, _)| density_veh_km_lane <= **bound)
        .map_or(LevelOfService::F, |(_, los)| los)
}

/// The label a Level of Service implies: A–B free flow, C–D moderate, E heavy, F congested.
pub(crate) fn label_of(los: LevelOfService) -> Label {
    match los {
        LevelOfService::A | LevelOfService::B => Label::FreeFlow,
        LevelOfService::C | LevelOfService::D => Label::Moderate,
        LevelOfService::E => Label::Heavy,
        LevelOfService::F => Label::Congested,
    }
}

/// "density 27.30 veh/km/ln > 21.75 (LOS D upper bound 35 pc/mi/ln): LOS E".
pub(crate) fn reason(density: f64, los: LevelOfService, config: &RulesConfig) -> String {
    let veh_km = config.los_upper_bounds_veh_km_lane();
    let pc_mi = config.los_upper_bounds_pc_mi_ln();
    let index = LevelOfService::VARIANTS
        .iter()
        .position(|b| *b == los)
        .unwrap_or(0);
    match index.checked_sub(1) {
        // LOS A: name its own upper bound.
        None => match (veh_km.first(), pc_mi.first()) {
            (Some(hi), Some(pc)) => {
                format!(
                    "density {density:.2} veh/km/ln ≤ {hi:.2} (LOS A upper bound {pc} pc/mi/ln): LOS A"
                )
            }
            _ => format!("density {density:.2} veh/km/ln: LOS A"),
        },
        // B–F: name the bound of the band below, which the density exceeds.
        Some(below) => match (
            veh_km.get(below),
            pc_mi.get(below),
            LevelOfService::VARIANTS.get(below),
        ) {
            (Some(lo), Some(pc), Some(prev)) => format!(
                "density {density:.2} veh/km/ln > {lo:.2} (LOS {prev} upper bound {pc} pc/mi/ln): LOS {los}"
            ),
            _ => format!("density {density:.2} veh/km/ln: LOS {los}"),
        },
    }
}
