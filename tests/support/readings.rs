//! Readings as sensors send them.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

/// A fixed instant well in the past, so readings never trip the future-skew rule.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T07:00:00Z")
        .expect("t0")
        .with_timezone(&Utc)
}

/// `t0 + minutes`, RFC 3339.
pub fn at(minutes: i64) -> String {
    (t0() + TimeDelta::minutes(minutes)).to_rfc3339()
}

/// A valid one-minute reading of `sensor` (lane 1) at `t0 + minutes`; the numbers vary with
/// the minute so that sensors are not "stuck", and stay in free-flow-to-heavy territory.
pub fn reading(sensor: &str, minutes: i64) -> Value {
    let wobble = minutes.rem_euclid(17);
    json!({
        "sensor_id": sensor,
        "observed_at": at(minutes),
        "interval_s": 60,
        "lane": 1,
        "vehicle_count": 10 + wobble,
        "avg_speed_kmh": 70.0 + wobble as f64,
        "occupancy_pct": 6.0 + (wobble as f64) / 4.0,
        "speed_limit_kmh": 100,
    })
}
