//! The sensor reading: the one definition shared by ingest, the classifier and the store.
//!
//! A [`ReadingWire`] is whatever JSON object arrived; [`Reading`] is a reading known to be
//! physically possible. The only way from one to the other is [`Reading::parse`] (or
//! `TryFrom`), which checks every field and reports every problem at once, so a sensor vendor
//! can fix a payload in one round trip.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SubsecRound, TimeDelta, Timelike, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::fields::{
    in_range, in_range_f, integer, json_type_name, narrow, number, push, required, string,
};

/// How far ahead of the server clock a reading may be stamped (sensor clock drift).
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);
/// The earliest `observed_at` accepted, 1970-01-01T00:00:00Z: no archive of detector data
/// predates it, and a year-0 or year-1 stamp is a clock that was never set.
pub const EARLIEST_OBSERVED_AT: DateTime<Utc> = DateTime::UNIX_EPOCH;
/// Counting interval assumed when a sensor does not say (the common loop-detector default).
pub const DEFAULT_INTERVAL_S: u32 = 60;
/// Stored timestamps keep microseconds, the precision both PostgreSQL and our SQLite encoding hold.
const STORED_SUBSEC_DIGITS: u16 = 6;

const SENSOR_ID_MAX_LEN: usize = 128;
const INTERVAL_S: (i64, i64) = (1, 3600);
const LANE: (i64, i64) = (0, 32);
const VEHICLE_COUNT: (i64, i64) = (0, 100_000);
const AVG_SPEED_KMH: (f64, f64) = (0.0, 400.0);
const OCCUPANCY_PCT: (f64, f64) = (0.0, 100.0);
pub(crate) const SPEED_LIMIT_KMH: (i64, i64) = (5, 200);
pub(crate) const LANES: (i64, i64) = (1, 32);

/// A sensor's identifier: 1–128 characters of `A–Z a–z 0–9 . _ : / -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SensorId(String);

impl SensorId {
    const RULE: &'static str =
        "must be 1 to 128 characters, each a letter, a digit or one of . _ : / -";

    /// Parses an identifier, explaining the rule when it is broken.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let allowed =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-');
        if raw.is_empty() || raw.len() > SENSOR_ID_MAX_LEN || !raw.chars().all(allowed) {
            return Err(Self::RULE);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SensorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SensorId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(|rule| serde::de::Error::custom(format!("sensor_id {rule}")))
    }
}

impl JsonSchema for SensorId {
    fn schema_name() -> Cow<'static, str> {
        "SensorId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": SENSOR_ID_MAX_LEN,
            "pattern": "^[A-Za-z0-9._:/-]+$",
            "description": "The sensor's identifier, unique across the network.",
        })
    }
}

/// One sensor reading that is physically possible. Suspicious but possible values are kept:
/// judging them is the classifier's job, not the door's.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Reading",
    description = "One counting interval reported by a traffic sensor (loop detector, radar, camera)."
)]
pub struct Reading {
    sensor_id: SensorId,
    /// End of the counting interval, RFC 3339 with a UTC offset (e.g. `2026-11-29T08:15:00Z`);
    /// at most 5 minutes ahead of the server clock.
    observed_at: DateTime<Utc>,
    /// Length of the counting interval in seconds, 1 to 3600; 60 when absent or null.
    #[serde(default = "default_interval_s")]
    #[schemars(with = "Option<u32>", range(min = 1, max = 3600))]
    interval_s: u32,
    /// Lane number, 0 to 32; absent when the sensor counts the whole carriageway.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 32))]
    lane: Option<u8>,
    /// Vehicles counted during the interval, 0 to 100000.
    #[schemars(range(min = 0, max = 100_000))]
    vehicle_count: u32,
    /// Mean speed of the counted vehicles in km/h, 0 to 400; absent when the sensor cannot
    /// measure speed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 400.0))]
    avg_speed_kmh: Option<f64>,
    /// Share of the interval the detector was occupied, in percent, 0 to 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    occupancy_pct: Option<f64>,
    /// Posted speed limit at the sensor in km/h, 5 to 200, when the sensor knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 200))]
    speed_limit_kmh: Option<u16>,
    /// Number of lanes in the direction the sensor covers, 1 to 32, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32))]
    lanes: Option<u8>,
}

