#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;

use chrono::{FixedOffset, SecondsFormat};
use proptest::prelude::*;
use serde_json::{Map, json};

use super::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Every field a reading has, in declaration order.
const FIELDS: [&str; 9] = [
    "sensor_id",
    "observed_at",
    "interval_s",
    "lane",
    "vehicle_count",
    "avg_speed_kmh",
    "occupancy_pct",
    "speed_limit_kmh",
    "lanes",
];
/// The fields that hold integers.
const INTEGER_FIELDS: [&str; 5] = [
    "interval_s",
    "lane",
    "vehicle_count",
    "speed_limit_kmh",
    "lanes",
];
/// The fields that hold numbers (integers or not).
const NUMBER_FIELDS: [&str; 2] = ["avg_speed_kmh", "occupancy_pct"];

fn utc(rfc3339: &str) -> DateTime<Utc> {
    parse_timestamp(rfc3339).unwrap()
}

/// The fixed server clock the tests parse against.
fn now() -> DateTime<Utc> {
    utc("2026-11-29T08:15:00Z")
}

/// A minimal valid reading, stamped at [`now`].
fn valid() -> Value {
    json!({
        "sensor_id": "loop-42",
        "observed_at": "2026-11-29T08:15:00Z",
        "vehicle_count": 12,
    })
}

/// [`valid`] with `field` set to `value` (added if absent).
fn with(field: &str, value: Value) -> Value {
    let mut reading = valid();
    reading[field] = value;
    reading
}

/// [`valid`] without `field`.
fn without(field: &str) -> Value {
    let mut reading = valid();
    reading.as_object_mut().unwrap().remove(field);
    reading
}

/// Parses through the wire type and [`Reading::parse`] against the fixed clock.
fn parse(value: Value) -> Result<Reading, ReadingError> {
    let wire: ReadingWire = serde_json::from_value(value).unwrap();
    Reading::parse(wire, now())
}

/// [`valid`] with `field` set to `value`, which must be accepted.
fn accept(field: &str, value: Value) -> Reading {
    let payload = with(field, value);
    parse(payload.clone()).unwrap_or_else(|e| panic!("{payload} should be accepted: {e}"))
}

fn errors_of(value: Value) -> Vec<FieldError> {
    match parse(value.clone()) {
        Ok(reading) => panic!("{value} should be rejected, got {reading:?}"),
        Err(e) => {
            assert!(
                !e.errors.is_empty(),
                "an error must name at least one problem"
            );
            e.errors
        }
    }
}

/// Asserts `value` breaks exactly one rule, on `field`, and returns the message.
fn only_error(value: Value, field: &str) -> String {
    let errors = errors_of(value.clone());
    assert_eq!(
        errors.len(),
        1,
        "{value}: expected one error on {field}, got {errors:?}"
    );
    assert_eq!(errors[0].field, field, "{value}: {errors:?}");
    errors[0].message.clone()
}

/// Asserts [`valid`] with `field` set to each of `values` is rejected on that field alone, with a
/// message containing `range`.
fn assert_rejected_with(field: &str, values: impl IntoIterator<Item = Value>, range: &str) {
    for value in values {
        let message = only_error(with(field, value.clone()), field);
        assert!(
            message.contains(range),
            "{field} = {value}: {message:?} should mention {range:?}"
        );
    }
}

/// Asserts that [`valid`] with `field` set to each of `raws` is rejected.
fn assert_each_rejected(field: &str, raws: &[&str]) {
    for raw in raws {
        assert!(
            parse(with(field, json!(raw))).is_err(),
            "{field} {raw:?} should be rejected"
        );
    }
}

/// [`assert_rejected_with`] `needle`, for text values that the message must also quote.
fn assert_rejected_quoting(field: &str, raws: &[&str], needle: &str) {
    for raw in raws {
        let message = only_error(with(field, json!(raw)), field);
        assert!(message.contains(needle), "{raw}: {message}");
        assert!(
            message.contains(raw),
            "{raw}: the message should quote the value: {message}"
        );
    }
}

fn sorted_fields(errors: &[FieldError]) -> Vec<&str> {
    let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    fields.sort_unstable();
    fields
}

fn sensor_id(raw: &str) -> Result<Reading, ReadingError> {
    parse(with("sensor_id", json!(raw)))
}

fn observed_at(raw: &str) -> Result<Reading, ReadingError> {
    parse(with("observed_at", json!(raw)))
}

// ---------------------------------------------------------------------------------------------
// A whole reading
// ---------------------------------------------------------------------------------------------

#[test]
fn sensor_id_observed_at_and_vehicle_count_are_required() {
    for field in ["sensor_id", "observed_at", "vehicle_count"] {
        assert_eq!(only_error(without(field), field), "is required");
        assert_eq!(only_error(with(field, Value::Null), field), "is required");
    }
}

#[test]
fn a_minimal_reading_is_accepted_with_defaults() {
    let reading = parse(valid()).unwrap();
    assert_eq!(reading.sensor_id().as_str(), "loop-42");
    assert_eq!(reading.observed_at(), now());
    assert_eq!(reading.interval_s(), DEFAULT_INTERVAL_S);
    assert_eq!(reading.vehicle_count(), 12);
    assert_eq!(reading.lane(), None);
    assert_eq!(reading.avg_speed_kmh(), None);
    assert_eq!(reading.occupancy_pct(), None);
    assert_eq!(reading.speed_limit_kmh(), None);
    assert_eq!(reading.lanes(), None);
}

