//! Where sensors are, as a read of the network selects them: a road by name and a WGS84 box.
//! Each type checks its own text, for the REST query string and the MCP tools alike.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

/// A road name as sensor metadata spells it (1–100 characters), matched exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Road(pub String);

impl<'de> Deserialize<'de> for Road {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        match raw.chars().count() {
            1..=100 => Ok(Self(raw)),
            _ => Err(serde::de::Error::custom(
                "must be a road name of 1 to 100 characters",
            )),
        }
    }
}

impl JsonSchema for Road {
    fn schema_name() -> Cow<'static, str> {
        "Road".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "minLength": 1, "maxLength": 100})
    }
}

/// A WGS84 box `minlon,minlat,maxlon,maxlat` (GeoJSON's bbox order). `minlon > maxlon` is a
/// box across the antimeridian.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl BoundingBox {
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let lon_inside = if self.min_lon <= self.max_lon {
            (self.min_lon..=self.max_lon).contains(&lon)
        } else {
            lon >= self.min_lon || lon <= self.max_lon
        };
        lon_inside && (self.min_lat..=self.max_lat).contains(&lat)
    }

    /// Parses `minlon,minlat,maxlon,maxlat`; the error states the rule.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let rule = "must be minlon,minlat,maxlon,maxlat in degrees \
                    (longitudes −180 to 180, latitudes −90 to 90, minlat ≤ maxlat)";
        let numbers: Vec<f64> = raw
            .split(',')
            .map(|part| part.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| rule.to_owned())?;
        let [min_lon, min_lat, max_lon, max_lat] = numbers[..] else {
            return Err(rule.to_owned());
        };
        let lon_ok = |v: f64| (-180.0..=180.0).contains(&v);
        let lat_ok = |v: f64| (-90.0..=90.0).contains(&v);
        if !(lon_ok(min_lon) && lon_ok(max_lon) && lat_ok(min_lat) && lat_ok(max_lat))
            || min_lat > max_lat
        {
            return Err(rule.to_owned());
        }
        Ok(Self {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }
}

impl<'de> Deserialize<'de> for BoundingBox {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Cow::<str>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for BoundingBox {
    fn schema_name() -> Cow<'static, str> {
        "BoundingBox".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "minlon,minlat,maxlon,maxlat (WGS84 degrees)",
            "pattern": "^-?[0-9.]+,-?[0-9.]+,-?[0-9.]+,-?[0-9.]+$",
            "examples": ["13.0,52.3,13.8,52.7"]
        })
    }
}