fn default_interval_s() -> u32 {
    DEFAULT_INTERVAL_S
}

impl Reading {
    /// Parses a wire reading against the server clock `now` (used for the future-skew rule).
    pub fn parse(wire: ReadingWire, now: DateTime<Utc>) -> Result<Self, ReadingError> {
        let mut errors = Vec::new();
        let fields = RawFields::from_wire(wire, &mut errors);
        let reading = fields.validate(Some(now), &mut errors);
        match reading {
            Some(reading) if errors.is_empty() => Ok(reading),
            _ => Err(ReadingError { errors }),
        }
    }

    /// Parses any JSON value: a non-object is one error on the whole reading.
    pub fn from_json(value: Value, now: DateTime<Utc>) -> Result<Self, ReadingError> {
        let wire = ReadingWire::from_json(value)?;
        Self::parse(wire, now)
    }

    /// Parses a value read straight from JSON text (see [`ReadingInput`]).
    pub fn from_input(input: ReadingInput, now: DateTime<Utc>) -> Result<Self, ReadingError> {
        match input {
            ReadingInput::Object(wire) => Self::parse(wire, now),
            ReadingInput::NotAnObject(kind) => Err(ReadingError::not_an_object(kind)),
        }
    }

    /// Rebuilds a reading from stored columns. The future-skew rule is not applied: it held
    /// when the reading arrived. Any other broken rule means the row was written behind the
    /// application's back and is reported as such.
    #[allow(clippy::too_many_arguments)]
    pub fn from_stored(
        sensor_id: String,
        observed_at: DateTime<Utc>,
        interval_s: i64,
        lane: Option<i64>,
        vehicle_count: i64,
        avg_speed_kmh: Option<f64>,
        occupancy_pct: Option<f64>,
        speed_limit_kmh: Option<i64>,
        lanes: Option<i64>,
    ) -> Result<Self, ReadingError> {
        let fields = RawFields {
            sensor_id: Some(sensor_id),
            observed_at: Some(observed_at),
            interval_s: Some(interval_s),
            lane,
            vehicle_count: Some(vehicle_count),
            avg_speed_kmh,
            occupancy_pct,
            speed_limit_kmh,
            lanes,
        };
        let mut errors = Vec::new();
        match fields.validate(None, &mut errors) {
            Some(reading) if errors.is_empty() => Ok(reading),
            _ => Err(ReadingError { errors }),
        }
    }

    pub fn sensor_id(&self) -> &SensorId {
        &self.sensor_id
    }
    /// End of the counting interval, in UTC, to the microsecond.
    pub fn observed_at(&self) -> DateTime<Utc> {
        self.observed_at
    }
    pub fn interval_s(&self) -> u32 {
        self.interval_s
    }
    /// Start of the counting interval: the instant series buckets file the reading under.
    pub fn start(&self) -> DateTime<Utc> {
        self.observed_at - TimeDelta::seconds(i64::from(self.interval_s))
    }
    pub fn lane(&self) -> Option<u8> {
        self.lane
    }
    pub fn vehicle_count(&self) -> u32 {
        self.vehicle_count
    }
    pub fn avg_speed_kmh(&self) -> Option<f64> {
        self.avg_speed_kmh
    }
    pub fn occupancy_pct(&self) -> Option<f64> {
        self.occupancy_pct
    }
    pub fn speed_limit_kmh(&self) -> Option<u16> {
        self.speed_limit_kmh
    }
    pub fn lanes(&self) -> Option<u8> {
        self.lanes
    }

