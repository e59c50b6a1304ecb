//! What the service runs with: plain values, checked when they are read. [`crate::cli`] fills
//! them from flags, the environment and `.env`; the application and its tests depend on these
//! types alone.

use std::net::SocketAddr;
use std::time::Duration;

use traffic_store::{RetryPolicy, StoreConfig};

use crate::auth::ApiKeys;
use crate::body::BodyRules;
use crate::cache::CacheSettings;
use crate::classify::{ClassifierLink, ClassifyConfig};
use crate::rate_limit::RateLimit;
use crate::redis::RedisSettings;
use crate::retention::RetentionSettings;

/// The defaults, shared by `ingest --help` and [`Settings::new`].
pub mod defaults {
    pub const BIND: &str = "127.0.0.1:8080";
    pub const MAX_BODY_BYTES: usize = 64 * 1024;
    pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
    pub const BODY_TIMEOUT_S: u64 = 30;
    pub const CLASSIFY_BATCH: usize = 1000;
    pub const CLASSIFY_LEASE_S: u64 = 60;
    pub const CLASSIFY_TIMEOUT_S: u64 = 15;
    pub const CLASSIFY_MAX_ATTEMPTS: u32 = 5;
    pub const CLASSIFY_POLL_S: u64 = 5;
    pub const CLASSIFY_GATHER_MS: u64 = 50;
    pub const CLASSIFY_HISTORY_MINUTES: u64 = 70;
    pub const CLASSIFY_HISTORY_READINGS: usize = 24;
    pub const QUEUE_VACUUM_S: u64 = 10;
    pub const ROLLUP_BUILD_S: u64 = 60;
    pub const PARTITIONS_AHEAD_DAYS: u32 = 7;
    pub const MAINTAIN_S: u64 = 600;
    pub const REDIS_TIMEOUT_MS: u64 = 100;
    pub const REDIS_CONNECTIONS: usize = 4;
    pub const REDIS_PREFIX: &str = "smart-traffic";
    pub const CACHE_TTL_S: u64 = 300;
    pub const CACHE_CLOCK_TTL_MS: u64 = 1000;
    pub const CACHE_SETTLED_S: u64 = 900;
    pub const DASHBOARD_TILES_URL: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
    pub const DASHBOARD_TILES_ATTRIBUTION: &str = "© OpenStreetMap contributors";
}

/// Everything `ingest serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    /// Leave the schema alone at start-up (for operators who run `ingest migrate`).
    pub skip_migrations: bool,
    pub http: HttpSettings,
    pub api_keys: ApiKeys,
    pub classifier: ClassifierLink,
    pub classify: ClassifyConfig,
    /// Redis, for the read cache, the rate limits and the stream's fan-out; `None`: each
    /// process on its own.
    pub redis: Option<RedisSettings>,
    pub cache: CacheSettings,
    /// Readings per second per sender; `None`: no limit.
    pub rate_limit: Option<RateLimit>,
    pub dashboard: DashboardSettings,
}

/// What the dashboard's map draws under the sensors.
#[derive(Debug, Clone)]
pub struct DashboardSettings {
    /// A tile URL template (`{z}`, `{x}`, `{y}`, `{s}`); empty: a plain background.
    pub tiles_url: String,
    /// The credit the tiles' provider asks for.
    pub tiles_attribution: String,
}

/// The HTTP server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// Most client connections held at once; `None`: nine tenths of the open-file limit.
    pub max_connections: Option<usize>,
    pub limits: Limits,
}

/// Body size limits, in decoded bytes, and the time a body may take to arrive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch_bytes: usize,
    pub body_timeout: Duration,
}

impl Limits {
    /// The rules for the body of a single reading.
    pub fn reading(&self) -> BodyRules {
        BodyRules {
            limit: self.max_body_bytes,
            deadline: self.body_timeout,
        }
    }

    /// The rules for the body of a batch.
    pub fn batch(&self) -> BodyRules {
        BodyRules {
            limit: self.max_batch_bytes,
            deadline: self.body_timeout,
        }
    }
}

impl Settings {
    /// The defaults, over `store`: what the service runs with when nothing else is set.
    pub fn new(store: StoreConfig) -> Self {
        let seconds = Duration::from_secs;
        Self {
            store,
            skip_migrations: false,
            http: HttpSettings {
                bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
                workers: cores(),
                max_connections: None,
                limits: Limits {
                    max_body_bytes: defaults::MAX_BODY_BYTES,
                    max_batch_bytes: defaults::MAX_BATCH_BYTES,
                    body_timeout: seconds(defaults::BODY_TIMEOUT_S),
                },
            },
            api_keys: ApiKeys::default(),
            classifier: ClassifierLink::InProcess,
            classify: ClassifyConfig {
                workers: default_workers(),
                batch_size: defaults::CLASSIFY_BATCH,
                lease: seconds(defaults::CLASSIFY_LEASE_S),
                call_timeout: seconds(defaults::CLASSIFY_TIMEOUT_S),
                poll_interval: seconds(defaults::CLASSIFY_POLL_S),
                gather: Duration::from_millis(defaults::CLASSIFY_GATHER_MS),
                history_window: seconds(defaults::CLASSIFY_HISTORY_MINUTES * 60),
                history_readings: defaults::CLASSIFY_HISTORY_READINGS,
                queue_vacuum: seconds(defaults::QUEUE_VACUUM_S),
                rollup_build: seconds(defaults::ROLLUP_BUILD_S),
                retention: RetentionSettings {
                    readings_days: None,
                    rollups_days: None,
                    partitions_ahead_days: defaults::PARTITIONS_AHEAD_DAYS,
                    period: seconds(defaults::MAINTAIN_S),
                },
                retry: RetryPolicy {
                    max_attempts: defaults::CLASSIFY_MAX_ATTEMPTS,
                    ..RetryPolicy::default()
                },
            },
            redis: None,
            cache: CacheSettings {
                stored: seconds(defaults::CACHE_TTL_S),
                clock: Duration::from_millis(defaults::CACHE_CLOCK_TTL_MS),
                settled: seconds(defaults::CACHE_SETTLED_S),
            },
            rate_limit: None,
            dashboard: DashboardSettings {
                tiles_url: defaults::DASHBOARD_TILES_URL.to_owned(),
                tiles_attribution: defaults::DASHBOARD_TILES_ATTRIBUTION.to_owned(),
            },
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One classification worker per core: each spends its time on the CPU of this process, of the
/// classifier or of the database, and more workers than cores only contend (measured on two
/// cores: 2 workers classified 8 % more readings per second than 4, with less CPU per reading).
/// At least two, so that one claims or writes while another waits for the classifier.
pub fn default_workers() -> usize {
    cores().max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bind_address_is_the_documented_one() {
        let settings = Settings::new(StoreConfig::new(
            traffic_store::DatabaseUrl::parse(None).unwrap(),
        ));
        assert_eq!(settings.http.bind.to_string(), defaults::BIND);
    }
}
