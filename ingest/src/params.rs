//! Typed request parameters: each type parses and checks its own text and describes itself to
//! the OpenAPI document, so a limit is written once, where it is enforced.

use std::borrow::Cow;
use std::fmt;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use traffic_model::reading::{SensorId, parse_timestamp};

use crate::problem::{Kind, Problem};

/// A page size: 1 to 1000, 100 when absent.
pub type PageSize = Bounded<1, 1000, 100>;

/// An integer from `MIN` to `MAX`, `DEFAULT` when absent (with `#[serde(default)]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: usize, const MAX: usize, const DEFAULT: usize>(usize);

impl<const MIN: usize, const MAX: usize, const DEFAULT: usize> Bounded<MIN, MAX, DEFAULT> {
    pub fn get(self) -> usize {
        self.0
    }
}

impl<const MIN: usize, const MAX: usize, const DEFAULT: usize> Default
    for Bounded<MIN, MAX, DEFAULT>
{
    fn default() -> Self {
        Self(DEFAULT)
    }
}

impl<'de, const MIN: usize, const MAX: usize, const DEFAULT: usize> Deserialize<'de>
    for Bounded<MIN, MAX, DEFAULT>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Cow::<str>::deserialize(deserializer)?;
        raw.parse::<usize>()
            .ok()
            .filter(|n| (MIN..=MAX).contains(n))
            .map(Self)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("must be an integer from {MIN} to {MAX}"))
            })
    }
}

/// Serialised only for the schema's `default`.
impl<const MIN: usize, const MAX: usize, const DEFAULT: usize> Serialize
    for Bounded<MIN, MAX, DEFAULT>
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0 as u64)
    }
}

impl<const MIN: usize, const MAX: usize, const DEFAULT: usize> JsonSchema
    for Bounded<MIN, MAX, DEFAULT>
{
    fn schema_name() -> Cow<'static, str> {
        format!("Integer{MIN}To{MAX}").into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": MIN, "maximum": MAX})
    }
}

/// An RFC 3339 time, read exactly as readings' times are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(inline)]
pub struct Timestamp(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Cow::<str>::deserialize(deserializer)?;
        parse_timestamp(&raw)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// A time window `[from, to)` from optional query parameters: `to` defaults to now, `from` to
/// `default` before `to`; `from` must come first and the window last at most `max` (whole
/// days), else a `400` naming `to`.
pub fn window(
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    default: chrono::TimeDelta,
    max: chrono::TimeDelta,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Problem> {
    let to = to.map_or_else(Utc::now, |t| t.0);
    let from = from.map_or(to - default, |t| t.0);
    if from >= to || to - from > max {
        return Err(Problem::invalid_query(
            "to",
            &format!("must be after from, by at most {} days", max.num_days()),
        ));
    }
    Ok((from, to))
}

pub use traffic_model::place::{BoundingBox, Road};

/// A value taken from one segment of the path; a segment that is not one answers 404, since
/// no such resource can exist.
pub trait PathParam: JsonSchema + Sized {
    /// The segment's name in the route's path (`{NAME}`).
    const NAME: &'static str;
    const DESCRIPTION: &'static str;

    fn from_segment(raw: &str) -> Result<Self, Problem>;
}

/// Extracts a [`PathParam`].
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: PathParam> FromRequest for Path<T> {
    type Error = Problem;
    type Future = std::future::Ready<Result<Self, Problem>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = request.match_info().get(T::NAME).unwrap_or_default();
        std::future::ready(T::from_segment(raw).map(Self))
    }
}

/// An event's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(inline)]
pub struct EventId(pub i64);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PathParam for EventId {
    const NAME: &'static str = "id";
    const DESCRIPTION: &'static str = "Event id";

    fn from_segment(raw: &str) -> Result<Self, Problem> {
        raw.parse().map(Self).map_err(|_| {
            Problem::new(
                Kind::NotFound,
                format!("no event with id {raw:?}: ids are positive integers"),
            )
        })
    }
}

impl PathParam for SensorId {
    const NAME: &'static str = "sensor_id";
    const DESCRIPTION: &'static str = "Sensor id (a `/` in it sent as `%2F`)";

    fn from_segment(raw: &str) -> Result<Self, Problem> {
        // The router leaves `%2F` encoded (a `/` inside a segment); ids may contain `/`.
        let raw = percent_decode(raw);
        SensorId::parse(&raw).map_err(|rule| {
            Problem::new(
                Kind::NotFound,
                format!("no sensor {raw:?}: a sensor id {rule}"),
            )
        })
    }
}

/// Decodes `%XX` escapes; malformed ones are kept as they are (and then fail the id rule).
fn percent_decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded_and_malformed_ones_kept() {
        assert_eq!(percent_decode("ring%2F12:north"), "ring/12:north");
        assert_eq!(percent_decode("a%2fb"), "a/b");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("x%zz"), "x%zz");
    }

    #[test]
    fn a_bounded_integer_takes_its_ends_and_refuses_beyond_them() {
        type Limit = Bounded<1, 1000, 100>;
        let parse = |raw: &str| serde_json::from_value::<Limit>(serde_json::json!(raw));
        assert_eq!(parse("1").unwrap().get(), 1);
        assert_eq!(parse("1000").unwrap().get(), 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains("from 1 to 1000"), "{bad}: {error}");
        }
        assert_eq!(Limit::default().get(), 100);
    }
}
