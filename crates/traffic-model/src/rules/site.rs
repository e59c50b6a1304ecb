//! A sensor's site: what its metadata tells the rules when a reading leaves a value out.
//!
//! A value in the reading always wins. The site then fills the reading's gaps (lane count of a
//! whole-carriageway reading, speed limit) and replaces the network-wide defaults of
//! [`RulesConfig`] that no reading carries (free-flow speed, effective vehicle length, local
//! clock). Whatever the site supplied is named in one reason, so a reader sees which numbers
//! came from the sensor's record rather than from the reading.

use std::borrow::Cow;
use std::str::FromStr;

use chrono::{DateTime, Offset, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

use crate::reading::Reading;
use crate::sensor::SensorMetadata;

use super::confidence::Assessment;
use super::config::RulesConfig;

/// The values of a sensor's metadata the rules use. `Site::default()` knows nothing: the
/// reading and the configuration decide alone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Site {
    pub lanes: Option<u8>,
    pub speed_limit_kmh: Option<u16>,
    pub free_flow_speed_kmh: Option<f64>,
    pub effective_vehicle_length_m: Option<f64>,
    pub time_zone: Option<Tz>,
}

impl From<&SensorMetadata> for Site {
    fn from(metadata: &SensorMetadata) -> Self {
        Self {
            lanes: metadata.lanes,
            speed_limit_kmh: metadata.speed_limit_kmh,
            free_flow_speed_kmh: metadata.free_flow_speed_kmh,
            effective_vehicle_length_m: metadata.effective_vehicle_length_m,
            // Stored metadata was checked on the way in; a zone the database no longer
            // knows leaves the configured clock in place rather than failing the reading.
            time_zone: metadata
                .time_zone
                .as_deref()
                .and_then(|zone| Tz::from_str(zone).ok()),
        }
    }
}

/// How a reading's local time is found: the site's time zone (daylight saving included), or
/// the one fixed offset the configuration gives the whole network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Clock {
    Offset(i32),
    Zone(Tz),
}

impl Clock {
    /// The local hour (0–23) at `at`.
    pub(crate) fn hour(self, at: DateTime<Utc>) -> u32 {
        match self {
            Self::Zone(zone) => at.with_timezone(&zone).hour(),
            Self::Offset(minutes) => TimeDelta::try_minutes(i64::from(minutes))
                .and_then(|offset| at.checked_add_signed(offset))
                .unwrap_or(at)
                .hour(),
        }
    }

    /// "UTC+01:00", or "Europe/Berlin (UTC+02:00)" with the offset in force at `at`.
    pub(crate) fn describe(self, at: DateTime<Utc>) -> String {
        let minutes = match self {
            Self::Offset(minutes) => minutes,
            Self::Zone(zone) => at.with_timezone(&zone).offset().fix().local_minus_utc() / 60,
        };
        let utc = format!("UTC{:+03}:{:02}", minutes / 60, (minutes % 60).abs());
        match self {
            Self::Offset(_) => utc,
            Self::Zone(zone) => format!("{} ({utc})", zone.name()),
        }
    }
}

/// The reading and configuration the rules apply once the site has filled the gaps.
pub(crate) struct Resolved<'a> {
    pub(crate) reading: Cow<'a, Reading>,
    pub(crate) config: Cow<'a, RulesConfig>,
    /// The reference speed when no speed limit applies, and what it is called in reasons.
    pub(crate) free_flow: Option<(f64, &'static str)>,
    pub(crate) clock: Clock,
}

/// Applies `site` to `reading` and `config`, noting what it supplied.
pub(crate) fn resolve<'a>(
    reading: &'a Reading,
    site: &Site,
    config: &'a RulesConfig,
    notes: &mut Assessment,
) -> Resolved<'a> {
    let mut supplied = Vec::new();

    // A lane count only matters to a whole-carriageway count (flow per lane).
    let lanes = site
        .lanes
        .filter(|_| reading.lane().is_none() && reading.lanes().is_none());
    if let Some(lanes) = lanes {
        supplied.push(format!("lanes {lanes}"));
    }
    let speed_limit = site
        .speed_limit_kmh
        .filter(|_| reading.speed_limit_kmh().is_none());
    if let Some(limit) = speed_limit {
        supplied.push(format!("speed limit {limit} km/h"));
    }
    let reading = match reading.with_gaps_filled(lanes, speed_limit) {
        Some(filled) => Cow::Owned(filled),
        None => Cow::Borrowed(reading),
    };

    let free_flow = match site.free_flow_speed_kmh.filter(|ffs| *ffs > 0.0) {
        Some(ffs) => {
            if reading.speed_limit_kmh().is_none() {
                supplied.push(format!("free-flow speed {ffs:.0} km/h"));
            }
            Some((ffs, "the sensor's free-flow speed"))
        }
        None => config
            .free_flow_speed_kmh
            .filter(|ffs| ffs.is_finite() && *ffs > 0.0)
            .map(|ffs| (ffs, "the configured free-flow speed")),
    };

    let config = match site.effective_vehicle_length_m.filter(|m| *m > 0.0) {
        Some(length) => {
            supplied.push(format!("effective vehicle length {length:.1} m"));
            Cow::Owned(RulesConfig {
                effective_vehicle_length_m: length,
                ..config.clone()
            })
        }
        None => Cow::Borrowed(config),
    };

    let clock = match site.time_zone {
        Some(zone) => {
            supplied.push(format!("time zone {}", zone.name()));
            Clock::Zone(zone)
        }
        None => Clock::Offset(config.utc_offset_minutes),
    };

    if !supplied.is_empty() {
        notes.note(format!(
            "from the sensor's metadata (the reading has none): {}",
            supplied.join(", ")
        ));
    }
    Resolved {
        reading,
        config,
        free_flow,
        clock,
    }
}
