//! `GET /v1/sensors/{sensor_id}/series`: a sensor's readings summed up in time buckets.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use traffic_model::reading::SensorId;
use traffic_model::series::{self, Bucket, BucketSize, Plan};

use crate::app::AppState;
use crate::csv_body;
use crate::negotiate::{self, Representation};
use crate::params::{self, Path, Timestamp};
use crate::problem::{Kind, Problem};
use crate::query::Query;

/// Most buckets one answer holds (a week of minutes, a year and more of days).
pub const MAX_BUCKETS: usize = 10_080;
/// The longest window: a year and a day.
const MAX_WINDOW: TimeDelta = TimeDelta::days(366);
/// The window when `from` is absent: the day before `to`.
const DEFAULT_WINDOW: TimeDelta = TimeDelta::days(1);

/// The parameters of `GET /v1/sensors/{sensor_id}/series`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// Readings whose interval starts at or after (RFC 3339); a day before `to` when absent
    from: Option<Timestamp>,
    /// … and before (RFC 3339); now when absent. At most 366 days after `from`
    to: Option<Timestamp>,
    /// Bucket length: `1m`, `5m` (the default), `15m`, `1h`, or `1d` (local days in the
    /// sensor's time zone)
    bucket: Option<BucketSize>,
    /// Only this lane (0–32); every lane of the sensor when absent
    #[schemars(range(min = 0, max = 32))]
    lane: Option<u8>,
}

/// A sensor's series.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Series {
    pub sensor_id: String,
    pub bucket: BucketSize,
    /// The lane asked for; null: every lane of the sensor.
    pub lane: Option<u8>,
    /// The time zone buckets are aligned in: the sensor's (its metadata), else UTC.
    pub time_zone: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every bucket from the one holding `from` to the one holding the last instant before
    /// `to`, empty ones included.
    pub buckets: Vec<Bucket>,
}

/// What the series answers in.
pub const FORMATS: &[Representation] = &[Representation::Json, Representation::Csv];

/// `GET /v1/sensors/{sensor_id}/series?from&to&bucket&lane`.
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    Path(sensor_id): Path<SensorId>,
    Query(query): Query<SeriesQuery>,
) -> Result<HttpResponse, Problem> {
    let format = negotiate::choose(&request, FORMATS)?;
    let (from, to) = params::window(query.from, query.to, DEFAULT_WINDOW, MAX_WINDOW)?;
    if query.lane.is_some_and(|lane| lane > 32) {
        return Err(Problem::invalid_query(
            "lane",
            "must be a lane number from 0 to 32",
        ));
    }
    let size = query.bucket.unwrap_or(BucketSize::FiveMinutes);
    let store = &state.store;
    let sensor = store.sensor(sensor_id.clone()).await?;
    let zone = series::zone_or_utc(
        sensor
            .as_ref()
            .and_then(|s| s.metadata.time_zone.as_deref()),
    );
    let plan = Plan::new(size, zone, from, to, MAX_BUCKETS).ok_or_else(|| {
        Problem::invalid_query(
            "bucket",
            &format!("the window holds more than {MAX_BUCKETS} buckets of {size}: widen the bucket or narrow the window"),
        )
    })?;
    let sources = store
        .series_sources(sensor_id.clone(), query.lane, &plan)
        .await?;
    if sources.observations.is_empty()
        && sources.rollups.is_empty()
        && sensor.is_none()
        && store.latest_of_sensor(sensor_id.clone()).await?.is_none()
    {
        return Err(Problem::new(
            Kind::NotFound,
            format!("no readings from sensor {sensor_id} and no metadata"),
        ));
    }
    let buckets = plan.sum(&sources.observations, &sources.rollups);
    if format == Representation::Csv {
        return csv_body::response(&buckets, None);
    }
    Ok(HttpResponse::Ok().json(Series {
        sensor_id: sensor_id.to_string(),
        bucket: size,
        lane: query.lane,
        time_zone: zone.name().to_owned(),
        from,
        to,
        buckets,
    }))
}
