//! The traffic: how many want to travel when (the daily demand curve, in the sites' local
//! time), what state that puts a lane in (the fundamental diagram), and what a loop detector
//! reports of that state in one interval (counts, mean speed, occupancy, with noise).

use chrono::{
    DateTime, Datelike, Months, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc, Weekday,
};

use super::random::{Draws, Purpose};

/// The sites' IANA time zone: the motorways around Munich.
pub const TIME_ZONE: &str = "Europe/Berlin";
/// A lane's capacity, vehicles per hour: HCM's basic-freeway 2 400 pc/h less the trucks.
pub const CAPACITY_VEH_H: f64 = 2000.0;
/// Vehicles per km of a lane at a standstill (7.7 m each, gaps included).
pub const JAM_DENSITY_VEH_KM: f64 = 130.0;
/// Effective vehicle length plus loop, metres: the classifier's default g-factor, so the
/// density it reads from occupancy is the one the diagram put there.
pub const VEHICLE_LENGTH_M: f64 = 6.5;
/// How far speed has fallen from free flow when the flow reaches capacity.
const SPEED_DROP_AT_CAPACITY: f64 = 0.15;
/// Demand never quite reaches capacity: recurrent breakdown is not modelled, incidents are.
const MAX_DEMAND: f64 = 0.97;

/// Berlin's offset from UTC at `at`: CET, or CEST from the last Sunday of March to the last
/// Sunday of October, switching at 01:00 UTC (the EU rule since 1996).
pub fn berlin_offset(at: DateTime<Utc>) -> TimeDelta {
    let year = at.year();
    let switch = |month: u32| {
        last_sunday(year, month)
            .and_then(|day| day.and_hms_opt(1, 0, 0))
            .map(|t| t.and_utc())
    };
    let summer = match (switch(3), switch(10)) {
        (Some(begins), Some(ends)) => begins <= at && at < ends,
        _ => false,
    };
    TimeDelta::hours(if summer { 2 } else { 1 })
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let last = NaiveDate::from_ymd_opt(year, month, 1)?
        .checked_add_months(Months::new(1))?
        .pred_opt()?;
    let back = last.weekday().num_days_from_sunday();
    last.checked_sub_signed(TimeDelta::days(i64::from(back)))
}

/// The sites' wall-clock time at `at`.
pub fn local_time(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc() + berlin_offset(at)
}

/// A bump of height `height` centred on hour `at`, `width` hours wide (one σ).
fn bump(hour: f64, at: f64, width: f64, height: f64) -> f64 {
    height * (-0.5 * ((hour - at) / width).powi(2)).exp()
}

/// Demand at local time `local` as a share of a lane's capacity: a night floor, a broad
/// daytime level and, on weekdays, a morning (07:45) and an evening (17:15) rush hour;
/// weekends keep a small late-morning peak and a weaker evening one.
pub fn demand(local: NaiveDateTime) -> f64 {
    let hour = f64::from(local.num_seconds_from_midnight()) / 3600.0;
    let weekend = matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
    let (morning, evening, day) = if weekend {
        (
            bump(hour, 10.5, 1.5, 0.15),
            bump(hour, 17.5, 1.5, 0.30),
            bump(hour, 14.0, 3.5, 0.35),
        )
    } else {
        (
            bump(hour, 7.75, 0.9, 0.62),
            bump(hour, 17.25, 1.2, 0.58),
            bump(hour, 12.5, 3.2, 0.42),
        )
    };
    0.07 + morning + evening + day
}

/// Lane `lane` of `lanes` (0 the rightmost): its share of the carriageway's demand relative
/// to the mean lane, and its free-flow speed relative to the road's. The right lane carries a
/// little more and drives slower (trucks), the left the opposite.
pub fn lane_profile(lane: u8, lanes: u8) -> (f64, f64) {
    if lanes <= 1 {
        return (1.0, 1.0);
    }
    let x = f64::from(lane) / f64::from(lanes - 1);
    (1.04 - 0.08 * x, 0.93 + 0.13 * x)
}

/// The flow a lane is asked to carry, vehicles per hour: `share` of capacity, capped below it.
pub fn demand_flow(share: f64) -> f64 {
    share.clamp(0.0, MAX_DEMAND) * CAPACITY_VEH_H
}

/// A lane's traffic state. `flow = density × speed` always holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    pub flow_veh_h: f64,
    pub density_veh_km: f64,
    pub speed_kmh: f64,
    /// On the congested branch: a queue.
    pub congested: bool,
}