    /// A copy with `lanes` and `speed_limit_kmh` set where this reading has none (values from
    /// the sensor's metadata); `None` when neither fills a gap.
    pub(crate) fn with_gaps_filled(
        &self,
        lanes: Option<u8>,
        speed_limit_kmh: Option<u16>,
    ) -> Option<Self> {
        let lanes = lanes.filter(|_| self.lanes.is_none());
        let speed_limit_kmh = speed_limit_kmh.filter(|_| self.speed_limit_kmh.is_none());
        if lanes.is_none() && speed_limit_kmh.is_none() {
            return None;
        }
        Some(Self {
            lanes: self.lanes.or(lanes),
            speed_limit_kmh: self.speed_limit_kmh.or(speed_limit_kmh),
            ..self.clone()
        })
    }
}

impl TryFrom<ReadingWire> for Reading {
    type Error = ReadingError;

    fn try_from(wire: ReadingWire) -> Result<Self, Self::Error> {
        Self::parse(wire, Utc::now())
    }
}

impl<'de> Deserialize<'de> for Reading {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ReadingWire::deserialize(deserializer)?;
        Self::try_from(wire).map_err(serde::de::Error::custom)
    }
}

/// The JSON Schema of a reading, as MCP tools and the OpenAPI document publish it.
pub fn reading_schema() -> Schema {
    schemars::schema_for!(Reading)
}

/// A reading as it arrived: every known field as raw JSON, unknown fields kept so they can be
/// reported. `null` counts as absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReadingWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor_id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle_count: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_speed_kmh: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupancy_pct: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_limit_kmh: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lanes: Option<Value>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
    /// Names that appeared more than once in the object (a reading is refused for it: two
    /// parsers keeping different copies is how request smuggling starts).
    #[serde(skip)]
    pub repeated: Vec<String>,
}

impl ReadingWire {
    /// Accepts any JSON value; only an object can be a reading.
    pub fn from_json(value: Value) -> Result<Self, ReadingError> {
        match value {
            Value::Object(map) => Ok(Self::from_map(map)),
            other => Err(ReadingError::not_an_object(json_type_name(&other))),
        }
    }

    /// Moves the known fields out of the object (no copies: this is the hot path of batch
    /// ingest and of `classify_batch`); whatever is left is unknown.
    fn from_map(mut map: serde_json::Map<String, Value>) -> Self {
        let mut take = |name: &str| map.remove(name).filter(|v| !v.is_null());
        Self {
            sensor_id: take("sensor_id"),
            observed_at: take("observed_at"),
            interval_s: take("interval_s"),
            lane: take("lane"),
            vehicle_count: take("vehicle_count"),
            avg_speed_kmh: take("avg_speed_kmh"),
            occupancy_pct: take("occupancy_pct"),
            speed_limit_kmh: take("speed_limit_kmh"),
            lanes: take("lanes"),
            unknown: map.into_iter().collect(),
            repeated: Vec::new(),
        }
    }

    /// Reads an object's members straight from the parser, noting every repeated name (a
    /// `Value` would already have kept only the last copy).
    fn from_entries<'de, A: MapAccess<'de>>(mut access: A) -> Result<Self, A::Error> {
        let mut map = serde_json::Map::new();
        let mut repeated: Vec<String> = Vec::new();
        while let Some(name) = access.next_key::<String>()? {
            let value: Value = access.next_value()?;
            match map.entry(name) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(mut slot) => {
                    if !repeated.contains(slot.key()) {
                        repeated.push(slot.key().clone());
                    }
                    slot.insert(value);
                }
            }
        }
        Ok(Self {
            repeated,
            ..Self::from_map(map)
        })
    }
}

impl<'de> Deserialize<'de> for ReadingWire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_any(InputVisitor)? {
            ReadingInput::Object(wire) => Ok(wire),
            ReadingInput::NotAnObject(kind) => {
                Err(serde::de::Error::custom(ReadingError::not_an_object(kind)))
            }
        }
    }
}

/// Any JSON value offered as a reading, parsed straight from the text: an object becomes a
/// [`ReadingWire`] (repeated member names noted), anything else is named for the error.
#[derive(Debug, Clone, PartialEq)]
// Nearly every input is an object: boxing it would cost an allocation per reading for nothing.
#[allow(clippy::large_enum_variant)]
pub enum ReadingInput {
    Object(ReadingWire),
    /// The JSON type that came instead, e.g. "an array".
    NotAnObject(&'static str),
}

impl<'de> Deserialize<'de> for ReadingInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(InputVisitor)
    }
}

