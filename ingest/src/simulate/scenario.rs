//! The scenario a seed makes: the network, its incidents and faulty loops over the window, and
//! every reading each lane reports in it. Pure: the same seed, sensor count and window give the
//! same readings, byte for byte, in whatever order they are asked for.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::faults::{self, Fault, FaultKind};
use super::incidents::{self, Effect, Incident};
use super::network::Network;
use super::random::{Draws, Purpose};
use super::traffic::{Diagram, Measured, demand, demand_flow, lane_profile, local_time, measure};

/// Every lane reports once a minute.
pub const INTERVAL_S: u32 = 60;
/// Readings broken beyond what the API accepts (a garbled frame): refused with 422.
const REFUSED_SHARE: f64 = 0.004;
/// Readings a sensor's gateway sends again a minute later (a retry): stored once.
const RESENT_SHARE: f64 = 0.003;

/// Simulated time: readings `1..=minutes`, reading `m` covering the minute that ends at
/// `start + m` minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub minutes: u32,
}

impl Window {
    pub fn new(start: DateTime<Utc>, minutes: u32) -> Self {
        Self { start, minutes }
    }

    /// The end of reading `minute`'s interval: its `observed_at`.
    pub fn at(self, minute: u32) -> DateTime<Utc> {
        self.start + TimeDelta::minutes(i64::from(minute))
    }

    /// The end of the last reading's interval.
    pub fn end(self) -> DateTime<Utc> {
        self.at(self.minutes)
    }

    /// The middle of reading `minute`'s interval: the moment whose state it reports.
    pub fn middle(self, minute: u32) -> DateTime<Utc> {
        self.at(minute) - TimeDelta::seconds(i64::from(INTERVAL_S / 2))
    }

    /// The first reading whose interval's middle is at or after `at` (perhaps past the end).
    pub fn first_middle_from(self, at: DateTime<Utc>) -> u32 {
        let seconds = (at - self.start).num_seconds() + i64::from(INTERVAL_S / 2);
        let minute = seconds.div_euclid(i64::from(INTERVAL_S)).max(0) + 1;
        u32::try_from(minute).unwrap_or(u32::MAX)
    }

    /// Whether some reading's interval has its middle in `[from, to)`.
    pub fn samples(self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        let minute = self.first_middle_from(from);
        minute <= self.minutes && self.middle(minute) < to
    }
}

/// One reading as sent: the API's fields, and what the simulator meant by it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReading {
    pub sensor_id: String,
    pub observed_at: DateTime<Utc>,
    pub interval_s: u32,
    pub lane: u8,
    pub vehicle_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_speed_kmh: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occupancy_pct: Option<f64>,
    /// Broken on purpose: the API must refuse it.
    #[serde(skip)]
    pub refused: bool,
    /// A second copy of an earlier reading.
    #[serde(skip)]
    pub resent: bool,
}

/// What the scenario will send, counted in advance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    pub readings: u64,
    pub refused: u64,
    pub resent: u64,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub window: Window,
    pub network: Network,
    pub incidents: Vec<Incident>,
    pub faults: Vec<Fault>,
    draws: Draws,
}

impl Scenario {
    pub fn new(seed: u64, sensors: usize, window: Window) -> Self {
        let draws = Draws::new(seed);
        let network = Network::build(seed, sensors);
        let faults = faults::plan(&network, draws, window.minutes);
        // An incident at a faulty sensor would be a test of the fault, not of the queue.
        let faulty: Vec<usize> = faults.iter().map(|f| f.sensor).collect();
        let mut incidents = incidents::plan(&network, draws, window, &faulty);
        // The truth as readings can tell it: a sensor was queued when the queue covered the
        // middle of one of its intervals (the moment a reading reports).
        for incident in &mut incidents {
            incident.queue.retain(|c| window.samples(c.from, c.to));
        }
        Self {
            seed,
            window,
            network,
            incidents,
            faults,
            draws,
        }
    }

    /// What lane `lane` of sensor `sensor` really carried over reading `minute`'s interval,
    /// as its loop would report it working: the lane's demand on the fundamental diagram,
    /// unless an incident's queue or bottleneck decides the state.
    fn clean(&self, sensor: usize, lane: u8, minute: u32) -> Option<Measured> {
        let site = self.network.sensors.get(sensor)?;
        let road = self.network.roads.get(site.road)?;
        let (demand_share, speed_share) = lane_profile(lane, site.lanes);
        let diagram = Diagram::new(road.free_flow_kmh * speed_share);
        let middle = self.window.middle(minute);
        // Demand drifts a little from one five-minute spell to the next.
        let drift = 1.0
            + 0.04
                * self
                    .draws
                    .normal(Purpose::Demand, &[sensor as u64, u64::from(minute / 5)]);
        let share = demand(local_time(middle))
            * road.demand_factor
            * site.demand_factor
            * demand_share
            * drift;
        let mut state = diagram.free(demand_flow(share));
        for incident in self.incidents.iter().filter(|i| i.road == site.road) {
            match incident.effect(&self.network, sensor, middle) {
                Some(Effect::Queue(flow)) => {
                    state = diagram.queued(flow);
                    break;
                }
                Some(Effect::Flow(flow)) => state = diagram.free(flow * demand_share),
                None => {}
            }
        }
        let at = [sensor as u64, u64::from(lane), u64::from(minute)];
        Some(measure(state, INTERVAL_S, self.draws, &at))
    }

