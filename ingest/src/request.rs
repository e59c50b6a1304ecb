//! One tracing span per request, carrying a request id (the caller's `X-Request-Id` when it is
//! sane, else a fresh one), echoed in the response; request counts and latency per route.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Data;
use rand::Rng;
use tracing::Instrument;

use crate::app::AppState;
use crate::metrics::Metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The middleware (`actix_web::middleware::from_fn(request::observe)`).
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane(id))
        .map(str::to_owned)
        .unwrap_or_else(new_id);
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = Metrics::method_label(request.method());
    let state = request.app_data::<Data<AppState>>().cloned();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        status = tracing::field::Empty,
    );
    let mut response = next.call(request).instrument(span.clone()).await?;
    let status = response.status();
    span.record("status", status.as_u16());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(state) = state {
        let metrics = &state.metrics;
        metrics
            .requests
            .with_label_values(&[&route, method, status.as_str()])
            .inc();
        metrics
            .latency
            .with_label_values(&[&route, method])
            .observe(started.elapsed().as_secs_f64());
        if status == actix_web::http::StatusCode::REQUEST_TIMEOUT {
            metrics.body_timeouts.inc();
        }
    }
    if status.is_server_error() {
        span.in_scope(|| tracing::warn!(status = status.as_u16(), "request failed"));
    } else {
        span.in_scope(|| tracing::debug!(status = status.as_u16(), "request served"));
    }
    Ok(response)
}

/// 1–128 visible ASCII characters: safe to log and echo.
fn is_sane(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

fn new_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}
