//! The synthetic network: a few motorway corridors out of Munich, with sensors every 0.5–1 km
//! along each, and the metadata `PUT /v1/sensors/{id}` stores for them.

use serde_json::{Value, json};

use super::random::{Draws, Purpose};
use super::traffic::TIME_ZONE;

/// A motorway leaving the city: where its first kilometre starts and which way it heads.
struct Corridor {
    road: &'static str,
    direction: &'static str,
    /// For sensor ids: `A9-N-km012.4`.
    code: &'static str,
    lon: f64,
    lat: f64,
    bearing_deg: f64,
}

const CORRIDORS: [Corridor; 6] = [
    Corridor {
        road: "A9",
        direction: "northbound",
        code: "N",
        lon: 11.612,
        lat: 48.196,
        bearing_deg: 345.0,
    },
    Corridor {
        road: "A8",
        direction: "westbound",
        code: "W",
        lon: 11.452,
        lat: 48.163,
        bearing_deg: 290.0,
    },
    Corridor {
        road: "A8",
        direction: "eastbound",
        code: "E",
        lon: 11.702,
        lat: 48.071,
        bearing_deg: 125.0,
    },
    Corridor {
        road: "A92",
        direction: "eastbound",
        code: "E",
        lon: 11.633,
        lat: 48.301,
        bearing_deg: 55.0,
    },
    Corridor {
        road: "A95",
        direction: "southbound",
        code: "S",
        lon: 11.471,
        lat: 48.082,
        bearing_deg: 205.0,
    },
    Corridor {
        road: "A96",
        direction: "westbound",
        code: "W",
        lon: 11.431,
        lat: 48.112,
        bearing_deg: 250.0,
    },
];

/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.32;

/// One direction of a motorway.
#[derive(Debug, Clone, PartialEq)]
pub struct Road {
    pub road: &'static str,
    pub direction: &'static str,
    pub lanes: u8,
    pub speed_limit_kmh: u16,
    /// Free-flow speed of the mean lane, km/h.
    pub free_flow_kmh: f64,
    /// The corridor's demand relative to the network's.
    pub demand_factor: f64,
    /// Its sensors, upstream first (indices into [`Network::sensors`]).
    pub sensors: Vec<usize>,
}

impl Road {
    /// "A9 northbound".
    pub fn name(&self) -> String {
        format!("{} {}", self.road, self.direction)
    }
}

/// One sensor station: a loop in each lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    pub id: String,
    pub name: String,
    /// Index into [`Network::roads`].
    pub road: usize,
    /// Position along the corridor, km in the direction of travel.
    pub km: f64,
    pub lon: f64,
    pub lat: f64,
    pub lanes: u8,
    pub speed_limit_kmh: u16,
    /// Traffic joining or leaving between here and the corridor's start.
    pub demand_factor: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub roads: Vec<Road>,
    pub sensors: Vec<Sensor>,
}

/// Corridors for `sensors` sensors: one per ten, two to six of them when there are enough.
fn road_count(sensors: usize) -> usize {
    sensors.div_ceil(10).clamp(1, CORRIDORS.len())
}

impl Network {
    /// The network of `sensors` sensors that `seed` makes.
    pub fn build(seed: u64, sensors: usize) -> Self {
        let draws = Draws::new(seed);
        let pick = |at: &[u64], n: usize| draws.index(Purpose::Network, at, n);
        let count = road_count(sensors);
        // A seeded rotation of the corridor list, so each seed has its own roads.
        let first = pick(&[0], CORRIDORS.len());
        let mut roads = Vec::with_capacity(count);
        let mut all = Vec::with_capacity(sensors);
        for r in 0..count {
            let corridor = &CORRIDORS[(first + r) % CORRIDORS.len()];
            let at = |what: u64| [1, r as u64, what];
            let lanes = [2, 3, 3, 4][pick(&at(0), 4)];
            let speed_limit_kmh = [100, 120, 120, 130][pick(&at(1), 4)];
            let free_flow_kmh =
                f64::from(speed_limit_kmh) * draws.between(Purpose::Network, &at(2), 0.97, 1.03);
            let demand_factor = draws.between(Purpose::Network, &at(3), 0.92, 1.08);
            // Sensors shared out as evenly as the count allows.
            let here = sensors / count + usize::from(r < sensors % count);
            let mut km = draws.between(Purpose::Network, &at(4), 3.0, 12.0);
            let phase = draws.between(Purpose::Network, &at(5), 0.0, std::f64::consts::TAU);
            let (mut lon, mut lat, mut walked) = (corridor.lon, corridor.lat, 0.0);
            let mut members = Vec::with_capacity(here);
            for s in 0..here {
                let at = |what: u64| [2, r as u64, s as u64, what];
                if s > 0 {
                    let step = draws.between(Purpose::Network, &at(0), 0.5, 1.0);
                    km += step;
                    walked += step;
                    // Gentle bends, so a corridor is no ruler-straight line on the map.
                    let bearing =
                        (corridor.bearing_deg + 9.0 * (walked / 6.0 + phase).sin()).to_radians();
                    lat += step * bearing.cos() / KM_PER_DEGREE;
                    lon += step * bearing.sin() / (KM_PER_DEGREE * lat.to_radians().cos());
                }
                let id = format!("{}-{}-km{:05.1}", corridor.road, corridor.code, km);
                let name = format!("{} {} km {:.1}", corridor.road, corridor.direction, km);
                members.push(all.len());
                all.push(Sensor {
                    id,
                    name,
                    road: r,
                    km,
                    lon: round_to(lon, 6),
                    lat: round_to(lat, 6),
                    lanes,
                    speed_limit_kmh,
                    demand_factor: draws.between(Purpose::Network, &at(1), 0.95, 1.05),
                });
            }
            roads.push(Road {
                road: corridor.road,
                direction: corridor.direction,
                lanes,
                speed_limit_kmh,
                free_flow_kmh,
                demand_factor,
                sensors: members,
            });
        }
        Self {
            roads,
            sensors: all,
        }
    }