/// The fundamental diagram of one lane: speed falls gently with density up to capacity
/// (v = v_f (1 − 0.15 (k / k_c)³)), then the congested branch is a straight line from
/// capacity to the jam density (the triangular diagram's, backward wave speed w).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diagram {
    pub free_flow_kmh: f64,
}

impl Diagram {
    pub fn new(free_flow_kmh: f64) -> Self {
        Self { free_flow_kmh }
    }

    /// Density at capacity, veh/km.
    pub fn critical_density(self) -> f64 {
        CAPACITY_VEH_H / (self.free_flow_kmh * (1.0 - SPEED_DROP_AT_CAPACITY))
    }

    /// Speed at which the congested branch's waves travel upstream, km/h.
    pub fn wave_speed(self) -> f64 {
        CAPACITY_VEH_H / (JAM_DENSITY_VEH_KM - self.critical_density())
    }

    fn free_speed(self, density: f64) -> f64 {
        let ratio = density / self.critical_density();
        self.free_flow_kmh * (1.0 - SPEED_DROP_AT_CAPACITY * ratio.powi(3))
    }

    /// The uncongested state carrying `flow` (capped at capacity). Flow rises with density
    /// on this branch, so bisection finds the one density that carries it.
    pub fn free(self, flow: f64) -> State {
        let flow = flow.clamp(0.0, CAPACITY_VEH_H);
        let (mut low, mut high) = (0.0, self.critical_density());
        for _ in 0..60 {
            let mid = (low + high) / 2.0;
            if mid * self.free_speed(mid) < flow {
                low = mid;
            } else {
                high = mid;
            }
        }
        let density = (low + high) / 2.0;
        State {
            flow_veh_h: flow,
            density_veh_km: density,
            speed_kmh: self.free_speed(density),
            congested: false,
        }
    }

    /// The congested state of a queue discharging `flow` (positive, below capacity).
    pub fn queued(self, flow: f64) -> State {
        let flow = flow.clamp(1.0, CAPACITY_VEH_H);
        let density = JAM_DENSITY_VEH_KM - flow / self.wave_speed();
        State {
            flow_veh_h: flow,
            density_veh_km: density,
            speed_kmh: flow / density,
            congested: true,
        }
    }
}

/// Speed of the front between an upstream state `a` and a downstream state `b`, km/h,
/// positive downstream (Rankine–Hugoniot: Δq / Δk).
pub fn front_speed(a: State, b: State) -> f64 {
    let dk = b.density_veh_km - a.density_veh_km;
    if dk.abs() < 1e-9 {
        return 0.0;
    }
    (b.flow_veh_h - a.flow_veh_h) / dk
}

/// What a loop detector reports of a lane in `state` over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub vehicle_count: u32,
    /// None when no vehicle passed: a loop has no speed to report then.
    pub avg_speed_kmh: Option<f64>,
    pub occupancy_pct: f64,
}

/// One tenth: the precision detectors report speed and occupancy in.
fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Occupancy of `density` veh/km, percent.
fn occupancy_of(density: f64) -> f64 {
    density * VEHICLE_LENGTH_M / 10.0
}

/// Samples one interval of `state`: vehicles arrive at random (Poisson), their mean speed
/// scatters less the more of them there are, and occupancy is the density the count and
/// speed imply (free flow) or the queue's own, with noise (congested, where counts are few
/// and speeds erratic). Either way flow = density × speed holds for what is reported.
pub fn measure(state: State, interval_s: u32, draws: Draws, at: &[u64]) -> Measured {
    let per_hour = 3600.0 / f64::from(interval_s.max(1));
    let count = draws.poisson(Purpose::Count, at, state.flow_veh_h / per_hour);
    let flow = f64::from(count) * per_hour;
    if state.congested {
        let noise = 1.0 + 0.06 * draws.normal(Purpose::Occupancy, at);
        let occupancy = tenth((occupancy_of(state.density_veh_km) * noise).clamp(1.0, 95.0));
        let speed = (count > 0).then(|| {
            let density = occupancy * 10.0 / VEHICLE_LENGTH_M;
            tenth((flow / density).max(1.0))
        });
        return Measured {
            vehicle_count: count,
            avg_speed_kmh: speed,
            occupancy_pct: occupancy,
        };
    }
    if count == 0 {
        return Measured {
            vehicle_count: 0,
            avg_speed_kmh: None,
            occupancy_pct: 0.0,
        };
    }
    let spread = 0.08 / f64::from(count).sqrt();
    let speed =
        tenth((state.speed_kmh * (1.0 + spread * draws.normal(Purpose::Speed, at))).max(5.0));
    let occupancy = tenth(occupancy_of(flow / speed)).clamp(0.1, 95.0);
    Measured {
        vehicle_count: count,
        avg_speed_kmh: Some(speed),
        occupancy_pct: occupancy,
    }
}

