//! `/v1/sensors`: what a dashboard polls — each sensor's latest state.

use std::collections::BTreeMap;

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use traffic_model::reading::SensorId;
use traffic_store::Event;

use crate::app::AppState;
use crate::auth::Access;
use crate::problem::{Kind, Problem};
use crate::query::QueryParams;

const DEFAULT_SENSORS: usize = 100;
const MAX_SENSORS: usize = 1000;
const DEFAULT_WINDOW_MINUTES: i64 = 60;
const MAX_WINDOW_MINUTES: i64 = 31 * 24 * 60;

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

/// `GET /v1/sensors?limit=&after=`: sensors in id order.
pub async fn list(
    state: Data<AppState>,
    request: HttpRequest,
    mut query: QueryParams,
) -> Result<HttpResponse, Problem> {
    state.auth.check(&request, Access::Read)?;
    let limit = query.integer("limit", 1..=MAX_SENSORS, DEFAULT_SENSORS);
    let after = query.parsed("after", SensorId::parse);
    query.finish("limit, after")?;
    // One more than the page tells whether another page exists.
    let mut latest = state.store.latest_per_sensor(limit + 1, after).await?;
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
    /// Readings observed in the window, by congestion label.
    pub counts_by_label: BTreeMap<String, u64>,
    /// Readings observed in the window and not classified yet.
    pub unclassified: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// `GET /v1/sensors/{sensor_id}?window_minutes=60`.
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    mut query: QueryParams,
) -> Result<HttpResponse, Problem> {
    state.auth.check(&request, Access::Read)?;
    // The router leaves `%2F` encoded (a `/` inside a segment); ids may contain `/`.
    let raw = percent_decode(request.match_info().get("sensor_id").unwrap_or_default());
    let sensor_id = SensorId::parse(&raw).map_err(|rule| {
        Problem::new(
            Kind::NotFound,
            format!("no sensor {raw:?}: a sensor id {rule}"),
        )
    })?;
    let minutes = query.integer(
        "window_minutes",
        1..=MAX_WINDOW_MINUTES,
        DEFAULT_WINDOW_MINUTES,
    );
    query.finish("window_minutes")?;

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
    let from = to - TimeDelta::minutes(minutes);
    let counts = store.label_counts(sensor_id.clone(), from, to).await?;
    let mut counts_by_label = BTreeMap::new();
    let mut unclassified = 0;
    for (label, n) in counts {
        match label {
            Some(label) => {
                counts_by_label.insert(label.to_string(), n);
            }
            None => unclassified += n,
        }
    }
    Ok(HttpResponse::Ok().json(SensorSummary {
        sensor_id: sensor_id.to_string(),
        latest,
        window: Window { from, to },
        counts_by_label,
        unclassified,
    }))
}

/// Decodes `%XX` escapes; malformed ones are kept as they are (and then fail the id rule).
fn percent_decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn escapes_are_decoded_and_malformed_ones_kept() {
        assert_eq!(percent_decode("ring%2F12:north"), "ring/12:north");
        assert_eq!(percent_decode("a%2fb"), "a/b");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("x%zz"), "x%zz");
    }
}
