//! A classification worker: claim due events under a lease, classify them over MCP, write the
//! results back guarded by the lease. Fresh readings go out in `classify_batch` calls with
//! their sensors' recent history; re-queued events go through `classify_by_id`.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mcp_classifier::server::args::{MAX_BATCH_EVENTS, MAX_HISTORY};
use mcp_classifier::server::batch::{BatchItem, BatchOutput};
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use traffic_model::classification::Classification;
use traffic_model::reading::SensorId;
use traffic_store::{Event, LaneHistory, Retry, Store};

use super::connection::{CallError, Connection};
use super::{ClassifyConfig, ClassifyMetrics};
use crate::cache::Written;

/// How long a woken worker lets more readings arrive before claiming.
const WOKEN_GATHER: Duration = Duration::from_millis(10);

/// What happened to one event.
#[derive(Clone)]
enum Outcome {
    Classified(Classification),
    /// The classifier judged the reading itself: retried up to the attempt budget.
    Permanent(String),
    /// No verdict (transport, timeout, server error): retried without limit.
    Transient(String),
}

pub struct Worker {
    pub owner: String,
    /// The classifier shares the store: it loads the history and the sensors' metadata itself
    /// (`stored_history`, `stored_sites`) instead of receiving them in the call.
    pub shares_store: bool,
    /// Tells the live stream what was classified, and retires the cached views it changed.
    pub downstream: super::Downstream,
    pub store: Store,
    pub connection: Connection,
    pub config: ClassifyConfig,
    pub metrics: ClassifyMetrics,
    pub wake: Arc<Notify>,
    pub shutdown: CancellationToken,
}

