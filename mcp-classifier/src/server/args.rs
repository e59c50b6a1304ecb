//! Tool arguments: the schemas published in `tools/list`, and parsing that turns any mistake
//! into one tool error naming every offending field (`event.vehicle_count`, `history[3].lane`)
//! and its rule, so a language model can correct its call in one go.

use chrono::{DateTime, Utc};
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde_json::Value;

use std::collections::HashMap;

use traffic_model::reading::{FieldError, Reading, SensorId};
use traffic_model::rules::Site;
use traffic_model::sensor::SensorMetadata;

/// Most readings one `classify_batch` call may carry.
pub const MAX_BATCH_EVENTS: usize = 1000;
/// Most earlier readings one call may pass as history, and most a call may have the server
/// load from its database (`stored_history`).
pub const MAX_HISTORY: usize = 10_000;
/// Most earlier readings per lane `stored_history` may ask for, and how far back, in minutes
/// (31 days): the ranges of ingest's `CLASSIFY_HISTORY_READINGS` and `CLASSIFY_HISTORY_MINUTES`.
pub const MAX_STORED_HISTORY_READINGS: u32 = 1000;
pub const MAX_STORED_HISTORY_MINUTES: u32 = 44_640;

/// Sensors' sites by sensor id, as `classify_batch` takes them.
pub type Sites = HashMap<SensorId, Site>;

/// Arguments of `classify`.
#[derive(Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyArgs {
    /// The reading to classify.
    pub event: Reading,
    /// Earlier readings of the same sensor and lane (any order), used for the sensor-health
    /// flags `stuck`, `card_off`, `sudden_speed_drop` and `gap`. Optional.
    #[serde(default)]
    pub history: Option<Vec<Reading>>,
    /// The sensor's metadata, as `PUT /v1/sensors/{id}` stores it: its lane count, speed limit,
    /// free-flow speed, effective vehicle length and time zone fill what the reading leaves
    /// out (a value in the reading wins). Optional.
    #[serde(default)]
    pub site: Option<SensorMetadata>,
}

/// Arguments of `classify_by_id`.
#[derive(Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyByIdArgs {
    /// The stored event's id, as returned by the ingest API (`POST /v1/events`).
    #[schemars(range(min = 1))]
    pub id: i64,
}

/// Arguments of `classify_batch`.
#[derive(Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyBatchArgs {
    /// The readings to classify (at least one, at most `maxItems`); results come back in the
    /// same order.
    #[schemars(length(min = 1, max = MAX_BATCH_EVENTS))]
    pub events: Vec<Reading>,
    /// One pool of earlier readings for any of the batch's sensors; the server groups them by
    /// sensor and lane. Earlier readings inside `events` count as history too. Optional.
    #[serde(default)]
    pub history: Option<Vec<Reading>>,
    /// Have the server add the readings its database holds of each lane before the batch's
    /// earliest reading of that lane, instead of sending them in `history`. Needs a server
    /// with the events database (as `classify_by_id` does). Optional.
    #[serde(default)]
    pub stored_history: Option<StoredHistory>,
    /// Metadata of the batch's sensors by sensor id, as `classify`'s `site`. Optional.
    #[serde(default)]
    pub sites: Option<HashMap<String, SensorMetadata>>,
    /// `true`: have the server load the metadata of the batch's sensors from its database
    /// (those not in `sites`). Needs the events database. Optional.
    #[serde(default)]
    pub stored_sites: Option<bool>,
}

/// How much stored history `classify_batch` loads per sensor lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredHistory {
    /// Most earlier readings per sensor lane (the server loads at most 10 000 in all, split
    /// evenly between the batch's lanes).
    #[schemars(range(min = 1, max = MAX_STORED_HISTORY_READINGS))]
    pub readings: u32,
    /// How far back, in minutes, from each lane's earliest reading in the batch.
    #[schemars(range(min = 1, max = MAX_STORED_HISTORY_MINUTES))]
    pub minutes: u32,
}

/// Everything wrong with a call's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct ArgumentErrors(pub Vec<FieldError>);

fn describe(errors: &[FieldError]) -> String {
    let list: Vec<String> = errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.message))
        .collect();
    format!("invalid arguments: {}", list.join("; "))
}

/// Reads the arguments of a call as a JSON object with the given fields.
pub struct ArgReader {
    args: JsonObject,
    errors: Vec<FieldError>,
    now: DateTime<Utc>,
}

