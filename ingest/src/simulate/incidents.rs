//! Incidents: at seeded times a crash or lane closure just downstream of one sensor cuts its
//! road's capacity. While more vehicles arrive than get through, the queue's tail travels
//! upstream past one sensor after another; once the road is clear the queue dissolves from
//! its head, which travels upstream faster than the tail, until the two meet (the shock waves
//! of the LWR model on the fundamental diagram of `traffic`). What the simulator records is
//! its truth: which sensor stood in the queue, from when to when.

use chrono::{DateTime, TimeDelta, Utc};

use super::network::Network;
use super::random::{Draws, Purpose};
use super::scenario::Window;
use super::traffic::{CAPACITY_VEH_H, Diagram, demand, demand_flow, front_speed, local_time};

/// Where the incident lies: this far downstream of its sensor, km.
const SITE_OFFSET_KM: f64 = 0.15;
/// The flow a dissolving queue discharges at, as a share of capacity.
const DISCHARGE_SHARE: f64 = 0.95;
/// Step of the queue's integration.
const STEP: TimeDelta = TimeDelta::seconds(5);

/// A sensor standing in an incident's queue, from `from` until `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Congestion {
    pub sensor: usize,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub road: usize,
    /// The sensor just upstream of the incident.
    pub site: usize,
    pub onset: DateTime<Utc>,
    pub cleared: DateTime<Utc>,
    /// The share of the road's capacity the incident leaves open.
    pub capacity_left: f64,
    /// The truth: the sensors in its queue, the site first, then upstream.
    pub queue: Vec<Congestion>,
    /// When the queue was gone: `None` when none formed; the window's end when it outlived it.
    pub dissolved: Option<DateTime<Utc>>,
}

/// How an incident changes what a lane carries at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    /// In the queue, which discharges this flow per lane.
    Queue(f64),
    /// Flowing freely at this flow per lane: downstream of the bottleneck, or in the wake of
    /// a dissolving queue.
    Flow(f64),
}

impl Incident {
    /// The incident's effect on sensor `sensor` at `at`, if any.
    pub fn effect(&self, network: &Network, sensor: usize, at: DateTime<Utc>) -> Option<Effect> {
        let dissolved = self.dissolved?;
        if at < self.onset || at >= dissolved {
            return None;
        }
        let capacity_left = self.capacity_left * CAPACITY_VEH_H;
        let discharge = DISCHARGE_SHARE * CAPACITY_VEH_H;
        if let Some(c) = self.queue.iter().find(|c| c.sensor == sensor) {
            if at >= c.from && at < c.to {
                return Some(Effect::Queue(capacity_left));
            }
            // Behind the head of a dissolving queue: the queue empties at capacity.
            return (at >= c.to).then_some(Effect::Flow(discharge));
        }
        let (here, site) = (
            network.sensors.get(sensor)?,
            network.sensors.get(self.site)?,
        );
        if here.road != self.road || here.km <= site.km {
            return None;
        }
        // Downstream: what gets through the bottleneck, then the discharge of the queue.
        Some(Effect::Flow(if at < self.cleared {
            capacity_left
        } else {
            discharge
        }))
    }
}

