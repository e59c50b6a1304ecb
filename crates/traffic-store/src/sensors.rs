//! Sensor metadata: a `sensors` row per sensor that has any (the rules of each value are
//! `traffic_model::sensor`'s). A sensor that only sends readings has no row and still exists.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, Queryable};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use traffic_model::reading::SensorId;
use traffic_model::sensor::{Location, MetadataError, SensorMetadata};

use super::{Store, StoreError};

/// Sensor ids per metadata query.
const METADATA_CHUNK: usize = 500;

/// A sensor's metadata as stored.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Sensor {
    pub sensor_id: SensorId,
    #[serde(flatten)]
    pub metadata: SensorMetadata,
    /// When the metadata last changed.
    pub updated_at: DateTime<Utc>,
}

/// Every column of `sensors`, in [`SensorRow`]'s order.
macro_rules! sensor_columns {
    () => {
        (
            sensors::sensor_id,
            sensors::name,
            sensors::road,
            sensors::direction,
            sensors::lon,
            sensors::lat,
            sensors::lanes,
            sensors::speed_limit_kmh,
            sensors::free_flow_speed_kmh,
            sensors::effective_vehicle_length_m,
            sensors::time_zone,
            sensors::updated_at,
        )
    };
}

/// The values of every column but the key, against whichever `sensors` module is in scope.
macro_rules! sensor_values {
    ($metadata:expr, $now:expr) => {{
        let m: &SensorMetadata = $metadata;
        (
            sensors::name.eq(m.name.clone()),
            sensors::road.eq(m.road.clone()),
            sensors::direction.eq(m.direction.clone()),
            sensors::lon.eq(m.location.map(|l| l.lon)),
            sensors::lat.eq(m.location.map(|l| l.lat)),
            sensors::lanes.eq(m.lanes.map(i16::from)),
            sensors::speed_limit_kmh.eq(m.speed_limit_kmh.map(|v| v as i16)),
            sensors::free_flow_speed_kmh.eq(m.free_flow_speed_kmh),
            sensors::effective_vehicle_length_m.eq(m.effective_vehicle_length_m),
            sensors::time_zone.eq(m.time_zone.clone()),
            sensors::updated_at.eq($now),
        )
    }};
}

/// Writes `$metadata` as sensor `$id`'s row, inserted or replacing the one there.
macro_rules! upsert_sensor {
    ($conn:ident, $id:expr, $metadata:expr, $now:expr, $($await:tt)*) => {{
        let values = sensor_values!($metadata, $now);
        diesel::insert_into(sensors::table)
            .values((sensors::sensor_id.eq($id), values.clone()))
            .on_conflict(sensors::sensor_id)
            .do_update()
            .set(values)
            .execute($conn)
            $($await)*?
    }};
}

/// One `sensors` row as both backends return it.
#[derive(Debug, Queryable)]
struct SensorRow {
    sensor_id: String,
    name: Option<String>,
    road: Option<String>,
    direction: Option<String>,
    lon: Option<f64>,
    lat: Option<f64>,
    lanes: Option<i16>,
    speed_limit_kmh: Option<i16>,
    free_flow_speed_kmh: Option<f64>,
    effective_vehicle_length_m: Option<f64>,
    time_zone: Option<String>,
    updated_at: DateTime<Utc>,
}

impl SensorRow {
    fn metadata(&self) -> SensorMetadata {
        SensorMetadata {
            name: self.name.clone(),
            road: self.road.clone(),
            direction: self.direction.clone(),
            location: self
                .lon
                .zip(self.lat)
                .map(|(lon, lat)| Location { lon, lat }),
            lanes: self.lanes.and_then(|v| u8::try_from(v).ok()),
            speed_limit_kmh: self.speed_limit_kmh.and_then(|v| u16::try_from(v).ok()),
            free_flow_speed_kmh: self.free_flow_speed_kmh,
            effective_vehicle_length_m: self.effective_vehicle_length_m,
            time_zone: self.time_zone.clone(),
        }
    }

    fn into_sensor(self) -> Result<Sensor, StoreError> {
        let metadata = self.metadata();
        let sensor_id =
            SensorId::parse(&self.sensor_id).map_err(|rule| StoreError::CorruptRow {
                id: 0,
                reason: format!("sensor {:?}: {rule}", self.sensor_id),
            })?;
        Ok(Sensor {
            sensor_id,
            metadata,
            updated_at: self.updated_at,
        })
    }
}

/// How a write changes a sensor's metadata.
enum Change {
    /// `PUT`: the whole document.
    Replace(SensorMetadata),
    /// `PATCH`: a JSON Merge Patch over what is stored (nothing, for a sensor without a row).
    Merge(Value),
}

impl Change {
    fn apply(self, stored: Option<&SensorRow>) -> Result<SensorMetadata, MetadataError> {
        match self {
            Change::Replace(metadata) => Ok(metadata),
            Change::Merge(patch) => stored
                .map(SensorRow::metadata)
                .unwrap_or_default()
                .patched(patch),
        }
    }
}

impl Store {
    /// Sensor `id`'s metadata, or `None` when none was ever stored.
    pub async fn sensor(&self, id: SensorId) -> Result<Option<Sensor>, StoreError> {
        self.run(move |store| async move {
            let row: Option<SensorRow> = with_conn!(store, |conn| {
                use diesel_async::RunQueryDsl;
                sensors::table
                    .select(sensor_columns!())
                    .filter(sensors::sensor_id.eq(id.as_str().to_owned()))
                    .first(conn)
                    .await
                    .optional()?
            });
            row.map(SensorRow::into_sensor).transpose()
        })
        .await
    }