#[test]
fn a_full_reading_keeps_every_value() {
    let reading = parse(json!({
        "sensor_id": "A9:north/km12.5_radar-1",
        "observed_at": "2026-11-29T09:14:30.25+01:00",
        "interval_s": 300,
        "lane": 2,
        "vehicle_count": 87,
        "avg_speed_kmh": 93.5,
        "occupancy_pct": 12.25,
        "speed_limit_kmh": 120,
        "lanes": 3,
    }))
    .unwrap();
    assert_eq!(reading.sensor_id().as_str(), "A9:north/km12.5_radar-1");
    assert_eq!(reading.observed_at(), utc("2026-11-29T08:14:30.25Z"));
    assert_eq!(reading.interval_s(), 300);
    assert_eq!(reading.lane(), Some(2));
    assert_eq!(reading.vehicle_count(), 87);
    assert_eq!(reading.avg_speed_kmh(), Some(93.5));
    assert_eq!(reading.occupancy_pct(), Some(12.25));
    assert_eq!(reading.speed_limit_kmh(), Some(120));
    assert_eq!(reading.lanes(), Some(3));
}

#[test]
fn from_json_and_try_from_agree_with_parse() {
    let wire = ReadingWire::from_json(valid()).unwrap();
    assert_eq!(
        Reading::from_json(valid(), now()).unwrap(),
        parse(valid()).unwrap()
    );
    // `TryFrom` uses the real clock; the fixed clock is in the past or close enough.
    let payload = with("observed_at", json!("2024-01-01T00:00:00Z"));
    let expected = parse(payload.clone()).unwrap();
    let wire_2024 = ReadingWire::from_json(payload).unwrap();
    assert_eq!(Reading::try_from(wire_2024).unwrap(), expected);
    assert!(
        Reading::try_from(ReadingWire {
            sensor_id: None,
            ..wire
        })
        .is_err()
    );
}

