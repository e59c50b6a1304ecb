//! Label transitions: every classified reading whose label differs from the lane's classified
//! reading just before it. Computed from the readings when asked (a window function over the
//! lane's readings in time order), never stored, so a late reading that lands between two
//! others changes the transitions around it the moment it is classified.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use schemars::JsonSchema;
use serde::Serialize;
use traffic_model::classification::{Label, LevelOfService};
use traffic_model::reading::SensorId;

use super::decode::Decode;
use super::rows::LaneAt;
use super::sql_time::UtcTime;
use super::{Cursor, Store, StoreError};

/// A change of a lane's label.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Transition {
    pub sensor_id: SensorId,
    /// The lane; `null` for a whole-carriageway sensor.
    pub lane: Option<u8>,
    /// When the new label was first observed: the end of that reading's counting interval.
    pub at: DateTime<Utc>,
    pub from_label: Label,
    pub to_label: Label,
    pub from_level_of_service: Option<LevelOfService>,
    pub to_level_of_service: Option<LevelOfService>,
    /// The reading with the new label.
    pub event_id: i64,
    /// The lane's reading before it, with the old label.
    pub previous_event_id: i64,
    pub previous_observed_at: DateTime<Utc>,
}

/// Which transitions to list.
#[derive(Debug, Clone)]
pub struct TransitionQuery {
    /// Transitions observed at or after `from` …
    pub from: DateTime<Utc>,
    /// … and before `to`.
    pub to: DateTime<Utc>,
    /// Only these sensors (`None`: every sensor).
    pub sensors: Option<Vec<SensorId>>,
    pub newest_first: bool,
    /// The last transition of the previous page.
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// One page of transitions.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionPage {
    pub items: Vec<Transition>,
    pub next: Option<Cursor>,
}

/// A reading whose label differs from the one before it in its lane, as either backend
/// returns it.
#[derive(QueryableByName)]
struct Row {
    #[diesel(embed)]
    at: LaneAt,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = Nullable<Text>)]
    level_of_service: Option<String>,
    #[diesel(sql_type = Text)]
    prev_label: String,
    #[diesel(sql_type = Nullable<Text>)]
    prev_los: Option<String>,
    #[diesel(sql_type = BigInt)]
    prev_id: i64,
    #[diesel(sql_type = UtcTime)]
    prev_at: DateTime<Utc>,
}

impl Row {
    fn into_transition(self) -> Result<Transition, StoreError> {
        let d = Decode(self.id);
        let (sensor_id, lane) = self.at.decode(&d)?;
        Ok(Transition {
            sensor_id,
            lane,
            at: self.at.observed_at,
            from_label: d.label(&self.prev_label)?,
            to_label: d.label(&self.label)?,
            from_level_of_service: d.los(self.prev_los.as_deref())?,
            to_level_of_service: d.los(self.level_of_service.as_deref())?,
            event_id: self.id,
            previous_event_id: self.prev_id,
            previous_observed_at: self.prev_at,
        })
    }
}

/// The classified readings of the window plus, per lane, the last one before it (the seed
/// that gives the window's first reading its predecessor); each reading next to the one before
/// it in its lane; those whose label changed, in page order after the cursor. `{sensors}`,
/// `{seed}`, `{after}` and `{order}` are filled per backend.
const TRANSITIONS: &str = "\
    WITH readings AS (\
        SELECT e.sensor_id, e.lane, e.observed_at, e.id, c.label, c.level_of_service \
          FROM events e \
          JOIN classifications c ON c.event_id = e.id AND c.observed_at = e.observed_at \
         WHERE e.observed_at >= {from} AND e.observed_at < {to} {sensors} \
        UNION ALL {seed}), \
    paired AS (\
        SELECT sensor_id, lane, observed_at, id, label, level_of_service, \
               lag(label) OVER lane AS prev_label, \
               lag(level_of_service) OVER lane AS prev_los, \
               lag(id) OVER lane AS prev_id, \
               lag(observed_at) OVER lane AS prev_at \
          FROM readings \
        WINDOW lane AS (PARTITION BY sensor_id, lane ORDER BY observed_at)) \
    SELECT * FROM paired \
     WHERE prev_label IS NOT NULL AND prev_label <> label AND observed_at >= {from} {after} \
     ORDER BY observed_at {order}, id {order} LIMIT {limit}";