    /// The metadata of those of `ids` that have any, by sensor id, a few hundred ids per
    /// query (SQLite binds each one).
    pub async fn metadata_of(
        &self,
        ids: impl IntoIterator<Item = SensorId>,
    ) -> Result<HashMap<SensorId, SensorMetadata>, StoreError> {
        let keys: Vec<String> = ids.into_iter().map(|id| id.as_str().to_owned()).collect();
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        self.run(move |store| async move {
            let mut found = HashMap::new();
            for chunk in keys.chunks(METADATA_CHUNK) {
                let rows: Vec<SensorRow> = with_conn!(store, |conn| {
                    use diesel_async::RunQueryDsl;
                    sensors::table
                        .select(sensor_columns!())
                        .filter(sensors::sensor_id.eq_any(chunk))
                        .load(conn)
                        .await?
                });
                for row in rows {
                    let sensor = row.into_sensor()?;
                    found.insert(sensor.sensor_id, sensor.metadata);
                }
            }
            Ok(found)
        })
        .await
    }

    /// Every sensor that has metadata, in id order.
    pub async fn all_sensors(&self) -> Result<Vec<Sensor>, StoreError> {
        self.run(move |store| async move {
            let rows: Vec<SensorRow> = with_conn!(store, |conn| {
                use diesel_async::RunQueryDsl;
                sensors::table
                    .select(sensor_columns!())
                    .order(sensors::sensor_id.asc())
                    .load(conn)
                    .await?
            });
            rows.into_iter().map(SensorRow::into_sensor).collect()
        })
        .await
    }

    /// The sensors whose metadata puts them on `road` (exactly), in id order.
    pub async fn sensors_on_road(&self, road: String) -> Result<Vec<SensorId>, StoreError> {
        self.run(move |store| async move {
            let ids: Vec<String> = with_conn!(store, |conn| {
                use diesel_async::RunQueryDsl;
                sensors::table
                    .select(sensors::sensor_id)
                    .filter(sensors::road.eq(road))
                    .order(sensors::sensor_id.asc())
                    .load(conn)
                    .await?
            });
            ids.iter()
                .map(|id| {
                    SensorId::parse(id).map_err(|rule| StoreError::CorruptRow {
                        id: 0,
                        reason: format!("sensor {id:?}: {rule}"),
                    })
                })
                .collect()
        })
        .await
    }

    /// Stores `metadata` as sensor `id`'s, replacing any it had. The sensor and whether its
    /// row is new.
    pub async fn put_sensor(
        &self,
        id: SensorId,
        metadata: SensorMetadata,
    ) -> Result<(Sensor, bool), StoreError> {
        self.write_sensor(id, Change::Replace(metadata)).await
    }

    /// Applies a JSON Merge Patch (RFC 7396) to sensor `id`'s metadata — to none, for a
    /// sensor that has none yet — and stores the result. A patch whose result breaks a rule is
    /// refused with [`StoreError::InvalidMetadata`] and changes nothing. Concurrent patches of
    /// one sensor apply one after the other: none is lost.
    pub async fn patch_sensor(
        &self,
        id: SensorId,
        patch: Value,
    ) -> Result<(Sensor, bool), StoreError> {
        self.write_sensor(id, Change::Merge(patch)).await
    }

    /// Reads the row under a lock (PostgreSQL: `FOR UPDATE`; SQLite: an IMMEDIATE transaction),
    /// applies the change and writes the result, in one transaction: concurrent writers of one
    /// sensor go one after the other.
    async fn write_sensor(
        &self,
        id: SensorId,
        change: Change,
    ) -> Result<(Sensor, bool), StoreError> {
        self.run(move |store| async move {
            let now = super::backend::now();
            let key = id.as_str().to_owned();
            let (metadata, created) = with_conn!(store, |conn|
                postgres: {
                    use diesel_async::{AsyncConnection, RunQueryDsl};
                    // FOR UPDATE locks only a row that exists: an empty row is inserted first
                    // (a concurrent first write waits on it), so that every writer reads the
                    // row under its lock. A refused change rolls the empty row back too.
                    conn.transaction(async |conn| {
                        let created = diesel::insert_into(sensors::table)
                            .values((sensors::sensor_id.eq(&key), sensors::updated_at.eq(now)))
                            .on_conflict_do_nothing()
                            .execute(conn)
                            .await?
                            == 1;
                        let stored: SensorRow = sensors::table
                            .select(sensor_columns!())
                            .filter(sensors::sensor_id.eq(&key))
                            .for_update()
                            .first(conn)
                            .await?;
                        let metadata =
                            change.apply(Some(&stored)).map_err(StoreError::InvalidMetadata)?;
                        upsert_sensor!(conn, &key, &metadata, now, .await);
                        Ok::<_, StoreError>((metadata, created))
                    })
                    .await?
                },
                sqlite: {
                    // A refused patch writes nothing, so its transaction may commit as it is.
                    let written = conn.spawn_blocking(move |conn| {
                        use diesel::RunQueryDsl;
                        conn.immediate_transaction(|conn| {
                            let stored: Option<SensorRow> = sensors::table
                                .select(sensor_columns!())
                                .filter(sensors::sensor_id.eq(&key))
                                .first(conn)
                                .optional()?;
                            let metadata = match change.apply(stored.as_ref()) {
                                Ok(metadata) => metadata,
                                Err(invalid) => return Ok(Err(invalid)),
                            };
                            upsert_sensor!(conn, &key, &metadata, now,);
                            Ok(Ok((metadata, stored.is_none())))
                        })
                    })
                    .await?;
                    written.map_err(StoreError::InvalidMetadata)?
                }
            );
            Ok((
                Sensor {
                    sensor_id: id,
                    metadata,
                    updated_at: now,
                },
                created,
            ))
        })
        .await
    }
}