#[test]
fn serializing_writes_utc_and_omits_absent_optional_fields() {
    let reading = parse(with("observed_at", json!("2026-11-29T09:15:00.5+01:00"))).unwrap();
    let written: Value = serde_json::to_value(&reading).unwrap();
    assert_eq!(
        written,
        json!({
            "sensor_id": "loop-42",
            "observed_at": "2026-11-29T08:15:00.500Z",
            "interval_s": 60,
            "vehicle_count": 12,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// sensor_id
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_sensor_id_is_rejected() {
    assert!(sensor_id("").is_err());
    assert!(SensorId::parse("").is_err());
}

#[test]
fn sensor_id_of_1_or_128_characters_is_accepted() {
    assert_eq!(sensor_id("x").unwrap().sensor_id().as_str(), "x");
    let longest = "a".repeat(128);
    assert_eq!(sensor_id(&longest).unwrap().sensor_id().as_str(), longest);
}

#[test]
fn sensor_id_of_129_characters_is_rejected() {
    let message = only_error(with("sensor_id", json!("a".repeat(129))), "sensor_id");
    assert!(message.contains("1 to 128 characters"), "{message}");
}

#[test]
fn sensor_id_with_a_space_is_rejected() {
    assert_each_rejected(
        "sensor_id",
        &[
            " ",
            "loop 42",
            " loop-42",
            "loop-42 ",
            "loop\t42",
            "loop-42\n",
        ],
    );
}

#[test]
fn sensor_id_with_unicode_is_rejected() {
    assert_each_rejected(
        "sensor_id",
        &[
            "capteur-é",
            "ü",
            "séns",
            "传感器",
            "loop-42\u{200b}",
            "ｌｏｏｐ",
            "loop\u{0}42",
        ],
    );
    // 64 two-byte characters: 128 bytes, but not allowed characters.
    assert!(sensor_id(&"é".repeat(64)).is_err());
}

#[test]
fn sensor_id_accepts_letters_digits_and_each_allowed_punctuation_character() {
    for raw in [
        "abcXYZ",
        "0123456789",
        "a.b",
        "a_b",
        "a:b",
        "a/b",
        "a-b",
        ".",
        "_",
        ":",
        "/",
        "-",
    ] {
        assert_eq!(sensor_id(raw).unwrap().sensor_id().as_str(), raw);
    }
    let every_allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-";
    assert_eq!(
        sensor_id(every_allowed).unwrap().sensor_id().as_str(),
        every_allowed
    );
}

#[test]
fn sensor_id_with_other_punctuation_is_rejected() {
    for c in "!\"#$%&'()*+,;<=>?@[\\]^`{|}~".chars() {
        let raw = format!("loop{c}42");
        assert!(sensor_id(&raw).is_err(), "{raw:?} should be rejected");
    }
}

#[test]
fn sensor_id_that_is_not_a_string_is_rejected() {
    for value in [
        json!(42),
        json!(true),
        json!(["loop-42"]),
        json!({"id": "loop-42"}),
    ] {
        let message = only_error(with("sensor_id", value.clone()), "sensor_id");
        assert!(
            message.starts_with("must be a string"),
            "{value}: {message}"
        );
    }
}

#[test]
fn sensor_id_deserializes_only_when_valid() {
    let id: SensorId = serde_json::from_str(r#""loop-42""#).unwrap();
    assert_eq!(id.as_str(), "loop-42");
    assert_eq!(id.to_string(), "loop-42");
    assert_eq!(serde_json::to_string(&id).unwrap(), r#""loop-42""#);
    let error = serde_json::from_str::<SensorId>(r#""loop 42""#)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("sensor_id must be 1 to 128 characters"),
        "{error}"
    );
    assert!(serde_json::from_str::<SensorId>(r#""""#).is_err());
    assert!(serde_json::from_str::<SensorId>("42").is_err());
}

// ---------------------------------------------------------------------------------------------
// observed_at
// ---------------------------------------------------------------------------------------------

#[test]
fn observed_at_with_an_offset_is_stored_as_utc() {
    let cases = [
        ("2026-11-29T09:15:00+01:00", "2026-11-29T08:15:00Z"),
        ("2026-11-29T02:45:00-05:30", "2026-11-29T08:15:00Z"),
        ("2026-11-29T08:15:00+00:00", "2026-11-29T08:15:00Z"),
        ("2026-11-29T08:15:00-00:00", "2026-11-29T08:15:00Z"),
        ("2026-11-28T08:00:00-23:59", "2026-11-29T07:59:00Z"),
        ("2026-11-29T08:15:00z", "2026-11-29T08:15:00Z"),
        ("2026-11-30T00:00:00+23:00", "2026-11-29T01:00:00Z"),
    ];
    for (raw, stored) in cases {
        let at = observed_at(raw).unwrap().observed_at();
        assert_eq!(at, utc(stored), "{raw}");
        assert_eq!(
            at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            stored,
            "{raw}"
        );
    }
}

#[test]
fn observed_at_keeps_microseconds_and_truncates_finer_digits() {
    let cases = [
        ("2026-11-29T08:00:00.123456Z", "2026-11-29T08:00:00.123456Z"),
        (
            "2026-11-29T08:00:00.123456789Z",
            "2026-11-29T08:00:00.123456Z",
        ),
        (
            "2026-11-29T08:00:00.9999999Z",
            "2026-11-29T08:00:00.999999Z",
        ),
        ("2026-11-29T08:00:00.0000009Z", "2026-11-29T08:00:00Z"),
        (
            "2026-11-29T09:00:00.1234567+01:00",
            "2026-11-29T08:00:00.123456Z",
        ),
        ("1970-01-01T00:00:00.0000009Z", "1970-01-01T00:00:00Z"),
    ];
    for (raw, stored) in cases {
        assert_eq!(
            observed_at(raw).unwrap().observed_at(),
            utc(stored),
            "{raw}"
        );
    }
}

#[test]
fn observed_at_without_an_offset_is_rejected() {
    let raws = [
        "2026-11-29T08:15:00",
        "2026-11-29T08:15:00.5",
        "2026-11-29 08:15:00",
    ];
    assert_rejected_quoting("observed_at", &raws, "RFC 3339");
}

#[test]
fn observed_at_that_is_not_an_rfc3339_timestamp_is_rejected() {
    assert_each_rejected(
        "observed_at",
        &[
            "",
            "now",
            "2026-11-29",
            "08:15:00Z",
            "2026-11-29T08:15Z",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-29T24:00:01Z",
            "2026-11-29T08:15:00+1:00",
            "2026-11-29T08:15:00+0100",
            "29/11/2026 08:15:00Z",
            "1764404100",
        ],
    );
}

#[test]
fn observed_at_that_is_not_a_string_is_rejected() {
    let values = [
        json!(1_764_404_100),
        json!(true),
        json!(["2026-11-29T08:15:00Z"]),
        json!({}),
    ];
    assert_rejected_with("observed_at", values, "RFC 3339");
}

#[test]
fn observed_at_exactly_5_minutes_ahead_is_accepted() {
    assert_eq!(
        observed_at("2026-11-29T08:20:00Z").unwrap().observed_at(),
        now() + MAX_FUTURE_SKEW
    );
    assert!(observed_at("2026-11-29T09:20:00+01:00").is_ok());
}

#[test]
fn observed_at_more_than_5_minutes_ahead_is_rejected() {
    let message = only_error(
        with("observed_at", json!("2026-11-29T08:20:01Z")),
        "observed_at",
    );
    assert!(message.contains("301.000 s ahead"), "{message}");
    assert!(message.contains("at most 300 s"), "{message}");
    assert!(observed_at("2026-11-29T08:20:00.000001Z").is_err());
    // The offset is applied before comparing: 08:20 at -01:00 is 09:20 UTC.
    assert!(observed_at("2026-11-29T08:20:00-01:00").is_err());
    assert!(observed_at("9999-12-31T23:59:59Z").is_err());
}

#[test]
fn observed_at_from_1970_on_is_accepted() {
    for raw in [
        "1970-01-01T00:00:00Z",
        "1970-01-01T01:00:00+01:00",
        "1999-12-31T23:59:59.999999Z",
    ] {
        assert_eq!(observed_at(raw).unwrap().observed_at(), utc(raw), "{raw}");
    }
}

#[test]
fn observed_at_before_1970_is_rejected() {
    let raws = [
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1900-01-01T00:00:00Z",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:59:59+01:00",
    ];
    assert_rejected_with(
        "observed_at",
        raws.map(|raw| json!(raw)),
        "before 1970-01-01T00:00:00Z",
    );
}

#[test]
fn stored_rows_from_before_1970_are_still_read() {
    // The bound is a rule for new readings, like the future skew: older rows stay readable.
    let reading = Reading::from_stored(
        "loop-42".into(),
        utc("0001-01-01T00:00:00Z"),
        60,
        None,
        3,
        None,
        None,
        None,
        None,
    );
    assert!(reading.is_ok(), "{reading:?}");
}

#[test]
fn observed_at_with_second_60_is_rejected_whatever_the_minute_or_offset() {
    // A real leap second, a :60 that is none, one with a fraction and one with an offset:
    // each would otherwise be stored as the next minute and collide with that reading.
    let raws = [
        "2016-12-31T23:59:60Z",
        "2026-11-29T08:10:60Z",
        "2026-11-29T08:10:60.5Z",
        "2026-11-29T09:10:60+01:00",
        "2026-11-29T08:10:60.999999999Z",
    ];
    assert_rejected_quoting("observed_at", &raws, "second 60");
}

#[test]
fn every_accepted_time_is_the_instant_it_names_to_the_microsecond() {
    // What the parser keeps is what the store keys on: the next second, minute or
    // microsecond of an accepted text must never be the same value.
    for (raw, next) in [
        ("2026-11-29T08:10:59Z", "2026-11-29T08:11:00Z"),
        ("2026-11-29T08:10:59.999999Z", "2026-11-29T08:11:00Z"),
        ("2016-12-31T23:59:59Z", "2017-01-01T00:00:00Z"),
        ("2026-11-29T08:10:00.000001Z", "2026-11-29T08:10:00.000002Z"),
    ] {
        let at = parse_timestamp(raw).unwrap();
        assert_eq!(at, utc(raw), "{raw}");
        assert!(at < parse_timestamp(next).unwrap(), "{raw} vs {next}");
    }
}

// ---------------------------------------------------------------------------------------------
// The numeric fields: interval_s, lane, vehicle_count, avg_speed_kmh, occupancy_pct,
// speed_limit_kmh, lanes
// ---------------------------------------------------------------------------------------------

/// Asserts that `field`, absent from [`valid`] and set to null, reads as `absent` through `get`.
fn assert_absent_or_null_reads_as<T: PartialEq + Debug>(
    field: &str,
    get: fn(&Reading) -> T,
    absent: T,
) {
    assert_eq!(get(&parse(valid()).unwrap()), absent, "{field} absent");
    assert_eq!(get(&accept(field, Value::Null)), absent, "{field} null");
}

/// Asserts that [`valid`] with `field` set to each value is accepted, and reads as the value's
/// pair through `get`.
fn assert_accepted<T: PartialEq + Debug>(
    field: &str,
    get: fn(&Reading) -> T,
    cases: impl IntoIterator<Item = (Value, T)>,
) {
    for (value, read) in cases {
        assert_eq!(
            get(&accept(field, value.clone())),
            read,
            "{field} = {value}"
        );
    }
}

#[test]
fn interval_defaults_to_60_seconds_and_the_other_optional_fields_to_none() {
    assert_absent_or_null_reads_as("interval_s", Reading::interval_s, 60);
    assert_absent_or_null_reads_as("lane", Reading::lane, None);
    assert_absent_or_null_reads_as("avg_speed_kmh", Reading::avg_speed_kmh, None);
    assert_absent_or_null_reads_as("occupancy_pct", Reading::occupancy_pct, None);
    assert_absent_or_null_reads_as("speed_limit_kmh", Reading::speed_limit_kmh, None);
    assert_absent_or_null_reads_as("lanes", Reading::lanes, None);
}

#[test]
fn each_numeric_field_accepts_the_bounds_of_its_range() {
    assert_accepted(
        "interval_s",
        Reading::interval_s,
        [(json!(1), 1), (json!(3600), 3600)],
    );
    assert_accepted(
        "lane",
        Reading::lane,
        [(json!(0), Some(0)), (json!(32), Some(32))],
    );
    let counts = [(json!(0), 0), (json!(100_000), 100_000)];
    assert_accepted("vehicle_count", Reading::vehicle_count, counts);
    // Written as floats or as integers.
    let speeds = [
        (json!(0.0), Some(0.0)),
        (json!(400.0), Some(400.0)),
        (json!(0), Some(0.0)),
        (json!(400), Some(400.0)),
    ];
    assert_accepted("avg_speed_kmh", Reading::avg_speed_kmh, speeds);
    let occupancies = [
        (json!(0.0), Some(0.0)),
        (json!(100.0), Some(100.0)),
        (json!(100), Some(100.0)),
    ];
    assert_accepted("occupancy_pct", Reading::occupancy_pct, occupancies);
    let limits = [(json!(5), Some(5)), (json!(200), Some(200))];
    assert_accepted("speed_limit_kmh", Reading::speed_limit_kmh, limits);
    assert_accepted(
        "lanes",
        Reading::lanes,
        [(json!(1), Some(1)), (json!(32), Some(32))],
    );
}

#[test]
fn each_numeric_field_rejects_values_outside_its_range() {
    let intervals = [json!(0), json!(3601), json!(-1)];
    assert_rejected_with("interval_s", intervals, "from 1 to 3600 seconds");
    assert_rejected_with("lane", [json!(-1), json!(33), json!(256)], "from 0 to 32");
    let counts = [json!(-1), json!(100_001)];
    assert_rejected_with("vehicle_count", counts, "from 0 to 100000 vehicles");
    let speeds = [
        json!(0.0_f64.next_down()),
        json!(400.0_f64.next_up()),
        json!(-1),
        json!(401),
    ];
    assert_rejected_with("avg_speed_kmh", speeds, "from 0 to 400 km/h");
    let occupancies = [
        json!(0.0_f64.next_down()),
        json!(-0.5),
        json!(100.0_f64.next_up()),
        json!(101),
    ];
    assert_rejected_with("occupancy_pct", occupancies, "from 0 to 100 %");
    let limits = [json!(4), json!(201), json!(0), json!(65_536)];
    assert_rejected_with("speed_limit_kmh", limits, "from 5 to 200 km/h");
    assert_rejected_with("lanes", [json!(0), json!(33)], "from 1 to 32 lanes");
}

// ---------------------------------------------------------------------------------------------
// JSON types
// ---------------------------------------------------------------------------------------------

#[test]
fn a_string_for_a_number_is_rejected() {
    for field in INTEGER_FIELDS {
        let message = only_error(with(field, json!("12")), field);
        assert_eq!(message, "must be an integer, got a string", "{field}");
    }
    for field in NUMBER_FIELDS {
        let message = only_error(with(field, json!("12.5")), field);
        assert_eq!(message, "must be a number, got a string", "{field}");
    }
}

#[test]
fn a_float_for_an_integer_field_is_rejected() {
    for field in INTEGER_FIELDS {
        let message = only_error(with(field, json!(1.5)), field);
        assert!(message.contains("whole number"), "{field}: {message}");
    }
    assert!(parse(with("vehicle_count", json!(-0.5))).is_err());
}

#[test]
fn a_boolean_for_a_number_is_rejected() {
    for field in INTEGER_FIELDS.into_iter().chain(NUMBER_FIELDS) {
        let message = only_error(with(field, json!(true)), field);
        assert!(message.ends_with("got a boolean"), "{field}: {message}");
    }
}

#[test]
fn an_array_for_a_number_is_rejected() {
    for field in INTEGER_FIELDS.into_iter().chain(NUMBER_FIELDS) {
        let message = only_error(with(field, json!([1])), field);
        assert!(message.ends_with("got an array"), "{field}: {message}");
    }
}

#[test]
fn an_object_for_a_number_is_rejected() {
    for field in INTEGER_FIELDS.into_iter().chain(NUMBER_FIELDS) {
        let message = only_error(with(field, json!({"value": 1})), field);
        assert!(message.ends_with("got an object"), "{field}: {message}");
    }
}

#[test]
fn huge_numbers_are_rejected_without_panicking() {
    let huge = [
        json!(1e30),
        json!(-1e30),
        json!(u64::MAX),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(f64::MAX),
    ];
    for field in INTEGER_FIELDS.into_iter().chain(NUMBER_FIELDS) {
        for value in huge.clone() {
            only_error(with(field, value), field);
        }
    }
    let message = only_error(with("vehicle_count", json!(u64::MAX)), "vehicle_count");
    assert!(message.contains("from 0 to 100000"), "{message}");
}

#[test]
fn numbers_beyond_f64_in_the_json_text_are_rejected_without_panicking() {
    let text =
        r#"{"sensor_id":"loop-42","observed_at":"2026-11-29T08:15:00Z","vehicle_count":1e400}"#;
    assert!(serde_json::from_str::<Reading>(text).is_err());
    let text = r#"{"sensor_id":"loop-42","observed_at":"2026-11-29T08:15:00Z","vehicle_count":99999999999999999999999999}"#;
    assert!(serde_json::from_str::<Reading>(text).is_err());
}

// ---------------------------------------------------------------------------------------------
// Unknown fields and non-objects
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unknown_field_is_rejected_by_name() {
    let message = only_error(with("colour", json!("red")), "colour");
    assert!(message.contains("not a field of a reading"), "{message}");
    // Even a null unknown field is reported.
    only_error(with("colour", Value::Null), "colour");
}

/// Parses JSON text the way ingest does, straight from the bytes.
fn from_text(text: &str) -> Result<Reading, ReadingError> {
    let input: ReadingInput = serde_json::from_str(text).unwrap();
    Reading::from_input(input, now())
}

#[test]
fn a_field_sent_twice_is_rejected_by_name_whichever_copy_is_valid() {
    for text in [
        r#"{"sensor_id":"loop-42","observed_at":"2026-11-29T08:15:00Z","vehicle_count":5,"vehicle_count":50}"#,
        r#"{"sensor_id":"loop-42","observed_at":"2026-11-29T08:15:00Z","vehicle_count":5,"vehicle_count":-1}"#,
        r#"{"sensor_id":"loop-42","observed_at":"2026-11-29T08:15:00Z","vehicle_count":5,"vehicle_count":null}"#,
    ] {
        let errors = from_text(text).unwrap_err().errors;
        assert!(
            errors
                .iter()
                .any(|e| e.field == "vehicle_count" && e.message.contains("more than once")),
            "{text}: {errors:?}"
        );
    }
}

#[test]
fn each_repeated_field_is_named_once() {
    let text = r#"{"sensor_id":"a","sensor_id":"a","observed_at":"2026-11-29T08:15:00Z","lane":1,"lane":1,"lane":2,"vehicle_count":5,"x":1,"x":2}"#;
    let errors = from_text(text).unwrap_err().errors;
    let repeated: Vec<&str> = errors
        .iter()
        .filter(|e| e.message.contains("more than once"))
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(repeated, ["sensor_id", "lane", "x"]);
}

#[test]
fn text_and_value_parsing_agree_on_readings_without_repeats() {
    let text = r#"{"sensor_id":"loop-42","observed_at":"2026-11-29T08:15:00Z","vehicle_count":5,"lane":null,"occupancy_pct":3.5}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        from_text(text).unwrap(),
        Reading::from_json(value, now()).unwrap()
    );
}

#[test]
fn text_that_is_not_an_object_is_rejected_as_a_whole() {
    for (text, kind) in [
        ("[1, {\"a\": 2}]", "an array"),
        ("null", "null"),
        ("true", "a boolean"),
        ("-3", "a number"),
        ("1.5", "a number"),
        ("\"x\"", "a string"),
    ] {
        let errors = from_text(text).unwrap_err().errors;
        assert_eq!(errors.len(), 1, "{text}");
        assert_eq!(errors[0].field, "", "{text}");
        assert!(errors[0].message.ends_with(kind), "{text}: {errors:?}");
    }
}

#[test]
fn field_names_are_case_sensitive() {
    let errors = errors_of(json!({
        "Sensor_Id": "loop-42",
        "observed_at": "2026-11-29T08:15:00Z",
        "vehicle_count": 12,
    }));
    assert_eq!(sorted_fields(&errors), ["Sensor_Id", "sensor_id"]);
}

#[test]
fn every_unknown_field_is_reported() {
    let mut payload = valid();
    payload["speed"] = json!(80);
    payload["unknown"] = json!({});
    payload["Lane"] = json!(1);
    assert_eq!(
        sorted_fields(&errors_of(payload)),
        ["Lane", "speed", "unknown"]
    );
}

#[test]
fn a_non_object_is_rejected_as_a_whole() {
    let cases = [
        (json!([valid()]), "an array"),
        (json!("loop-42"), "a string"),
        (Value::Null, "null"),
        (json!(12), "a number"),
        (json!(true), "a boolean"),
    ];
    for (value, kind) in cases {
        let error = Reading::from_json(value.clone(), now()).unwrap_err();
        let expected = FieldError {
            field: String::new(),
            message: format!("a reading must be a JSON object, not {kind}"),
        };
        assert_eq!(error.errors, [expected], "{value}");
        assert_eq!(
            error.to_string(),
            format!("invalid reading: a reading must be a JSON object, not {kind}")
        );
    }
}

#[test]
fn an_empty_object_reports_every_required_field() {
    let errors = errors_of(json!({}));
    assert_eq!(
        sorted_fields(&errors),
        ["observed_at", "sensor_id", "vehicle_count"]
    );
    assert!(errors.iter().all(|e| e.message == "is required"));
}

// ---------------------------------------------------------------------------------------------
// Every problem at once
// ---------------------------------------------------------------------------------------------

#[test]
fn three_bad_fields_yield_three_errors_naming_them() {
    let errors = errors_of(json!({
        "sensor_id": "loop 42",
        "observed_at": "2026-11-29T08:15:00Z",
        "vehicle_count": 12,
        "lane": 33,
        "occupancy_pct": 101,
    }));
    assert_eq!(
        sorted_fields(&errors),
        ["lane", "occupancy_pct", "sensor_id"]
    );
}

#[test]
fn every_field_wrong_at_once_is_reported_field_by_field() {
    let errors = errors_of(json!({
        "sensor_id": "",
        "observed_at": "2026-11-29T08:15:00",
        "interval_s": 0,
        "lane": -1,
        "vehicle_count": 1.5,
        "avg_speed_kmh": 401,
        "occupancy_pct": "12",
        "speed_limit_kmh": 201,
        "lanes": 0,
        "extra": 1,
    }));
    let mut expected = FIELDS.to_vec();
    expected.push("extra");
    expected.sort_unstable();
    assert_eq!(sorted_fields(&errors), expected);
}

#[test]
fn range_messages_mention_the_allowed_range() {
    let cases = [
        (
            "interval_s",
            json!(0),
            "must be an integer from 1 to 3600 seconds, got 0",
        ),
        ("lane", json!(33), "must be an integer from 0 to 32, got 33"),
        (
            "vehicle_count",
            json!(100_001),
            "must be an integer from 0 to 100000 vehicles, got 100001",
        ),
        (
            "avg_speed_kmh",
            json!(400.5),
            "must be a number from 0 to 400 km/h, got 400.5",
        ),
        (
            "occupancy_pct",
            json!(-1),
            "must be a number from 0 to 100 %, got -1",
        ),
        (
            "speed_limit_kmh",
            json!(4),
            "must be an integer from 5 to 200 km/h, got 4",
        ),
        (
            "lanes",
            json!(0),
            "must be an integer from 1 to 32 lanes, got 0",
        ),
    ];
    for (field, value, expected) in cases {
        assert_eq!(only_error(with(field, value), field), expected);
    }
}

#[test]
fn display_names_every_offending_field() {
    let error = parse(with("lane", json!(33))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid reading: lane must be an integer from 0 to 32, got 33"
    );

    let mut payload = without("vehicle_count");
    payload["lane"] = json!(33);
    payload["colour"] = json!("red");
    assert_eq!(
        parse(payload).unwrap_err().to_string(),
        "invalid reading: colour is not a field of a reading; remove it (field names are case-sensitive); \
         lane must be an integer from 0 to 32, got 33; vehicle_count is required"
    );
}

// ---------------------------------------------------------------------------------------------
// Deserialize
// ---------------------------------------------------------------------------------------------

#[test]
fn deserialize_accepts_a_valid_reading() {
    let text = r#"{"sensor_id":"loop-42","observed_at":"2024-05-01T10:00:00+02:00","vehicle_count":7,"lane":1}"#;
    let reading: Reading = serde_json::from_str(text).unwrap();
    assert_eq!(reading.observed_at(), utc("2024-05-01T08:00:00Z"));
    assert_eq!(reading.vehicle_count(), 7);
    assert_eq!(reading.lane(), Some(1));
    assert_eq!(reading.interval_s(), 60);
}

#[test]
fn deserialize_rejects_an_invalid_reading_naming_the_fields() {
    let text = r#"{"sensor_id":"loop 42","observed_at":"2024-05-01T10:00:00Z","vehicle_count":7,"lanes":0}"#;
    let error = serde_json::from_str::<Reading>(text)
        .unwrap_err()
        .to_string();
    assert!(error.contains("sensor_id must be"), "{error}");
    assert!(
        error.contains("lanes must be an integer from 1 to 32"),
        "{error}"
    );
}

#[test]
fn deserialize_rejects_unknown_fields_and_non_objects() {
    let text = r#"{"sensor_id":"loop-42","observed_at":"2024-05-01T10:00:00Z","vehicle_count":7,"speed":1}"#;
    let error = serde_json::from_str::<Reading>(text)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("speed is not a field of a reading"),
        "{error}"
    );
    for text in ["[]", r#""loop-42""#, "null", "1", "true"] {
        assert!(serde_json::from_str::<Reading>(text).is_err(), "{text}");
    }
}

#[test]
fn deserialize_rejects_a_reading_from_the_far_future() {
    let text = r#"{"sensor_id":"loop-42","observed_at":"2999-01-01T00:00:00Z","vehicle_count":7}"#;
    let error = serde_json::from_str::<Reading>(text)
        .unwrap_err()
        .to_string();
    assert!(error.contains("observed_at is"), "{error}");
    assert!(error.contains("ahead of the server clock"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// from_stored
// ---------------------------------------------------------------------------------------------

#[test]
fn stored_rows_skip_the_future_skew_rule_but_not_the_ranges() {
    let far_future = utc("2999-01-01T00:00:00Z");
    let stored = Reading::from_stored(
        "loop-42".into(),
        far_future,
        60,
        Some(1),
        7,
        Some(50.0),
        None,
        Some(80),
        Some(2),
    );
    assert_eq!(stored.unwrap().observed_at(), far_future);

    let broken = Reading::from_stored(
        "loop 42".into(),
        far_future,
        0,
        Some(i64::MIN),
        i64::MAX,
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(-5),
        Some(300),
    )
    .unwrap_err();
    let mut expected = FIELDS.to_vec();
    expected.retain(|f| *f != "observed_at");
    expected.sort_unstable();
    assert_eq!(sorted_fields(&broken.errors), expected);
}

// ---------------------------------------------------------------------------------------------
// JSON Schema
// ---------------------------------------------------------------------------------------------

fn schema() -> Value {
    serde_json::to_value(reading_schema()).unwrap()
}

#[test]
fn schema_is_a_closed_object() {
    let schema = schema();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    let properties = schema["properties"].as_object().unwrap();
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
}

#[test]
fn schema_requires_exactly_sensor_id_observed_at_and_vehicle_count() {
    let schema = schema();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["sensor_id", "observed_at", "vehicle_count"]);
    assert!(!required.contains(&"interval_s"));
    assert_eq!(schema["properties"]["interval_s"]["default"], 60);
}

#[test]
fn schema_publishes_every_numeric_range() {
    let schema = schema();
    let ranges = [
        ("interval_s", 1.0, 3600.0),
        ("lane", 0.0, 32.0),
        ("vehicle_count", 0.0, 100_000.0),
        ("avg_speed_kmh", 0.0, 400.0),
        ("occupancy_pct", 0.0, 100.0),
        ("speed_limit_kmh", 5.0, 200.0),
        ("lanes", 1.0, 32.0),
    ];
    for (field, min, max) in ranges {
        let property = &schema["properties"][field];
        assert_eq!(
            property["minimum"].as_f64(),
            Some(min),
            "{field}: {property}"
        );
        assert_eq!(
            property["maximum"].as_f64(),
            Some(max),
            "{field}: {property}"
        );
    }
    for field in INTEGER_FIELDS {
        let kind = &schema["properties"][field]["type"];
        assert!(
            kind == "integer"
                || kind
                    .as_array()
                    .is_some_and(|t| t.contains(&json!("integer"))),
            "{field}"
        );
    }
}

#[test]
fn schema_publishes_the_sensor_id_and_timestamp_rules() {
    let schema = schema();
    let sensor_id = &schema["properties"]["sensor_id"];
    assert_eq!(sensor_id["type"], "string");
    assert_eq!(sensor_id["minLength"], 1);
    assert_eq!(sensor_id["maxLength"], 128);
    assert_eq!(sensor_id["pattern"], "^[A-Za-z0-9._:/-]+$");
    let observed_at = &schema["properties"]["observed_at"];
    assert_eq!(observed_at["type"], "string");
    assert_eq!(observed_at["format"], "date-time");
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// A clock far enough ahead that every generated timestamp passes the future-skew rule.
fn far_future() -> DateTime<Utc> {
    utc("9000-01-01T00:00:00Z")
}

/// `1970-01-01` (the earliest accepted) to `2025-01-01` in microseconds since the epoch:
/// never after the real clock (which `Deserialize` uses).
const EARLIEST_MICROS: i64 = 0;
const LATEST_MICROS: i64 = 1_735_689_600_000_000;

/// An optional value: absent (`None`), explicitly `null`, or a value from `values`.
fn optional(values: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Option<Value>> {
    prop_oneof![Just(None), Just(Some(Value::Null)), values.prop_map(Some)].boxed()
}

fn integer_in(min: i64, max: i64) -> BoxedStrategy<Value> {
    prop_oneof![Just(min), Just(max), min..=max]
        .prop_map(Value::from)
        .boxed()
}

fn number_in(min: f64, max: f64) -> BoxedStrategy<Value> {
    prop_oneof![
        Just(min),
        Just(max),
        min..=max,
        (min as i64..=max as i64).prop_map(|i| i as f64)
    ]
    .prop_map(Value::from)
    .boxed()
}

/// An RFC 3339 timestamp with any offset and up to nanosecond digits, and the UTC instant
/// it must be stored as.
fn timestamp() -> impl Strategy<Value = (String, DateTime<Utc>)> {
    let offset_minutes = prop_oneof![Just(0), -(23 * 60 + 59)..=(23 * 60 + 59)];
    let format = prop::sample::select(vec![SecondsFormat::AutoSi, SecondsFormat::Nanos]);
    (
        EARLIEST_MICROS..=LATEST_MICROS,
        0..1000_i64,
        offset_minutes,
        format,
        any::<bool>(),
    )
        .prop_map(|(micros, sub_micro_nanos, offset_minutes, format, use_z)| {
            let stored = DateTime::from_timestamp_micros(micros).unwrap();
            let sent = stored + TimeDelta::nanoseconds(sub_micro_nanos);
            let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
            (
                sent.with_timezone(&offset).to_rfc3339_opts(format, use_z),
                stored,
            )
        })
}

prop_compose! {
    fn valid_payload()(
        sensor_id in "[A-Za-z0-9._:/-]{1,128}",
        (observed_at, stored_at) in timestamp(),
        interval_s in optional(integer_in(1, 3600)),
        lane in optional(integer_in(0, 32)),
        vehicle_count in integer_in(0, 100_000),
        avg_speed_kmh in optional(number_in(0.0, 400.0)),
        occupancy_pct in optional(number_in(0.0, 100.0)),
        speed_limit_kmh in optional(integer_in(5, 200)),
        lanes in optional(integer_in(1, 32)),
    ) -> (Value, DateTime<Utc>) {
        let mut payload = Map::new();
        payload.insert("sensor_id".into(), sensor_id.into());
        payload.insert("observed_at".into(), observed_at.into());
        payload.insert("vehicle_count".into(), vehicle_count);
        let optional = [
            ("interval_s", interval_s),
            ("lane", lane),
            ("avg_speed_kmh", avg_speed_kmh),
            ("occupancy_pct", occupancy_pct),
            ("speed_limit_kmh", speed_limit_kmh),
            ("lanes", lanes),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                payload.insert(field.into(), value);
            }
        }
        (Value::Object(payload), stored_at)
    }
}

/// Any JSON value, nested a little, with numbers and strings near the interesting edges.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-2_i64..200_000).prop_map(Value::from),
        (-10.0..500.0_f64).prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        "[A-Za-z0-9._:/ -]{0,140}".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})?"
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn any_object() -> impl Strategy<Value = Value> {
    let key = prop_oneof![3 => prop::sample::select(FIELDS.to_vec()).prop_map(String::from), 1 => ".{0,12}"];
    prop::collection::btree_map(key, any_json(), 0..12)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_valid_reading_round_trips_through_json((payload, stored_at) in valid_payload()) {
        let reading = Reading::from_json(payload.clone(), far_future())
            .map_err(|e| TestCaseError::fail(format!("{payload} should be accepted: {e}")))?;
        prop_assert_eq!(reading.observed_at(), stored_at);
        prop_assert_eq!(reading.sensor_id().as_str(), payload["sensor_id"].as_str().unwrap());

        let written = serde_json::to_string(&reading).unwrap();
        let read_back: Reading = serde_json::from_str(&written)
            .map_err(|e| TestCaseError::fail(format!("{written} should deserialize: {e}")))?;
        prop_assert_eq!(&read_back, &reading);
        prop_assert_eq!(serde_json::to_string(&read_back).unwrap(), written);
    }

    #[test]
    fn parsing_any_json_object_never_panics(value in any_object()) {
        let keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        match Reading::from_json(value.clone(), now()) {
            Ok(reading) => {
                // Whatever is accepted survives a round trip.
                let written = serde_json::to_value(&reading).unwrap();
                prop_assert_eq!(Reading::from_json(written, now()).unwrap(), reading);
            }
            Err(error) => {
                prop_assert!(!error.errors.is_empty());
                for e in &error.errors {
                    // Every error names a field that was sent or one that is required.
                    let named = keys.contains(&e.field)
                        || ["sensor_id", "observed_at", "vehicle_count"].contains(&e.field.as_str());
                    prop_assert!(named, "{:?} names no field of {}", e, value);
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
        let _ = serde_json::from_str::<Reading>(&value.to_string());
    }

    #[test]
    fn parsing_any_json_value_never_panics(value in any_json()) {
        let is_object = value.is_object();
        if let Err(error) = Reading::from_json(value, now()) {
            prop_assert!(!error.errors.is_empty());
            if !is_object {
                prop_assert_eq!(error.errors.len(), 1);
                prop_assert_eq!(error.errors[0].field.as_str(), "");
            }
        }
    }
}

#[test]
fn whole_number_floats_are_integers_as_json_schema_says() {
    let reading = parse(with("interval_s", json!(60.0))).unwrap();
    assert_eq!(reading.interval_s(), 60);
    assert_eq!(
        parse(with("vehicle_count", json!(1e3)))
            .unwrap()
            .vehicle_count(),
        1000
    );
    let message = only_error(with("vehicle_count", json!(2.5)), "vehicle_count");
    assert!(message.contains("whole number"), "{message}");
}