#[cfg(test)]
mod tests {
    use crate::simulate::tests::utc;
    use chrono::{NaiveDate, TimeDelta};

    use super::*;

    #[test]
    fn berlin_keeps_summer_time_from_the_last_sunday_of_march_to_that_of_october() {
        for (at, hours) in [
            ("2026-01-15T12:00:00Z", 1),
            ("2026-03-29T00:59:59Z", 1),
            ("2026-03-29T01:00:00Z", 2),
            ("2026-07-01T12:00:00Z", 2),
            ("2026-10-25T00:59:59Z", 2),
            ("2026-10-25T01:00:00Z", 1),
            ("2025-03-30T01:00:00Z", 2),
            ("2025-10-26T01:00:00Z", 1),
        ] {
            assert_eq!(berlin_offset(utc(at)), TimeDelta::hours(hours), "{at}");
        }
    }

    #[test]
    fn weekday_demand_has_a_morning_and_an_evening_peak_well_above_the_night() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(); // a Tuesday
        let at = |minutes: u32| demand(day.and_hms_opt(minutes / 60, minutes % 60, 0).unwrap());
        let peak = |from: u32, to: u32| {
            (from * 60..to * 60)
                .step_by(5)
                .max_by(|a, b| at(*a).total_cmp(&at(*b)))
                .unwrap()
        };
        let (morning, evening) = (peak(5, 11), peak(15, 20));
        let night = at(3 * 60);
        assert!(
            (7 * 60..9 * 60).contains(&morning),
            "morning peak at minute {morning}"
        );
        assert!(
            (16 * 60..19 * 60).contains(&evening),
            "evening peak at minute {evening}"
        );
        let noon = at(12 * 60 + 30);
        for peak in [morning, evening] {
            assert!(at(peak) > 5.0 * night, "{} vs night {night}", at(peak));
            assert!(at(peak) > noon + 0.2, "{} vs noon {noon}", at(peak));
        }
        assert!(noon > 3.0 * night);
        assert!(at(morning) < 1.0 && night > 0.0);
    }

    #[test]
    fn the_diagram_is_consistent_and_its_branches_meet_at_capacity() {
        let diagram = Diagram::new(120.0);
        for flow in [0.0, 300.0, 1200.0, 1900.0] {
            let free = diagram.free(flow);
            assert!(
                (free.density_veh_km * free.speed_kmh - flow).abs() < 0.01,
                "{free:?}"
            );
            assert!(free.speed_kmh > 100.0 && !free.congested, "{free:?}");
        }
        let near = diagram.free(CAPACITY_VEH_H);
        assert!((near.density_veh_km - diagram.critical_density()).abs() < 1e-6);
        let queue = diagram.queued(900.0);
        assert!((queue.density_veh_km * queue.speed_kmh - 900.0).abs() < 1e-6);
        assert!(
            queue.speed_kmh < 20.0 && queue.density_veh_km > 60.0,
            "{queue:?}"
        );
        // A queue's tail moves upstream while more arrive than leave.
        assert!(front_speed(diagram.free(1600.0), queue) < 0.0);
        assert!(front_speed(diagram.free(400.0), queue) > 0.0);
    }

    #[test]
    fn a_detector_reports_what_the_state_implies() {
        let (draws, diagram) = (Draws::new(5), Diagram::new(120.0));
        let free = diagram.free(1500.0);
        let queue = diagram.queued(900.0);
        let n = 500;
        let mut counts = 0;
        for i in 0..n {
            let m = measure(free, 60, draws, &[i]);
            counts += m.vehicle_count;
            let speed = m.avg_speed_kmh.unwrap();
            assert!((90.0..130.0).contains(&speed), "{m:?}");
            assert!(m.occupancy_pct < 20.0, "{m:?}");
            let q = measure(queue, 60, draws, &[i]);
            assert!(q.occupancy_pct > 35.0 && q.occupancy_pct < 70.0, "{q:?}");
            assert!(q.avg_speed_kmh.is_none_or(|s| s < 30.0), "{q:?}");
        }
        let mean = f64::from(counts) / f64::from(n as u32);
        assert!((mean - 25.0).abs() < 1.0, "{mean}");
        let empty = measure(diagram.free(0.0), 60, draws, &[1]);
        assert_eq!(
            (
                empty.vehicle_count,
                empty.avg_speed_kmh,
                empty.occupancy_pct
            ),
            (0, None, 0.0)
        );
    }
}
