//! `GET /v1/state`: the network at a moment — each sensor lane's latest classification.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::Deserialize;
use traffic_model::classification::Label;
use traffic_store::NetworkFilter;

use crate::app::AppState;
use crate::cache::{Scope, View};
use crate::negotiate::{self, Representation};
use crate::params::{BoundingBox, Road, Timestamp};
use crate::problem::Problem;
use crate::query::Query;
use crate::{csv_body, geojson};

/// The parameters of `GET /v1/state`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    /// The moment (RFC 3339); now when absent. Each lane's latest reading observed at or
    /// before it counts.
    at: Option<Timestamp>,
    /// Only sensors on this road (their metadata's `road`)
    road: Option<Road>,
    /// Only sensors inside this box (their metadata's `location`)
    bbox: Option<BoundingBox>,
    /// Only lanes with this label
    label: Option<Label>,
    /// Only lanes whose classification has flags (true) or has none (false)
    flagged: Option<bool>,
}

/// What the state answers in.
pub const FORMATS: &[Representation] = &[
    Representation::Json,
    Representation::Csv,
    Representation::GeoJson,
];

/// `GET /v1/state?at=&road=&bbox=&label=&flagged=`.
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    Query(query): Query<StateQuery>,
) -> Result<HttpResponse, Problem> {
    let format = negotiate::choose(&request, FORMATS)?;
    // Ages count from `at`, or from now when it is absent.
    let view = View::of(
        &request,
        Scope::Network,
        format.media_type(),
        query.at.is_none(),
    );
    state
        .cache
        .respond(&request, view, || network(&state, format, query))
        .await
}

async fn network(
    state: &AppState,
    format: Representation,
    query: StateQuery,
) -> Result<HttpResponse, Problem> {
    let at = query.at.map(|t| t.0);
    let network = state.store.network_state(at, &query.filter()).await?;
    match format {
        Representation::Csv => csv_body::response(&network.items, None),
        Representation::GeoJson => geojson::state(&network),
        _ => Ok(HttpResponse::Ok().json(network)),
    }
}

impl StateQuery {
    fn filter(self) -> NetworkFilter {
        NetworkFilter {
            id_prefix: None,
            road: self.road,
            bbox: self.bbox,
            label: self.label,
            flagged: self.flagged,
        }
    }
}
