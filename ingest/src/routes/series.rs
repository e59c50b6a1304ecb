//! `GET /v1/sensors/{sensor_id}/series`: a sensor's readings summed up in time buckets.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{TimeDelta, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use traffic_model::reading::SensorId;
use traffic_model::series::{BucketSize, MAX_BUCKETS, MAX_WINDOW};
use traffic_store::SeriesOutcome;

use crate::app::AppState;
use crate::cache::{Scope, View};
use crate::csv_body;
use crate::negotiate::{self, Representation};
use crate::params::{self, Path, Timestamp};
use crate::problem::{Kind, Problem};
use crate::query::Query;

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
    // A window that ends in the settled past changes only by late writes; one that ends now
    // moves with the clock.
    let settled = query
        .to
        .is_some_and(|to| to.0 <= state.cache.settled_before(Utc::now()));
    let scope = if settled {
        Scope::History(sensor_id.clone())
    } else {
        Scope::Sensor(sensor_id.clone())
    };
    let view = View::of(&request, scope, format.media_type(), query.to.is_none());
    state
        .cache
        .respond(&request, view, || series(&state, sensor_id, format, query))
        .await
}

async fn series(
    state: &AppState,
    sensor_id: SensorId,
    format: Representation,
    query: SeriesQuery,
) -> Result<HttpResponse, Problem> {
    let (from, to) = params::window(query.from, query.to, DEFAULT_WINDOW, MAX_WINDOW)?;
    if query.lane.is_some_and(|lane| lane > 32) {
        return Err(Problem::invalid_query(
            "lane",
            "must be a lane number from 0 to 32",
        ));
    }
    let size = query.bucket.unwrap_or(BucketSize::FiveMinutes);
    let now = Utc::now();
    let outcome = match state
        .store
        .series_frame(sensor_id.clone(), query.lane, size, (from, to), MAX_BUCKETS)
        .await?
    {
        Some(frame) => {
            let buckets = state
                .cache
                .series_buckets(&state.store, &frame, now)
                .await?;
            state.store.finish_series(frame, buckets).await?
        }
        None => SeriesOutcome::TooManyBuckets,
    };
    let series = match outcome {
        SeriesOutcome::Series(series) => series,
        SeriesOutcome::TooManyBuckets => {
            return Err(Problem::invalid_query(
                "bucket",
                &format!(
                    "the window holds more than {MAX_BUCKETS} buckets of {size}: widen the bucket or narrow the window"
                ),
            ));
        }
        SeriesOutcome::BeforeRetention(readings_from) => {
            return Err(Problem::invalid_query(
                "from",
                &traffic_store::before_retention(readings_from),
            ));
        }
        SeriesOutcome::UnknownSensor => {
            return Err(Problem::new(
                Kind::NotFound,
                format!("no readings from sensor {sensor_id} and no metadata"),
            ));
        }
    };
    if format == Representation::Csv {
        return csv_body::response(&series.buckets, None);
    }
    Ok(HttpResponse::Ok().json(series))
}
