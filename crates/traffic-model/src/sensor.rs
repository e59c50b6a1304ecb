//! A sensor's metadata: where it stands and what its site is like. Every field is optional — a
//! sensor that sends readings exists without any — and every value given is checked the way a
//! reading is, all offending fields reported at once.
//!
//! [`SensorMetadata::from_json`] turns a whole document (`PUT`) into metadata;
//! [`SensorMetadata::patched`] applies a JSON Merge Patch (RFC 7396, `PATCH`) to stored metadata
//! and checks the result the same way, so both paths share one set of rules and words.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::fields::{in_range, in_range_f, integer, json_type_name, narrow, number, push, string};
use crate::reading::{FieldError, LANES, SPEED_LIMIT_KMH};

const NAME_MAX_CHARS: usize = 200;
const ROAD_MAX_CHARS: usize = 100;
const DIRECTION_MAX_CHARS: usize = 50;
const LON: (f64, f64) = (-180.0, 180.0);
const LAT: (f64, f64) = (-90.0, 90.0);
const FREE_FLOW_SPEED_KMH: (f64, f64) = (5.0, 250.0);
/// A site's effective vehicle length (the g-factor): cars alone are about 4.5 m plus the loop's
/// own length; long trucks and a long loop stay well below 30 m.
const EFFECTIVE_VEHICLE_LENGTH_M: (f64, f64) = (2.0, 30.0);

/// A point on the map, WGS84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Longitude, degrees east (−180 to 180)
    #[schemars(range(min = -180.0, max = 180.0))]
    pub lon: f64,
    /// Latitude, degrees north (−90 to 90)
    #[schemars(range(min = -90.0, max = 90.0))]
    pub lat: f64,
}

/// What is known about a sensor besides its readings. Values a reading omits (lanes, speed
/// limit) can come from here; a value in the reading wins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorMetadata {
    /// A name people recognise, e.g. "A1 km 12.4 northbound"
    #[schemars(length(min = 1, max = 200))]
    pub name: Option<String>,
    /// The road the sensor is on, e.g. "A1"
    #[schemars(length(min = 1, max = 100))]
    pub road: Option<String>,
    /// The direction of travel it counts, e.g. "northbound" or "NB"
    #[schemars(length(min = 1, max = 50))]
    pub direction: Option<String>,
    /// Where it stands
    pub location: Option<Location>,
    /// Lanes in its direction (1–32)
    #[schemars(range(min = 1, max = 32))]
    pub lanes: Option<u8>,
    /// Posted speed limit, km/h (5–200)
    #[schemars(range(min = 5, max = 200))]
    pub speed_limit_kmh: Option<u16>,
    /// The site's free-flow speed, km/h (5–250)
    #[schemars(range(min = 5.0, max = 250.0))]
    pub free_flow_speed_kmh: Option<f64>,
    /// Effective vehicle length plus detection zone, metres (the g-factor; 2–30)
    #[schemars(range(min = 2.0, max = 30.0))]
    pub effective_vehicle_length_m: Option<f64>,
    /// IANA time zone of the site, e.g. "Europe/Berlin": its local days and daytime
    pub time_zone: Option<String>,
}

/// Every rule a metadata document broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MetadataError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid sensor metadata: ")?;
        let words: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{} {}", e.field, e.message).trim().to_owned())
            .collect();
        f.write_str(&words.join("; "))
    }
}

