//! A sensor's readings summed up in time buckets, PeMS-style: the same arithmetic whatever
//! database the readings came from.
//!
//! A reading belongs to the bucket that holds the start of its counting interval
//! (`observed_at − interval_s`), as PeMS stamps its 5-minute data with the period's start.
//! Buckets are aligned in the sensor's local time: `1d` buckets are local days (a daylight-
//! saving change gives a 23- or 25-hour day), shorter ones are aligned on the local clock at
//! the offset in force, so a zone at UTC+05:30 gets buckets at :00 and :30 of its own hours.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveTime, Offset, TimeDelta, TimeZone, Utc};
pub use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::classification::{Flag, Label, LevelOfService};
use crate::reading::SensorId;

/// Most buckets one series holds (a week of minutes, a year and more of days).
pub const MAX_BUCKETS: usize = 10_080;
/// The longest window a series spans: a year and a day.
pub const MAX_WINDOW: TimeDelta = TimeDelta::days(366);

/// The length of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BucketSize {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "15m")]
    FifteenMinutes,
    #[serde(rename = "1h")]
    Hour,
    /// A local day in the sensor's time zone.
    #[serde(rename = "1d")]
    Day,
}

impl BucketSize {
    /// The length of a bucket; a day's is nominal (a local day may have 23 or 25 hours).
    pub fn nominal(self) -> TimeDelta {
        match self {
            Self::Minute => TimeDelta::minutes(1),
            Self::FiveMinutes => TimeDelta::minutes(5),
            Self::FifteenMinutes => TimeDelta::minutes(15),
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }

    /// The bucket holding `at`: its start and end, in UTC.
    pub fn bucket_of(self, at: DateTime<Utc>, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            Self::Day => {
                let day = at.with_timezone(&zone).date_naive();
                (
                    local_midnight(day, zone),
                    local_midnight(next_day(day), zone),
                )
            }
            _ => {
                let offset = i64::from(at.with_timezone(&zone).offset().fix().local_minus_utc());
                let size = self.nominal().num_seconds();
                let local = at.timestamp() + offset;
                let start = local - local.rem_euclid(size) - offset;
                let start = DateTime::from_timestamp(start, 0).unwrap_or(at);
                (start, start + self.nominal())
            }
        }
    }
}

impl fmt::Display for BucketSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Minute => "1m",
            Self::FiveMinutes => "5m",
            Self::FifteenMinutes => "15m",
            Self::Hour => "1h",
            Self::Day => "1d",
        })
    }
}

fn next_day(day: chrono::NaiveDate) -> chrono::NaiveDate {
    day.checked_add_days(Days::new(1)).unwrap_or(day)
}

/// The first instant of local `day` (a day whose midnight a DST change skips starts when the
/// clock resumes).
fn local_midnight(day: chrono::NaiveDate, zone: Tz) -> DateTime<Utc> {
    let mut time = day.and_time(NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(start) = zone.from_local_datetime(&time).earliest() {
            return start.with_timezone(&Utc);
        }
        time += TimeDelta::minutes(30);
    }
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
}

/// One reading and what its classification said, as the series needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub lane: Option<u8>,
    pub observed_at: DateTime<Utc>,
    pub interval_s: u32,
    pub vehicle_count: u32,
    pub avg_speed_kmh: Option<f64>,
    pub occupancy_pct: Option<f64>,
    /// Flow per lane: the classification's, or the reading's own for one not classified.
    pub flow_veh_h_lane: f64,
    /// `None` until classified.
    pub classified: Option<Classified>,
}

/// The parts of a classification a series counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub label: Label,
    pub level_of_service: Option<LevelOfService>,
    pub flags: Vec<Flag>,
}

impl Observation {
    /// The start of the reading's counting interval.
    pub fn start(&self) -> DateTime<Utc> {
        self.observed_at - TimeDelta::seconds(i64::from(self.interval_s))
    }
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Readings whose interval starts in the bucket.
    pub readings: u32,
    /// Of those, the classified ones (the label, LOS and flag figures count only these).
    pub classified: u32,
    pub vehicles: u64,
    /// Mean flow per lane over the time the readings cover, veh/h/ln.
    pub flow_veh_h_lane: Option<f64>,
    /// Mean speed weighted by each reading's vehicles, km/h.
    pub mean_speed_kmh: Option<f64>,
    /// Mean occupancy over the time the readings cover, %.
    pub mean_occupancy_pct: Option<f64>,
    /// The worst Level of Service.
    pub worst_los: Option<LevelOfService>,
    /// The Level of Service covering the most minutes (the worse one on a tie).
    pub level_of_service: Option<LevelOfService>,
    /// The label covering the most minutes (the worse one on a tie).
    pub label: Option<Label>,
    /// The worst label (congested worst; unknown only when nothing else was seen).
    pub worst_label: Option<Label>,
    /// Minutes of the readings' intervals per label.
    pub minutes_by_label: BTreeMap<Label, f64>,
    /// Readings per flag.
    pub flags: BTreeMap<Flag, u32>,
}

