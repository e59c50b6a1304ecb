//! The live stream (`GET /v1/stream`): classified events and label transitions, pushed to
//! every client of every replica.
//!
//! Workers announce the ids they classified ([`Announcer`]): on PostgreSQL with `NOTIFY`,
//! which every replica's listener hears (its own included), on SQLite straight to the one
//! process's feed. The feed loads the events with their lanes' neighbouring readings, turns
//! them into items ([`items`]) and publishes them on this process's [`hub::Hub`].

pub mod hub;
pub mod items;

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;
use traffic_store::Store;

use self::hub::Hub;

/// Batches of ids waiting to become items; beyond, announcements are dropped (the stream
/// is live, not durable: a client that misses items reloads `/v1/state`).
const PENDING_BATCHES: usize = 1024;
/// Most ids loaded in one go.
const IDS_PER_LOAD: usize = 2000;
/// Transitions remembered so that one found from both sides is said once.
const SAID_KEPT: usize = 100_000;

/// How workers report the events they classified.
#[derive(Clone)]
pub enum Announcer {
    /// PostgreSQL `NOTIFY`: heard by every replica, this one included.
    Database(Store),
    /// SQLite: one process, straight to its feed.
    Local(mpsc::Sender<Vec<i64>>),
}

impl Announcer {
    pub async fn classified(&self, ids: Vec<i64>) {
        match self {
            Self::Database(store) => {
                if let Err(e) = store.announce_classified(ids).await {
                    tracing::warn!(error = %service_kit::telemetry::error_chain(&e), "announcing classifications failed");
                }
            }
            Self::Local(feed) => {
                if feed.try_send(ids).is_err() {
                    tracing::debug!("the stream feed is behind: announcement dropped");
                }
            }
        }
    }
}

/// Starts the feed of `hub`: the listener (PostgreSQL) and the task that builds items.
/// Returns how workers announce, and the tasks (to abort at shutdown).
pub fn start(store: Store, hub: Arc<Hub>) -> (Announcer, JoinSet<()>) {
    let (sender, receiver) = mpsc::channel::<Vec<i64>>(PENDING_BATCHES);
    let mut tasks = JoinSet::new();
    tasks.spawn(build(store.clone(), Arc::clone(&hub), receiver));
    let announcer = if store.announces() {
        let listener = store.clone();
        tasks.spawn(async move {
            listener
                .listen_classified(move |ids| match sender.try_send(ids) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!("the stream feed is behind: announcement dropped");
                        true
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                })
                .await;
        });
        Announcer::Database(store)
    } else {
        Announcer::Local(sender)
    };
    (announcer, tasks)
}

/// Turns announced ids into items, several announcements per load when they queue up.
async fn build(store: Store, hub: Arc<Hub>, mut receiver: mpsc::Receiver<Vec<i64>>) {
    let mut said = items::Said::new(SAID_KEPT);
    while let Some(first) = receiver.recv().await {
        let mut ids = first;
        while ids.len() < IDS_PER_LOAD {
            match receiver.try_recv() {
                Ok(more) => ids.extend(more),
                Err(_) => break,
            }
        }
        if !hub.wanted() {
            continue;
        }
        let span = tracing::debug_span!("stream_items", ids = ids.len());
        let loaded = async {
            let batch = store.classified_with_neighbours(ids).await?;
            let sensors: BTreeSet<_> = batch
                .iter()
                .map(|n| n.event.reading.sensor_id().clone())
                .collect();
            let roads = store
                .metadata_of(sensors)
                .await?
                .into_iter()
                .filter_map(|(id, metadata)| metadata.road.map(|road| (id, road)))
                .collect();
            Ok::<_, traffic_store::StoreError>((batch, roads))
        }
        .instrument(span)
        .await;
        match loaded {
            Ok((batch, roads)) => hub.publish(items::items(batch, &roads, &mut said)),
            Err(e) => {
                tracing::warn!(error = %service_kit::telemetry::error_chain(&e), "loading classified events for the stream failed")
            }
        }
    }
}
