//! `/v1/sensors`: what a dashboard polls — each sensor, where it is and its lanes' latest state.

use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use traffic_model::classification::Label;
use traffic_model::document::Document;
use traffic_model::reading::SensorId;
use traffic_model::sensor::{MetadataError, SensorMetadata};
use traffic_store::{
    AgedLane, Event, LabelCounts, NetworkFilter, Sensor, SensorListing, SensorListingPage,
};

use crate::app::AppState;
use crate::body::{self, Format};
use crate::cache::{Scope, View};
use crate::geojson;
use crate::negotiate::{self, Representation};
use crate::params::{Bounded, BoundingBox, PageSize, Path, Road};
use crate::problem::{Kind, Problem};
use crate::query::Query;

const DEFAULT_WINDOW_MINUTES: usize = 60;
/// A month of 31 days.
const MAX_WINDOW_MINUTES: usize = 31 * 24 * 60;

/// One page of sensors.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SensorPage {
    pub items: Vec<SensorListing>,
    /// Pass as `after` (with the same filters) for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// The parameters of `GET /v1/sensors`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size
    #[serde(default)]
    limit: PageSize,
    /// next_after of the previous page
    after: Option<SensorId>,
    /// Only sensors on this road (their metadata's `road`)
    road: Option<Road>,
    /// Only sensors inside this box (their metadata's `location`)
    bbox: Option<BoundingBox>,
    /// Only sensors with a lane whose latest classification has this label
    label: Option<Label>,
    /// Only sensors with a lane whose latest classification has flags (true), or with a lane
    /// without (false)
    flagged: Option<bool>,
}

/// What the sensor listing answers in.
pub const FORMATS: &[Representation] = &[Representation::Json, Representation::GeoJson];

/// `GET /v1/sensors?limit&after&road&bbox&label&flagged`: sensors in id order — those with
/// metadata and those with a classified reading.
pub async fn list(
    state: Data<AppState>,
    request: HttpRequest,
    Query(query): Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let format = negotiate::choose(&request, FORMATS)?;
    // Lanes carry their age: the clock changes the listing too.
    let view = View::of(&request, Scope::Network, format.media_type(), true);
    state
        .cache
        .respond(&request, view, || listing(&state, format, query))
        .await
}

async fn listing(
    state: &AppState,
    format: Representation,
    query: ListQuery,
) -> Result<HttpResponse, Problem> {
    let filter = NetworkFilter {
        id_prefix: None,
        road: query.road,
        bbox: query.bbox,
        label: query.label,
        flagged: query.flagged,
    };
    let SensorListingPage { items, next_after } = state
        .store
        .sensor_listing(&filter, query.after.as_ref(), query.limit.get())
        .await?;
    let next_after = next_after.map(|id| id.to_string());
    if format == Representation::GeoJson {
        return geojson::sensors(&items, next_after.as_deref());
    }
    Ok(HttpResponse::Ok().json(SensorPage { items, next_after }))
}

