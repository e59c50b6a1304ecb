//! The summary of a run: what was sent and what the API answered, what the classifier made of
//! it, and how that compares with the simulator's truth; printed as plain-text tables.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use traffic_model::classification::{Flag, Label};

use super::faults::FaultKind;
use super::play::Tally;
use super::scenario::{Plan, Window};
use super::traffic::{TIME_ZONE, local_time};

/// How long the classification queue took to drain after the last reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueWait {
    /// No reading of the window was pending or being classified any more.
    pub drained: bool,
    pub waited: Duration,
}

/// Labels and flags over the window, summed over the network's sensors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Classes {
    /// Readings stored in the window.
    pub readings: u64,
    pub classified: u64,
    /// Minutes of the classified readings' intervals, by label.
    pub minutes_by_label: BTreeMap<Label, f64>,
    /// Classified readings, by flag.
    pub flags: BTreeMap<Flag, u64>,
}

/// A faulty loop, and the flag the classifier raised on its lane.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultCheck {
    pub sensor_id: String,
    pub lane: u8,
    pub kind: FaultKind,
    /// The first and last faulty readings' `observed_at`.
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub readings: u64,
    /// The lane's readings over the window that carry the kind's flag; `None` when the read
    /// failed.
    pub flagged: Option<u64>,
}

/// One sensor in an incident's queue: the truth, and the classifier's first word of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorCheck {
    pub sensor_id: String,
    /// In the queue from `from` until `to` (the truth).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The earliest of its readings observed in that span labelled `congested`.
    pub first_congested: Option<DateTime<Utc>>,
}

impl SensorCheck {
    pub fn detected(&self) -> bool {
        self.first_congested.is_some()
    }

    /// From the queue's arrival to the first reading labelled congested.
    pub fn delay(&self) -> Option<TimeDelta> {
        self.first_congested.map(|at| at - self.from)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentCheck {
    /// "A9 northbound".
    pub road: String,
    /// The sensor just upstream of it.
    pub site: String,
    pub onset: DateTime<Utc>,
    pub cleared: DateTime<Utc>,
    pub capacity_left: f64,
    /// The sensors of its queue (none when no queue formed), the site first.
    pub sensors: Vec<SensorCheck>,
}

/// Everything a run found out.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub url: String,
    pub seed: u64,
    pub window: Window,
    pub roads: Vec<String>,
    pub sensor_ids: Vec<String>,
    /// Sensors whose metadata (location included) was stored.
    pub registered: u64,
    pub plan: Plan,
    pub readings: Tally,
    pub played_in: Duration,
    pub queue: QueueWait,
    pub classes: Classes,
    pub faults: Vec<FaultCheck>,
    pub incidents: Vec<IncidentCheck>,
    /// Reads of the results that failed (their parts of the summary are missing).
    pub read_errors: u64,
}

impl Summary {
    /// Sensor-incidents (a sensor in an incident's queue) the classifier labelled congested,
    /// and all of them.
    pub fn agreement(&self) -> (usize, usize) {
        let sensors = self.incidents.iter().flat_map(|i| &i.sensors);
        let all = sensors.clone().count();
        (sensors.filter(|s| s.detected()).count(), all)
    }

    /// Requests that failed: writes with a server error or no answer, and failed reads.
    pub fn failed_requests(&self) -> u64 {
        self.readings.failed_requests() + self.read_errors
    }
}

fn clock(at: DateTime<Utc>) -> String {
    local_time(at).format("%H:%M:%S").to_string()
}

fn minutes_seconds(delay: TimeDelta) -> String {
    let seconds = delay.num_seconds();
    let sign = if seconds < 0 { "-" } else { "" };
    format!("{sign}{}:{:02}", seconds.abs() / 60, seconds.abs() % 60)
}

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1} %", 100.0 * part / whole)
    } else {
        "–".to_owned()
    }
}

impl Summary {
    /// What was simulated, where, and how fast.
    fn write_run(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = (self.window.start, self.window.end());
        writeln!(
            f,
            "Simulated {} – {} UTC ({} – {} {TIME_ZONE}), {} min, seed {}",
            start.format("%Y-%m-%d %H:%M"),
            end.format("%H:%M"),
            local_time(start).format("%a %H:%M"),
            local_time(end).format("%H:%M"),
            self.window.minutes,
            self.seed
        )?;
        writeln!(
            f,
            "{} sensors on {} ({} registered with their location), played against {} in {:.1} s",
            self.sensor_ids.len(),
            self.roads.join(", "),
            self.registered,
            self.url,
            self.played_in.as_secs_f64()
        )?;
        Ok(())
    }