/// Running sums of readings: one bucket's, or a stored rollup span's. Every figure is a sum,
/// so that sums of spans add up to the sums of the bucket holding them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sums {
    pub readings: u32,
    pub classified: u32,
    pub vehicles: u64,
    /// Seconds of counting intervals, and flow (veh/h/ln) weighted by them.
    pub flow_seconds: f64,
    pub flow_weighted: f64,
    /// Vehicles of the readings with a speed, and speed (km/h) weighted by them.
    pub speed_vehicles: f64,
    pub speed_weighted: f64,
    /// Seconds of the readings with an occupancy, and occupancy (%) weighted by them.
    pub occupancy_seconds: f64,
    pub occupancy_weighted: f64,
    /// Seconds per Level of Service and per label, of the classified readings.
    pub los_seconds: BTreeMap<LevelOfService, f64>,
    pub label_seconds: BTreeMap<Label, f64>,
    /// Classified readings per flag.
    pub flags: BTreeMap<Flag, u32>,
}

impl Sums {
    /// Adds one reading.
    pub fn add(&mut self, o: &Observation) {
        let seconds = f64::from(o.interval_s);
        self.readings += 1;
        self.vehicles += u64::from(o.vehicle_count);
        self.flow_seconds += seconds;
        self.flow_weighted += o.flow_veh_h_lane * seconds;
        if let Some(speed) = o.avg_speed_kmh.filter(|_| o.vehicle_count > 0) {
            self.speed_vehicles += f64::from(o.vehicle_count);
            self.speed_weighted += speed * f64::from(o.vehicle_count);
        }
        if let Some(occupancy) = o.occupancy_pct {
            self.occupancy_seconds += seconds;
            self.occupancy_weighted += occupancy * seconds;
        }
        if let Some(c) = &o.classified {
            self.classified += 1;
            *self.label_seconds.entry(c.label).or_default() += seconds;
            if let Some(los) = c.level_of_service {
                *self.los_seconds.entry(los).or_default() += seconds;
            }
            for flag in &c.flags {
                *self.flags.entry(*flag).or_default() += 1;
            }
        }
    }

    /// Adds the sums of other readings.
    pub fn merge(&mut self, other: &Sums) {
        self.readings += other.readings;
        self.classified += other.classified;
        self.vehicles += other.vehicles;
        self.flow_seconds += other.flow_seconds;
        self.flow_weighted += other.flow_weighted;
        self.speed_vehicles += other.speed_vehicles;
        self.speed_weighted += other.speed_weighted;
        self.occupancy_seconds += other.occupancy_seconds;
        self.occupancy_weighted += other.occupancy_weighted;
        for (los, seconds) in &other.los_seconds {
            *self.los_seconds.entry(*los).or_default() += seconds;
        }
        for (label, seconds) in &other.label_seconds {
            *self.label_seconds.entry(*label).or_default() += seconds;
        }
        for (flag, count) in &other.flags {
            *self.flags.entry(*flag).or_default() += count;
        }
    }

    fn into_bucket(mut self, start: DateTime<Utc>, end: DateTime<Utc>) -> Bucket {
        // A stored span holds a zero for what none of its readings had.
        self.label_seconds.retain(|_, seconds| *seconds > 0.0);
        self.los_seconds.retain(|_, seconds| *seconds > 0.0);
        self.flags.retain(|_, count| *count > 0);
        let ratio = |sum: f64, weight: f64| (weight > 0.0).then(|| sum / weight);
        // Most minutes first, then the worse one.
        let label = most(&self.label_seconds, |l| l.severity());
        let level_of_service = most(&self.los_seconds, |l| *l as u8);
        let worst_label = self
            .label_seconds
            .keys()
            .copied()
            .max_by_key(|l| (l.severity(), *l != Label::Unknown));
        Bucket {
            start,
            end,
            readings: self.readings,
            classified: self.classified,
            vehicles: self.vehicles,
            flow_veh_h_lane: ratio(self.flow_weighted, self.flow_seconds),
            mean_speed_kmh: ratio(self.speed_weighted, self.speed_vehicles),
            mean_occupancy_pct: ratio(self.occupancy_weighted, self.occupancy_seconds),
            worst_los: self.los_seconds.keys().max().copied(),
            level_of_service,
            label,
            worst_label,
            minutes_by_label: self
                .label_seconds
                .into_iter()
                .map(|(label, seconds)| (label, seconds / 60.0))
                .collect(),
            flags: self.flags,
        }
    }
}

/// The key with the largest value; a tie goes to the higher `rank`.
fn most<K: Copy + Ord>(values: &BTreeMap<K, f64>, rank: impl Fn(&K) -> u8) -> Option<K> {
    values
        .iter()
        .max_by(|(ka, a), (kb, b)| a.total_cmp(b).then(rank(ka).cmp(&rank(kb))))
        .map(|(k, _)| *k)
}

/// A span whose sums are stored per sensor lane (rollups), aligned on UTC multiples of its
/// length: it holds the readings whose interval starts in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupSpan {
    FiveMinutes,
    Hour,
}

impl RollupSpan {
    pub fn seconds(self) -> i64 {
        match self {
            Self::FiveMinutes => 300,
            Self::Hour => 3600,
        }
    }

