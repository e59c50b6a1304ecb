//! Detector-health flags that need the sensor's history: `gap`, `stuck`, `card_off`,
//! `sudden_speed_drop`.

use chrono::TimeDelta;

use crate::classification::Flag;
use crate::reading::Reading;

use super::confidence::Assessment;
use super::config::RulesConfig;
use super::site::Clock;

/// The usable history: same sensor and lane, strictly earlier, oldest first, one reading per
/// timestamp (the first given wins).
pub(crate) fn earlier<'a>(reading: &Reading, history: &'a [Reading]) -> Vec<&'a Reading> {
    let mut earlier: Vec<&Reading> = history
        .iter()
        .filter(|r| {
            r.sensor_id() == reading.sensor_id()
                && r.lane() == reading.lane()
                && r.observed_at() < reading.observed_at()
        })
        .collect();
    earlier.sort_by_key(|r| r.observed_at()); // stable: the first given stays first
    earlier.dedup_by_key(|r| r.observed_at());
    earlier
}

/// History flags for `reading`, each with its reason and confidence drop. `clock` gives the
/// local time of the daytime window.
pub(crate) fn flags(
    reading: &Reading,
    history: &[Reading],
    config: &RulesConfig,
    clock: Clock,
    notes: &mut Assessment,
) -> Vec<Flag> {
    let earlier = earlier(reading, history);
    let checks: [(Flag, Option<String>, f64); 4] = [
        (
            Flag::Gap,
            gap(reading, &earlier, config),
            config.penalty_gap,
        ),
        (
            Flag::Stuck,
            stuck(reading, &earlier, config),
            config.penalty_stuck,
        ),
        (
            Flag::CardOff,
            card_off(reading, &earlier, config, clock),
            config.penalty_card_off,
        ),
        (
            Flag::SuddenSpeedDrop,
            sudden_speed_drop(reading, &earlier, config),
            config.penalty_sudden_speed_drop,
        ),
    ];
    let mut flags = Vec::new();
    for (flag, finding, penalty) in checks {
        if let Some(reason) = finding {
            flags.push(flag);
            notes.drop(penalty, reason);
        }
    }
    flags
}

/// Seconds from `before` to `after` (both readings' interval ends).
fn seconds_between(before: &Reading, after: &Reading) -> f64 {
    (after.observed_at() - before.observed_at()).num_milliseconds() as f64 / 1000.0
}

/// True when more than interval × (1 + tolerance) separates `before` from `after`.
fn is_gap(before: &Reading, after: &Reading, config: &RulesConfig) -> bool {
    let interval = f64::from(after.interval_s().max(1));
    seconds_between(before, after) > interval * (1.0 + config.gap_tolerance.max(0.0))
}

fn gap(reading: &Reading, earlier: &[&Reading], config: &RulesConfig) -> Option<String> {
    let previous = earlier.last()?;
    if !is_gap(previous, reading, config) {
        return None;
    }
    let elapsed = seconds_between(previous, reading);
    let interval = f64::from(reading.interval_s().max(1));
    let missing = ((elapsed / interval).round() - 1.0).max(1.0);
    Some(format!(
        "gap: {elapsed:.0} s since the previous reading > {:.2} × {} s interval: ≈ {missing:.0} interval(s) missing",
        1.0 + config.gap_tolerance.max(0.0),
        reading.interval_s()
    ))
}

/// The values a stuck detector repeats.
fn values(r: &Reading) -> (u32, Option<f64>, Option<f64>) {
    (r.vehicle_count(), r.avg_speed_kmh(), r.occupancy_pct())
}