impl Worker {
    pub async fn run(mut self) {
        tracing::info!(owner = %self.owner, "classification worker started");
        while !self.shutdown.is_cancelled() {
            let claimed = match self
                .store
                .claim(&self.owner, self.config.batch_size, self.config.lease)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %service_kit::telemetry::error_chain(&e), "claiming events failed");
                    self.pause(self.config.poll_interval).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                let idle = self.until_next_due().await;
                self.pause(idle).await;
                continue;
            }
            let full = claimed.len() >= self.config.batch_size;
            let span =
                tracing::info_span!("classify_job", owner = %self.owner, events = claimed.len());
            self.process(claimed).instrument(span).await;
            if !full {
                self.gather().await;
            }
        }
        tracing::info!(owner = %self.owner, "classification worker stopped");
    }

    /// How long to idle: until the next backoff or lease runs out, at most the poll interval.
    async fn until_next_due(&self) -> Duration {
        match self.store.next_due_at().await {
            Ok(Some(due)) => (due - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(10), self.config.poll_interval),
            _ => self.config.poll_interval,
        }
    }

    /// Sleeps until woken by new work, the safety-net poll interval, or shutdown.
    async fn pause(&self, interval: Duration) {
        tokio::select! {
            () = self.wake.notified() => {
                // Readings arrive one POST at a time: gathering them for a moment turns a
                // stream of one-event claims into batches, at a few milliseconds of lag.
                tokio::time::sleep(WOKEN_GATHER).await;
            }
            () = tokio::time::sleep(interval) => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    /// After a claim that did not fill a batch, lets the queue fill before claiming again.
    /// Under a stream of single POSTs this trades up to `gather` of lag for claims several
    /// times larger: every claim costs a few statements and commits and an MCP call whatever
    /// its size (measured at 32 connections on two cores, docs/benchmarks.md: gathering took
    /// the classified single-POST rate from 2.3k to 4.3k/s). A full claim means a backlog: no
    /// waiting.
    async fn gather(&self) {
        tokio::select! {
            () = tokio::time::sleep(self.config.gather) => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    /// Classifies a claim and writes the results back. A stop that comes while the classifier
    /// is being asked hands the claim back at once, due immediately and with its attempt
    /// refunded, rather than waiting out a call that may take up to its timeout.
    async fn process(&mut self, claimed: Vec<Event>) {
        let started = std::time::Instant::now();
        let ids: Vec<i64> = claimed.iter().map(|e| e.id).collect();
        let shutdown = self.shutdown.clone();
        let outcomes = tokio::select! {
            biased;
            () = shutdown.cancelled() => None,
            outcomes = self.classify(claimed) => Some(outcomes),
        };
        let Some(outcomes) = outcomes else {
            self.release(&ids).await;
            return;
        };
        let classified_ms = started.elapsed().as_millis();
        self.record(outcomes).await;
        tracing::debug!(
            classified_ms,
            total_ms = started.elapsed().as_millis(),
            "batch recorded"
        );
    }

    async fn classify(&mut self, claimed: Vec<Event>) -> Vec<(Event, Outcome)> {
        let (requeued, fresh): (Vec<Event>, Vec<Event>) =
            claimed.into_iter().partition(|e| e.processing.requeued);
        let mut outcomes: Vec<(Event, Outcome)> = Vec::new();
        for chunk in fresh.chunks(MAX_BATCH_EVENTS) {
            let results = self.classify_fresh(chunk).await;
            outcomes.extend(chunk.iter().cloned().zip(results));
        }
        for event in requeued {
            let outcome = self.classify_stored(&event).await;
            outcomes.push((event, outcome));
        }
        outcomes
    }

    /// Hands claimed events back untouched (see [`Store::release`]).
    async fn release(&self, ids: &[i64]) {
        let mut released = 0;
        for id in ids {
            match self.store.release(*id, &self.owner).await {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(e) => {
                    // The lease runs out instead: the event is only delayed.
                    tracing::warn!(id, error = %service_kit::telemetry::error_chain(&e), "releasing an event failed");
                }
            }
        }
        tracing::info!(released, "stopping: handed the claimed events back");
    }

    /// One `classify_batch` call for up to 1000 fresh readings, with the recent readings of
    /// their sensors as the history pool: loaded by the server itself when it shares the
    /// store (in-process), sent in the call otherwise.
    async fn classify_fresh(&mut self, events: &[Event]) -> Vec<Outcome> {
        let started = std::time::Instant::now();
        let readings: Vec<Value> = events.iter().map(|e| json!(e.reading)).collect();
        let mut arguments = JsonObject::new();
        arguments.insert("events".into(), Value::Array(readings));
        let (readings, window) = (self.config.history_readings, self.config.history_window);
        if readings > 0 && !window.is_zero() {
            if self.shares_store {
                arguments.insert(
                    "stored_history".into(),
                    json!({"readings": readings, "minutes": window.as_secs().div_ceil(60)}),
                );
            } else {
                match self.history(events).await {
                    Ok(history) => {
                        arguments.insert("history".into(), history);
                    }
                    Err(e) => return vec_of(events.len(), || Outcome::Transient(e.clone())),
                }
            }
        }
        if self.shares_store {
            arguments.insert("stored_sites".into(), Value::Bool(true));
        } else {
            match self.sites(events).await {
                Ok(Some(sites)) => {
                    arguments.insert("sites".into(), sites);
                }
                Ok(None) => {}
                Err(e) => return vec_of(events.len(), || Outcome::Transient(e.clone())),
            }
        }
        let history_ms = started.elapsed().as_millis();
        let result = match self.call("classify_batch", arguments).await {
            Ok(result) => result,
            Err(outcome) => return vec_of(events.len(), || outcome.clone()),
        };
        let output: BatchOutput = match structured(&result) {
            Ok(output) => output,
            Err(e) => return vec_of(events.len(), || Outcome::Transient(e.clone())),
        };
        tracing::debug!(
            events = events.len(),
            history_ms,
            total_ms = started.elapsed().as_millis(),
            "classify_batch answered"
        );
        let mut outcomes = vec_of(events.len(), || {
            Outcome::Transient("no result for this reading".into())
        });
        for item in output.results {
            match item {
                BatchItem::Classified {
                    index,
                    classification,
                } => {
                    if let Some(slot) = outcomes.get_mut(index) {
                        *slot = Outcome::Classified(classification);
                    }
                }
                BatchItem::Rejected { index, error } => {
                    if let Some(slot) = outcomes.get_mut(index) {
                        *slot = Outcome::Permanent(error.message);
                    }
                }
            }
        }
        outcomes
    }

    /// The latest readings of each of the batch's sensor lanes before its earliest reading in
    /// the batch (later ones travel in the batch itself).
    async fn history(&self, events: &[Event]) -> Result<Value, String> {
        let lanes = LaneHistory::before_each_lane(events.iter().map(|e| &e.reading));
        let per_lane = self
            .config
            .history_readings
            .min(MAX_HISTORY / events.len().max(1));
        let history = self
            .store
            .recent_history(lanes, per_lane, self.config.history_window)
            .await
            .map_err(|e| {
                format!(
                    "reading history: {}",
                    service_kit::telemetry::error_chain(&e)
                )
            })?;
        serde_json::to_value(history).map_err(|e| e.to_string())
    }

    /// The metadata of the batch's sensors that have any, keyed by sensor id; `None` when
    /// none has.
    async fn sites(&self, events: &[Event]) -> Result<Option<Value>, String> {
        let ids: HashSet<SensorId> = events
            .iter()
            .map(|e| e.reading.sensor_id().clone())
            .collect();
        let sites = self.store.metadata_of(ids).await.map_err(|e| {
            format!(
                "reading the sensors' metadata: {}",
                service_kit::telemetry::error_chain(&e)
            )
        })?;
        if sites.is_empty() {
            return Ok(None);
        }
        let sites: serde_json::Map<String, Value> = sites
            .into_iter()
            .map(|(id, metadata)| (id.as_str().to_owned(), json!(metadata)))
            .collect();
        Ok(Some(Value::Object(sites)))
    }

    /// `classify_by_id` for an event queued again by hand.
    async fn classify_stored(&mut self, event: &Event) -> Outcome {
        let mut arguments = JsonObject::new();
        arguments.insert("id".into(), json!(event.id));
        let result = match self.call("classify_by_id", arguments).await {
            Ok(result) => result,
            Err(outcome) => return outcome,
        };
        let classification = result
            .structured_content
            .as_ref()
            .and_then(|v| v.get("classification"))
            .cloned()
            .ok_or_else(|| "classify_by_id returned no classification".to_owned())
            .and_then(|v| serde_json::from_value::<Classification>(v).map_err(|e| e.to_string()));
        match classification {
            Ok(classification) => Outcome::Classified(classification),
            Err(e) => Outcome::Transient(e),
        }
    }

    /// Calls `tool`, counts the call and turns failures into outcomes: a tool error is about
    /// the reading (permanent), anything else is transient.
    async fn call(
        &mut self,
        tool: &'static str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, Outcome> {
        let result = self
            .connection
            .call(tool, arguments, self.config.call_timeout)
            .await;
        let (outcome, value) = match result {
            Ok(result) if result.is_error == Some(true) => {
                let text = tool_error_text(&result);
                ("tool_error", Err(Outcome::Permanent(text)))
            }
            Ok(result) => ("ok", Ok(result)),
            Err(e @ CallError::Timeout(_)) => ("timeout", Err(Outcome::Transient(e.to_string()))),
            Err(e @ CallError::Connect(_)) => {
                ("unreachable", Err(Outcome::Transient(e.to_string())))
            }
            Err(e @ CallError::Service(_)) => ("error", Err(Outcome::Transient(e.to_string()))),
        };
        self.metrics.calls.with_label_values(&[tool, outcome]).inc();
        value
    }

    /// Writes results in one multi-row statement; failures one by one with their retry plan.
    async fn record(&self, outcomes: Vec<(Event, Outcome)>) {
        let now = Utc::now();
        let mut classified = Vec::new();
        for (event, outcome) in outcomes {
            match outcome {
                Outcome::Classified(classification) => classified.push((event, classification)),
                Outcome::Permanent(error) => self.fail(&event, &error, true).await,
                Outcome::Transient(error) => self.fail(&event, &error, false).await,
            }
        }
        if classified.is_empty() {
            return;
        }
        let received: Vec<_> = classified
            .iter()
            .map(|(e, _)| (e.id, e.received_at))
            .collect();
        let written = Written::of(classified.iter().map(|(e, _)| &e.reading));
        let results = classified.into_iter().map(|(e, c)| (e.id, c)).collect();
        match self.store.complete_many(&self.owner, results).await {
            Ok(done) => {
                self.downstream.cache.changed(&written).await;
                self.downstream.stream.classified(done.clone()).await;
                let done: BTreeSet<i64> = done.into_iter().collect();
                for (id, received_at) in &received {
                    if done.contains(id) {
                        let lag = (now - *received_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
                        self.metrics.lag.observe(lag.max(0.0));
                    }
                }
                let lost = received.len() - done.len();
                if lost > 0 {
                    tracing::warn!(
                        lost,
                        "results refused: their leases had expired or been revoked"
                    );
                }
            }
            Err(e) => {
                // The leases run out and the events are claimed again: nothing is lost.
                tracing::warn!(error = %service_kit::telemetry::error_chain(&e), "writing results failed");
            }
        }
    }

    async fn fail(&self, event: &Event, error: &str, permanent: bool) {
        let retry =
            self.config
                .retry
                .after_failure(event.processing.attempts, permanent, Utc::now());
        self.metrics
            .retries
            .with_label_values(&[if permanent { "permanent" } else { "transient" }])
            .inc();
        if retry == Retry::Never {
            tracing::warn!(event = event.id, error, "classification failed for good");
        } else {
            tracing::debug!(event = event.id, error, "classification failed; will retry");
        }
        let failed = self.store.fail(event.id, &self.owner, error, retry).await;
        self.downstream
            .cache
            .changed(&Written::of([&event.reading]))
            .await;
        if let Err(e) = failed {
            tracing::warn!(event = event.id, error = %service_kit::telemetry::error_chain(&e), "recording a failure failed");
        }
    }
}

fn vec_of(n: usize, mut make: impl FnMut() -> Outcome) -> Vec<Outcome> {
    (0..n).map(|_| make()).collect()
}

fn structured<T: serde::de::DeserializeOwned>(result: &CallToolResult) -> Result<T, String> {
    let value = result
        .structured_content
        .clone()
        .ok_or("the result has no structuredContent")?;
    serde_json::from_value(value).map_err(|e| format!("unexpected result shape: {e}"))
}

fn tool_error_text(result: &CallToolResult) -> String {
    let text: Vec<String> = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect();
    if text.is_empty() {
        "the classifier rejected the reading".into()
    } else {
        text.join("; ")
    }
}
