//! Reading events back: by id, newest-first pages, a sensor's recent history, queue counts.

use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use diesel::sql_types::{BigInt, Text};

use super::model::{EventRow, StoredRow, to_events};
use super::prepared::Prepared;
use super::{Cursor, Event, EventFilter, LabelCounts, Page, StatusCounts, Store, StoreError};
use traffic_model::classification::UnknownName;
use traffic_model::reading::{Reading, SensorId};

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
                event_states::table
                    .select(event_columns!())
                    .filter(event_states::id.eq(id))
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
                let mut query = event_states::table.select(event_columns!()).into_boxed();
                if let Some(sensor_id) = &filter.sensor_id {
                    query = query.filter(event_states::sensor_id.eq(sensor_id.as_str().to_owned()));
                }
                if let Some(status) = filter.status {
                    query = query.filter(event_states::status.eq(status.into_str()));
                }
                // Newest first by (observed_at, id). With a label, by the classification's copy
                // of the two, the same values, so that the walk runs down the label's index.
                macro_rules! newest_first {
                    ($at:expr, $id:expr) => {{
                        if let Some(from) = filter.from {
                            query = query.filter($at.ge(from));
                        }
                        if let Some(to) = filter.to {
                            query = query.filter($at.lt(to));
                        }
                        if let Some(c) = cursor {
                            query = query.filter(
                                $at.lt(c.observed_at)
                                    .or($at.eq(c.observed_at).and($id.lt(c.id))),
                            );
                        }
                        query.order(($at.desc(), $id.desc()))
                    }};
                }
                let query = match filter.label {
                    Some(label) => {
                        query = query.filter(event_states::label.eq(label.into_str()));
                        newest_first!(
                            event_states::classification_observed_at,
                            event_states::classification_event_id
                        )
                    }
                    None => newest_first!(event_states::observed_at, event_states::id),
                };
                query.limit(fetch).load(conn).await?
            });
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = more
                .then(|| {
                    rows.last().map(|r| Cursor {
                        observed_at: r.stored.observed_at,
                        id: r.stored.id,
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
            let rows: Vec<StoredRow> = with_conn!(store, |conn| {
                let mut query = events::table
                    .select(stored_columns!(events))
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
            let mut history = rows
                .into_iter()
                .map(StoredRow::into_reading)
                .collect::<Result<Vec<Reading>, _>>()?;
            history.reverse();
            Ok(history)
        })
        .await
    }

    /// How many events are in each queue status: the queue's rows by state, and the
    /// classifications that no queue row overrides.
    pub async fn counts_by_status(&self) -> Result<StatusCounts, StoreError> {
        self.run(|store| async move {
            let (queued, failed, processing, classified): (i64, i64, i64, i64) =
                with_conn!(store, |conn| {
                    let queued = queue::table.count().get_result(conn).await?;
                    let failed = queue::table
                        .filter(queue::failed)
                        .count()
                        .get_result(conn)
                        .await?;
                    let processing = queue::table
                        .filter(queue::lease_owner.is_not_null())
                        .count()
                        .get_result(conn)
                        .await?;
                    let classified = classifications::table
                        .left_join(queue::table.on(queue::event_id.eq(classifications::event_id)))
                        .filter(queue::event_id.is_null())
                        .count()
                        .get_result(conn)
                        .await?;
                    (queued, failed, processing, classified)
                });
            let count = |n: i64| u64::try_from(n).unwrap_or_default();
            Ok(StatusCounts {
                pending: count(queued - failed - processing),
                processing: count(processing),
                classified: count(classified),
                failed: count(failed),
            })
        })
        .await
    }
}

/// The id of sensor `$1`'s latest reading (PostgreSQL): each lane's latest (the whole
/// carriageway's too), one backward probe of the `(sensor_id, lane, observed_at)` index each,
/// then the latest of those. Ordering the sensor's readings by time instead walks the time
/// index back from now until it meets one of them: every reading of the network for a sensor
/// that has none, or none lately.
const LATEST_OF_SENSOR: &str = concat!(
    lanes_of_sensor!(),
    "SELECT id, observed_at FROM ( \
        (SELECT id, observed_at FROM events WHERE sensor_id = $1 AND lane IS NULL \
          ORDER BY observed_at DESC LIMIT 1) \
        UNION ALL \
        SELECT latest.id, latest.observed_at FROM lanes l CROSS JOIN LATERAL \
          (SELECT id, observed_at FROM events WHERE sensor_id = $1 AND lane = l.lane \
            ORDER BY observed_at DESC LIMIT 1) latest \
         WHERE l.lane IS NOT NULL) each_lane \
     ORDER BY observed_at DESC, id DESC LIMIT 1"
);

#[derive(QueryableByName)]
struct LatestId {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    observed_at: DateTime<Utc>,
}

impl Store {
    /// The sensor's latest event by `observed_at` (any lane).
    pub async fn latest_of_sensor(&self, sensor_id: SensorId) -> Result<Option<Event>, StoreError> {
        self.run(move |store| async move {
            let key = sensor_id.as_str().to_owned();
            let row: Option<EventRow> = with_conn!(store, |conn|
                postgres: {
                    let latest: Option<LatestId> = Prepared::new(LATEST_OF_SENSOR)
                        .bind::<Text, _>(key)
                        .get_result(conn)
                        .await
                        .optional()?;
                    match latest {
                        None => None,
                        // With its time, the row is looked up in its day's partition alone.
                        Some(LatestId { id, observed_at }) => event_states::table
                            .select(event_columns!())
                            .filter(event_states::id.eq(id))
                            .filter(event_states::observed_at.eq(observed_at))
                            .first(conn)
                            .await
                            .optional()?,
                    }
                },
                sqlite: {
                    event_states::table
                        .select(event_columns!())
                        .filter(event_states::sensor_id.eq(key))
                        .order((event_states::observed_at.desc(), event_states::id.desc()))
                        .first(conn)
                        .await
                        .optional()?
                }
            );
            row.map(Event::try_from).transpose()
        })
        .await
    }

    /// How many of a sensor's readings observed in `[from, to)` carry each label, and how many
    /// are not classified yet.
    pub async fn label_counts(
        &self,
        sensor_id: SensorId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<LabelCounts, StoreError> {
        self.run(move |store| async move {
            let rows: Vec<(Option<String>, i64)> = with_conn!(store, |conn| {
                event_states::table
                    .filter(event_states::sensor_id.eq(sensor_id.as_str().to_owned()))
                    .filter(event_states::observed_at.ge(from))
                    .filter(event_states::observed_at.lt(to))
                    .group_by(event_states::label)
                    .select((event_states::label, count_star()))
                    .load(conn)
                    .await?
            });
            let mut counts = LabelCounts::default();
            for (label, n) in rows {
                let n = u64::try_from(n).unwrap_or_default();
                match label {
                    Some(label) => {
                        let label =
                            label
                                .parse()
                                .map_err(|e: UnknownName| StoreError::CorruptRow {
                                    id: 0,
                                    reason: e.to_string(),
                                })?;
                        counts.counts_by_label.insert(label, n);
                    }
                    None => counts.unclassified += n,
                }
            }
            Ok(counts)
        })
        .await
    }
}
