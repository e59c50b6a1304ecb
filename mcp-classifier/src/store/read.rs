//! Reading events back: by id, newest-first pages, a sensor's recent history, queue counts.

use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::{EventRow, to_events};
use super::{Cursor, Event, EventFilter, Page, Status, StatusCounts, Store, StoreError};
use crate::reading::{Reading, SensorId};

impl Store {
    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|store| async move {
            with_conn!(store, |conn| {
                diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>())
                    .get_result::<i32>(conn)
                    .await?;
            });
            Ok(())
        })
        .await
    }

    pub async fn get(&self, id: i64) -> Result<Option<Event>, StoreError> {
        self.run(move |store| async move {
            let row: Option<EventRow> = with_conn!(store, |conn| {
                events::table
                    .select(event_columns!())
                    .filter(events::id.eq(id))
                    .first(conn)
                    .await
                    .optional()?
            });
            row.map(Event::try_from).transpose()
        })
        .await
    }

    /// One page of events matching `filter`, newest `observed_at` first (ties by id), starting
    /// after `cursor`. Rows inserted during a walk never shift it: the cursor is a keyset
    /// position, not an offset.
    pub async fn list(
        &self,
        filter: EventFilter,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        self.run(move |store| async move {
            let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
            let mut rows: Vec<EventRow> = with_conn!(store, |conn| {
                let mut query = events::table.select(event_columns!()).into_boxed();
                if let Some(sensor_id) = &filter.sensor_id {
                    query = query.filter(events::sensor_id.eq(sensor_id.as_str().to_owned()));
                }
                if let Some(from) = filter.from {
                    query = query.filter(events::observed_at.ge(from));
                }
                if let Some(to) = filter.to {
                    query = query.filter(events::observed_at.lt(to));
                }
                if let Some(status) = filter.status {
                    query = query.filter(events::status.eq(status.as_str()));
                }
                if let Some(label) = filter.label {
                    query = query.filter(events::label.eq(label.as_str()));
                }
                if let Some(c) = cursor {
                    query = query.filter(
                        events::observed_at.lt(c.observed_at).or(events::observed_at
                            .eq(c.observed_at)
                            .and(events::id.lt(c.id))),
                    );
                }
                query
                    .order((events::observed_at.desc(), events::id.desc()))
                    .limit(fetch)
                    .load(conn)
                    .await?
            });
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = more
                .then(|| {
                    rows.last().map(|r| Cursor {
                        observed_at: r.observed_at,
                        id: r.id,
                    })
                })
                .flatten();
            Ok(Page {
                items: to_events(rows)?,
                next_cursor,
            })
        })
        .await
    }

    /// Up to `limit` readings of one sensor and lane (`None`: the sensor's lane-less readings)
    /// observed before `before`, oldest first: the history the classifier's sensor-health
    /// rules look at.
    pub async fn history(
        &self,
        sensor_id: SensorId,
        lane: Option<u8>,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Reading>, StoreError> {
        self.run(move |store| async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows: Vec<EventRow> = with_conn!(store, |conn| {
                let mut query = events::table
                    .select(event_columns!())
                    .filter(events::sensor_id.eq(sensor_id.as_str().to_owned()))
                    .filter(events::observed_at.lt(before))
                    .into_boxed();
                query = match lane {
                    Some(lane) => query.filter(events::lane.eq(i16::from(lane))),
                    None => query.filter(events::lane.is_null()),
                };
                query
                    .order(events::observed_at.desc())
                    .limit(limit)
                    .load(conn)
                    .await?
            });
            let mut history: Vec<Reading> = to_events(rows)?
                .into_iter()
                .map(|event| event.reading)
                .collect();
            history.reverse();
            Ok(history)
        })
        .await
    }

    /// How many events are in each queue status.
    pub async fn counts_by_status(&self) -> Result<StatusCounts, StoreError> {
        self.run(|store| async move {
            let rows: Vec<(String, i64)> = with_conn!(store, |conn| {
                events::table
                    .group_by(events::status)
                    .select((events::status, count_star()))
                    .load(conn)
                    .await?
            });
            let mut counts = StatusCounts::default();
            for (status, n) in rows {
                let status: Status =
                    status
                        .parse()
                        .map_err(|e: crate::classification::UnknownName| {
                            StoreError::CorruptRow {
                                id: 0,
                                reason: e.to_string(),
                            }
                        })?;
                counts.add(status, u64::try_from(n).unwrap_or_default());
            }
            Ok(counts)
        })
        .await
    }
}
