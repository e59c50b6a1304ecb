//! The store's upkeep beside classification, each task on its own period: the queue table's
//! vacuum, the building of closed rollup spans, and the day partitions and retention.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use traffic_store::{Store, StoreError};

use crate::retention::{RetentionSettings, Upkeep};

/// Dead queue rows worth a vacuum: a few seconds of classification at full speed, a pass over a
/// table that small takes milliseconds.
const QUEUE_VACUUM_MIN_DEAD: i64 = 20_000;

/// Rows changed in a day partition (and at least a tenth of it) before it is analysed again:
/// as often as autovacuum would on a small partition, far less on a large one.
const PARTITION_ANALYZE_MIN_CHANGED: i64 = 10_000;

/// How long a rollup span stays open after its end: most readings of it have arrived by then
/// (those that come later are added to the built span as they are classified).
const ROLLUP_SETTLE: TimeDelta = TimeDelta::minutes(10);

/// Most rollup time built in one transaction, so that catching up on a large backlog holds
/// the watermark lock (and the classifications waiting for it) only briefly at a time.
const ROLLUP_STEP: TimeDelta = TimeDelta::hours(6);

/// Runs `task` every `period` until `shutdown`, each run in a span named `name`; a failure is
/// logged and the next run tries again.
async fn periodically<F, Fut>(
    name: &'static str,
    period: Duration,
    shutdown: CancellationToken,
    mut task: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        run_once(name, task()).await;
    }
}

/// Runs one pass of task `name` in a span of its own; a failure is logged.
async fn run_once(name: &'static str, pass: impl Future<Output = Result<(), StoreError>>) {
    let span = tracing::debug_span!("maintenance", task = name);
    if let Err(e) = pass.instrument(span).await {
        tracing::warn!(task = name, error = %service_kit::telemetry::error_chain(&e), "maintenance failed");
    }
}

/// Keeps the queue table small while its rows are classified (see [`Store::vacuum_queue`]),
/// and the statistics of the day partitions being written current (see
/// [`Store::analyze_partitions`]).
pub async fn vacuum_queue(store: Store, period: Duration, shutdown: CancellationToken) {
    periodically("queue_vacuum", period, shutdown, || async {
        if store.vacuum_queue(QUEUE_VACUUM_MIN_DEAD).await? {
            tracing::debug!("vacuumed the queue table");
        }
        let analyzed = store
            .analyze_partitions(PARTITION_ANALYZE_MIN_CHANGED)
            .await?;
        if analyzed > 0 {
            tracing::debug!(analyzed, "analysed day partitions");
        }
        Ok(())
    })
    .await;
}

/// Creates the day partitions ahead and removes what has expired (see
/// [`crate::retention::upkeep`]), at start and then every period; replicas doing it at once
/// take turns in the database.
pub async fn upkeep(store: Store, settings: RetentionSettings, shutdown: CancellationToken) {
    let pass = || async {
        let done = crate::retention::upkeep(&store, &settings, Utc::now()).await?;
        if done != Upkeep::default() {
            tracing::info!(?done, "upkeep: partitions created, expired data removed");
        }
        Ok(())
    };
    run_once("upkeep", pass()).await;
    periodically("upkeep", settings.period, shutdown, pass).await;
}

/// Builds the rollup spans that have closed (see [`Store::build_rollups`]), catching up a step
/// at a time; replicas share the work (one builds while the others skip).
pub async fn build_rollups(store: Store, period: Duration, shutdown: CancellationToken) {
    periodically("rollup_build", period, shutdown, || async {
        build_closed_rollups(&store).await.map(drop)
    })
    .await;
}

/// Builds every closed rollup span not built yet, a step at a time; returns the last
/// watermark it set (`None`: nothing was due, or another replica was building).
pub async fn build_closed_rollups(store: &Store) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut last = None;
    while let Some(built_until) = store
        .build_rollups(Utc::now() - ROLLUP_SETTLE, ROLLUP_STEP)
        .await?
    {
        tracing::debug!(%built_until, "built rollups");
        last = Some(built_until);
    }
    Ok(last)
}