    /// The reading lane `lane` of sensor `sensor` sends for `minute`: what it carried, or what
    /// its faulty loop makes of that, or a broken one the API must refuse.
    pub fn reading(&self, sensor: usize, lane: u8, minute: u32) -> Option<SimReading> {
        let site = self.network.sensors.get(sensor)?;
        let clean = self.clean(sensor, lane, minute)?;
        let at = [sensor as u64, u64::from(lane), u64::from(minute)];
        let measured = match self.faults.iter().find(|f| f.covers(sensor, lane, minute)) {
            Some(fault) => {
                let first = match fault.kind {
                    FaultKind::Stuck => self.clean(sensor, lane, fault.from)?,
                    _ => clean,
                };
                faults::apply(
                    fault.kind,
                    clean,
                    first,
                    site.speed_limit_kmh,
                    self.draws,
                    &at,
                )
            }
            None => clean,
        };
        let mut reading = SimReading {
            sensor_id: site.id.clone(),
            observed_at: self.window.at(minute),
            interval_s: INTERVAL_S,
            lane,
            vehicle_count: i64::from(measured.vehicle_count),
            avg_speed_kmh: measured.avg_speed_kmh,
            occupancy_pct: Some(measured.occupancy_pct),
            refused: false,
            resent: false,
        };
        if self.refused(sensor, lane, minute) {
            self.corrupt(&mut reading, &at);
        }
        Some(reading)
    }

    fn refused(&self, sensor: usize, lane: u8, minute: u32) -> bool {
        // Faulty lanes are left whole: a missing reading would break the run their flag needs.
        let faulty = self
            .faults
            .iter()
            .any(|f| f.sensor == sensor && f.lane == lane);
        let at = [sensor as u64, u64::from(lane), u64::from(minute)];
        !faulty && self.draws.chance(Purpose::Refusal, &at, REFUSED_SHARE)
    }

    fn resent(&self, sensor: usize, lane: u8, minute: u32) -> bool {
        let at = [sensor as u64, u64::from(lane), u64::from(minute)];
        minute < self.window.minutes
            && !self.refused(sensor, lane, minute)
            && self.draws.chance(Purpose::Resend, &at, RESENT_SHARE)
    }

    /// Breaks one field beyond the API's range.
    fn corrupt(&self, reading: &mut SimReading, at: &[u64; 3]) {
        let at = [at[0], at[1], at[2], 1];
        reading.refused = true;
        match self.draws.index(Purpose::Refusal, &at, 3) {
            0 => {
                let over = self.draws.between(Purpose::Refusal, &at, 0.5, 40.0);
                reading.occupancy_pct = Some(((100.0 + over) * 10.0).round() / 10.0);
            }
            1 => {
                let over = self.draws.between(Purpose::Refusal, &at, 5.0, 200.0);
                reading.avg_speed_kmh = Some(((400.0 + over) * 10.0).round() / 10.0);
            }
            _ => reading.vehicle_count = -1 - self.draws.index(Purpose::Refusal, &at, 4) as i64,
        }
    }

    /// The (sensor, lane) pairs of the network, in sensor order.
    fn lanes(&self) -> impl Iterator<Item = (usize, u8)> + '_ {
        self.network
            .sensors
            .iter()
            .enumerate()
            .flat_map(|(s, sensor)| (0..sensor.lanes).map(move |lane| (s, lane)))
    }

    /// Every reading sent at `minute` (1..=minutes): each lane's for that minute, then the few
    /// sent again from the minute before.
    pub fn minute(&self, minute: u32) -> Vec<SimReading> {
        let mut readings: Vec<SimReading> = self
            .lanes()
            .filter_map(|(s, lane)| self.reading(s, lane, minute))
            .collect();
        if minute > 1 {
            let again = self
                .lanes()
                .filter(|&(s, lane)| self.resent(s, lane, minute - 1))
                .filter_map(|(s, lane)| self.reading(s, lane, minute - 1))
                .map(|reading| SimReading {
                    resent: true,
                    ..reading
                });
            readings.extend(again);
        }
        readings
    }

    /// Counts what [`Scenario::minute`] will make over the whole window, without making it.
    pub fn plan(&self) -> Plan {
        let mut plan = Plan::default();
        for minute in 1..=self.window.minutes {
            for (s, lane) in self.lanes() {
                plan.readings += 1;
                plan.refused += u64::from(self.refused(s, lane, minute));
                plan.resent += u64::from(self.resent(s, lane, minute));
            }
        }
        plan.readings += plan.resent;
        plan
    }
}