struct InputVisitor;

impl<'de> Visitor<'de> for InputVisitor {
    type Value = ReadingInput;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reading (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        ReadingWire::from_entries(access).map(ReadingInput::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ReadingInput::NotAnObject("an array"))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(ReadingInput::NotAnObject("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(ReadingInput::NotAnObject("a boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(ReadingInput::NotAnObject("a number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(ReadingInput::NotAnObject("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(ReadingInput::NotAnObject("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(ReadingInput::NotAnObject("a string"))
    }
}

/// One field that broke a rule, in words a sensor vendor can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    /// The offending field's name; empty when the whole reading is at fault.
    pub field: String,
    pub message: String,
}

/// Every rule a reading broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReadingError {
    pub errors: Vec<FieldError>,
}

impl ReadingError {
    fn not_an_object(kind: &str) -> Self {
        Self {
            errors: vec![FieldError {
                field: String::new(),
                message: format!("a reading must be a JSON object, not {kind}"),
            }],
        }
    }
}

impl fmt::Display for ReadingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid reading: ")?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if e.field.is_empty() {
                f.write_str(&e.message)?;
            } else {
                write!(f, "{} {}", e.field, e.message)?;
            }
        }
        Ok(())
    }
}

/// Field values with their JSON types checked but their ranges not yet.
#[derive(Default)]
struct RawFields {
    sensor_id: Option<String>,
    observed_at: Option<DateTime<Utc>>,
    interval_s: Option<i64>,
    lane: Option<i64>,
    vehicle_count: Option<i64>,
    avg_speed_kmh: Option<f64>,
    occupancy_pct: Option<f64>,
    speed_limit_kmh: Option<i64>,
    lanes: Option<i64>,
}

impl RawFields {
    fn from_wire(wire: ReadingWire, errors: &mut Vec<FieldError>) -> Self {
        for name in &wire.repeated {
            push(
                errors,
                name,
                "appears more than once in the reading; send each field once",
            );
        }
        for name in wire.unknown.keys() {
            push(
                errors,
                name,
                "is not a field of a reading; remove it (field names are case-sensitive)",
            );
        }
        Self {
            sensor_id: wire.sensor_id.and_then(|v| string(errors, "sensor_id", v)),
            observed_at: wire
                .observed_at
                .and_then(|v| timestamp(errors, "observed_at", v)),
            interval_s: wire
                .interval_s
                .and_then(|v| integer(errors, "interval_s", v, INTERVAL_S, "seconds")),
            lane: wire.lane.and_then(|v| integer(errors, "lane", v, LANE, "")),
            vehicle_count: wire
                .vehicle_count
                .and_then(|v| integer(errors, "vehicle_count", v, VEHICLE_COUNT, "vehicles")),
            avg_speed_kmh: wire
                .avg_speed_kmh
                .and_then(|v| number(errors, "avg_speed_kmh", v)),
            occupancy_pct: wire
                .occupancy_pct
                .and_then(|v| number(errors, "occupancy_pct", v)),
            speed_limit_kmh: wire
                .speed_limit_kmh
                .and_then(|v| integer(errors, "speed_limit_kmh", v, SPEED_LIMIT_KMH, "km/h")),
            lanes: wire
                .lanes
                .and_then(|v| integer(errors, "lanes", v, LANES, "lanes")),
        }
    }

