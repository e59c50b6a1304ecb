//! Congestion periods: the stretches a lane spent at a label or worse. Found from the readings
//! at those labels alone (the label index), so the cost follows the congestion, not the
//! network: each lane's qualifying readings are cut into runs of adjacent readings, and only
//! at the ends of a run is the lane probed for the classified reading before and after it,
//! which tells whether two runs are one period, when a period ended, and whether it had begun
//! before the window. The answer is the one the label transitions give, and one more: a lane
//! whose very first reading is at the label starts a period there (with no reading before it,
//! the transitions show no change).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use traffic_model::classification::{Label, LevelOfService};
use traffic_model::reading::SensorId;

use super::decode::Decode;
use super::feed::Mark;
use super::rows::LaneAt;
use super::sql_time::UtcTime;
use super::{Store, StoreError};

/// A stretch of time a lane spent at the labels asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub sensor_id: SensorId,
    pub lane: Option<u8>,
    /// The first reading at the labels (the window's start when it had begun before).
    pub start: DateTime<Utc>,
    /// The first classified reading below them, when in the window.
    pub end: Option<DateTime<Utc>>,
    pub began_before_window: bool,
    pub worst_label: Label,
    /// The worst Level of Service among the period's readings in the window (and the one
    /// before the window when it had begun before).
    pub worst_los: Option<LevelOfService>,
}

/// One classified reading at a qualifying label.
#[derive(Debug, Clone)]
struct Qualifying {
    id: i64,
    sensor_id: SensorId,
    lane: Option<u8>,
    observed_at: DateTime<Utc>,
    interval_s: u32,
    label: Label,
    level_of_service: Option<LevelOfService>,
}

/// A reading at one of the labels, as either backend returns it.
#[derive(QueryableByName)]
struct QualifyingRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(embed)]
    at: LaneAt,
    #[diesel(sql_type = Integer)]
    interval_s: i32,
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = Nullable<Text>)]
    level_of_service: Option<String>,
}

impl QualifyingRow {
    fn decode(self) -> Result<Qualifying, StoreError> {
        let d = Decode(self.id);
        let (sensor_id, lane) = self.at.decode(&d)?;
        Ok(Qualifying {
            id: self.id,
            sensor_id,
            lane,
            observed_at: self.at.observed_at,
            interval_s: d.count(self.interval_s)?,
            label: d.label(&self.label)?,
            level_of_service: d.los(self.level_of_service.as_deref())?,
        })
    }
}

const QUALIFYING_COLUMNS: &str = "e.id, e.sensor_id, e.lane, e.observed_at, e.interval_s, \
    c.label, c.level_of_service";

