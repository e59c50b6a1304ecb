//! What the live stream needs from the store: announcing classified events to every replica
//! (PostgreSQL `NOTIFY` on one channel, the event ids as payload, a listener per process on a
//! connection of its own), and each classified event with its lane's classified readings just
//! before and after it (whether it changed the label, and whether it changed the next one's).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::{ExpressionMethods, QueryDsl, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::StreamExt;
use secrecy::ExposeSecret;
use traffic_model::classification::{Label, LevelOfService};

use super::backend::Backend;
use super::decode::Decode;
use super::model::to_events;
use super::sql_time::UtcTime;
use super::{DatabaseUrl, Event, Store, StoreError};

/// The channel classified event ids are announced on.
pub const CHANNEL: &str = "traffic_classified";
/// Bytes of ids per notification: PostgreSQL refuses payloads of 8000 bytes and more.
const PAYLOAD_BYTES: usize = 7_000;
/// Ids per query of [`Store::classified_with_neighbours`] (SQLite binds each one).
const CHUNK: usize = 500;

/// A lane's classified reading next to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub event_id: i64,
    pub observed_at: DateTime<Utc>,
    pub label: Label,
    pub level_of_service: Option<LevelOfService>,
}

/// A classified event with its lane's classified readings just before and just after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    pub event: Event,
    pub previous: Option<Mark>,
    /// Present for a late reading: one observed after it was classified first.
    pub next: Option<Mark>,
}

/// An event's neighbours in its lane, as either backend returns them.
#[derive(QueryableByName)]
struct MarksRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    prev_id: Option<i64>,
    #[diesel(sql_type = Nullable<UtcTime>)]
    prev_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    prev_label: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    prev_los: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    next_id: Option<i64>,
    #[diesel(sql_type = Nullable<UtcTime>)]
    next_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    next_label: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    next_los: Option<String>,
}

impl MarksRow {
    fn into_marks(self) -> Result<(i64, Option<Mark>, Option<Mark>), StoreError> {
        Ok((
            self.id,
            mark(self.prev_id, self.prev_at, self.prev_label, self.prev_los)?,
            mark(self.next_id, self.next_at, self.next_label, self.next_los)?,
        ))
    }
}

fn mark(
    id: Option<i64>,
    at: Option<DateTime<Utc>>,
    label: Option<String>,
    los: Option<String>,
) -> Result<Option<Mark>, StoreError> {
    let (Some(event_id), Some(observed_at), Some(label)) = (id, at, label) else {
        return Ok(None);
    };
    let d = Decode(event_id);
    Ok(Some(Mark {
        event_id,
        observed_at,
        label: d.label(&label)?,
        level_of_service: d.los(los.as_deref())?,
    }))
}

/// The classified reading before (`<`, newest first) or after (`>`, oldest first) `k`'s in its
/// lane, as `columns`; `{lane}` is filled per backend.
fn probe(direction: &str, lane: &str, columns: &str) -> String {
    let order = if direction == "<" { "DESC" } else { "ASC" };
    format!(
        "SELECT {columns} FROM events x \
           JOIN classifications xc ON xc.event_id = x.id AND xc.observed_at = x.observed_at \
         WHERE x.sensor_id = k.sensor_id AND {lane} AND x.observed_at {direction} k.observed_at \
         ORDER BY x.observed_at {order} LIMIT 1"
    )
}

/// The classified readings before and after each event `k` that `which` selects, `lane`
/// matching a reading `x` to `k`'s lane. PostgreSQL reads each neighbour whole where its
/// probe finds it (LATERAL), within the partitions of its days; SQLite, which has no LATERAL,
/// finds its id and joins it again.
fn marks_sql(lane: &str, which: &str, lateral: bool) -> String {
    let (neighbours, label) = if lateral {
        let found = "x.id, x.observed_at, xc.label, xc.level_of_service";
        let joined = format!(
            "LEFT JOIN LATERAL ({}) p ON TRUE LEFT JOIN LATERAL ({}) n ON TRUE",
            probe("<", lane, found),
            probe(">", lane, found)
        );
        (joined, ["p", "n"])
    } else {
        let joined = format!(
            "LEFT JOIN events p ON p.id = ({}) \
             LEFT JOIN classifications pc ON pc.event_id = p.id \
             LEFT JOIN events n ON n.id = ({}) \
             LEFT JOIN classifications nc ON nc.event_id = n.id",
            probe("<", lane, "x.id"),
            probe(">", lane, "x.id")
        );
        (joined, ["pc", "nc"])
    };
    let [pc, nc] = label;
    format!(
        "SELECT k.id, p.id AS prev_id, p.observed_at AS prev_at, \
                {pc}.label AS prev_label, {pc}.level_of_service AS prev_los, \
                n.id AS next_id, n.observed_at AS next_at, \
                {nc}.label AS next_label, {nc}.level_of_service AS next_los \
           FROM events k {neighbours} \
          WHERE {which}"
    )
}