fn stuck(reading: &Reading, earlier: &[&Reading], config: &RulesConfig) -> Option<String> {
    let nonzero = reading.vehicle_count() > 0 || reading.occupancy_pct().is_some_and(|o| o > 0.0);
    if !nonzero {
        return None;
    }
    let repeats = usize::try_from(config.stuck_repeats.max(2)).unwrap_or(usize::MAX);
    let same = earlier
        .iter()
        .rev()
        .take_while(|r| values(r) == values(reading))
        .count();
    if same.saturating_add(1) < repeats {
        return None;
    }
    let (count, speed, occupancy) = values(reading);
    let shown = |v: Option<f64>, unit: &str| {
        v.map_or_else(|| "none".to_owned(), |v| format!("{v:.1} {unit}"))
    };
    Some(format!(
        "stuck: the same reading ({count} veh, {}, {}) {} times in a row ≥ {repeats}",
        shown(speed, "km/h"),
        shown(occupancy, "%"),
        same.saturating_add(1)
    ))
}

/// Zero occupancy, or (with no occupancy) zero vehicles.
fn is_silent(r: &Reading) -> bool {
    match r.occupancy_pct() {
        Some(occupancy) => occupancy == 0.0,
        None => r.vehicle_count() == 0,
    }
}

/// True when the reading's interval end falls within the configured local daytime window.
fn in_daytime(r: &Reading, config: &RulesConfig, clock: Clock) -> bool {
    let hour = clock.hour(r.observed_at());
    let (start, end) = (
        u32::from(config.day_start_hour),
        u32::from(config.day_end_hour),
    );
    if start <= end {
        start <= hour && hour < end
    } else {
        hour >= start || hour < end
    }
}

fn card_off(
    reading: &Reading,
    earlier: &[&Reading],
    config: &RulesConfig,
    clock: Clock,
) -> Option<String> {
    if !is_silent(reading) || !in_daytime(reading, config, clock) {
        return None;
    }
    // Walk back through consecutive silent readings (a gap ends the run), adding up the
    // daytime intervals they cover.
    let mut covered_s = u64::from(reading.interval_s());
    let mut after = reading;
    for &before in earlier.iter().rev() {
        if !is_silent(before) || is_gap(before, after, config) {
            break;
        }
        if in_daytime(before, config, clock) {
            covered_s = covered_s.saturating_add(u64::from(before.interval_s()));
        }
        after = before;
    }
    if covered_s < u64::from(config.card_off_min_duration_s) {
        return None;
    }
    Some(format!(
        "card_off: zero occupancy (or no vehicles, without occupancy) for {:.0} min of consecutive daytime \
         readings ≥ {:.0} min (day {:02}–{:02} h, {})",
        covered_s as f64 / 60.0,
        f64::from(config.card_off_min_duration_s) / 60.0,
        config.day_start_hour,
        config.day_end_hour,
        clock.describe(reading.observed_at())
    ))
}

fn sudden_speed_drop(
    reading: &Reading,
    earlier: &[&Reading],
    config: &RulesConfig,
) -> Option<String> {
    let speed = reading
        .avg_speed_kmh()
        .filter(|_| reading.vehicle_count() > 0)?;
    let window = TimeDelta::try_seconds(i64::from(config.speed_drop_window_s))?;
    let since = reading.observed_at().checked_sub_signed(window)?;
    let mut speeds: Vec<f64> = earlier
        .iter()
        .filter(|r| r.observed_at() >= since && r.vehicle_count() > 0)
        .filter_map(|r| r.avg_speed_kmh())
        .collect();
    let needed = usize::try_from(config.speed_drop_min_samples.max(1)).unwrap_or(usize::MAX);
    if speeds.len() < needed {
        return None;
    }
    let median = median(&mut speeds)?;
    let dropped = speed < config.speed_drop_ratio * median;
    if !dropped {
        return None;
    }
    Some(format!(
        "sudden_speed_drop: speed {speed:.1} km/h < {:.0} % of the median {median:.1} km/h of {} readings in the \
         last {:.0} min: possible incident",
        config.speed_drop_ratio * 100.0,
        speeds.len(),
        f64::from(config.speed_drop_window_s) / 60.0
    ))
}

/// The median (mean of the middle two for an even count); `None` for no values.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values.get(mid).copied()
    } else {
        Some((values.get(mid.checked_sub(1)?)? + values.get(mid)?) / 2.0)
    }
}
