//! Playing the scenario: each simulated minute's readings at its moment of wall time (time
//! compressed by the speedup), in requests of `batch` readings, `concurrency` of them in
//! flight, counting what the API made of every reading.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::client::{Client, ClientError, Outcome};
use super::scenario::{INTERVAL_S, Scenario, SimReading};
use super::traffic::local_time;

/// A part-filled batch is sent with its minute when minutes are at least this far apart in
/// wall time, rather than waiting for the next ones.
const HOLD_AT_MOST: Duration = Duration::from_secs(1);
/// Failed requests logged one by one; the rest are only counted.
const FAILURES_LOGGED: u64 = 5;

/// How to play: the pace and the shape of the requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    pub speedup: f64,
    pub batch: usize,
    pub concurrency: usize,
}

/// What became of the readings sent, by the API's answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Readings in requests sent.
    pub sent: u64,
    /// Answered `201`, or counted in a batch's `accepted`.
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Readings in requests that got no usable answer.
    pub failed: u64,
    pub requests: u64,
    /// Requests answered with a server error (5xx), after retries.
    pub server_errors: u64,
    /// Requests that failed otherwise: no answer, or one the API does not document.
    pub other_errors: u64,
}

impl Tally {
    fn add(&mut self, readings: u64, answer: &Result<Outcome, ClientError>) {
        self.sent += readings;
        self.requests += 1;
        match answer {
            Ok(outcome) => {
                self.stored += outcome.stored;
                self.duplicates += outcome.duplicates;
                self.rejected += outcome.rejected;
            }
            Err(e) => {
                self.failed += readings;
                if e.is_server_error() {
                    self.server_errors += 1;
                } else {
                    self.other_errors += 1;
                }
            }
        }
    }

    pub fn failed_requests(&self) -> u64 {
        self.server_errors + self.other_errors
    }
}

/// The requests in flight and what their answers added up to.
struct Requests {
    client: Arc<Client>,
    tally: Arc<Mutex<Tally>>,
    bar: ProgressBar,
    single: bool,
    tasks: JoinSet<()>,
}

impl Requests {
    /// Sends `readings` in a task of its own, which holds `slot` until it is answered.
    fn send(&mut self, readings: Vec<SimReading>, slot: OwnedSemaphorePermit) {
        let (client, tally, bar) = (
            Arc::clone(&self.client),
            Arc::clone(&self.tally),
            self.bar.clone(),
        );
        let single = self.single;
        let task = async move {
            let answer = client.post_readings(&readings, single).await;
            let count = readings.len() as u64;
            let failures = {
                let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                tally.add(count, &answer);
                tally.failed_requests()
            };
            if let Err(e) = &answer
                && failures <= FAILURES_LOGGED
            {
                let error = service_kit::telemetry::error_chain(e);
                bar.suspend(|| tracing::warn!(readings = count, %error, "a request failed"));
            }
            bar.inc(count);
            drop(slot);
        };
        self.tasks.spawn(task.in_current_span());
    }

    fn counts(&self) -> Tally {
        *self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sends every reading of `scenario` through `client` at `pace`; `bar` counts them answered.
pub async fn play(
    client: Arc<Client>,
    scenario: &Scenario,
    pace: Pace,
    bar: &ProgressBar,
) -> Tally {
    let slots = Arc::new(Semaphore::new(pace.concurrency.max(1)));
    let batch = pace.batch.max(1);
    let mut requests = Requests {
        client,
        tally: Arc::default(),
        bar: bar.clone(),
        single: batch == 1,
        tasks: JoinSet::new(),
    };
    // Wall time from the start to reading `minute`'s moment (the speedup is bounded, so
    // this is far from Duration's limits).
    let due = |minute: u32| {
        Duration::try_from_secs_f64(f64::from(minute * INTERVAL_S) / pace.speedup)
            .unwrap_or(Duration::MAX)
    };
    let minute_apart = due(1);
    let started = Instant::now();
    let mut waiting: Vec<SimReading> = Vec::with_capacity(batch);

    for minute in 1..=scenario.window.minutes {
        if let Some(at) = started.checked_add(due(minute)) {
            tokio::time::sleep_until(at).await;
        }
        waiting.extend(scenario.minute(minute));
        while waiting.len() >= batch || (!waiting.is_empty() && minute_apart >= HOLD_AT_MOST) {
            let take = waiting.len().min(batch);
            let readings: Vec<SimReading> = waiting.drain(..take).collect();
            // A free slot first: a slow service slows the play down instead of piling up.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            requests.send(readings, slot);
        }
        while requests.tasks.try_join_next().is_some() {}
        let counts = requests.counts();
        bar.set_message(format!(
            "{} · stored {} · duplicates {} · rejected {} · failed {}",
            local_time(scenario.window.at(minute)).format("%a %H:%M"),
            counts.stored,
            counts.duplicates,
            counts.rejected,
            counts.failed,
        ));
    }
    if !waiting.is_empty()
        && let Ok(slot) = Arc::clone(&slots).acquire_owned().await
    {
        requests.send(std::mem::take(&mut waiting), slot);
    }
    while let Some(done) = requests.tasks.join_next().await {
        if let Err(e) = done {
            tracing::warn!(error = %e, "a request's task ended abnormally");
        }
    }
    requests.counts()
}
