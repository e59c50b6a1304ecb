use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::Queryable;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::{Display, EnumString, IntoStaticStr, VariantArray};

use super::sql_time::UtcTime;
use super::{Cursor, StoreError};
use traffic_model::classification::{Classification, Label, LevelOfService, Named, UnknownName};
use traffic_model::reading::{Reading, SensorId};

/// Where an event stands in the classification queue.
#[derive(EnumString, Display, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case", const_into_str)]
#[strum(parse_err_ty = UnknownName, parse_err_fn = UnknownName::of::<Self>)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting to be classified (also between retries).
    Pending,
    /// Claimed by a worker. Its lease may run out before a result comes back: the next claim
    /// then takes the event over.
    Processing,
    /// Classified; the classification is attached.
    Classified,
    /// Given up after repeated permanent failures; `last_error` says why.
    Failed,
}

impl Named for Status {
    const KIND: &'static str = "status";
}

/// A stored reading with its classification and queue state.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Event {
    pub id: i64,
    #[serde(flatten)]
    pub reading: Reading,
    /// When the service accepted the reading.
    pub received_at: DateTime<Utc>,
    pub status: Status,
    /// The latest classification; null until the event is first classified.
    pub classification: Option<Classification>,
    pub classified_at: Option<DateTime<Utc>>,
    /// Where the event stands in the classification queue: what an operator chasing a stuck or
    /// failed event needs, kept apart from what a reader of the traffic wants.
    pub processing: Processing,
}

/// An event's place in the classification queue.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Processing {
    /// Classification attempts so far.
    pub attempts: u32,
    /// When a pending event is next due, or a processing event's lease expires; null once
    /// the event is classified (and not queued again).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Queued again by hand: the next classification goes through `classify_by_id`.
    pub requeued: bool,
}

/// The outcome of storing one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted {
    pub event: Event,
    /// The reading was already stored (same sensor, lane and time); `event` is the first copy.
    pub duplicate: bool,
}

/// Filters for the newest-first listing; all optional and combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub sensor_id: Option<SensorId>,
    /// Inclusive lower bound on `observed_at`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `observed_at`.
    pub to: Option<DateTime<Utc>>,
    pub status: Option<Status>,
    pub label: Option<Label>,
}

/// One page of a listing and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Event>,
    pub next_cursor: Option<Cursor>,
}

/// Number of events in each queue status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct StatusCounts {
    pub pending: u64,
    pub processing: u64,
    pub classified: u64,
    pub failed: u64,
}

impl StatusCounts {
    #[cfg(feature = "test-util")]
    pub(super) fn add(&mut self, status: Status, n: u64) {
        match status {
            Status::Pending => self.pending += n,
            Status::Processing => self.processing += n,
            Status::Classified => self.classified += n,
            Status::Failed => self.failed += n,
        }
    }

    pub fn get(&self, status: Status) -> u64 {
        match status {
            Status::Pending => self.pending,
            Status::Processing => self.processing,
            Status::Classified => self.classified,
            Status::Failed => self.failed,
        }
    }
}

/// How a set of readings was labelled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LabelCounts {
    /// Classified readings, by congestion label (labels with none left out).
    pub counts_by_label: BTreeMap<Label, u64>,
    /// Readings not classified yet.
    pub unclassified: u64,
}

/// The columns of a stored reading in table `$table` (`events`, or the `event_states` view),
/// in the order of [`StoredRow`]'s fields.
macro_rules! stored_columns {
    ($table:ident) => {
        (
            $table::id,
            $table::sensor_id,
            $table::observed_at,
            $table::interval_s,
            $table::lane,
            $table::vehicle_count,
            $table::avg_speed_kmh,
            $table::occupancy_pct,
            $table::speed_limit_kmh,
            $table::lanes,
            $table::received_at,
        )
    };
}

/// Every column of the `event_states` view, in the order of [`EventRow`]'s fields.
macro_rules! event_columns {
    () => {
        (
            stored_columns!(event_states),
            event_states::status,
            event_states::label,
            event_states::level_of_service,
            event_states::flow_veh_h_lane,
            event_states::density_veh_km_lane,
            event_states::confidence,
            event_states::flags,
            event_states::reasons,
            event_states::classifier_version,
            event_states::classified_at,
            event_states::attempts,
            event_states::next_attempt_at,
            event_states::last_error,
            event_states::requeued,
        )
    };
}

/// A stored reading: one `events` row as both backends return it (by name too, for the
/// statements written as SQL).
#[derive(Debug, Queryable, diesel::QueryableByName)]
pub(super) struct StoredRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub sensor_id: String,
    #[diesel(sql_type = UtcTime)]
    pub observed_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub interval_s: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::SmallInt>)]
    pub lane: Option<i16>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub vehicle_count: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub avg_speed_kmh: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub occupancy_pct: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::SmallInt>)]
    pub speed_limit_kmh: Option<i16>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::SmallInt>)]
    pub lanes: Option<i16>,
    #[diesel(sql_type = UtcTime)]
    pub received_at: DateTime<Utc>,
}

