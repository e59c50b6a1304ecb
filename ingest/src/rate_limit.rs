//! Readings per second per API key (`INGEST_RATE_LIMIT`, with a burst), counted in Redis so
//! that the limit holds across replicas, or in this process without Redis. A request spends
//! one reading, a batch as many as it holds. Redis failing lets readings through (the limit
//! fails open) rather than refusing what the database would take.
//!
//! The count is a GCRA: each key has a theoretical arrival time `tat`; a request is admitted
//! while `tat` is at most `burst` readings ahead of now, and pushes it `cost / rate` further.
//! A batch larger than the burst is therefore admitted once the key is idle, and the key then
//! waits for it to be paid off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;
use fred::prelude::LuaInterface;

use crate::redis::Redis;

/// The limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Readings per second.
    pub per_second: f64,
    /// Readings a key may send at once beyond the steady rate.
    pub burst: u32,
}

/// Keys remembered in this process before the idle ones are dropped.
const LOCAL_KEYS: usize = 100_000;

/// One GCRA step in Redis: KEYS[1] the key's arrival time (µs); ARGV: µs per reading, the
/// tolerance (µs), the cost. Returns 0 when admitted, else the µs to wait.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat - now
local tolerance = tonumber(ARGV[2])
if ahead > tolerance then return ahead - tolerance end
local next = tat + tonumber(ARGV[1]) * tonumber(ARGV[3])
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1000)
return 0
";

/// The limiter: off, or counting in Redis (with this process's counts unused) or here.
pub struct Limiter {
    limit: Option<RateLimit>,
    redis: Option<Redis>,
    local: Mutex<HashMap<String, f64>>,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    /// How long until it would be admitted.
    pub retry_after: Duration,
    pub limit: RateLimit,
}

impl Limiter {
    pub fn new(limit: Option<RateLimit>, redis: Option<Redis>) -> Self {
        Self {
            limit,
            redis,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Spends `cost` readings of the limit of whoever sent `request` (its API key, or its
    /// address when keys are off).
    pub async fn admit(&self, request: &HttpRequest, cost: usize) -> Result<(), Limited> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        if cost == 0 {
            return Ok(());
        }
        let who = sender(request);
        let per_reading = 1e6 / limit.per_second;
        let tolerance = per_reading * f64::from(limit.burst.saturating_sub(1));
        let wait_us = match &self.redis {
            Some(redis) => match redis.commands() {
                Some(commands) => {
                    let key = redis.key(&format!("rate:{who}"));
                    let answer = commands
                        .eval::<i64, _, _, _>(
                            ADMIT,
                            key,
                            vec![
                                format!("{per_reading:.3}"),
                                format!("{tolerance:.0}"),
                                cost.to_string(),
                            ],
                        )
                        .await;
                    // Unanswered: fail open.
                    redis.outcome("rate limit", answer).unwrap_or(0) as f64
                }
                None => 0.0,
            },
            None => self.admit_here(who, per_reading, tolerance, cost),
        };
        if wait_us > 0.0 {
            Err(Limited {
                retry_after: Duration::from_micros(wait_us as u64),
                limit,
            })
        } else {
            Ok(())
        }
    }

    /// The GCRA step of [`ADMIT`], in this process; the µs to wait, 0 when admitted.
    fn admit_here(&self, who: String, per_reading: f64, tolerance: f64, cost: usize) -> f64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_micros() as f64);
        let Ok(mut arrivals) = self.local.lock() else {
            return 0.0;
        };
        if arrivals.len() >= LOCAL_KEYS {
            arrivals.retain(|_, tat| *tat > now);
        }
        let tat = arrivals.get(&who).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > tolerance {
            return ahead - tolerance;
        }
        arrivals.insert(who, tat + per_reading * cost as f64);
        0.0
    }
}

/// Whom a request counts against: a digest of its API key (never the key itself, which would
/// show in Redis), else its peer address.
fn sender(request: &HttpRequest) -> String {
    match crate::auth::presented_key(request) {
        Some(key) => format!("key:{}", crate::digest::sha256_hex(key.as_bytes(), 12)),
        None => format!(
            "addr:{}",
            request
                .peer_addr()
                .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
        ),
    }
}
