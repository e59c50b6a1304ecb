//! Stored column values back into the domain's types, for the read-side queries written as SQL.
//! A value the domain rejects means the row was written behind the application's back: a
//! [`StoreError::CorruptRow`] naming the row.

use traffic_model::classification::{Flag, Label, LevelOfService};
use traffic_model::reading::SensorId;

use super::StoreError;

/// Decodes the columns of one row (event `id`; 0 when the row has none).
pub(super) struct Decode(pub(super) i64);

impl Decode {
    pub(super) fn corrupt(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError::CorruptRow {
            id: self.0,
            reason: reason.to_string(),
        }
    }

    pub(super) fn sensor_id(&self, raw: &str) -> Result<SensorId, StoreError> {
        SensorId::parse(raw).map_err(|rule| self.corrupt(format!("sensor_id: {rule}")))
    }

    pub(super) fn lane(&self, raw: Option<i16>) -> Result<Option<u8>, StoreError> {
        raw.map(u8::try_from)
            .transpose()
            .map_err(|e| self.corrupt(format!("lane: {e}")))
    }

    /// A count or an interval (never negative).
    pub(super) fn count(&self, raw: i32) -> Result<u32, StoreError> {
        u32::try_from(raw).map_err(|e| self.corrupt(e))
    }

    pub(super) fn label(&self, raw: &str) -> Result<Label, StoreError> {
        raw.parse().map_err(|e| self.corrupt(e))
    }

    pub(super) fn los(&self, raw: Option<&str>) -> Result<Option<LevelOfService>, StoreError> {
        raw.map(str::parse)
            .transpose()
            .map_err(|e: traffic_model::classification::UnknownName| self.corrupt(e))
    }

    /// A JSON array of flag names.
    pub(super) fn flags(&self, raw: &str) -> Result<Vec<Flag>, StoreError> {
        serde_json::from_str(raw).map_err(|e| self.corrupt(format!("flags: {e}")))
    }
}
