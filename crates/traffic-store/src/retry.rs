use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

/// What to do with an event whose classification attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Back to `pending`, due again at this time.
    At(DateTime<Utc>),
    /// Give up: the event ends `failed` (it can still be re-queued by hand).
    Never,
}

/// Exponential backoff with full jitter, and the attempt budget for permanent failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay before the second attempt, doubled for each further one.
    pub base_delay: Duration,
    /// Ceiling of the delay.
    pub max_delay: Duration,
    /// Attempts after which a permanent failure is final. Transient failures never are: an
    /// unreachable classifier must leave events pending, not failed.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(300),
            max_attempts: 5,
        }
    }
}

impl RetryPolicy {
    /// Decides the next step after attempt number `attempts` (1-based) failed.
    pub fn after_failure(&self, attempts: u32, permanent: bool, now: DateTime<Utc>) -> Retry {
        if permanent && attempts >= self.max_attempts {
            return Retry::Never;
        }
        let delay = self.delay(attempts, rand::rng().random_range(0.5..=1.0));
        Retry::At(now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX))
    }

    /// The backoff before the attempt after `attempts`, scaled by `jitter` in [0.5, 1]
    /// ("equal jitter": never less than half the exponential delay, so retries still spread out).
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exponent = attempts.saturating_sub(1).min(32);
        let exponential = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(exponent));
        exponential
            .min(self.max_delay)
            .mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_per_attempt_up_to_the_ceiling() {
        let p = RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            max_attempts: 3,
        };
        let full: Vec<_> = (1..=6).map(|a| p.delay(a, 1.0).as_secs()).collect();
        assert_eq!(full, [1, 2, 4, 8, 10, 10]);
        assert_eq!(p.delay(3, 0.5), Duration::from_secs(2));
        assert_eq!(p.delay(u32::MAX, 1.0), Duration::from_secs(10));
    }

    #[test]
    fn only_permanent_failures_exhaust_the_budget() {
        let p = RetryPolicy::default();
        let now = Utc::now();
        assert_eq!(p.after_failure(5, true, now), Retry::Never);
        assert!(matches!(p.after_failure(4, true, now), Retry::At(t) if t > now));
        assert!(matches!(p.after_failure(50, false, now), Retry::At(t) if t > now));
    }
}
