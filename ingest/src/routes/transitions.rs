//! `GET /v1/transitions`: every change of a lane's label in a window — the incident timeline.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use traffic_model::reading::SensorId;
use traffic_store::{Cursor, Transition, TransitionQuery};

use crate::app::AppState;
use crate::csv_body;
use crate::negotiate::{self, Representation};
use crate::params::{self, PageSize, Road, Timestamp};
use crate::problem::Problem;
use crate::query::Query;

/// The longest window one request may span: 31 days.
const MAX_WINDOW: TimeDelta = TimeDelta::days(31);
/// The window when `from` is absent: the hour before `to`.
const DEFAULT_WINDOW: TimeDelta = TimeDelta::hours(1);

/// The order of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first
    #[default]
    Asc,
    /// Newest first
    Desc,
}

/// The parameters of `GET /v1/transitions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionsQuery {
    /// Changes observed at or after (RFC 3339); an hour before `to` when absent
    from: Option<Timestamp>,
    /// Changes observed before (RFC 3339); now when absent. At most 31 days after `from`
    to: Option<Timestamp>,
    /// Only this sensor
    sensor_id: Option<SensorId>,
    /// Only sensors on this road (their metadata's `road`)
    road: Option<Road>,
    /// `asc` (oldest first, the default) or `desc`
    #[serde(default)]
    order: Order,
    /// Page size
    #[serde(default)]
    limit: PageSize,
    /// next_cursor of the previous page
    cursor: Option<Cursor>,
}

/// One page of label changes.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TransitionPage {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub items: Vec<Transition>,
    /// Pass as `cursor` (with the same filters) for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What the transitions answer in.
pub const FORMATS: &[Representation] = &[Representation::Json, Representation::Csv];

/// `GET /v1/transitions?from&to&sensor_id&road&order&limit&cursor`.
pub async fn list(
    state: Data<AppState>,
    request: HttpRequest,
    Query(query): Query<TransitionsQuery>,
) -> Result<HttpResponse, Problem> {
    let format = negotiate::choose(&request, FORMATS)?;
    let (from, to) = params::window(query.from, query.to, DEFAULT_WINDOW, MAX_WINDOW)?;
    let mut sensors = match query.road {
        Some(Road(road)) => Some(state.store.sensors_on_road(road).await?),
        None => None,
    };
    if let Some(id) = query.sensor_id {
        sensors = Some(match sensors {
            Some(on_road) => on_road.into_iter().filter(|s| *s == id).collect(),
            None => vec![id],
        });
    }
    let page = if sensors.as_ref().is_some_and(Vec::is_empty) {
        traffic_store::TransitionPage {
            items: Vec::new(),
            next: None,
        }
    } else {
        state
            .store
            .transitions(TransitionQuery {
                from,
                to,
                sensors,
                newest_first: query.order == Order::Desc,
                after: query.cursor,
                limit: query.limit.get(),
            })
            .await?
    };
    let next_cursor = page.next.map(|c| c.encode());
    if format == Representation::Csv {
        let next = next_cursor.map(|c| csv_body::next_page(&request, "cursor", &c));
        return csv_body::response(&page.items, next);
    }
    Ok(HttpResponse::Ok().json(TransitionPage {
        from,
        to,
        items: page.items,
        next_cursor,
    }))
}
