//! Durable classification: a pool of workers, each an MCP client of the classifier.
//!
//! Readings are queued by the INSERT that stores them; workers claim due events under a lease
//! (see `traffic_store::queue`), so a worker or process that dies only delays its
//! events until the lease runs out. New readings wake the workers at once; a slow poll is the
//! safety net.

pub mod connection;
pub mod health;
pub mod link_error;
pub mod maintenance;
pub mod worker;

use crate::cache::Cache;
use crate::stream::Announcer;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{Histogram, IntCounterVec};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::retention::RetentionSettings;
use traffic_store::{RetryPolicy, Store};

pub use self::connection::ClassifierLink;
use self::connection::Connection;
use self::health::ClassifierHealth;
use self::worker::Worker;

/// How the workers behave.
#[derive(Debug, Clone)]
pub struct ClassifyConfig {
    /// Number of workers; 0 pauses classification (readings still queue up).
    pub workers: usize,
    /// Events claimed per round trip.
    pub batch_size: usize,
    /// How long a claim is valid; a worker silent for longer loses its events to others.
    pub lease: Duration,
    /// Longest a classifier call may take.
    pub call_timeout: Duration,
    /// Safety-net poll when no wake-up arrives.
    pub poll_interval: Duration,
    /// Pause after a claim that did not fill a batch, so the next one gathers more.
    pub gather: Duration,
    /// How far back the history pool of a batch reaches.
    pub history_window: Duration,
    /// Most earlier readings sent per sensor lane.
    pub history_readings: usize,
    /// How often the queue table's dead rows are checked (see [`Store::vacuum_queue`]); zero
    /// leaves the table to autovacuum.
    pub queue_vacuum: Duration,
    /// How often closed rollup spans are built (see [`Store::build_rollups`]); zero leaves
    /// them to another replica (series then sum every reading of unbuilt spans).
    pub rollup_build: Duration,
    /// What is kept, and how often the partitions ahead and the removal of what expired are
    /// seen to (see [`crate::retention`]).
    pub retention: RetentionSettings,
    pub retry: RetryPolicy,
}

/// The pipeline's metrics (registered with the service's registry).
#[derive(Clone)]
pub struct ClassifyMetrics {
    /// `classified_at − received_at`, seconds.
    pub lag: Histogram,
    /// Classifier calls by tool and outcome.
    pub calls: IntCounterVec,
    /// Failed attempts by kind (transient, permanent).
    pub retries: IntCounterVec,
}

/// Where recorded results go on to, besides the database: the live stream hears of them and
/// the cached views they change are retired.
#[derive(Clone)]
pub struct Downstream {
    pub stream: Announcer,
    pub cache: Cache,
}

/// The running workers.
pub struct Workers {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Workers {
    pub fn start(
        store: Store,
        link: ClassifierLink,
        config: ClassifyConfig,
        metrics: ClassifyMetrics,
        wake: Arc<Notify>,
        health: Arc<ClassifierHealth>,
        downstream: Downstream,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let instance = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        for slot in 0..config.workers {
            let worker = Worker {
                owner: format!("ingest-{instance}-w{slot}"),
                shares_store: matches!(link, ClassifierLink::InProcess),
                store: store.clone(),
                connection: Connection::new(link.clone(), store.clone(), Arc::clone(&health), slot),
                config: config.clone(),
                metrics: metrics.clone(),
                wake: Arc::clone(&wake),
                shutdown: shutdown.clone(),
                downstream: downstream.clone(),
            };
            tasks.spawn(worker.run());
        }
        if config.workers > 0 && !config.queue_vacuum.is_zero() {
            tasks.spawn(maintenance::vacuum_queue(
                store.clone(),
                config.queue_vacuum,
                shutdown.clone(),
            ));
        }
        if !config.rollup_build.is_zero() {
            tasks.spawn(maintenance::build_rollups(
                store.clone(),
                config.rollup_build,
                shutdown.clone(),
            ));
        }
        if !config.retention.period.is_zero() {
            tasks.spawn(maintenance::upkeep(
                store.clone(),
                config.retention.clone(),
                shutdown.clone(),
            ));
        }
        if config.workers == 0 {
            tracing::warn!("classification is paused (CLASSIFY_WORKERS=0): readings stay pending");
        } else {
            tracing::info!(workers = config.workers, link = %link.describe(), "classification workers started");
        }
        Self { shutdown, tasks }
    }

    /// Stops claiming, and waits for each worker to write back the results it has or, when
    /// its classifier call is still out, to hand its claim back.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