impl SensorMetadata {
    /// Checks a whole metadata document: a JSON object whose members are the fields above,
    /// `null` meaning "not known".
    pub fn from_json(document: Value) -> Result<Self, MetadataError> {
        let mut errors = Vec::new();
        let Value::Object(mut members) = document else {
            push(
                &mut errors,
                "",
                &format!(
                    "sensor metadata must be a JSON object, not {}",
                    json_type_name(&document)
                ),
            );
            return Err(MetadataError { errors });
        };
        let mut take = |name: &str| members.remove(name).filter(|v| !v.is_null());
        let name = take("name");
        let road = take("road");
        let direction = take("direction");
        let location = take("location");
        let lanes = take("lanes");
        let speed_limit_kmh = take("speed_limit_kmh");
        let free_flow_speed_kmh = take("free_flow_speed_kmh");
        let effective_vehicle_length_m = take("effective_vehicle_length_m");
        let time_zone = take("time_zone");
        for unknown in members.keys() {
            push(
                &mut errors,
                unknown,
                "is not a field of a sensor's metadata; remove it (field names are case-sensitive)",
            );
        }
        let errs = &mut errors;
        let metadata = Self {
            name: name.and_then(|v| text(errs, "name", v, NAME_MAX_CHARS)),
            road: road.and_then(|v| text(errs, "road", v, ROAD_MAX_CHARS)),
            direction: direction.and_then(|v| text(errs, "direction", v, DIRECTION_MAX_CHARS)),
            location: location.and_then(|v| self::location(errs, v)),
            lanes: lanes.and_then(|v| {
                let n = integer(errs, "lanes", v, LANES, "lanes");
                narrow(in_range(errs, "lanes", n, LANES, "lanes")).flatten()
            }),
            speed_limit_kmh: speed_limit_kmh.and_then(|v| {
                let n = integer(errs, "speed_limit_kmh", v, SPEED_LIMIT_KMH, "km/h");
                narrow(in_range(
                    errs,
                    "speed_limit_kmh",
                    n,
                    SPEED_LIMIT_KMH,
                    "km/h",
                ))
                .flatten()
            }),
            free_flow_speed_kmh: free_flow_speed_kmh.and_then(|v| {
                let n = number(errs, "free_flow_speed_kmh", v);
                in_range_f(errs, "free_flow_speed_kmh", n, FREE_FLOW_SPEED_KMH, "km/h")
            }),
            effective_vehicle_length_m: effective_vehicle_length_m.and_then(|v| {
                let n = number(errs, "effective_vehicle_length_m", v);
                in_range_f(
                    errs,
                    "effective_vehicle_length_m",
                    n,
                    EFFECTIVE_VEHICLE_LENGTH_M,
                    "m",
                )
            }),
            time_zone: time_zone.and_then(|v| self::time_zone(errs, v)),
        };
        if errors.is_empty() {
            Ok(metadata)
        } else {
            Err(MetadataError { errors })
        }
    }

    /// This metadata with a JSON Merge Patch (RFC 7396) applied: a member set to `null` is
    /// forgotten, any other value replaces the stored one, and `location` merges member by
    /// member. The result is checked as a whole document.
    pub fn patched(&self, patch: Value) -> Result<Self, MetadataError> {
        if !patch.is_object() {
            return Err(MetadataError {
                errors: vec![FieldError {
                    field: String::new(),
                    message: format!(
                        "a merge patch of sensor metadata must be a JSON object, not {}",
                        json_type_name(&patch)
                    ),
                }],
            });
        }
        let mut document = serde_json::to_value(self).unwrap_or(Value::Object(Map::new()));
        merge_patch(&mut document, patch);
        Self::from_json(document)
    }
}

/// RFC 7396, section 2: `patch` merged into `target`.
fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(members) = target {
        for (name, value) in patch {
            if value.is_null() {
                // Every field of the document is present (null when not known): forgetting a
                // name it lacks keeps the name, so that the check refuses it as unknown.
                if members.remove(&name).is_none() {
                    members.insert(name, Value::Null);
                }
            } else {
                merge_patch(members.entry(name).or_insert(Value::Null), value);
            }
        }
    }
}

/// A label of 1 to `max` characters with something besides spaces, and no control characters.
fn text(errors: &mut Vec<FieldError>, field: &str, value: Value, max: usize) -> Option<String> {
    let text = string(errors, field, value)?;
    let chars = text.chars().count();
    if text.trim().is_empty() {
        push(errors, field, "must not be empty or blank");
        None
    } else if chars > max {
        push(
            errors,
            field,
            &format!("must be at most {max} characters, got {chars}"),
        );
        None
    } else if text.chars().any(char::is_control) {
        push(errors, field, "must not contain control characters");
        None
    } else {
        Some(text)
    }
}

fn location(errors: &mut Vec<FieldError>, value: Value) -> Option<Location> {
    let Value::Object(mut members) = value else {
        push(
            errors,
            "location",
            &format!(
                "must be an object {{\"lon\", \"lat\"}}, got {}",
                json_type_name(&value)
            ),
        );
        return None;
    };
    let mut coordinate = |name: &str, range: (f64, f64)| {
        let field = format!("location.{name}");
        match members.remove(name).filter(|v| !v.is_null()) {
            None => {
                push(errors, &field, "is required (WGS84 degrees)");
                None
            }
            Some(v) => {
                let n = number(errors, &field, v);
                in_range_f(errors, &field, n, range, "degrees")
            }
        }
    };
    let (lon, lat) = (coordinate("lon", LON), coordinate("lat", LAT));
    for unknown in members.keys() {
        push(
            errors,
            &format!("location.{unknown}"),
            "is not a field of a location; only lon and lat",
        );
    }
    Some(Location {
        lon: lon?,
        lat: lat?,
    })
}

fn time_zone(errors: &mut Vec<FieldError>, value: Value) -> Option<String> {
    let raw = string(errors, "time_zone", value)?;
    match Tz::from_str(&raw) {
        Ok(zone) => Some(zone.name().to_owned()),
        Err(_) => {
            push(
                errors,
                "time_zone",
                &format!("must be an IANA time zone name such as \"Europe/Berlin\", got {raw:?}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;