    /// What became of the readings, against what the simulator meant.
    fn write_readings(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, p) = (&self.readings, &self.plan);
        writeln!(f, "\n{:<28}{:>10}{:>10}", "Readings", "answered", "planned")?;
        for (what, answered, planned) in [
            ("sent", r.sent, p.readings),
            ("stored", r.stored, p.readings - p.refused - p.resent),
            ("duplicates", r.duplicates, p.resent),
            ("rejected", r.rejected, p.refused),
            ("failed", r.failed, 0),
        ] {
            writeln!(f, "  {what:<26}{answered:>10}{planned:>10}")?;
        }
        writeln!(
            f,
            "Requests: {} sent, {} server errors, {} other failures",
            r.requests, r.server_errors, r.other_errors
        )?;
        Ok(())
    }

    /// Labels and flags over the window.
    fn write_classes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.classes;
        let drained = if self.queue.drained {
            format!(
                "queue drained {:.1} s after the last reading",
                self.queue.waited.as_secs_f64()
            )
        } else {
            format!(
                "readings still queued after {:.0} s",
                self.queue.waited.as_secs_f64()
            )
        };
        writeln!(
            f,
            "Classified: {} of {} readings in the window ({drained})",
            c.classified, c.readings
        )?;

        let minutes: f64 = c.minutes_by_label.values().sum();
        writeln!(f, "\n{:<28}{:>10}{:>10}", "Labels", "minutes", "share")?;
        for (label, m) in &c.minutes_by_label {
            writeln!(
                f,
                "  {:<26}{m:>10.0}{:>10}",
                label.to_string(),
                percent(*m, minutes)
            )?;
        }
        writeln!(f, "\n{:<28}{:>10}{:>10}", "Flags", "readings", "share")?;
        if c.flags.is_empty() {
            writeln!(f, "  none")?;
        }
        for (flag, n) in &c.flags {
            let share = percent(*n as f64, c.classified as f64);
            writeln!(f, "  {:<26}{n:>10}{share:>10}", flag.to_string())?;
        }
        Ok(())
    }

    /// Each faulty loop and the flag raised on it.
    fn write_faults(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nFaulty loops (the simulator's truth → the classifier's flag)"
        )?;
        if self.faults.is_empty() {
            writeln!(f, "  none")?;
        }
        for fault in &self.faults {
            let flag = fault.kind.flag().to_string();
            let found = match fault.flagged {
                Some(n) => format!("{flag} on {n} of {} readings", fault.readings),
                None => "not read".to_owned(),
            };
            writeln!(
                f,
                "  {:<16} lane {}  {:<24}{}–{}  {found}",
                fault.sensor_id,
                fault.lane,
                fault.kind.describe(),
                clock(fault.first),
                clock(fault.last),
            )?;
            // card_off needs an hour of a lane's history, more than the service sends by default.
            if fault.kind == FaultKind::CardOff && fault.flagged == Some(0) && fault.readings >= 60
            {
                writeln!(
                    f,
                    "  {:<16} (card_off needs an hour of history: with 60 s readings, run the \
                     service with CLASSIFY_HISTORY_READINGS of 60 or more)",
                    ""
                )?;
            }
        }
        Ok(())
    }

    /// Each incident's queue, sensor by sensor, and when the classifier saw it.
    fn write_incidents(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nIncidents (the simulator's truth → the classifier's labels; local times)"
        )?;
        if self.incidents.is_empty() {
            writeln!(f, "  none (a window under 30 minutes has none)")?;
        }
        for (n, incident) in self.incidents.iter().enumerate() {
            writeln!(
                f,
                "  {}. {}, just past {}: {}–{}, {:.0} % of capacity left",
                n + 1,
                incident.road,
                incident.site,
                clock(incident.onset),
                clock(incident.cleared),
                100.0 * incident.capacity_left
            )?;
            if incident.sensors.is_empty() {
                writeln!(
                    f,
                    "     no queue formed: the traffic fitted through what was left open"
                )?;
                continue;
            }
            writeln!(
                f,
                "     {:<16}{:<22}{:<18}delay",
                "sensor", "in the queue", "first congested"
            )?;
            for s in &incident.sensors {
                let span = format!("{}–{}", clock(s.from), clock(s.to));
                let (first, delay) = match (s.first_congested, s.delay()) {
                    (Some(at), Some(delay)) => (clock(at), minutes_seconds(delay)),
                    _ => ("not labelled".to_owned(), "–".to_owned()),
                };
                writeln!(f, "     {:<16}{span:<22}{first:<18}{delay}", s.sensor_id)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_run(f)?;
        self.write_readings(f)?;
        self.write_classes(f)?;
        self.write_faults(f)?;
        self.write_incidents(f)?;
        let (detected, all) = self.agreement();
        if self.read_errors > 0 {
            writeln!(
                f,
                "\n{} reads of the results failed: the figures above miss their parts",
                self.read_errors
            )?;
        }
        writeln!(
            f,
            "\nAgreement: the classifier labelled {detected} of {all} sensor-incidents congested ({})",
            percent(detected as f64, all as f64)
        )
    }
}