/// The incidents `draws` makes for `network` over `window`: one per road per four hours
/// (windows under 30 minutes have none), each in its own slot of the window, at a sensor with
/// sensors upstream of it and not in `avoid` (faulty ones), at a moment when traffic is heavy
/// enough for a queue to form when there is such a moment.
pub fn plan(network: &Network, draws: Draws, window: Window, avoid: &[usize]) -> Vec<Incident> {
    if window.minutes < 30 {
        return Vec::new();
    }
    let per_road = 1 + window.minutes / 240;
    let slot = window.minutes / per_road;
    let mut incidents = Vec::new();
    for (r, road) in network.roads.iter().enumerate() {
        let eligible: Vec<usize> = road
            .sensors
            .iter()
            .enumerate()
            .filter(|(position, s)| {
                *position >= 2.min(road.sensors.len().saturating_sub(1)) && !avoid.contains(s)
            })
            .map(|(_, s)| *s)
            .collect();
        for i in 0..per_road {
            let at = |what: u64| [r as u64, u64::from(i), what];
            let Some(&site) = eligible.get(draws.index(Purpose::Incident, &at(0), eligible.len()))
            else {
                continue;
            };
            let capacity_left = draws.between(Purpose::Incident, &at(1), 0.30, 0.55);
            let longest = (slot / 2).clamp(8, 30);
            let duration =
                8 + draws.index(Purpose::Incident, &at(2), (longest - 7) as usize) as u32;
            let margin = (slot / 6).min(10);
            let first = i * slot + margin;
            let last = (i * slot + slot)
                .saturating_sub(duration + margin)
                .max(first);
            // Crashes happen where the traffic is: prefer a minute when a queue would form.
            let heavy: Vec<u32> = (first..=last)
                .filter(|m| {
                    let share = demand(local_time(window.at(*m))) * road.demand_factor;
                    demand_flow(share) > 1.15 * capacity_left * CAPACITY_VEH_H
                })
                .collect();
            let candidates: Vec<u32> = if heavy.is_empty() {
                (first..=last).collect()
            } else {
                heavy
            };
            let onset_minute = candidates
                .get(draws.index(Purpose::Incident, &at(3), candidates.len()))
                .copied()
                .unwrap_or(first);
            // Within the minute too, so that onsets do not all fall on reading boundaries.
            let seconds = draws.index(Purpose::Incident, &at(4), 60) as i64;
            let onset = window.at(onset_minute) + TimeDelta::seconds(seconds);
            let cleared = onset + TimeDelta::minutes(i64::from(duration));
            incidents.push(queue(
                network,
                r,
                site,
                onset,
                cleared,
                capacity_left,
                window.end(),
            ));
        }
    }
    incidents
}

/// Follows the queue of an incident at `site` from `onset`, cleared at `cleared`, until it is
/// gone or `end`.
pub fn queue(
    network: &Network,
    road: usize,
    site: usize,
    onset: DateTime<Utc>,
    cleared: DateTime<Utc>,
    capacity_left: f64,
    end: DateTime<Utc>,
) -> Incident {
    let mut incident = Incident {
        road,
        site,
        onset,
        cleared,
        capacity_left,
        queue: Vec::new(),
        dissolved: None,
    };
    let (Some(details), Some(at_site)) = (network.roads.get(road), network.sensors.get(site))
    else {
        return incident;
    };
    let location = at_site.km + SITE_OFFSET_KM;
    // Upstream sensors by their distance from the incident, nearest first.
    let mut upstream: Vec<(usize, f64)> = details
        .sensors
        .iter()
        .filter_map(|&s| {
            network
                .sensors
                .get(s)
                .map(|sensor| (s, location - sensor.km))
        })
        .filter(|(_, distance)| *distance > 0.0)
        .collect();
    upstream.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut spans: Vec<Option<(DateTime<Utc>, DateTime<Utc>)>> = vec![None; upstream.len()];

    let diagram = Diagram::new(details.free_flow_kmh);
    let jammed = diagram.queued(capacity_left * CAPACITY_VEH_H);
    let discharging = diagram.free(DISCHARGE_SHARE * CAPACITY_VEH_H);
    // Positions of the queue's head and tail, km upstream of the incident.
    let (mut head, mut tail) = (0.0_f64, 0.0_f64);
    let hours = STEP.as_seconds_f64() / 3600.0;
    let mut formed = false;
    let mut t = onset;
    while t < end {
        let share = demand(local_time(t)) * details.demand_factor;
        let arriving = diagram.free(demand_flow(share));
        // The tail moves upstream while more arrive than the queue lets through.
        tail += -front_speed(arriving, jammed) * hours;
        if t >= cleared {
            head += -front_speed(jammed, discharging) * hours;
        }
        tail = tail.max(head);
        let next = t + STEP;
        if tail > head {
            formed = true;
            for (span, &(_, distance)) in spans.iter_mut().zip(&upstream) {
                if head < distance && distance < tail {
                    *span = Some(span.map_or((t, next), |(from, _)| (from, next)));
                }
            }
        } else if t >= cleared || formed && tail <= 0.0 {
            // Gone: cleared and caught up by its head, or drained before the road cleared.
            if formed {
                incident.dissolved = Some(t);
            }
            break;
        }
        t = next;
    }
    if formed && incident.dissolved.is_none() {
        incident.dissolved = Some(end);
    }
    incident.queue = spans
        .into_iter()
        .zip(&upstream)
        .filter_map(|(span, &(sensor, _))| {
            span.map(|(from, to)| Congestion {
                sensor,
                from,
                to: to.min(end),
            })
        })
        .collect();
    incident
}

