//! Speed evidence: the mean speed against a reference speed (ratio bands) or, with no
//! reference, against absolute bounds. It sets a floor under the label; it never improves it.

use crate::classification::Label;
use crate::reading::Reading;

use super::config::RulesConfig;

/// What the mean speed says about the traffic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpeedEvidence {
    /// The label is at least this bad ([`Label::FreeFlow`]: no constraint).
    pub(crate) floor: Label,
    /// At or above the free-flow share of a reference speed.
    pub(crate) says_free: bool,
    /// Below the stationary share of a reference speed, or the absolute stationary bound.
    pub(crate) says_stationary: bool,
    /// "speed 45.0 km/h is 37.5 % of the speed limit 120 km/h (< 75 %: slow)".
    pub(crate) test: String,
}

/// The speed evidence of a reading; `None` when it has no speed or counted no vehicles (the
/// mean speed of nothing says nothing). The reference is the reading's speed limit, else
/// `free_flow` (the site's or the configured free-flow speed, with its name).
pub(crate) fn evidence(
    reading: &Reading,
    free_flow: Option<(f64, &'static str)>,
    config: &RulesConfig,
) -> Option<SpeedEvidence> {
    if reading.vehicle_count() == 0 {
        return None;
    }
    let speed = reading.avg_speed_kmh()?;
    let reference = reading
        .speed_limit_kmh()
        .map(|limit| (f64::from(limit), "the speed limit"))
        .or(free_flow);
    Some(match reference {
        Some((reference, what)) => by_ratio(speed, reference, what, config),
        None => by_absolute_bounds(speed, config),
    })
}

fn by_ratio(speed: f64, reference: f64, what: &str, config: &RulesConfig) -> SpeedEvidence {
    let ratio = speed / reference;
    let pct = |r: f64| r * 100.0;
    let (floor, band) = if ratio < config.stationary_speed_ratio {
        (
            Label::Congested,
            format!(
                "< {:.0} %: stationary or queueing",
                pct(config.stationary_speed_ratio)
            ),
        )
    } else if ratio < config.slow_speed_ratio {
        (
            Label::Heavy,
            format!("< {:.0} %: slow", pct(config.slow_speed_ratio)),
        )
    } else if ratio < config.free_flow_speed_ratio {
        (
            Label::Moderate,
            format!(
                "< {:.0} %: below free-flow speed",
                pct(config.free_flow_speed_ratio)
            ),
        )
    } else {
        (
            Label::FreeFlow,
            format!(
                "≥ {:.0} %: free-flow speed",
                pct(config.free_flow_speed_ratio)
            ),
        )
    };
    SpeedEvidence {
        floor,
        says_free: ratio >= config.free_flow_speed_ratio,
        says_stationary: ratio < config.stationary_speed_ratio,
        test: format!(
            "speed {speed:.1} km/h is {:.1} % of {what} {reference:.0} km/h ({band})",
            pct(ratio)
        ),
    }
}

fn by_absolute_bounds(speed: f64, config: &RulesConfig) -> SpeedEvidence {
    let (floor, band) = if speed < config.stationary_speed_kmh {
        (
            Label::Congested,
            format!(
                "< {:.1} km/h, 15 mph: stationary or queueing",
                config.stationary_speed_kmh
            ),
        )
    } else if speed < config.delay_speed_kmh {
        (
            Label::Heavy,
            format!("< {:.1} km/h, 35 mph: PeMS delay", config.delay_speed_kmh),
        )
    } else {
        (
            Label::FreeFlow,
            format!("≥ {:.1} km/h, 35 mph", config.delay_speed_kmh),
        )
    };
    SpeedEvidence {
        floor,
        says_free: false,
        says_stationary: speed < config.stationary_speed_kmh,
        test: format!("speed {speed:.1} km/h, no speed limit or free-flow speed ({band})"),
    }
}