/// One `event_states` row: a reading with its classification and queue state.
#[derive(Debug, Queryable)]
pub(super) struct EventRow {
    pub stored: StoredRow,
    pub status: String,
    pub label: Option<String>,
    pub level_of_service: Option<String>,
    pub flow_veh_h_lane: Option<f64>,
    pub density_veh_km_lane: Option<f64>,
    pub confidence: Option<f64>,
    pub flags: Option<Value>,
    pub reasons: Option<Value>,
    pub classifier_version: Option<String>,
    pub classified_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub requeued: bool,
}

impl StoredRow {
    /// The unique key of the reading this row stores.
    pub fn key(&self) -> ReadingKey {
        (self.sensor_id.clone(), self.lane, self.observed_at)
    }

    pub fn into_reading(self) -> Result<Reading, StoreError> {
        Reading::from_stored(
            self.sensor_id,
            self.observed_at,
            self.interval_s.into(),
            self.lane.map(i64::from),
            self.vehicle_count.into(),
            self.avg_speed_kmh,
            self.occupancy_pct,
            self.speed_limit_kmh.map(i64::from),
            self.lanes.map(i64::from),
        )
        .map_err(|e| StoreError::CorruptRow {
            id: self.id,
            reason: e.to_string(),
        })
    }
}

impl EventRow {
    /// A reading just stored: queued (by the insert's trigger), due at once, never tried.
    pub fn fresh(stored: StoredRow) -> Self {
        let due = stored.received_at;
        Self {
            stored,
            status: Status::Pending.into_str().to_owned(),
            label: None,
            level_of_service: None,
            flow_veh_h_lane: None,
            density_veh_km_lane: None,
            confidence: None,
            flags: None,
            reasons: None,
            classifier_version: None,
            classified_at: None,
            attempts: 0,
            next_attempt_at: Some(due),
            last_error: None,
            requeued: false,
        }
    }
}

/// `(sensor_id, lane, observed_at)`: what makes a reading the same reading.
pub(super) type ReadingKey = (String, Option<i16>, DateTime<Utc>);

pub(super) fn reading_key(reading: &Reading) -> ReadingKey {
    (
        reading.sensor_id().as_str().to_owned(),
        reading.lane().map(i16::from),
        reading.observed_at(),
    )
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        let id = row.stored.id;
        let received_at = row.stored.received_at;
        let corrupt = |reason: String| StoreError::CorruptRow { id, reason };
        let reading = row.stored.into_reading()?;
        let status = row
            .status
            .parse()
            .map_err(|e: UnknownName| corrupt(e.to_string()))?;
        let classification = match row.label {
            None => None,
            Some(label) => Some(Classification {
                label: label
                    .parse()
                    .map_err(|e: UnknownName| corrupt(e.to_string()))?,
                level_of_service: row
                    .level_of_service
                    .map(|los| los.parse::<LevelOfService>())
                    .transpose()
                    .map_err(|e| corrupt(e.to_string()))?,
                flow_veh_h_lane: row.flow_veh_h_lane.unwrap_or_default(),
                density_veh_km_lane: row.density_veh_km_lane,
                confidence: row.confidence.unwrap_or_default(),
                flags: json_list(row.flags).map_err(|e| corrupt(format!("flags: {e}")))?,
                reasons: json_list(row.reasons).map_err(|e| corrupt(format!("reasons: {e}")))?,
                classifier_version: row.classifier_version.unwrap_or_default(),
            }),
        };
        Ok(Event {
            id,
            reading,
            received_at,
            status,
            classification,
            classified_at: row.classified_at,
            processing: Processing {
                attempts: u32::try_from(row.attempts).map_err(|e| corrupt(e.to_string()))?,
                next_attempt_at: row.next_attempt_at,
                last_error: row.last_error,
                requeued: row.requeued,
            },
        })
    }
}

fn json_list<T: serde::de::DeserializeOwned>(
    value: Option<Value>,
) -> Result<Vec<T>, serde_json::Error> {
    value
        .map(serde_json::from_value)
        .transpose()
        .map(Option::unwrap_or_default)
}

pub(super) fn to_events(rows: Vec<EventRow>) -> Result<Vec<Event>, StoreError> {
    rows.into_iter().map(Event::try_from).collect()
}

#[cfg(test)]
mod tests {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::Serialize;
    use traffic_model::classification::Flag;

    use super::*;

    /// The name a column stores, `Display` and parsing are the JSON name of every value, and an
    /// unknown name is refused in words.
    fn names_agree<T>(kind: &str)
    where
        T: VariantArray + Copy + PartialEq + std::fmt::Debug + Serialize + Display,
        T: FromStr<Err = UnknownName> + Into<&'static str>,
    {
        for &value in T::VARIANTS {
            let json = serde_json::to_value(value).unwrap();
            let name: &'static str = value.into();
            assert_eq!(json, name);
            assert_eq!(value.to_string(), name);
            assert_eq!(name.parse::<T>(), Ok(value));
            let shouted = name.to_uppercase();
            if shouted != name {
                assert!(shouted.parse::<T>().is_err(), "{shouted}");
            }
        }
        let error = "bogus".parse::<T>().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("\"bogus\" is not a known {kind}")
        );
    }

    #[test]
    fn stored_names_are_the_json_names() {
        names_agree::<Status>("status");
        names_agree::<Label>("label");
        names_agree::<LevelOfService>("level of service");
        names_agree::<Flag>("flag");
        assert_eq!(Status::VARIANTS.len(), 4);
        assert_eq!(LevelOfService::VARIANTS.first(), Some(&LevelOfService::A));
    }
}
