//! The live stream (`GET /v1/stream`): classified events and label transitions, pushed to
//! every client of every replica.
//!
//! Workers announce the ids they classified ([`Announcer`]): with Redis on a pub/sub channel,
//! on PostgreSQL without it with `NOTIFY` (also when publishing to Redis fails), which every
//! replica's subscriber and listener hear (their own included); on SQLite, one process, straight
//! to its feed. Each announcement goes one way only, so no replica hears it twice. The feed
//! loads the events with their lanes' neighbouring readings, turns them into items ([`items`])
//! and publishes them on this process's [`hub::Hub`].

pub mod hub;
pub mod items;

use std::collections::BTreeSet;
use std::sync::Arc;

use fred::prelude::{ClientLike, EventInterface, PubsubInterface};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;
use traffic_store::Store;

use self::hub::Hub;
use crate::redis::Redis;

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
    /// Redis `PUBLISH` on `channel`; `NOTIFY` when Redis does not take it.
    Redis {
        redis: Redis,
        channel: String,
        store: Store,
    },
    /// SQLite: one process, straight to its feed.
    Local(mpsc::Sender<Vec<i64>>),
}

impl Announcer {
    pub async fn classified(&self, ids: Vec<i64>) {
        match self {
            Self::Database(store) => notify(store, ids).await,
            Self::Redis {
                redis,
                channel,
                store,
            } => {
                let published = match redis.commands() {
                    Some(commands) => {
                        let payload = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                        let sent = commands
                            .publish::<i64, _, _>(channel.as_str(), payload)
                            .await;
                        redis.outcome("publish", sent).is_some()
                    }
                    None => false,
                };
                if !published {
                    notify(store, ids).await;
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

async fn notify(store: &Store, ids: Vec<i64>) {
    if let Err(e) = store.announce_classified(ids).await {
        tracing::warn!(error = %service_kit::telemetry::error_chain(&e), "announcing classifications failed");
    }
}

/// Hands announced ids to the item builder; false once it is gone.
fn forward(sender: &mpsc::Sender<Vec<i64>>, ids: Vec<i64>) -> bool {
    match sender.try_send(ids) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::debug!("the stream feed is behind: announcement dropped");
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Starts the feed of `hub`: the listener (PostgreSQL), the subscriber (Redis, when given and
/// on PostgreSQL: SQLite runs one process) and the task that builds items. Returns how workers
/// announce, and the tasks (to abort at shutdown).
pub fn start(store: Store, hub: Arc<Hub>, redis: Option<Redis>) -> (Announcer, JoinSet<()>) {
    let (sender, receiver) = mpsc::channel::<Vec<i64>>(PENDING_BATCHES);
    let mut tasks = JoinSet::new();
    tasks.spawn(build(store.clone(), Arc::clone(&hub), receiver));
    if !store.announces() {
        return (Announcer::Local(sender), tasks);
    }
    let listener = store.clone();
    let heard = sender.clone();
    tasks.spawn(async move {
        listener
            .listen_classified(move |ids| forward(&heard, ids))
            .await;
    });
    let Some(redis) = redis else {
        return (Announcer::Database(store), tasks);
    };
    let channel = redis.key("classified");
    match redis.subscriber() {
        Ok(subscriber) => {
            let channel = channel.clone();
            tasks.spawn(async move {
                let mut messages = subscriber.message_rx();
                // Once subscribed, the client subscribes again after each reconnection.
                loop {
                    let subscribed = match subscriber.wait_for_connect().await {
                        Ok(()) => subscriber.subscribe(channel.as_str()).await,
                        Err(e) => Err(e),
                    };
                    match subscribed {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "subscribing to the stream's channel failed; trying again");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
                loop {
                    match messages.recv().await {
                        Ok(message) => {
                            let ids = message
                                .value
                                .as_str()
                                .map(|text| parse_ids(text.as_ref()))
                                .unwrap_or_default();
                            if !ids.is_empty() && !forward(&sender, ids) {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::debug!(n, "the stream subscriber fell behind: announcements dropped");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "no Redis subscriber: the stream fans out through PostgreSQL")
        }
    }
    (
        Announcer::Redis {
            redis,
            channel,
            store: store.clone(),
        },
        tasks,
    )
}

/// The ids of a published announcement (`1,2,3`); what does not parse is skipped.
fn parse_ids(text: &str) -> Vec<i64> {
    text.split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect()
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
