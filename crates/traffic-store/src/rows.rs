//! Column groups that several read-side rows share, declared once and embedded by name
//! (`#[diesel(embed)]`) in the rows of raw-SQL queries on either backend.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Double, Integer, Nullable, SmallInt, Text};
use traffic_model::reading::SensorId;

use super::StoreError;
use super::decode::Decode;
use super::sql_time::UtcTime;

/// A reading's lane and time: `sensor_id`, `lane`, `observed_at`.
#[derive(QueryableByName)]
pub(super) struct LaneAt {
    #[diesel(sql_type = Text)]
    pub sensor_id: String,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub lane: Option<i16>,
    #[diesel(sql_type = UtcTime)]
    pub observed_at: DateTime<Utc>,
}

impl LaneAt {
    /// The sensor and lane, checked.
    pub fn decode(&self, d: &Decode) -> Result<(SensorId, Option<u8>), StoreError> {
        Ok((d.sensor_id(&self.sensor_id)?, d.lane(self.lane)?))
    }
}

/// What a reading counted: `interval_s`, `vehicle_count`, `avg_speed_kmh`, `occupancy_pct`.
#[derive(QueryableByName)]
pub(super) struct Counted {
    #[diesel(sql_type = Integer)]
    pub interval_s: i32,
    #[diesel(sql_type = Integer)]
    pub vehicle_count: i32,
    #[diesel(sql_type = Nullable<Double>)]
    pub avg_speed_kmh: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub occupancy_pct: Option<f64>,
}