    /// The first span boundary at or after `at`.
    pub fn ceil(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let floor = self.floor(at);
        if floor < at {
            floor + TimeDelta::seconds(self.seconds())
        } else {
            floor
        }
    }

    /// The last span boundary at or before `at`.
    pub fn floor(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let micros = at.timestamp_micros();
        let span = self.seconds() * 1_000_000;
        DateTime::from_timestamp_micros(micros - micros.rem_euclid(span)).unwrap_or(at)
    }

    fn aligns(self, at: DateTime<Utc>) -> bool {
        self.floor(at) == at
    }
}

/// The sums of one sensor lane's classified readings whose interval starts in the span
/// beginning at `start`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub start: DateTime<Utc>,
    pub sums: Sums,
}

/// The buckets of a window: every bucket of `size` from the one holding `from` to the one
/// holding the last instant before `to`, empty ones included.
#[derive(Debug, Clone)]
pub struct Plan {
    size: BucketSize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bounds: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Plan {
    /// At most `max_buckets`; `None` when the window needs more.
    pub fn new(
        size: BucketSize,
        zone: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max_buckets: usize,
    ) -> Option<Self> {
        let mut bounds: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        let mut at = from;
        while at < to {
            if bounds.len() == max_buckets {
                return None;
            }
            let (start, end) = size.bucket_of(at, zone);
            bounds.push((start, end));
            at = end.max(at + TimeDelta::seconds(1));
        }
        Some(Self {
            size,
            from,
            to,
            bounds,
        })
    }

    pub fn size(&self) -> BucketSize {
        self.size
    }

    /// Each bucket's `[start, end)`, in time order.
    pub fn bounds(&self) -> &[(DateTime<Utc>, DateTime<Utc>)] {
        &self.bounds
    }

    /// The window, `[from, to)`.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.from, self.to)
    }

    /// The longest stored span the buckets can be summed from: one that never straddles a
    /// bucket boundary. None for 1-minute buckets, or in a zone whose offset is not a whole
    /// number of 5 minutes.
    pub fn rollup_span(&self) -> Option<RollupSpan> {
        let fits = |span: RollupSpan| {
            self.bounds
                .iter()
                .all(|(start, end)| span.aligns(*start) && span.aligns(*end))
        };
        match self.size {
            BucketSize::Minute => None,
            BucketSize::Hour | BucketSize::Day if fits(RollupSpan::Hour) => Some(RollupSpan::Hour),
            _ => fits(RollupSpan::FiveMinutes).then_some(RollupSpan::FiveMinutes),
        }
    }

    /// The part of the window whole spans of `span` cover, `[from', to')`; the readings
    /// outside it (and those of it not in a stored span) are summed one by one. None when no
    /// whole span fits.
    pub fn covered(&self, span: RollupSpan) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (from, to) = (span.ceil(self.from), span.floor(self.to));
        (from < to).then_some((from, to))
    }

    /// The buckets, with the readings whose interval starts in the window and the rollups
    /// summed into theirs.
    pub fn sum(&self, observations: &[Observation], rollups: &[Rollup]) -> Vec<Bucket> {
        let mut sums: Vec<Sums> = self.bounds.iter().map(|_| Sums::default()).collect();
        let index = |start: DateTime<Utc>| {
            self.bounds
                .partition_point(|(s, _)| *s <= start)
                .saturating_sub(1)
        };
        for o in observations {
            let start = o.start();
            if start < self.from || start >= self.to {
                continue;
            }
            if let Some(sum) = sums.get_mut(index(start)) {
                sum.add(o);
            }
        }
        for r in rollups {
            if r.start < self.from || r.start >= self.to {
                continue;
            }
            if let Some(sum) = sums.get_mut(index(r.start)) {
                sum.merge(&r.sums);
            }
        }
        sums.into_iter()
            .zip(&self.bounds)
            .map(|(sum, (start, end))| sum.into_bucket(*start, *end))
            .collect()
    }
}

/// A sensor's series.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Series {
    pub sensor_id: SensorId,
    pub bucket: BucketSize,
    /// The lane asked for; null: every lane of the sensor.
    pub lane: Option<u8>,
    /// The time zone buckets are aligned in: the sensor's (its metadata), else UTC.
    pub time_zone: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every bucket from the one holding `from` to the one holding the last instant before
    /// `to`, empty ones included.
    pub buckets: Vec<Bucket>,
    /// Present when the window reaches back before the readings still kept: what its older
    /// buckets are summed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<SeriesRetention>,
}

/// What retention has removed from a series' window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SeriesRetention {
    /// Readings are kept from this moment: the buckets before it are summed from the stored
    /// 5-minute and hourly rollups.
    pub readings_from: DateTime<Utc>,
    /// Rollups are kept from this moment: buckets before it hold nothing. Null: every rollup
    /// is kept.
    pub rollups_from: Option<DateTime<Utc>>,
}

/// Parses an IANA zone name, UTC for none.
pub fn zone_or_utc(name: Option<&str>) -> Tz {
    name.and_then(|n| Tz::from_str(n).ok()).unwrap_or(Tz::UTC)
}

#[cfg(test)]
mod tests;