/// One sensor's state, what is known about it, and how its traffic was labelled over a window.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SensorSummary {
    pub sensor_id: String,
    /// The sensor's latest reading (any lane); null when it has sent none yet.
    pub latest: Option<Event>,
    /// Its metadata (`PUT /v1/sensors/{sensor_id}`); null when none was stored.
    pub metadata: Option<SensorMetadata>,
    /// When the metadata last changed; null without metadata.
    pub metadata_updated_at: Option<DateTime<Utc>>,
    /// Each lane's latest classified reading, by lane (a whole carriageway first).
    pub lanes: Vec<AgedLane>,
    pub window: Window,
    /// Readings observed in the window, by label and not classified yet.
    #[serde(flatten)]
    pub counts: LabelCounts,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The parameters of `GET /v1/sensors/{sensor_id}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// Window length, in minutes, ending now
    #[serde(default)]
    window_minutes: Bounded<1, MAX_WINDOW_MINUTES, DEFAULT_WINDOW_MINUTES>,
}

/// `GET /v1/sensors/{sensor_id}?window_minutes=60`: a sensor is known by its readings or by its
/// metadata.
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    Path(sensor_id): Path<SensorId>,
    Query(query): Query<SummaryQuery>,
) -> Result<HttpResponse, Problem> {
    // Its window ends now and its lanes carry their age: the clock changes it too.
    let view = View::of(
        &request,
        Scope::Sensor(sensor_id.clone()),
        "application/json",
        true,
    );
    state
        .cache
        .respond(&request, view, || summary(&state, sensor_id, query))
        .await
}

async fn summary(
    state: &AppState,
    sensor_id: SensorId,
    query: SummaryQuery,
) -> Result<HttpResponse, Problem> {
    let store = &state.store;
    let latest = store.latest_of_sensor(sensor_id.clone()).await?;
    let stored = store.sensor(sensor_id.clone()).await?;
    if latest.is_none() && stored.is_none() {
        return Err(Problem::new(
            Kind::NotFound,
            format!("no readings from sensor {sensor_id} and no metadata"),
        ));
    }
    let to = Utc::now();
    // At most MAX_WINDOW_MINUTES: the cast cannot wrap.
    let from = to - TimeDelta::minutes(query.window_minutes.get() as i64);
    let counts = store.label_counts(sensor_id.clone(), from, to).await?;
    let lanes = store
        .lane_states(None, Some(sensor_id.clone()))
        .await?
        .into_iter()
        .map(|lane| AgedLane::at(lane, to))
        .collect();
    let (metadata, metadata_updated_at) = match stored {
        Some(sensor) => (Some(sensor.metadata), Some(sensor.updated_at)),
        None => (None, None),
    };
    Ok(HttpResponse::Ok().json(SensorSummary {
        sensor_id: sensor_id.to_string(),
        latest,
        metadata,
        metadata_updated_at,
        lanes,
        window: Window { from, to },
        counts,
    }))
}

/// `PUT /v1/sensors/{sensor_id}`: the sensor's metadata, whole → 201 when it had none, 200 when
/// it replaced what it had. Readings need no metadata: a sensor exists from its first reading.
pub async fn put(
    state: Data<AppState>,
    request: HttpRequest,
    Path(sensor_id): Path<SensorId>,
    payload: Payload,
) -> Result<HttpResponse, Problem> {
    body::format(&request, &[Format::Json])?;
    let document = read_document(&state, &request, payload).await?;
    let metadata =
        SensorMetadata::from_json(document).map_err(|e| Problem::invalid_metadata(&e))?;
    let (sensor, created) = state.store.put_sensor(sensor_id.clone(), metadata).await?;
    state.cache.changed_sensor(&sensor_id).await;
    Ok(written(sensor, created))
}

/// `PATCH /v1/sensors/{sensor_id}`: a JSON Merge Patch (RFC 7396) of the sensor's metadata →
/// 201 when it had none, 200 otherwise; a result that breaks a rule changes nothing (422).
pub async fn patch(
    state: Data<AppState>,
    request: HttpRequest,
    Path(sensor_id): Path<SensorId>,
    payload: Payload,
) -> Result<HttpResponse, Problem> {
    body::format(&request, &[Format::MergePatch, Format::Json])?;
    let patch = read_document(&state, &request, payload).await?;
    let (sensor, created) = state.store.patch_sensor(sensor_id.clone(), patch).await?;
    state.cache.changed_sensor(&sensor_id).await;
    Ok(written(sensor, created))
}

/// The body as one JSON document with no member given twice.
async fn read_document(
    state: &AppState,
    request: &HttpRequest,
    payload: Payload,
) -> Result<Value, Problem> {
    let bytes = body::read(request, payload, state.limits.reading()).await?;
    Document::parse(&bytes)
        .map_err(super::events::malformed)?
        .unique()
        .map_err(|errors| Problem::invalid_metadata(&MetadataError { errors }))
}

fn written(sensor: Sensor, created: bool) -> HttpResponse {
    if created {
        HttpResponse::Created().json(sensor)
    } else {
        HttpResponse::Ok().json(sensor)
    }
}
