//! Versions of what the cached views are made of, kept in Redis: one for the whole network,
//! one per sensor, and one per sensor's settled history (its readings that started before the
//! settling time, [`super::CacheSettings::settled`], which only late writes change). A view's cache key holds the version of its scope, and every acknowledged
//! write bumps the versions it touches before it is acknowledged, so a read that starts after
//! the acknowledgement looks for a key no stale view was stored under.
//!
//! An epoch, in every key, covers a write whose bump failed (Redis unreachable): the replica
//! that wrote owes a bump of the epoch, which retires every stored view, and uses no cache
//! until it has paid it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fred::prelude::{KeysInterface, LuaInterface, Value};
use tokio::sync::{mpsc, oneshot};
use traffic_model::reading::SensorId;

use crate::redis::Redis;

const EPOCH: &str = "version:epoch";
const NETWORK: &str = "version:network";
/// Increments every key it is given.
const BUMP: &str = "for _, key in ipairs(KEYS) do redis.call('INCR', key) end return 0";

/// Which writes make a view out of date.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Any write (views over many sensors, and those found by an id of their own).
    Network,
    /// Writes about this sensor.
    Sensor(SensorId),
    /// Late writes about this sensor: into its settled buckets, or of its metadata.
    History(SensorId),
}

fn sensor_key(sensor: &SensorId) -> String {
    format!("version:sensor:{sensor}")
}

fn history_key(sensor: &SensorId) -> String {
    format!("version:history:{sensor}")
}

fn scope_key(scope: &Scope) -> String {
    match scope {
        Scope::Network => NETWORK.to_owned(),
        Scope::Sensor(sensor) => sensor_key(sensor),
        Scope::History(sensor) => history_key(sensor),
    }
}

/// Most keys bumped by one script run.
const KEYS_PER_BUMP: usize = 2000;

/// The versions, and whether this replica owes an epoch bump.
#[derive(Clone)]
pub struct Versions {
    redis: Redis,
    epoch_owed: Arc<AtomicBool>,
    bumps: mpsc::UnboundedSender<Bump>,
}

/// Keys to bump for one write, and where to say whether they were.
struct Bump {
    keys: Vec<String>,
    done: oneshot::Sender<bool>,
}

impl Versions {
    /// Starts the task that bumps versions (on the current runtime).
    pub fn new(redis: Redis) -> Self {
        let (bumps, queued) = mpsc::unbounded_channel();
        tokio::spawn(bump_queued(redis.clone(), queued));
        Self {
            redis,
            epoch_owed: Arc::new(AtomicBool::new(false)),
            bumps,
        }
    }

    /// The current version of `scope`, as the prefix of its views' keys; `None` when Redis
    /// cannot say (the view is then read from the database and not stored).
    pub async fn current(&self, scope: &Scope) -> Option<String> {
        if self.epoch_owed.load(Ordering::Acquire) && !self.pay_epoch().await {
            return None;
        }
        let keys = [self.redis.key(EPOCH), self.redis.key(&scope_key(scope))];
        let commands = self.redis.commands()?;
        let mut values: Vec<Option<String>> = self
            .redis
            .outcome("versions", commands.mget(keys.to_vec()).await)?;
        // A version never set (or lost with Redis's data) starts at a random value, so that it
        // cannot name views stored under an earlier life of the same key.
        for (key, value) in keys.iter().zip(values.iter_mut()) {
            if value.is_none() {
                let fresh = rand::random::<u32>().to_string();
                let _: Option<Value> = self.redis.outcome(
                    "versions",
                    commands
                        .set(
                            key.as_str(),
                            fresh,
                            None,
                            Some(fred::types::SetOptions::NX),
                            false,
                        )
                        .await,
                )?;
                *value = self
                    .redis
                    .outcome("versions", commands.get(key.as_str()).await)?;
            }
        }
        match values.as_slice() {
            [Some(epoch), Some(version)] => Some(format!("{epoch}.{version}")),
            _ => None,
        }
    }

    /// Bumps the network's version, those of `sensors` and the histories of `late` ones, after
    /// a write has been committed and before it is acknowledged. A failure leaves an epoch bump
    /// owed.
    pub async fn bump<'a>(
        &self,
        sensors: impl IntoIterator<Item = &'a SensorId>,
        late: impl IntoIterator<Item = &'a SensorId>,
    ) {
        let mut keys: Vec<String> = sensors
            .into_iter()
            .map(|s| self.redis.key(&sensor_key(s)))
            .chain(late.into_iter().map(|s| self.redis.key(&history_key(s))))
            .collect();
        keys.push(self.redis.key(NETWORK));
        let (done, bumped) = oneshot::channel();
        let queued = self.bumps.send(Bump { keys, done }).is_ok();
        if !(queued && bumped.await.unwrap_or(false)) {
            self.epoch_owed.store(true, Ordering::Release);
        }
    }

    /// Bumps the epoch if one is owed; true when none is owed any more.
    async fn pay_epoch(&self) -> bool {
        let Some(commands) = self.redis.commands() else {
            return false;
        };
        let bumped = commands.incr::<i64, _>(self.redis.key(EPOCH)).await;
        let paid = self.redis.outcome("epoch", bumped).is_some();
        if paid {
            self.epoch_owed.store(false, Ordering::Release);
        }
        paid
    }
}

/// Bumps what writes queued, those that queued up meanwhile in one script run: under a stream
/// of single readings, one Redis round trip serves every write that arrived during the last,
/// instead of one each. Every write's keys go out in a run that starts after it queued, so its
/// bump is done before it is acknowledged.
async fn bump_queued(redis: Redis, mut queued: mpsc::UnboundedReceiver<Bump>) {
    while let Some(first) = queued.recv().await {
        let mut keys: BTreeSet<String> = first.keys.iter().cloned().collect();
        let mut waiting = vec![first.done];
        while keys.len() < KEYS_PER_BUMP {
            match queued.try_recv() {
                Ok(more) => {
                    keys.extend(more.keys);
                    waiting.push(more.done);
                }
                Err(_) => break,
            }
        }
        // One command, so that it fails fast and whole while Redis is away.
        let done = match redis.commands() {
            Some(commands) => {
                let keys: Vec<String> = keys.into_iter().collect();
                let done = commands
                    .eval::<Value, _, _, _>(BUMP, keys, Vec::<String>::new())
                    .await;
                redis.outcome("bump", done).is_some()
            }
            None => false,
        };
        for waiter in waiting {
            let _ = waiter.send(done);
        }
    }
}
