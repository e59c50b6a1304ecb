//! `/v1/sensors`: what a dashboard polls — each sensor's latest state.

use actix_web::HttpResponse;
use actix_web::web::Data;
use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use traffic_model::reading::SensorId;
use traffic_store::{Event, LabelCounts};

use crate::app::AppState;
use crate::params::{Bounded, PageSize, Path};
use crate::problem::{Kind, Problem};
use crate::query::Query;

const DEFAULT_WINDOW_MINUTES: usize = 60;
/// A month of 31 days.
const MAX_WINDOW_MINUTES: usize = 31 * 24 * 60;

/// One page of sensors with their latest event.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SensorPage {
    pub items: Vec<SensorState>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SensorState {
    pub sensor_id: String,
    /// The sensor's latest reading (any lane) with its classification.
    pub latest: Event,
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
}

/// `GET /v1/sensors?limit=&after=`: sensors in id order.
pub async fn list(
    state: Data<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = query.limit.get();
    // One more than the page tells whether another page exists.
    let mut latest = state
        .store
        .latest_per_sensor(limit + 1, query.after)
        .await?;
    let more = latest.len() > limit;
    latest.truncate(limit);
    let next_after = more
        .then(|| latest.last().map(|e| e.reading.sensor_id().to_string()))
        .flatten();
    let items = latest
        .into_iter()
        .map(|event| SensorState {
            sensor_id: event.reading.sensor_id().to_string(),
            latest: event,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SensorPage { items, next_after }))
}

/// One sensor's state and how its traffic was labelled over a window.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SensorSummary {
    pub sensor_id: String,
    pub latest: Event,
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

/// `GET /v1/sensors/{sensor_id}?window_minutes=60`.
pub async fn get(
    state: Data<AppState>,
    Path(sensor_id): Path<SensorId>,
    Query(query): Query<SummaryQuery>,
) -> Result<HttpResponse, Problem> {
    let store = &state.store;
    let latest = store
        .latest_of_sensor(sensor_id.clone())
        .await?
        .ok_or_else(|| {
            Problem::new(
                Kind::NotFound,
                format!("no readings from sensor {sensor_id}"),
            )
        })?;
    let to = Utc::now();
    // At most MAX_WINDOW_MINUTES: the cast cannot wrap.
    let from = to - TimeDelta::minutes(query.window_minutes.get() as i64);
    let counts = store.label_counts(sensor_id.clone(), from, to).await?;
    Ok(HttpResponse::Ok().json(SensorSummary {
        sensor_id: sensor_id.to_string(),
        latest,
        window: Window { from, to },
        counts,
    }))
}
