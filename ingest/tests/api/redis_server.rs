//! The suite's own Redis server (`smart_traffic_e2e::RedisServer`) as the app's settings use it.

use std::time::Duration;

use ingest::redis::RedisSettings;
use ingest::settings::Settings;
pub use smart_traffic_e2e::RedisServer;

pub trait UseRedis {
    /// `settings` with this server, under the key space `prefix`.
    fn configure(&self, settings: &mut Settings, prefix: &str);
}

impl UseRedis for RedisServer {
    fn configure(&self, settings: &mut Settings, prefix: &str) {
        settings.redis = Some(RedisSettings {
            url: self.url().into(),
            timeout: Duration::from_millis(100),
            connections: 2,
            prefix: prefix.to_owned(),
        });
    }
}