#[cfg(test)]
mod tests {
    use crate::simulate::tests::utc;
    use chrono::TimeDelta;

    use super::super::network::Network;
    use super::super::random::Draws;
    use super::super::scenario::Window;
    use super::{Effect, queue};

    #[test]
    fn a_queue_spills_back_sensor_by_sensor_and_dissolves_after_the_road_clears() {
        let network = Network::build(2, 8);
        let road = &network.roads[0];
        let site = road.sensors[6];
        // 07:40 local on a Tuesday: the morning peak.
        let onset = utc("2026-03-10T06:40:00Z");
        let cleared = onset + TimeDelta::minutes(20);
        let end = onset + TimeDelta::hours(3);
        let incident = queue(&network, 0, site, onset, cleared, 0.4, end);
        assert!(incident.queue.len() >= 3, "{incident:?}");
        assert_eq!(incident.queue[0].sensor, site);
        assert!(incident.queue[0].from < onset + TimeDelta::minutes(2));
        for pair in incident.queue.windows(2) {
            // Further upstream: reached later by the tail, and later by the head.
            assert!(pair[1].from > pair[0].from, "{pair:?}");
            assert!(pair[1].to > pair[0].to, "{pair:?}");
            let upstream = network.sensors[pair[1].sensor].km < network.sensors[pair[0].sensor].km;
            assert!(upstream);
        }
        let dissolved = incident.dissolved.unwrap();
        assert!(dissolved > cleared && dissolved < end, "{dissolved}");
        assert!(
            incident
                .queue
                .iter()
                .all(|c| c.to > cleared && c.to <= dissolved)
        );
        // Downstream sees what gets through, then the discharge; all back to normal after.
        let below = road.sensors[7];
        let during = incident.effect(&network, below, onset + TimeDelta::minutes(5));
        assert!(
            matches!(during, Some(Effect::Flow(f)) if f < 1200.0),
            "{during:?}"
        );
        assert_eq!(incident.effect(&network, below, dissolved), None);
        let inside = incident.effect(&network, site, onset + TimeDelta::minutes(5));
        assert!(matches!(inside, Some(Effect::Queue(_))), "{inside:?}");
    }

    #[test]
    fn at_night_a_lane_closure_forms_no_queue() {
        let network = Network::build(2, 8);
        let site = network.roads[0].sensors[5];
        let onset = utc("2026-03-10T01:30:00Z");
        let incident = queue(
            &network,
            0,
            site,
            onset,
            onset + TimeDelta::minutes(20),
            0.5,
            onset + TimeDelta::hours(2),
        );
        assert!(
            incident.queue.is_empty() && incident.dissolved.is_none(),
            "{incident:?}"
        );
        assert_eq!(
            incident.effect(&network, site, onset + TimeDelta::minutes(1)),
            None
        );
    }

    #[test]
    fn every_road_gets_incidents_at_sensors_with_upstream_neighbours() {
        let network = Network::build(3, 30);
        let window = Window::new(utc("2026-03-10T05:00:00Z"), 8 * 60);
        let incidents = super::plan(&network, Draws::new(3), window, &[]);
        assert_eq!(incidents.len(), 3 * 3);
        for incident in &incidents {
            let road = &network.roads[incident.road];
            let position = road
                .sensors
                .iter()
                .position(|s| *s == incident.site)
                .unwrap();
            assert!(position >= 2);
            assert!(incident.onset >= window.start && incident.cleared <= window.end());
        }
        assert!(incidents.iter().filter(|i| !i.queue.is_empty()).count() >= 6);
    }
}
