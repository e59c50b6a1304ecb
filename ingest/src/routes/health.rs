//! Probes and metrics: `/v1/health` (liveness, no I/O), `/v1/ready` (database reachable and
//! migrated; the classifier link and Redis reported, neither making it unready), `/metrics`
//! (Prometheus text).

use std::time::Duration;

use actix_web::web::Data;
use actix_web::{HttpResponse, http::header};
use schemars::JsonSchema;
use serde::Serialize;
use strum::VariantArray;
use traffic_store::Status;

use crate::app::AppState;
use crate::problem::{Kind, Problem};

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    pub status: &'static str,
}

/// `GET /v1/health`: the process is up.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// `postgres` or `sqlite`.
    pub database: &'static str,
    /// The classification workers' link to the classifier. A classifier that is down does not
    /// make the service unready: readings are still accepted and wait, pending.
    pub classifier: crate::classify::health::ClassifierStatus,
    /// `up`, or `degraded` when Redis does not answer (reads then come from the database, rate
    /// limits are counted in each process); absent without `REDIS_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<crate::redis::RedisStatus>,
}

/// `GET /v1/ready`: 200 when the database answers and its schema is current, else 503.
pub async fn ready(state: Data<AppState>) -> Result<HttpResponse, Problem> {
    let store = &state.store;
    let checked = tokio::time::timeout(PROBE_TIMEOUT, async {
        store.ping().await?;
        store.is_migrated().await
    })
    .await;
    let redis = match &state.redis {
        Some(redis) => Some(redis.probe().await),
        None => None,
    };
    match checked {
        Ok(Ok(true)) => Ok(HttpResponse::Ok().json(Readiness {
            status: "ready",
            database: store.config().url.backend_name(),
            classifier: state.classifier.status(),
            redis,
        })),
        Ok(Ok(false)) => Err(Problem::new(
            Kind::Unavailable,
            "the database schema is not migrated; run `ingest migrate`",
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = %service_kit::telemetry::error_chain(&e), "readiness check failed");
            Err(Problem::new(
                Kind::Unavailable,
                "the database does not answer",
            ))
        }
        Err(_) => Err(Problem::new(
            Kind::Unavailable,
            "the database did not answer in time",
        )),
    }
}

/// `GET /metrics`: Prometheus text exposition; queue depth is read at scrape time.
pub async fn metrics(state: Data<AppState>) -> Result<HttpResponse, Problem> {
    match tokio::time::timeout(PROBE_TIMEOUT, state.store.counts_by_status()).await {
        Ok(Ok(counts)) => {
            for &status in Status::VARIANTS {
                let depth = i64::try_from(counts.get(status)).unwrap_or(i64::MAX);
                state
                    .metrics
                    .queue_depth
                    .with_label_values(&[status.into_str()])
                    .set(depth);
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %service_kit::telemetry::error_chain(&e), "queue depth unavailable")
        }
        Err(_) => tracing::warn!("queue depth timed out"),
    }
    let text = state.metrics.render().map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(text))
}