impl Store {
    /// The label transitions `query` asks for, one page.
    pub async fn transitions(&self, query: TransitionQuery) -> Result<TransitionPage, StoreError> {
        let limit = query.limit.max(1);
        self.run(move |store| async move {
            let order = if query.newest_first { "DESC" } else { "ASC" };
            let after_op = if query.newest_first { "<" } else { ">" };
            let keys: Option<Vec<String>> = query
                .sensors
                .as_ref()
                .map(|ids| ids.iter().map(|id| id.as_str().to_owned()).collect());
            let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
            // Without a cursor, a page starts at the window's edge: every id is above 0.
            let start = Cursor {
                observed_at: if query.newest_first {
                    query.to
                } else {
                    query.from
                },
                id: 0,
            };
            let mut items: Vec<Transition> = with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    // Every parameter appears in the text whatever the query asks (PostgreSQL
                    // refuses a statement bound with more parameters than it names); with
                    // values known at planning, the conditions that do not apply fold away.
                    let sensors = "AND (cardinality($3::text[]) = 0 OR e.sensor_id = ANY($3))";
                    let probe = |lane_match: &str, lane_state: &str| {
                        format!(
                            "SELECT x.* FROM lane_state l CROSS JOIN LATERAL ( \
                                 SELECT e.sensor_id, e.lane, e.observed_at, e.id, c.label, \
                                        c.level_of_service \
                                   FROM events e JOIN classifications c \
                                     ON c.event_id = e.id AND c.observed_at = e.observed_at \
                                  WHERE e.sensor_id = l.sensor_id AND {lane_match} \
                                    AND e.observed_at < $1 \
                                  ORDER BY e.observed_at DESC LIMIT 1) x \
                             WHERE {lane_state} \
                               AND (cardinality($3::text[]) = 0 OR l.sensor_id = ANY($3))"
                        )
                    };
                    let seed = format!(
                        "{} UNION ALL {}",
                        probe("e.lane = l.lane", "l.lane IS NOT NULL"),
                        probe("e.lane IS NULL", "l.lane IS NULL")
                    );
                    let after = format!("AND (observed_at, id) {after_op} ($4, $5)");
                    let sql = TRANSITIONS
                        .replace("{seed}", &seed)
                        .replace("{sensors}", sensors)
                        .replace("{after}", &after)
                        .replace("{order}", order)
                        .replace("{limit}", "$6")
                        .replace("{from}", "$1")
                        .replace("{to}", "$2");
                    let cursor = query.after.unwrap_or(start);
                    let rows: Vec<Row> = diesel::sql_query(sql)
                        .bind::<UtcTime, _>(query.from)
                        .bind::<UtcTime, _>(query.to)
                        .bind::<Array<Text>, _>(keys.clone().unwrap_or_default())
                        .bind::<UtcTime, _>(cursor.observed_at)
                        .bind::<BigInt, _>(cursor.id)
                        .bind::<BigInt, _>(fetch)
                        .load(conn)
                        .await?;
                    rows.into_iter().map(Row::into_transition).collect::<Result<_, _>>()?
                },
                sqlite: {
                    use diesel_async::RunQueryDsl;
                    // Numbered parameters: ?1 from, ?2 to, ?3 cursor time, ?4 cursor id,
                    // ?5 limit, then the sensor ids.
                    let list = keys.as_ref().map(|ids| {
                        (0..ids.len()).map(|i| format!("?{}", i + 6)).collect::<Vec<_>>().join(", ")
                    });
                    let sensors = list
                        .as_ref()
                        .map(|list| format!("AND e.sensor_id IN ({list})"))
                        .unwrap_or_default();
                    let seed = format!(
                        "SELECT e.sensor_id, e.lane, e.observed_at, e.id, c.label, \
                                c.level_of_service \
                           FROM lane_state l \
                           JOIN events e ON e.id = ( \
                               SELECT p.id FROM events p \
                               JOIN classifications pc ON pc.event_id = p.id \
                               WHERE p.sensor_id = l.sensor_id AND p.lane IS l.lane \
                                 AND p.observed_at < ?1 \
                               ORDER BY p.observed_at DESC LIMIT 1) \
                           JOIN classifications c ON c.event_id = e.id \
                          WHERE 1 = 1 {}",
                        list.as_ref()
                            .map(|list| format!("AND l.sensor_id IN ({list})"))
                            .unwrap_or_default()
                    );
                    let after = format!("AND (observed_at, id) {after_op} (?3, ?4)");
                    let sql = TRANSITIONS
                        .replace("{seed}", &seed)
                        .replace("{sensors}", &sensors)
                        .replace("{after}", &after)
                        .replace("{order}", order)
                        .replace("{limit}", "?5")
                        .replace("{from}", "?1")
                        .replace("{to}", "?2");
                    let cursor = query.after.unwrap_or(start);
                    let mut statement = diesel::sql_query(sql)
                        .into_boxed()
                        .bind::<UtcTime, _>(query.from)
                        .bind::<UtcTime, _>(query.to)
                        .bind::<UtcTime, _>(cursor.observed_at)
                        .bind::<BigInt, _>(cursor.id)
                        .bind::<BigInt, _>(fetch);
                    for key in keys.clone().unwrap_or_default() {
                        statement = statement.bind::<Text, _>(key);
                    }
                    let rows: Vec<Row> = statement.load(conn).await?;
                    rows.into_iter().map(Row::into_transition).collect::<Result<_, _>>()?
                }
            );
            let next = (items.len() > limit).then(|| {
                items.truncate(limit);
                items.last().map(|t| Cursor {
                    observed_at: t.at,
                    id: t.event_id,
                })
            });
            Ok(TransitionPage {
                items,
                next: next.flatten(),
            })
        })
        .await
    }
}