    /// Applies every range rule; `now` is the server clock for the future-skew rule, if applied.
    /// The result is only meaningful when `errors` is still empty afterwards.
    fn validate(self, now: Option<DateTime<Utc>>, errors: &mut Vec<FieldError>) -> Option<Reading> {
        let sensor_id = required(errors, "sensor_id", self.sensor_id).and_then(|raw| {
            SensorId::parse(&raw)
                .map_err(|rule| push(errors, "sensor_id", rule))
                .ok()
        });
        let observed_at = required(errors, "observed_at", self.observed_at).and_then(|at| {
            let ahead = now.map(|now| at - now).unwrap_or(TimeDelta::zero());
            // Like the future skew, the lower bound is a rule for new readings only.
            if now.is_some() && at < EARLIEST_OBSERVED_AT {
                push(
                    errors,
                    "observed_at",
                    "is before 1970-01-01T00:00:00Z, the earliest time accepted \
                     (check that the sensor's clock is set)",
                );
                None
            } else if ahead > MAX_FUTURE_SKEW {
                push(
                    errors,
                    "observed_at",
                    &format!(
                        "is {:.3} s ahead of the server clock; readings may be at most {} s in the future \
                         (check the sensor's clock and time zone)",
                        ahead.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6,
                        MAX_FUTURE_SKEW.num_seconds()
                    ),
                );
                None
            } else {
                Some(at)
            }
        });
        let interval_s =
            in_range(errors, "interval_s", self.interval_s, INTERVAL_S, "seconds").or(self
                .interval_s
                .is_none()
                .then_some(i64::from(DEFAULT_INTERVAL_S)));
        let lane = in_range(errors, "lane", self.lane, LANE, "");
        let vehicle_count = required(errors, "vehicle_count", self.vehicle_count)
            .and_then(|n| in_range(errors, "vehicle_count", Some(n), VEHICLE_COUNT, "vehicles"));
        let avg_speed_kmh = in_range_f(
            errors,
            "avg_speed_kmh",
            self.avg_speed_kmh,
            AVG_SPEED_KMH,
            "km/h",
        );
        let occupancy_pct = in_range_f(
            errors,
            "occupancy_pct",
            self.occupancy_pct,
            OCCUPANCY_PCT,
            "%",
        );
        let speed_limit_kmh = in_range(
            errors,
            "speed_limit_kmh",
            self.speed_limit_kmh,
            SPEED_LIMIT_KMH,
            "km/h",
        );
        let lanes = in_range(errors, "lanes", self.lanes, LANES, "lanes");

        // Every conversion below is within range by the checks above.
        Some(Reading {
            sensor_id: sensor_id?,
            observed_at: observed_at?,
            interval_s: u32::try_from(interval_s?).ok()?,
            lane: narrow(lane)?,
            vehicle_count: u32::try_from(vehicle_count?).ok()?,
            avg_speed_kmh,
            occupancy_pct,
            speed_limit_kmh: narrow(speed_limit_kmh)?,
            lanes: narrow(lanes)?,
        })
    }
}

fn timestamp(errors: &mut Vec<FieldError>, field: &str, value: Value) -> Option<DateTime<Utc>> {
    let Value::String(raw) = value else {
        push(
            errors,
            field,
            &format!("{}; got {}", TimestampError::RULE, json_type_name(&value)),
        );
        return None;
    };
    parse_timestamp(&raw)
        .map_err(|e| push(errors, field, &format!("{e}; got {raw:?}")))
        .ok()
}

/// Why a text is not a time this service can store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("{}", Self::RULE)]
    NotRfc3339,
    #[error(
        "has second 60 (a leap second), which is refused: stored times have no leap seconds, \
         and read as the next minute it would take that minute's reading's place; \
         stamp it 23:59:59 or let the sensor's clock smear leap seconds"
    )]
    LeapSecond,
}

impl TimestampError {
    const RULE: &'static str = "must be an RFC 3339 timestamp with a UTC offset, e.g. 2026-11-29T08:15:00Z or 2026-11-29T09:15:00+01:00";
}

/// Parses an RFC 3339 time into the exact value the store keeps (UTC, microseconds). Every
/// text either maps to the one instant it names or is refused: chrono reads second 60 as a
/// leap second that both databases would turn into the next minute, so it is refused here.
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, TimestampError> {
    let at = DateTime::parse_from_rfc3339(raw).map_err(|_| TimestampError::NotRfc3339)?;
    if at.nanosecond() >= 1_000_000_000 {
        return Err(TimestampError::LeapSecond);
    }
    Ok(at.with_timezone(&Utc).trunc_subsecs(STORED_SUBSEC_DIGITS))
}

#[cfg(test)]
mod tests;