impl Store {
    /// Whether other processes hear [`Store::announce_classified`] (PostgreSQL).
    pub fn announces(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Tells every listening replica that events `ids` were classified. Nothing on SQLite,
    /// whose single process hands them over in memory.
    pub async fn announce_classified(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        if !self.announces() || ids.is_empty() {
            return Ok(());
        }
        let mut payloads = vec![String::new()];
        for id in ids {
            let last = payloads.last_mut().filter(|p| p.len() < PAYLOAD_BYTES);
            match last {
                Some(payload) => {
                    if !payload.is_empty() {
                        payload.push(',');
                    }
                    payload.push_str(&id.to_string());
                }
                None => payloads.push(id.to_string()),
            }
        }
        self.run(move |store| async move {
            with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    diesel::sql_query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                        .bind::<Text, _>(CHANNEL)
                        .bind::<Array<Text>, _>(payloads)
                        .execute(conn)
                        .await?;
                },
                sqlite: {
                    let _ = (conn, payloads);
                }
            );
            Ok(())
        })
        .await
    }

    /// Hears the ids every replica announces, handing each notification's to `deliver` until
    /// it returns false. Runs on a connection of its own, reconnecting a second after it is
    /// lost (announcements made meanwhile are not heard). Returns at once on SQLite.
    pub async fn listen_classified(&self, mut deliver: impl FnMut(Vec<i64>) -> bool + Send) {
        let DatabaseUrl::Postgres(url) = &self.config.url else {
            return;
        };
        loop {
            match AsyncPgConnection::establish(url.expose_secret()).await {
                Ok(mut conn) => {
                    use diesel_async::RunQueryDsl;
                    let listening = diesel::sql_query(format!("LISTEN {CHANNEL}"))
                        .execute(&mut conn)
                        .await;
                    match listening {
                        Ok(_) => {
                            tracing::info!(channel = CHANNEL, "listening for classifications");
                            let mut notifications = std::pin::pin!(conn.notifications_stream());
                            while let Some(notification) = notifications.next().await {
                                let Ok(notification) = notification else {
                                    break;
                                };
                                let ids = notification
                                    .payload
                                    .split(',')
                                    .filter_map(|id| id.parse().ok())
                                    .collect();
                                if !deliver(ids) {
                                    return;
                                }
                            }
                            tracing::warn!("the classification listener lost its connection");
                        }
                        Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the classification listener cannot connect"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Events `ids` that are classified, each with its lane's classified readings just
    /// before and after it.
    pub async fn classified_with_neighbours(
        &self,
        ids: Vec<i64>,
    ) -> Result<Vec<Neighbours>, StoreError> {
        self.run(move |store| async move {
            let mut found = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(CHUNK) {
                let chunk = chunk.to_vec();
                let rows = with_conn!(store, |conn| {
                    use diesel_async::RunQueryDsl;
                    event_states::table
                        .select(event_columns!())
                        .filter(event_states::id.eq_any(chunk.clone()))
                        .filter(event_states::status.eq("classified"))
                        .load(conn)
                        .await?
                });
                let mut marks = marks_of(&store, chunk).await?;

                for event in to_events(rows)? {
                    let (previous, next) = marks.remove(&event.id).unwrap_or_default();
                    found.push(Neighbours {
                        event,
                        previous,
                        next,
                    });
                }
            }
            found.sort_by_key(|n| n.event.id);
            Ok(found)
        })
        .await
    }
}

/// The classified readings just before and just after each of events `ids` in its lane.
async fn marks_of(store: &Store, chunk: Vec<i64>) -> Result<Marks, StoreError> {
    let marks = with_conn!(store, |conn|
        postgres: {
            use diesel_async::RunQueryDsl;
            let mut marks = Vec::new();
            // A lane and a whole carriageway apart, so that each walks the index.
            for (lane, lane_of_k) in [("x.lane = k.lane", "k.lane IS NOT NULL"), ("x.lane IS NULL", "k.lane IS NULL")] {
                let sql = marks_sql(lane, &format!("k.id = ANY($1) AND {lane_of_k}"), true);
                let rows: Vec<MarksRow> = diesel::sql_query(sql)
                    .bind::<Array<BigInt>, _>(chunk.clone())
                    .load(conn)
                    .await?;
                for row in rows {
                    marks.push(row.into_marks()?);
                }
            }
            marks
        },
        sqlite: {
            use diesel_async::RunQueryDsl;
            let list = vec!["?"; chunk.len()].join(", ");
            let sql = marks_sql("x.lane IS k.lane", &format!("k.id IN ({list})"), false);
            let mut query = diesel::sql_query(sql).into_boxed();
            for id in &chunk {
                query = query.bind::<BigInt, _>(*id);
            }
            let rows_marks: Vec<MarksRow> = query.load(conn).await?;
            rows_marks
                .into_iter()
                .map(MarksRow::into_marks)
                .collect::<Result<Vec<_>, _>>()?
        }
    );
    Ok(marks.into_iter().map(|(id, p, n)| (id, (p, n))).collect())
}

/// Each event's lane neighbours: the classified reading before it and the one after it.
pub(crate) type Marks = std::collections::HashMap<i64, (Option<Mark>, Option<Mark>)>;

impl Store {
    /// The classified readings just before and just after each of events `ids` in its lane
    /// (one index probe each way per event); an id that is no event is absent.
    pub(crate) async fn neighbours_of(&self, ids: Vec<i64>) -> Result<Marks, StoreError> {
        self.run(move |store| async move {
            let mut found = Marks::new();
            for chunk in ids.chunks(CHUNK) {
                found.extend(marks_of(&store, chunk.to_vec()).await?);
            }
            Ok(found)
        })
        .await
    }
}
