//! What the fuzz targets share: a fixed server clock, so that a crash replays, and the
//! properties every reading the service accepts must have.

use chrono::{DateTime, Utc};
use traffic_model::classification::Classification;
use traffic_model::reading::{EARLIEST_OBSERVED_AT, MAX_FUTURE_SKEW, Reading};

/// The server clock the targets parse against: 2026-05-28T20:26:40Z.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap()
}

/// Asserts that `reading`, accepted at `now`, is within every documented range, and that it
/// comes back unchanged through its JSON form and through the columns the store keeps.
pub fn check_reading(reading: &Reading, now: DateTime<Utc>) {
    let id = reading.sensor_id().as_str();
    assert!((1..=128).contains(&id.len()), "sensor_id length: {id:?}");
    assert!(
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-')),
        "sensor_id characters: {id:?}"
    );
    let at = reading.observed_at();
    assert!(at >= EARLIEST_OBSERVED_AT, "observed_at before 1970: {at}");
    assert!(
        at - now <= MAX_FUTURE_SKEW,
        "observed_at too far ahead: {at}"
    );
    assert_eq!(
        at.timestamp_subsec_nanos() % 1000,
        0,
        "not microseconds: {at}"
    );
    assert!((1..=3600).contains(&reading.interval_s()));
    assert!(reading.lane().is_none_or(|lane| lane <= 32));
    assert!(reading.vehicle_count() <= 100_000);
    assert!(
        reading
            .avg_speed_kmh()
            .is_none_or(|v| v.is_finite() && (0.0..=400.0).contains(&v))
    );
    assert!(
        reading
            .occupancy_pct()
            .is_none_or(|v| v.is_finite() && (0.0..=100.0).contains(&v))
    );
    assert!(
        reading
            .speed_limit_kmh()
            .is_none_or(|v| (5..=200).contains(&v))
    );
    assert!(reading.lanes().is_none_or(|v| (1..=32).contains(&v)));
    assert!(reading.start() < at);

    let text = serde_json::to_vec(reading).unwrap();
    let again = Reading::from_json(serde_json::from_slice(&text).unwrap(), now)
        .unwrap_or_else(|e| panic!("its own JSON is refused: {e}"));
    assert_eq!(&again, reading, "changed through its JSON form");
    let stored = Reading::from_stored(
        id.to_owned(),
        at,
        i64::from(reading.interval_s()),
        reading.lane().map(i64::from),
        i64::from(reading.vehicle_count()),
        reading.avg_speed_kmh(),
        reading.occupancy_pct(),
        reading.speed_limit_kmh().map(i64::from),
        reading.lanes().map(i64::from),
    )
    .unwrap_or_else(|e| panic!("its stored columns are refused: {e}"));
    assert_eq!(&stored, reading, "changed through the stored columns");
}

/// Asserts that a classification's numbers are within their documented ranges.
pub fn check_classification(classification: &Classification) {
    let flow = classification.flow_veh_h_lane;
    assert!(flow.is_finite() && flow >= 0.0, "flow {flow}");
    assert!(
        classification
            .density_veh_km_lane
            .is_none_or(|d| d.is_finite() && d >= 0.0),
        "density {:?}",
        classification.density_veh_km_lane
    );
    let confidence = classification.confidence;
    assert!((0.0..=1.0).contains(&confidence), "confidence {confidence}");
    serde_json::to_vec(classification).unwrap();
}
