//! `ingest simulate`: plays realistic traffic against a running service over its public REST
//! API alone, then reads back what the classifier made of it and compares that with the
//! simulator's own truth.
//!
//! The model is pure and seeded ([`scenario`]): a network of motorway sensors ([`network`]),
//! traffic from a daily demand curve on a fundamental diagram ([`traffic`]), incidents whose
//! queues spill back upstream ([`incidents`]) and faulty loops ([`faults`]). The run
//! ([`run`]) registers the sensors, plays the readings at the chosen pace ([`play`]) through
//! [`client`], waits for the classification queue to drain, reads the results back
//! ([`readback`]) and returns a [`Summary`] ([`report`] prints it).

pub mod client;
pub mod faults;
pub mod incidents;
pub mod network;
pub mod play;
pub mod random;
pub mod readback;
pub mod report;
pub mod scenario;
pub mod traffic;

#[cfg(test)]
mod tests;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use reqwest::Url;
use service_kit::auth::SecretString;
use tokio::time::Instant;
use tracing::Instrument;

use crate::cli::{BoxError, SimulateArgs};

pub use client::ClientError;
pub use report::Summary;
use scenario::{INTERVAL_S, Scenario, Window};

/// The longest span: a month of minutes.
pub const MAX_SPAN: TimeDelta = TimeDelta::days(31);
/// How far ahead of the service's clock a reading may be stamped (docs/api.md).
const FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

/// What to simulate and how to play it.
#[derive(Debug, Clone)]
pub struct Options {
    /// The running service's base URL.
    pub url: Url,
    pub sensors: usize,
    /// Simulated time, whole minutes.
    pub span: TimeDelta,
    /// Simulated seconds per second of wall time.
    pub speedup: f64,
    pub seed: u64,
    /// Readings per request; 1 sends each alone to `POST /v1/events`.
    pub batch: usize,
    /// The start of simulated time; `None`: the span before now, so the data ends now.
    pub start: Option<DateTime<Utc>>,
    pub api_key: Option<SecretString>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Draw the progress bar on stderr.
    pub progress: bool,
    /// Longest wait for the classification queue to drain before reading the results.
    pub drain: Duration,
}

impl Options {
    /// The defaults of `ingest simulate` against `url`, with no progress bar.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            sensors: 20,
            span: TimeDelta::hours(2),
            speedup: 720.0,
            seed: 1,
            batch: 100,
            start: None,
            api_key: None,
            concurrency: 4,
            progress: false,
            drain: Duration::from_secs(30),
        }
    }
}

impl From<SimulateArgs> for Options {
    fn from(args: SimulateArgs) -> Self {
        Self {
            sensors: args.sensors,
            span: args.span,
            speedup: args.speedup,
            seed: args.seed,
            batch: args.batch,
            start: args.start,
            api_key: args.api_key,
            concurrency: args.concurrency,
            ..Self::new(args.url)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Options(String),
    #[error(
        "the simulated window {start} – {end} would be played ahead of the clock: the API refuses \
         readings stamped more than 5 minutes in the future; start earlier or lower the speedup"
    )]
    Future {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

/// `--span`: whole minutes, days, hours, minutes and seconds combined (`2h`, `1h30m`, `1d`).
pub fn parse_span(raw: &str) -> Result<TimeDelta, String> {
    let refuse = || format!("`{raw}` is not a span such as 30m, 2h, 1h30m or 1d");
    let mut total = TimeDelta::zero();
    let mut digits = String::new();
    for c in raw.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| refuse())?;
        digits.clear();
        let part = match c {
            'd' => TimeDelta::try_days(n),
            'h' => TimeDelta::try_hours(n),
            'm' => TimeDelta::try_minutes(n),
            's' => TimeDelta::try_seconds(n),
            _ => None,
        };
        total = part
            .and_then(|p| total.checked_add(&p))
            .ok_or_else(refuse)?;
    }
    if !digits.is_empty() || total.is_zero() {
        return Err(refuse());
    }
    if total.num_seconds() % i64::from(INTERVAL_S) != 0 || total > MAX_SPAN {
        return Err(format!("`{raw}` must be whole minutes, from 1m to 31d"));
    }
    Ok(total)
}

/// The slowest and fastest pace: a hundredth of real time, and no pacing to speak of.
const SPEEDUP: (f64, f64) = (0.01, 1e9);

/// `--speedup`: a factor from 0.01 to 1e9.
pub fn parse_speedup(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(x) if (SPEEDUP.0..=SPEEDUP.1).contains(&x) => Ok(x),
        _ => Err(format!(
            "`{raw}` is not a speedup from 0.01 to 1e9 (720 plays 2 h in 10 s)"
        )),
    }
}

/// `--start`: RFC 3339, read as readings' times are.
pub fn parse_start(raw: &str) -> Result<DateTime<Utc>, String> {
    traffic_model::reading::parse_timestamp(raw.trim()).map_err(|e| format!("`{raw}` {e}"))
}

