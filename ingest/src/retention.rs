//! How long data is kept, from the service's side: the settings, the upkeep pass that creates
//! the day partitions ahead and removes what has expired (run periodically by the service and
//! once by `ingest maintain`), and the refusal of readings older than what is kept.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use traffic_model::reading::{FieldError, Reading};
use traffic_store::{Removed, Store, StoreError};

/// How long readings and rollups are kept, and the upkeep that keeps it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Whole UTC days of readings kept besides today's (`DATA_RETENTION_DAYS`); `None`: all.
    pub readings_days: Option<u32>,
    /// Whole UTC days of 5-minute and hourly rollups kept (`ROLLUP_RETENTION_DAYS`); `None`: all.
    pub rollups_days: Option<u32>,
    /// Days of partitions created ahead of today (`PARTITIONS_AHEAD_DAYS`, PostgreSQL).
    pub partitions_ahead_days: u32,
    /// How often the service runs the upkeep (`MAINTAIN_S`); zero: never (another replica, or
    /// `ingest maintain` from a scheduler, does).
    pub period: Duration,
}

/// Settings that contradict each other.
#[derive(Debug, thiserror::Error)]
#[error(
    "ROLLUP_RETENTION_DAYS ({rollups}) is shorter than DATA_RETENTION_DAYS ({readings}): \
     series over the readings kept are summed from rollups, so rollups must be kept at least as long"
)]
pub struct RetentionError {
    rollups: u32,
    /// The days of readings kept, or "unset" (all of them).
    readings: String,
}

impl RetentionSettings {
    /// Refuses rollups kept for less time than the readings they sum.
    pub fn check(&self) -> Result<(), RetentionError> {
        match (self.readings_days, self.rollups_days) {
            (Some(readings), Some(rollups)) if rollups < readings => Err(RetentionError {
                rollups,
                readings: readings.to_string(),
            }),
            (None, Some(rollups)) => Err(RetentionError {
                rollups,
                readings: "unset".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Readings observed before this are removed, and refused when they arrive.
    pub fn readings_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.readings_days.map(|days| days_before(now, days))
    }

    /// Rollups of spans starting before this are removed.
    pub fn rollups_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.rollups_days.map(|days| days_before(now, days))
    }

    /// Why `reading` is refused, if it is older than the readings kept: it would be removed
    /// at once, and its day's partition may be gone.
    pub fn refusal(&self, reading: &Reading, now: DateTime<Utc>) -> Option<FieldError> {
        let before = self.readings_before(now)?;
        (reading.observed_at() < before).then(|| FieldError {
            field: "observed_at".to_owned(),
            message: format!(
                "is before {}, the oldest time kept (DATA_RETENTION_DAYS is {})",
                before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                self.readings_days.unwrap_or_default()
            ),
        })
    }
}

/// The UTC midnight `days` days before today's.
fn days_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |m| m.and_utc());
    midnight - TimeDelta::days(i64::from(days))
}

/// What one upkeep pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Upkeep {
    /// Days of partitions created (PostgreSQL).
    pub partitions_created: u32,
    /// Days of readings dropped as whole partitions (PostgreSQL).
    pub days_dropped: u32,
    /// Readings deleted one by one (SQLite).
    pub readings_deleted: u64,
    /// Rollup rows deleted (PostgreSQL).
    pub rollups_deleted: u64,
}

/// Creates the partitions of today and the days ahead, then removes what has expired.
pub async fn upkeep(
    store: &Store,
    settings: &RetentionSettings,
    now: DateTime<Utc>,
) -> Result<Upkeep, StoreError> {
    let partitions_created = store
        .create_partitions_ahead(now, settings.partitions_ahead_days)
        .await?;
    let Removed {
        days,
        readings,
        rollups,
    } = store
        .remove_expired(settings.readings_before(now), settings.rollups_before(now))
        .await?;
    Ok(Upkeep {
        partitions_created,
        days_dropped: days,
        readings_deleted: readings,
        rollups_deleted: rollups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(readings: Option<u32>, rollups: Option<u32>) -> RetentionSettings {
        RetentionSettings {
            readings_days: readings,
            rollups_days: rollups,
            partitions_ahead_days: 7,
            period: Duration::from_secs(600),
        }
    }

    fn at(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .expect("a test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn cutoffs_are_utc_midnights_whole_days_back() {
        let now = at("2026-12-04T17:30:00Z");
        let kept = settings(Some(30), Some(400));
        assert_eq!(kept.readings_before(now), Some(at("2026-11-04T00:00:00Z")));
        assert_eq!(kept.rollups_before(now), Some(at("2025-10-30T00:00:00Z")));
        assert_eq!(settings(None, None).readings_before(now), None);
    }

    #[test]
    fn rollups_kept_for_less_than_the_readings_are_refused() {
        assert!(settings(Some(30), Some(29)).check().is_err());
        assert!(settings(Some(30), Some(30)).check().is_ok());
        assert!(settings(Some(30), None).check().is_ok());
        assert!(settings(None, Some(1)).check().is_err());
        assert!(settings(None, None).check().is_ok());
    }
}
