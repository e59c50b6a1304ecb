//! Series buckets that can no longer change: those that ended in the settled past
//! ([`CacheSettings::settled`](super::CacheSettings)). Each is stored on its own, under its
//! sensor's history version, which only late writes bump. A window that ends now (a control
//! room's last day, polled every few seconds while readings keep arriving) then sums only its
//! newest buckets, and a first one cut by the window, from the database, and takes the rest
//! from the cache. Only where the database would sum every reading of the window: PostgreSQL's
//! rollups already hold the settled sums of 5-minute spans, and reading them costs less than
//! the extra statements and the Redis round trip (docs/benchmarks.md).

use chrono::{DateTime, Utc};
use fred::prelude::{KeysInterface, LuaInterface, Value};
use traffic_model::series::{Bucket, Plan};
use traffic_store::{SeriesFrame, Store, StoreError};

use super::versions::Scope;
use super::{Cache, Kind};

/// Most buckets looked up for one series (a day of minutes, a month of hours); a longer run of
/// settled buckets is summed from the database.
const MAX_LOOKUPS: usize = 1500;
/// Stores each key with its value (`ARGV[i + 1]`) for `ARGV[1]` milliseconds.
const STORE: &str =
    "for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1]) end return 0";

impl Cache {
    /// The buckets of `frame`'s series at `now`: the settled ones from the cache where it holds
    /// them from the window's first whole bucket on, the others from the database. Buckets
    /// summed from the database that are settled are stored for the next read.
    pub async fn series_buckets(
        &self,
        store: &Store,
        frame: &SeriesFrame,
        now: DateTime<Utc>,
    ) -> Result<Vec<Bucket>, StoreError> {
        let from_database = || store.series_buckets(&frame.sensor, frame.lane, &frame.plan);
        let Some((redis, versions)) = &self.store else {
            return from_database().await;
        };
        let plan = &frame.plan;
        if !store.sums_every_reading(plan) {
            return from_database().await;
        }
        let bounds = plan.bounds();
        let (from, to) = plan.window();
        // Whole buckets only: the first may start before the window, the last end after it.
        let first = bounds.partition_point(|(start, _)| *start < from);
        let settled = self.settled_before(now).min(to);
        let last = bounds.partition_point(|(_, end)| *end <= settled);
        if first >= last || last - first > MAX_LOOKUPS {
            return from_database().await;
        }
        // Read before the database is: a late write that the sums below miss bumps it after.
        let Some(version) = versions
            .current(&Scope::History(frame.sensor.clone()))
            .await
        else {
            self.count(Kind::Bucket, "error", 1);
            return from_database().await;
        };
        let lane = frame
            .lane
            .map_or_else(|| "all".to_owned(), |l| l.to_string());
        let keys: Vec<String> = bounds[first..last]
            .iter()
            .map(|(start, _)| {
                redis.key(&format!(
                    "bucket:{version}:{}:{lane}:{}:{}",
                    frame.sensor,
                    plan.size(),
                    start.timestamp()
                ))
            })
            .collect();
        let Some(stored) = self.fetch(&keys).await else {
            self.count(Kind::Bucket, "error", 1);
            return from_database().await;
        };
        // The run of stored buckets from the first whole one, checked against the plan.
        let cached: Vec<Bucket> = stored
            .into_iter()
            .zip(&bounds[first..last])
            .map_while(|(value, bounds)| {
                let bucket: Bucket = serde_json::from_slice(&value?).ok()?;
                ((bucket.start, bucket.end) == *bounds).then_some(bucket)
            })
            .collect();
        self.count(Kind::Bucket, "hit", cached.len());
        self.count(Kind::Bucket, "miss", last - first - cached.len());
        let resume = first + cached.len();
        let buckets = if cached.is_empty() {
            from_database().await?
        } else {
            let part = |from, to| async move {
                match Plan::new(plan.size(), frame.zone, from, to, bounds.len()) {
                    Some(part) if from < to => {
                        store.series_buckets(&frame.sensor, frame.lane, &part).await
                    }
                    _ => Ok(Vec::new()),
                }
            };
            let (head, tail) = match (bounds.get(first), bounds.get(resume)) {
                (Some((first_start, _)), Some((resume_start, _))) => {
                    tokio::try_join!(part(from, *first_start), part(*resume_start, to))?
                }
                (Some((first_start, _)), None) => (part(from, *first_start).await?, Vec::new()),
                _ => return from_database().await,
            };
            let buckets: Vec<Bucket> = head.into_iter().chain(cached).chain(tail).collect();
            if buckets.len() != bounds.len() {
                tracing::warn!("a series put together from the cache lost its shape");
                return from_database().await;
            }
            buckets
        };
        self.keep(&keys[resume - first..], &buckets[resume..last]);
        Ok(buckets)
    }

    /// The values stored under `keys`, `None` when Redis failed.
    async fn fetch(&self, keys: &[String]) -> Option<Vec<Option<Vec<u8>>>> {
        let (redis, _) = self.store.as_ref()?;
        let commands = redis.commands()?;
        let values: Vec<Option<Vec<u8>>> =
            redis.outcome("bucket read", commands.mget(keys.to_vec()).await)?;
        (values.len() == keys.len()).then_some(values)
    }

    /// Stores `buckets` under `keys` in one script run, in the background: the answer does not
    /// wait for it.
    fn keep(&self, keys: &[String], buckets: &[Bucket]) {
        let Some((redis, _)) = &self.store else {
            return;
        };
        if keys.is_empty() || keys.len() != buckets.len() {
            return;
        }
        let millis = self.settings.stored.as_millis().max(1).to_string();
        let mut values = Vec::with_capacity(buckets.len() + 1);
        values.push(millis);
        for bucket in buckets {
            match serde_json::to_string(bucket) {
                Ok(json) => values.push(json),
                Err(_) => return,
            }
        }
        let (redis, keys) = (redis.clone(), keys.to_vec());
        tokio::spawn(async move {
            if let Some(commands) = redis.commands() {
                let stored = commands.eval::<Value, _, _, _>(STORE, keys, values).await;
                let _: Option<Value> = redis.outcome("bucket write", stored);
            }
        });
    }
}
