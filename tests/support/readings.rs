//! Readings as sensors send them.

use serde_json::{Value, json};
use traffic_store::test_util::minute;

/// `t0 + minutes` (`traffic_store::test_util::t0`), RFC 3339.
pub fn at(minutes: i64) -> String {
    minute(minutes).to_rfc3339()
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
