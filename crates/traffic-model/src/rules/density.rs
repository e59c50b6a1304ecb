//! Density per lane: flow / speed, or occupancy / effective vehicle length.

use crate::reading::Reading;

use super::confidence::Assessment;
use super::config::{EFFECTIVE_VEHICLE_LENGTH_M, RulesConfig, positive_or};
use super::flow::LanesCovered;

/// Where a density figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// flow / mean speed.
    FlowOverSpeed,
    /// occupancy / effective vehicle length.
    Occupancy,
    /// No vehicles counted and no occupancy to say otherwise: an empty road.
    EmptyRoad,
}

/// A density in veh/km/ln and its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Density {
    pub(crate) veh_km_lane: f64,
    pub(crate) source: Source,
}

/// Picks the density estimate the reading supports best; `None` when it supports none.
///
/// - No vehicles: occupancy if it is positive, else an empty road (density 0); a mean speed of
///   no vehicles is ignored.
/// - Vehicles and a usable speed (above `min_speed_for_density_kmh`): flow / speed, unless the
///   speed is below `prefer_occupancy_below_speed_kmh` and a positive occupancy is reported, in
///   which case occupancy wins (time-mean speed overstates space-mean speed in queues).
/// - Vehicles, no usable speed: occupancy if reported, else no density.
pub(crate) fn estimate(
    reading: &Reading,
    flow: f64,
    config: &RulesConfig,
    notes: &mut Assessment,
) -> Option<Density> {
    let occupancy = reading.occupancy_pct();
    let speed = reading.avg_speed_kmh();
    // Never below 0.1 km/h, so flow / speed stays finite whatever the configuration says.
    let min_speed = config.min_speed_for_density_kmh.max(0.1);

    if reading.vehicle_count() == 0 {
        if let Some(speed) = speed {
            notes.note(format!(
                "avg_speed_kmh {speed:.1} ignored: no vehicles counted"
            ));
        }
        return Some(match occupancy {
            Some(occ) if occ > 0.0 => from_occupancy(reading, occ, config, notes),
            Some(occ) => {
                notes.drop(
                    config.penalty_empty_road,
                    format!(
                        "0 vehicles and occupancy {occ:.1} %: empty road, density 0.00 veh/km/ln"
                    ),
                );
                Density {
                    veh_km_lane: 0.0,
                    source: Source::EmptyRoad,
                }
            }
            None => {
                notes.drop(
                    config.penalty_empty_road,
                    "0 vehicles and no occupancy: assumed empty road, density 0.00 veh/km/ln"
                        .to_owned(),
                );
                notes.drop(
                    config.penalty_missing_occupancy,
                    "no occupancy_pct to confirm the empty road".to_owned(),
                );
                Density {
                    veh_km_lane: 0.0,
                    source: Source::EmptyRoad,
                }
            }
        });
    }

    let usable_speed = speed.filter(|&s| s > min_speed);
    match (usable_speed, occupancy) {
        // Zero occupancy with vehicles counted is a broken occupancy channel
        // (`count_with_zero_occupancy`): flow / speed is the better estimate then.
        (Some(s), Some(occ)) if s < config.prefer_occupancy_below_speed_kmh && occ > 0.0 => {
            notes.note(format!(
                "speed {s:.1} km/h < {:.1} km/h: density from occupancy, not flow/speed (time-mean speed \
                 overstates space-mean speed in queues)",
                config.prefer_occupancy_below_speed_kmh
            ));
            Some(from_occupancy(reading, occ, config, notes))
        }
        (Some(s), occupancy) => {
            let density = flow / s;
            notes.note(format!(
                "density {flow:.0} veh/h/ln / {s:.1} km/h = {density:.2} veh/km/ln"
            ));
            if occupancy.is_none() {
                notes.drop(
                    config.penalty_missing_occupancy,
                    "no occupancy_pct: speed-based density not cross-checked".to_owned(),
                );
            }
            Some(Density {
                veh_km_lane: density,
                source: Source::FlowOverSpeed,
            })
        }
        (None, Some(occ)) => {
            match speed {
                None => notes.drop(
                    config.penalty_missing_speed,
                    "no avg_speed_kmh: density from occupancy and an assumed vehicle length".to_owned(),
                ),
                Some(s) => notes.note(format!(
                    "speed {s:.1} km/h ≤ {min_speed:.1}: flow/speed unusable, density from occupancy"
                )),
            }
            Some(from_occupancy(reading, occ, config, notes))
        }
        (None, None) => {
            match speed {
                Some(s) => {
                    notes.drop(
                        config.penalty_no_density,
                        format!(
                            "no density: speed {s:.1} km/h ≤ {min_speed:.1} and no occupancy_pct"
                        ),
                    );
                    notes.drop(
                        config.penalty_missing_occupancy,
                        "no occupancy_pct".to_owned(),
                    );
                }
                None => notes.note(format!(
                    "no density: {} vehicles counted with no avg_speed_kmh and no occupancy_pct",
                    reading.vehicle_count()
                )),
            }
            None
        }
    }
}

/// density = occupancy / 100 × 1000 / effective length [/ lanes for a carriageway total].
fn from_occupancy(
    reading: &Reading,
    occupancy_pct: f64,
    config: &RulesConfig,
    notes: &mut Assessment,
) -> Density {
    let length = positive_or(
        config.effective_vehicle_length_m,
        EFFECTIVE_VEHICLE_LENGTH_M,
    )
    .max(0.1);
    let mut density = occupancy_pct / 100.0 * 1000.0 / length;
    let mut per_lanes = String::new();
    if let LanesCovered::Carriageway(lanes) = LanesCovered::of(reading)
        && !config.carriageway_occupancy_is_lane_mean
    {
        density /= f64::from(lanes.max(1));
        per_lanes = format!(" / {lanes} lanes");
    }
    notes.note(format!(
        "density {occupancy_pct:.1} % × 1000 / {length:.1} m{per_lanes} = {density:.2} veh/km/ln"
    ));
    Density {
        veh_km_lane: density,
        source: Source::Occupancy,
    }
}