impl ArgReader {
    /// `known` are the argument names the tool accepts; any other is reported.
    pub fn new(args: Option<JsonObject>, known: &[&str], now: DateTime<Utc>) -> Self {
        let args = args.unwrap_or_default();
        let errors = args
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .map(|key| FieldError {
                field: key.clone(),
                message: format!(
                    "is not an argument of this tool (expected: {})",
                    known.join(", ")
                ),
            })
            .collect();
        Self { args, errors, now }
    }

    fn take(&mut self, name: &str, required: bool) -> Option<Value> {
        match self.args.remove(name) {
            Some(Value::Null) | None => {
                if required {
                    self.error(name, "is required".into());
                }
                None
            }
            Some(value) => Some(value),
        }
    }

    fn error(&mut self, field: &str, message: String) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message,
        });
    }

    /// A required reading.
    pub fn reading(&mut self, name: &str) -> Option<Reading> {
        let value = self.take(name, true)?;
        self.parse_reading(name, value)
    }

    fn parse_reading(&mut self, path: &str, value: Value) -> Option<Reading> {
        match Reading::from_json(value, self.now) {
            Ok(reading) => Some(reading),
            Err(e) => {
                self.errors.extend(e.errors.into_iter().map(|f| FieldError {
                    field: join_path(path, &f.field),
                    message: f.message,
                }));
                None
            }
        }
    }

    /// An optional array of readings (at most `max`); each invalid element is reported.
    pub fn readings(&mut self, name: &str, max: usize) -> Vec<Reading> {
        self.raw_readings(name, false, max)
            .into_iter()
            .enumerate()
            .filter_map(|(i, value)| self.parse_reading(&format!("{name}[{i}]"), value))
            .collect()
    }

    /// A required, non-empty array of at most `max` elements, returned unparsed so that the
    /// caller can judge each element on its own.
    pub fn raw_readings(&mut self, name: &str, required: bool, max: usize) -> Vec<Value> {
        let Some(value) = self.take(name, required) else {
            return Vec::new();
        };
        match value {
            Value::Array(items) if items.len() > max => {
                self.error(
                    name,
                    format!("holds {} readings; at most {max} per call", items.len()),
                );
                Vec::new()
            }
            Value::Array(items) if required && items.is_empty() => {
                self.error(name, "must hold at least one reading".into());
                Vec::new()
            }
            Value::Array(items) => items,
            _ => {
                self.error(name, "must be an array of readings".into());
                Vec::new()
            }
        }
    }

    /// A required positive integer id.
    pub fn id(&mut self, name: &str) -> Option<i64> {
        let value = self.take(name, true)?;
        match value.as_i64() {
            Some(id) if id >= 1 => Some(id),
            _ => {
                self.error(name, format!("must be a positive integer, got {value}"));
                None
            }
        }
    }

    /// An optional `{readings, minutes}` object, each an integer within its bounds.
    pub fn stored_history(&mut self, name: &str) -> Option<StoredHistory> {
        let value = self.take(name, false)?;
        let Value::Object(mut fields) = value else {
            self.error(name, "must be an object {readings, minutes}".into());
            return None;
        };
        let mut bounded = |field: &str, max: u32| {
            let (min, max) = (1, u64::from(max));
            let path = format!("{name}.{field}");
            match fields.remove(field) {
                None | Some(Value::Null) => {
                    self.error(&path, "is required".into());
                    None
                }
                Some(value) => match value.as_u64().filter(|v| (min..=max).contains(v)) {
                    Some(v) => u32::try_from(v).ok(),
                    None => {
                        self.error(
                            &path,
                            format!("must be an integer from {min} to {max}, got {value}"),
                        );
                        None
                    }
                },
            }
        };
        let readings = bounded("readings", MAX_STORED_HISTORY_READINGS);
        let minutes = bounded("minutes", MAX_STORED_HISTORY_MINUTES);
        for unknown in fields.keys() {
            self.errors.push(FieldError {
                field: format!("{name}.{unknown}"),
                message: "is not a field of stored_history (expected: readings, minutes)".into(),
            });
        }
        Some(StoredHistory {
            readings: readings?,
            minutes: minutes?,
        })
    }

    /// An optional sensor metadata object, reduced to what the rules use.
    pub fn site(&mut self, name: &str) -> Option<Site> {
        let value = self.take(name, false)?;
        self.parse_site(name, value)
    }

    fn parse_site(&mut self, path: &str, value: Value) -> Option<Site> {
        match SensorMetadata::from_json(value) {
            Ok(metadata) => Some(Site::from(&metadata)),
            Err(e) => {
                self.errors.extend(e.errors.into_iter().map(|f| FieldError {
                    field: join_path(path, &f.field),
                    message: f.message,
                }));
                None
            }
        }
    }

    /// An optional object of sensor metadata keyed by sensor id.
    pub fn sites(&mut self, name: &str) -> Sites {
        let Some(value) = self.take(name, false) else {
            return Sites::new();
        };
        let Value::Object(members) = value else {
            self.error(
                name,
                "must be an object of sensor metadata keyed by sensor id".into(),
            );
            return Sites::new();
        };
        let mut sites = Sites::new();
        for (key, metadata) in members {
            let path = format!("{name}.{key}");
            let id = SensorId::parse(&key).map_err(|rule| self.error(&path, rule.into()));
            if let (Ok(id), Some(site)) = (id, self.parse_site(&path, metadata)) {
                sites.insert(id, site);
            }
        }
        sites
    }

    /// An optional boolean, `false` when absent.
    pub fn flag(&mut self, name: &str) -> bool {
        match self.take(name, false) {
            None => false,
            Some(Value::Bool(set)) => set,
            Some(other) => {
                self.error(name, format!("must be true or false, got {other}"));
                false
            }
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The parsed value, or every error found.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ArgumentErrors> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(ArgumentErrors(self.errors)),
        }
    }
}