impl Options {
    /// The window to simulate, checked against the clock at `now`.
    fn window(&self, now: DateTime<Utc>) -> Result<Window, SimulateError> {
        let invalid = |what: &str| Err(SimulateError::Options(what.to_owned()));
        if self.sensors == 0 || self.batch == 0 || self.batch > 10_000 || self.concurrency == 0 {
            return invalid("sensors, concurrency and batch (at most 10000) must be at least 1");
        }
        if !(SPEEDUP.0..=SPEEDUP.1).contains(&self.speedup) {
            return invalid("the speedup must be from 0.01 to 1e9");
        }
        if !matches!(self.url.scheme(), "http" | "https") {
            return invalid("the URL must be http:// or https://");
        }
        let minutes = self.span.num_seconds() / i64::from(INTERVAL_S);
        let whole = self.span.num_seconds() % i64::from(INTERVAL_S) == 0;
        let minutes = match u32::try_from(minutes) {
            Ok(m) if m > 0 && whole && self.span <= MAX_SPAN => m,
            _ => return invalid("the span must be whole minutes, from 1m to 31d"),
        };
        // By default the data ends at the last whole minute: it shows on the dashboard now.
        let start = match self.start {
            Some(start) => start,
            None => now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now) - self.span,
        };
        // The last reading's time must be one the service can store, with room to spare.
        if start
            .checked_add_signed(self.span + TimeDelta::days(1))
            .is_none()
        {
            return invalid("the start is too late for the span");
        }
        let window = Window::new(start, minutes);
        // Reading m goes out m minutes / speedup after now; the lead over the clock changes
        // linearly with m, so the first and last readings bound it.
        for m in [1, minutes] {
            let sent =
                now + TimeDelta::milliseconds((f64::from(m) * 60_000.0 / self.speedup) as i64);
            if window.at(m) - sent > FUTURE_SKEW - TimeDelta::seconds(30) {
                return Err(SimulateError::Future {
                    start,
                    end: window.end(),
                });
            }
        }
        Ok(window)
    }
}

fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:28}] {pos}/{len} readings, {rate} · {msg}",
    ) {
        let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        };
        bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
    }
    if visible {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// Stores every sensor's metadata, `concurrency` at a time.
async fn register(
    client: &client::Client,
    scenario: &Scenario,
    concurrency: usize,
) -> Result<u64, ClientError> {
    let documents = (0..scenario.network.sensors.len()).filter_map(|i| {
        let sensor = scenario.network.sensors.get(i)?;
        Some((sensor.id.as_str(), scenario.network.metadata(i)?))
    });
    let answers: Vec<Result<(), ClientError>> = stream::iter(documents)
        .map(|(id, metadata)| async move { client.put_sensor(id, &metadata).await })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut registered = 0;
    for answer in answers {
        answer?;
        registered += 1;
    }
    Ok(registered)
}

/// Simulates what `options` asks against the service, and sums up what it made of it.
pub async fn run(options: Options) -> Result<Summary, SimulateError> {
    let span = tracing::info_span!(
        "simulate",
        url = %options.url,
        seed = options.seed,
        sensors = options.sensors
    );
    async move {
        let window = options.window(Utc::now())?;
        let scenario = Scenario::new(options.seed, options.sensors, window);
        let plan = scenario.plan();
        let client = Arc::new(client::Client::new(
            options.url.clone(),
            options.api_key.clone(),
        )?);
        client.health().await?;
        let registered = register(&client, &scenario, options.concurrency).await?;
        tracing::info!(
            start = %window.start,
            minutes = window.minutes,
            roads = scenario.network.roads.len(),
            incidents = scenario.incidents.len(),
            faults = scenario.faults.len(),
            readings = plan.readings,
            "sensors registered; playing the readings"
        );

        let bar = progress_bar(plan.readings, options.progress);
        let started = Instant::now();
        let pace = play::Pace {
            speedup: options.speedup,
            batch: options.batch,
            concurrency: options.concurrency,
        };
        let readings = play::play(Arc::clone(&client), &scenario, pace, &bar).await;
        // The summary says it all; a finished bar would only share its line with the log.
        bar.finish_and_clear();
        let played_in = started.elapsed();

        let mut read_errors = 0;
        let queue = match readback::drain(&client, window, options.drain).await {
            Ok(wait) => wait,
            Err(e) => {
                let error = service_kit::telemetry::error_chain(&e);
                tracing::warn!(%error, "cannot see the classification queue");
                read_errors += 1;
                report::QueueWait {
                    drained: false,
                    waited: Duration::ZERO,
                }
            }
        };
        let results = readback::read(&client, &scenario, options.concurrency).await;
        tracing::info!(
            stored = readings.stored,
            failed_requests = readings.failed_requests(),
            "simulation done"
        );
        Ok(Summary {
            url: options.url.to_string(),
            seed: options.seed,
            window,
            roads: scenario.network.roads.iter().map(|r| r.name()).collect(),
            sensor_ids: scenario
                .network
                .sensors
                .iter()
                .map(|s| s.id.clone())
                .collect(),
            registered,
            plan,
            readings,
            played_in,
            queue,
            classes: results.classes,
            faults: results.faults,
            incidents: results.incidents,
            read_errors: read_errors + results.errors,
        })
    }
    .instrument(span)
    .await
}

/// `ingest simulate`: runs, prints the summary to stdout, and fails when any request did.
pub async fn command(args: SimulateArgs) -> Result<(), BoxError> {
    let mut options = Options::from(args);
    options.progress = std::io::stderr().is_terminal();
    let url = options.url.to_string();
    let summary = run(options).await?;
    write!(std::io::stdout().lock(), "{summary}")?;
    match summary.failed_requests() {
        0 => Ok(()),
        failed => Err(format!(
            "{failed} request(s) to {url} failed (server errors or no answer); \
             the summary counts their readings as failed"
        )
        .into()),
    }
}
