//! Data-quality flags a single reading earns on its own.

use crate::classification::Flag;
use crate::reading::Reading;

use super::confidence::Assessment;
use super::config::RulesConfig;

/// Flags for one reading, each with its reason and confidence drop; also the small-sample drop.
pub(crate) fn flags(
    reading: &Reading,
    flow: f64,
    config: &RulesConfig,
    notes: &mut Assessment,
) -> Vec<Flag> {
    let mut flags = Vec::new();
    let count = reading.vehicle_count();
    let occupancy = reading.occupancy_pct();

    if let Some(occ) = occupancy {
        if count == 0 && occ > 0.0 {
            flags.push(Flag::ZeroFlowWithOccupancy);
            notes.drop(
                config.penalty_zero_flow_with_occupancy,
                format!("zero_flow_with_occupancy: 0 vehicles with occupancy {occ:.1} % > 0"),
            );
        }
        if count > 0 && occ == 0.0 {
            flags.push(Flag::CountWithZeroOccupancy);
            notes.drop(
                config.penalty_count_with_zero_occupancy,
                format!("count_with_zero_occupancy: {count} vehicles with occupancy 0.0 %"),
            );
        }
        if occ >= config.high_occupancy_pct {
            flags.push(Flag::HighOccupancy);
            notes.drop(
                config.penalty_high_occupancy,
                format!(
                    "high_occupancy: occupancy {occ:.1} % ≥ {:.1} %",
                    config.high_occupancy_pct
                ),
            );
        }
    }

    if let Some(speed) = reading.avg_speed_kmh().filter(|_| count > 0) {
        let (bound, basis) = match reading.speed_limit_kmh() {
            Some(limit) => (
                f64::from(limit) * config.implausible_speed_limit_factor
                    + config.implausible_speed_margin_kmh,
                format!(
                    "limit {limit} × {} + {}",
                    config.implausible_speed_limit_factor, config.implausible_speed_margin_kmh
                ),
            ),
            None => (config.implausible_speed_kmh, "no speed limit".to_owned()),
        };
        if speed > bound {
            flags.push(Flag::ImplausibleSpeed);
            notes.drop(
                config.penalty_implausible_speed,
                format!("implausible_speed: speed {speed:.1} km/h > {bound:.1} ({basis})"),
            );
        }
    }

    if flow > config.flow_capacity_veh_h_lane {
        flags.push(Flag::FlowAboveCapacity);
        notes.drop(
            config.penalty_flow_above_capacity,
            format!(
                "flow_above_capacity: flow {flow:.0} veh/h/ln > {:.0}",
                config.flow_capacity_veh_h_lane
            ),
        );
    }

    if count > 0 && count < config.small_sample_count {
        notes.drop(
            config.penalty_small_sample,
            format!(
                "small sample: {count} vehicles < {}",
                config.small_sample_count
            ),
        );
    }
    flags
}