impl Store {
    /// The periods in `[from, to)` when a lane (of `sensors`, or of every sensor) was at one
    /// of `labels`, by start. Each lane's latest classification before `from` tells the lanes
    /// already there when the window opened.
    pub async fn congestion_periods(
        &self,
        labels: &[Label],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        sensors: Option<&[SensorId]>,
    ) -> Result<Vec<Period>, StoreError> {
        let qualifies = |label: Label| labels.contains(&label);
        let in_scope = |id: &SensorId| sensors.is_none_or(|s| s.contains(id));
        let readings = self.qualifying(labels, from, to).await?;
        let mut lanes: BTreeMap<(SensorId, Option<u8>), Vec<Qualifying>> = BTreeMap::new();
        for r in readings.into_iter().filter(|r| in_scope(&r.sensor_id)) {
            lanes
                .entry((r.sensor_id.clone(), r.lane))
                .or_default()
                .push(r);
        }
        // Runs of adjacent qualifying readings; only their ends are probed.
        let mut runs: Vec<Vec<Qualifying>> = Vec::new();
        for readings in lanes.values_mut() {
            readings.sort_by_key(|r| r.observed_at);
            let mut run: Vec<Qualifying> = Vec::new();
            for r in readings.drain(..) {
                let adjacent = run.last().is_some_and(|last| {
                    r.observed_at - last.observed_at <= TimeDelta::seconds(i64::from(r.interval_s))
                });
                if !adjacent && !run.is_empty() {
                    runs.push(std::mem::take(&mut run));
                }
                run.push(r);
            }
            if !run.is_empty() {
                runs.push(run);
            }
        }
        let mut ends: Vec<i64> = Vec::new();
        for run in &runs {
            ends.extend(run.first().map(|r| r.id));
            ends.extend(run.last().map(|r| r.id));
        }
        let before = from - TimeDelta::microseconds(1);
        // One sensor asked about: its lanes alone are probed.
        let only = match sensors {
            Some([one]) => Some(one.clone()),
            _ => None,
        };
        let at_from: Vec<_> = self
            .lane_states(Some(before), only)
            .await?
            .into_iter()
            .filter(|l| in_scope(&l.sensor_id) && qualifies(l.label))
            .collect();
        ends.extend(at_from.iter().map(|l| l.event_id));
        let marks = self.neighbours_of(ends).await?;
        let next_of = |id: i64| marks.get(&id).and_then(|(_, next)| next.clone());
        let previous_of = |id: i64| marks.get(&id).and_then(|(previous, _)| previous.clone());

        let mut periods = Vec::new();
        let mut open: Option<Period> = None;
        // The open period's lane and its last reading so far.
        let mut open_end: Option<((SensorId, Option<u8>), i64)> = None;
        let mut began_before: HashSet<(SensorId, Option<u8>)> = HashSet::new();
        for run in runs {
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                continue;
            };
            let lane = (first.sensor_id.clone(), first.lane);
            let worst_label = run
                .iter()
                .map(|r| r.label)
                .reduce(worse)
                .unwrap_or(first.label);
            let worst_los = run.iter().filter_map(|r| r.level_of_service).max();
            let previous = previous_of(first.id);
            // The open period goes on when nothing classified lies between its last reading
            // and this run.
            let continues = open_end.as_ref().is_some_and(|(open_lane, last_id)| {
                *open_lane == lane && previous.as_ref().is_some_and(|p| p.event_id == *last_id)
            });
            match open.as_mut() {
                Some(period) if continues => {
                    period.worst_label = worse(period.worst_label, worst_label);
                    period.worst_los = period.worst_los.max(worst_los);
                }
                _ => {
                    periods.extend(open.take());
                    let earlier = previous.filter(|p| qualifies(p.label) && p.observed_at < from);
                    if earlier.is_some() {
                        began_before.insert(lane.clone());
                    }
                    open = Some(Period {
                        sensor_id: first.sensor_id.clone(),
                        lane: first.lane,
                        start: if earlier.is_some() {
                            from
                        } else {
                            first.observed_at
                        },
                        end: None,
                        began_before_window: earlier.is_some(),
                        worst_label: earlier
                            .as_ref()
                            .map_or(worst_label, |e| worse(e.label, worst_label)),
                        worst_los: earlier
                            .as_ref()
                            .and_then(|e| e.level_of_service)
                            .max(worst_los),
                    });
                }
            }
            open_end = Some((lane, last.id));
            // Ended by the next classified reading, when it lies in the window.
            if let (Some(period), Some(next)) = (open.as_mut(), next_of(last.id))
                && !qualifies(next.label)
                && next.observed_at < to
            {
                period.end = Some(next.observed_at);
            }
        }
        periods.extend(open);
        // Lanes at the labels when the window opened whose next reading in it is not.
        for lane in at_from {
            let key = (lane.sensor_id.clone(), lane.lane);
            if began_before.contains(&key) {
                continue;
            }
            let next: Option<Mark> = next_of(lane.event_id);
            if next
                .as_ref()
                .is_some_and(|n| qualifies(n.label) && n.observed_at < to)
            {
                continue; // its run in the window carries the period
            }
            periods.push(Period {
                sensor_id: lane.sensor_id,
                lane: lane.lane,
                start: from,
                end: next.filter(|n| n.observed_at < to).map(|n| n.observed_at),
                began_before_window: true,
                worst_label: lane.label,
                worst_los: lane.level_of_service,
            });
        }
        periods
            .sort_by(|a, b| (a.start, &a.sensor_id, a.lane).cmp(&(b.start, &b.sensor_id, b.lane)));
        Ok(periods)
    }

    /// Classified readings at `labels` observed in `[from, to)`, on the label index.
    async fn qualifying(
        &self,
        labels: &[Label],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Qualifying>, StoreError> {
        let labels: Vec<String> = labels.iter().map(|l| l.into_str().to_owned()).collect();
        self.run(move |store| async move {
            Ok(with_conn!(store, |conn|
                postgres: {
                    use diesel_async::RunQueryDsl;
                    let rows: Vec<QualifyingRow> = diesel::sql_query(format!(
                        "SELECT {QUALIFYING_COLUMNS} \
                           FROM classifications c \
                           JOIN events e ON e.id = c.event_id AND e.observed_at = c.observed_at \
                          WHERE c.label = ANY($1) AND c.observed_at >= $2 AND c.observed_at < $3"
                    ))
                    .bind::<Array<Text>, _>(labels)
                    .bind::<UtcTime, _>(from)
                    .bind::<UtcTime, _>(to)
                    .load(conn)
                    .await?;
                    rows.into_iter().map(QualifyingRow::decode).collect::<Result<Vec<_>, _>>()?
                },
                sqlite: {
                    use diesel_async::RunQueryDsl;
                    let list = vec!["?"; labels.len()].join(", ");
                    let mut query = diesel::sql_query(format!(
                        "SELECT {QUALIFYING_COLUMNS} \
                           FROM classifications c JOIN events e ON e.id = c.event_id \
                          WHERE c.label IN ({list}) AND c.observed_at >= ? AND c.observed_at < ?"
                    ))
                    .into_boxed();
                    for label in labels {
                        query = query.bind::<Text, _>(label);
                    }
                    let rows: Vec<QualifyingRow> = query
                        .bind::<UtcTime, _>(from)
                        .bind::<UtcTime, _>(to)
                        .load(conn)
                        .await?;
                    rows.into_iter().map(QualifyingRow::decode).collect::<Result<Vec<_>, _>>()?
                }
            ))
        })
        .await
    }
}

fn worse(a: Label, b: Label) -> Label {
    if b.severity() > a.severity() { b } else { a }
}
