//! Faulty detectors: a few loops that report what the road is not doing. Each fault is one
//! lane of one sensor over a stretch of the window, and each breaks the rule of one of the
//! classifier's flags while staying a valid reading, so it is stored and flagged, not refused.

use traffic_model::classification::Flag;

use super::network::Network;
use super::random::{Draws, Purpose};
use super::traffic::Measured;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The loop's card repeats its last reading.
    Stuck,
    /// The card is off: nothing counted, no occupancy, in the middle of the day.
    CardOff,
    /// The counter is broken while the loop still sees vehicles: occupancy without vehicles.
    OccupancyWithoutVehicles,
    /// Speed far above the limit (a badly tuned loop pair).
    Speeding,
}

impl FaultKind {
    const ALL: [FaultKind; 4] = [
        FaultKind::Stuck,
        FaultKind::CardOff,
        FaultKind::OccupancyWithoutVehicles,
        FaultKind::Speeding,
    ];

    /// The flag the classifier should raise on the fault's readings.
    pub fn flag(self) -> Flag {
        match self {
            FaultKind::Stuck => Flag::Stuck,
            FaultKind::CardOff => Flag::CardOff,
            FaultKind::OccupancyWithoutVehicles => Flag::ZeroFlowWithOccupancy,
            FaultKind::Speeding => Flag::ImplausibleSpeed,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            FaultKind::Stuck => "stuck",
            FaultKind::CardOff => "card off",
            FaultKind::OccupancyWithoutVehicles => "occupancy, no vehicles",
            FaultKind::Speeding => "speed far above limit",
        }
    }
}

/// One faulty lane over readings `from..to` (minute numbers of the window).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub sensor: usize,
    pub lane: u8,
    pub kind: FaultKind,
    pub from: u32,
    pub to: u32,
}

impl Fault {
    pub fn covers(&self, sensor: usize, lane: u8, minute: u32) -> bool {
        self.sensor == sensor && self.lane == lane && (self.from..self.to).contains(&minute)
    }
}

/// The faults `draws` makes for `network` over readings `1..=minutes`: one sensor in five,
/// each on its own sensor, the kinds taken in turn from a seeded first. A card that is off
/// stays off to the end (its flag needs an hour of silence); the others last a stretch.
pub fn plan(network: &Network, draws: Draws, minutes: u32) -> Vec<Fault> {
    let sensors = network.sensors.len();
    let count = (sensors / 5).max(1).min(sensors);
    let first_kind = draws.index(Purpose::Fault, &[0], FaultKind::ALL.len());
    let mut taken: Vec<usize> = Vec::with_capacity(count);
    let mut faults = Vec::with_capacity(count);
    for i in 0..count {
        let at = |what: u64| [1, i as u64, what];
        // The next free sensor from a seeded place.
        let mut sensor = draws.index(Purpose::Fault, &at(0), sensors);
        while taken.contains(&sensor) {
            sensor = (sensor + 1) % sensors;
        }
        taken.push(sensor);
        let lanes = network.sensors.get(sensor).map_or(1, |s| s.lanes);
        let lane = draws.index(Purpose::Fault, &at(1), usize::from(lanes)) as u8;
        let kind = FaultKind::ALL[(first_kind + i) % FaultKind::ALL.len()];
        let (from, to) = match kind {
            FaultKind::CardOff => {
                let from =
                    1 + draws.index(Purpose::Fault, &at(2), (minutes / 8).max(1) as usize) as u32;
                (from, minutes + 1)
            }
            FaultKind::Stuck | FaultKind::OccupancyWithoutVehicles | FaultKind::Speeding => {
                let length = match kind {
                    FaultKind::Stuck => (minutes / 4).clamp(10, 45),
                    _ => (minutes / 6).clamp(8, 30),
                }
                .min(minutes);
                let latest = minutes - length; // the stretch starts at 1..=latest + 1
                let from = 1 + draws.index(Purpose::Fault, &at(2), latest as usize + 1) as u32;
                (from, from + length)
            }
        };
        faults.push(Fault {
            sensor,
            lane,
            kind,
            from,
            to,
        });
    }
    faults
}

/// What a lane with fault `kind` reports instead of `clean`. `first` is the clean reading of
/// the fault's first minute (what a stuck card repeats); `speed_limit_kmh` the site's.
pub fn apply(
    kind: FaultKind,
    clean: Measured,
    first: Measured,
    speed_limit_kmh: u16,
    draws: Draws,
    at: &[u64],
) -> Measured {
    match kind {
        // `stuck` needs non-zero values: a card that froze on an empty road looks like one.
        FaultKind::Stuck => Measured {
            vehicle_count: first.vehicle_count.max(1),
            avg_speed_kmh: first.avg_speed_kmh.or(Some(f64::from(speed_limit_kmh))),
            occupancy_pct: first.occupancy_pct.max(0.5),
        },
        FaultKind::CardOff => Measured {
            vehicle_count: 0,
            avg_speed_kmh: None,
            occupancy_pct: 0.0,
        },
        FaultKind::OccupancyWithoutVehicles => Measured {
            vehicle_count: 0,
            avg_speed_kmh: None,
            occupancy_pct: clean.occupancy_pct.max(0.8),
        },
        // Well past the classifier's bound (limit × 1.5 + 20 km/h), well inside the API's 400.
        FaultKind::Speeding => {
            let bound = f64::from(speed_limit_kmh) * 1.5 + 20.0;
            let speed = bound + draws.between(Purpose::Fault, at, 10.0, 40.0);
            Measured {
                vehicle_count: clean.vehicle_count.max(1),
                avg_speed_kmh: Some((speed * 10.0).round() / 10.0),
                occupancy_pct: clean.occupancy_pct.max(0.1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::network::Network;
    use super::super::random::Draws;
    use super::{FaultKind, plan};

    #[test]
    fn one_sensor_in_five_is_faulty_each_of_its_own_and_every_kind_appears() {
        let network = Network::build(1, 20);
        let faults = plan(&network, Draws::new(1), 120);
        assert_eq!(faults.len(), 4);
        let mut sensors: Vec<usize> = faults.iter().map(|f| f.sensor).collect();
        sensors.sort_unstable();
        sensors.dedup();
        assert_eq!(sensors.len(), 4);
        for kind in FaultKind::ALL {
            let fault = faults.iter().find(|f| f.kind == kind).unwrap();
            assert!(
                fault.from >= 1 && fault.to <= 121 && fault.from < fault.to,
                "{fault:?}"
            );
            assert!(fault.lane < network.sensors[fault.sensor].lanes);
            if kind == FaultKind::CardOff {
                assert_eq!(fault.to, 121, "a card that is off stays off");
                assert!(
                    fault.to - fault.from > 60,
                    "long enough for the classifier's hour"
                );
            }
        }
        let short = plan(&Network::build(1, 3), Draws::new(1), 5);
        assert_eq!(short.len(), 1);
        assert!(short[0].from >= 1 && short[0].to <= 6, "{short:?}");
    }
}