    /// Lanes over all sensors: readings per simulated minute.
    pub fn lane_count(&self) -> usize {
        self.sensors.iter().map(|s| usize::from(s.lanes)).sum()
    }

    /// The metadata document of sensor `index`, as `PUT /v1/sensors/{id}` takes it.
    pub fn metadata(&self, index: usize) -> Option<Value> {
        let sensor = self.sensors.get(index)?;
        let road = self.roads.get(sensor.road)?;
        Some(json!({
            "name": sensor.name,
            "road": road.road,
            "direction": road.direction,
            "location": {"lon": sensor.lon, "lat": sensor.lat},
            "lanes": sensor.lanes,
            "speed_limit_kmh": sensor.speed_limit_kmh,
            "time_zone": TIME_ZONE,
        }))
    }
}

fn round_to(x: f64, digits: i32) -> f64 {
    let scale = 10_f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use traffic_model::sensor::SensorMetadata;

    use super::Network;

    #[test]
    fn sensors_are_spread_over_a_few_roads_half_a_kilometre_to_one_apart() {
        for (sensors, roads) in [(1, 1), (8, 1), (20, 2), (30, 3), (500, 6)] {
            let network = Network::build(1, sensors);
            assert_eq!(
                (network.sensors.len(), network.roads.len()),
                (sensors, roads)
            );
            let ids: HashSet<&str> = network.sensors.iter().map(|s| s.id.as_str()).collect();
            assert_eq!(ids.len(), sensors, "ids are unique");
            for road in &network.roads {
                assert!((2..=4).contains(&road.lanes));
                for pair in road.sensors.windows(2) {
                    let (a, b) = (&network.sensors[pair[0]], &network.sensors[pair[1]]);
                    let gap = b.km - a.km;
                    assert!((0.5..=1.0).contains(&gap), "{} → {}: {gap} km", a.id, b.id);
                    // ≈ the same distance on the map (a degree of latitude is 111 km).
                    let dy = (b.lat - a.lat) * 111.32;
                    let dx = (b.lon - a.lon) * 111.32 * a.lat.to_radians().cos();
                    let map = dx.hypot(dy);
                    assert!((map - gap).abs() < 0.01, "{map} vs {gap}");
                }
            }
        }
    }

    #[test]
    fn every_sensor_s_metadata_is_valid_and_places_it_near_munich() {
        let network = Network::build(9, 40);
        for (i, sensor) in network.sensors.iter().enumerate() {
            let document = network.metadata(i).unwrap();
            let metadata = SensorMetadata::from_json(document).unwrap();
            let location = metadata.location.unwrap();
            assert!((location.lat - 48.15).abs() < 1.0 && (location.lon - 11.55).abs() < 1.5);
            assert_eq!(metadata.lanes, Some(sensor.lanes));
            assert!(
                traffic_model::reading::SensorId::parse(&sensor.id).is_ok(),
                "{}",
                sensor.id
            );
        }
    }

    #[test]
    fn the_seed_decides_the_network() {
        assert_eq!(Network::build(4, 20), Network::build(4, 20));
        assert_ne!(Network::build(4, 20), Network::build(5, 20));
    }
}
