//! Group insert: concurrent single-reading inserts share multi-row statements.
//!
//! One INSERT per reading makes the database pay a statement, a commit and a WAL flush for
//! every POST. Here each insert is handed to a dispatcher that sends whatever has queued up
//! while earlier statements ran as one multi-row INSERT, at most [`IN_FLIGHT`] at a time. Under
//! light load a statement carries one reading and nothing waits; under heavy load statements
//! grow and the database does a fraction of the work per reading. Every caller still gets its
//! own result only after its row is committed.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use super::INSERT_CHUNK;
use crate::{Inserted, Store, StoreError};
use traffic_model::reading::Reading;

/// Multi-row INSERTs in flight at once: one filling while the other commits. Measured at 32
/// connections on PostgreSQL (docs/benchmarks.md): 1 → 6.1k, 2 → 6.5–7.1k, 3 → 6.3k,
/// 4 → 4.4–5.7k, 8 → 4.8k requests/s; more statements in flight means smaller ones.
const IN_FLIGHT: usize = 2;

struct Job {
    reading: Reading,
    done: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// The sending half of the dispatcher's queue, shared by every clone of a store.
pub(crate) struct Coalescer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Coalescer {
    /// Starts the dispatcher on `runtime`. `store` must not itself hold this coalescer, so
    /// that the dispatcher ends once the last store clone using it is dropped.
    pub(crate) fn start(store: Store, runtime: &tokio::runtime::Handle) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        runtime.spawn(dispatch(store, queue));
        Self { jobs }
    }

    pub(crate) async fn insert(&self, reading: Reading) -> Result<Inserted, StoreError> {
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job { reading, done })
            .map_err(|_| StoreError::Stopped)?;
        result.await.map_err(|_| StoreError::Stopped)?
    }
}

async fn dispatch(store: Store, mut queue: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // Waiting for a slot before taking jobs is what lets the queue build up under load.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut jobs = vec![first];
        while jobs.len() < INSERT_CHUNK {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let store = store.clone();
        let span = tracing::debug_span!("insert_group", readings = jobs.len());
        tokio::spawn(
            async move {
                insert_group(&store, jobs).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
}

async fn insert_group(store: &Store, jobs: Vec<Job>) {
    let (readings, replies): (Vec<Reading>, Vec<_>) =
        jobs.into_iter().map(|job| (job.reading, job.done)).unzip();
    let readings = Arc::new(readings);
    match store.insert_chunk(Arc::clone(&readings)).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                // A caller that has gone away no longer needs the answer; the row is stored.
                let _ = reply.send(result);
            }
        }
        Err(error) if replies.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(error));
            }
        }
        Err(error) => {
            // The statement stored nothing: retry each reading alone, so that every caller
            // gets the error of its own reading and no reading fails for another's sake.
            tracing::debug!(error = %service_kit::telemetry::error_chain(&error), "group insert failed");
            for (index, reply) in replies.into_iter().enumerate() {
                let single = Arc::new(vec![readings[index].clone()]);
                let result = store.insert_chunk(single).await.and_then(super::only);
                let _ = reply.send(result);
            }
        }
    }
}