fn join_path(prefix: &str, field: &str) -> String {
    if field.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Option<JsonObject> {
        value.as_object().cloned()
    }

    fn reading() -> Value {
        json!({"sensor_id": "s1", "observed_at": "2026-01-01T00:00:00Z", "vehicle_count": 3})
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let args = json!({
            "event": {"sensor_id": "s 1", "observed_at": "2026-01-01T00:00:00Z", "vehicle_count": -1},
            "history": [reading(), {"vehicle_count": "many"}],
            "extra": true,
        });
        let mut reader = ArgReader::new(object(args), &["event", "history"], Utc::now());
        let event = reader.reading("event");
        let history = reader.readings("history", MAX_HISTORY);
        assert_eq!(history.len(), 1);
        let errors = reader.finish(event).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "extra",
                "event.sensor_id",
                "event.vehicle_count",
                "history[1].vehicle_count",
                "history[1].sensor_id",
                "history[1].observed_at",
            ]
        );
        let text = errors.to_string();
        assert!(
            text.starts_with("invalid arguments: extra is not an argument"),
            "{text}"
        );
        assert!(
            text.contains("event.vehicle_count must be an integer from 0 to 100000"),
            "{text}"
        );
    }

    #[test]
    fn missing_required_arguments_are_reported() {
        let mut reader = ArgReader::new(None, &["event"], Utc::now());
        let event = reader.reading("event");
        let errors = reader.finish(event).unwrap_err();
        assert_eq!(errors.0[0].field, "event");
        assert_eq!(errors.0[0].message, "is required");
    }

    #[test]
    fn arrays_are_bounded() {
        let many = Value::Array(vec![reading(); 3]);
        let mut reader = ArgReader::new(object(json!({"events": many})), &["events"], Utc::now());
        assert!(reader.raw_readings("events", true, 2).is_empty());
        let errors = reader.finish(Some(())).unwrap_err();
        assert_eq!(errors.0[0].message, "holds 3 readings; at most 2 per call");

        let mut reader = ArgReader::new(object(json!({"events": []})), &["events"], Utc::now());
        reader.raw_readings("events", true, 2);
        assert!(reader.finish(Some(())).is_err());
    }

    #[test]
    fn ids_must_be_positive_integers() {
        for bad in [json!(0), json!(-4), json!("7"), json!(1.5)] {
            let mut reader = ArgReader::new(object(json!({"id": bad})), &["id"], Utc::now());
            let id = reader.id("id");
            assert!(reader.finish(id).is_err(), "{bad}");
        }
        let mut reader = ArgReader::new(object(json!({"id": 42})), &["id"], Utc::now());
        let id = reader.id("id");
        assert_eq!(reader.finish(id).unwrap(), 42);
    }
}
