//! Stream items from classified events: the event itself, and the label transitions its
//! classification made or changed — at the event (its label differs from the lane's reading
//! before it) and, for a late reading, at the lane's reading after it, which may now be a
//! transition it was not, no longer be one (`retracted`), or start from another label.

use std::collections::{HashMap, HashSet, VecDeque};

use schemars::JsonSchema;
use serde::Serialize;
use traffic_model::reading::SensorId;
use traffic_store::{Mark, Neighbours, Transition};

use super::hub::{Item, ItemKind};

/// A `transition` event's data.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StreamTransition {
    #[serde(flatten)]
    pub transition: Transition,
    /// Made or changed by a reading that arrived after later ones of its lane.
    pub late: bool,
    /// This change no longer holds: a late reading between the two took the label first.
    pub retracted: bool,
}

/// The transitions said lately, so that one found from both of its readings — classified in
/// one batch, or in two close ones — is said once.
pub struct Said {
    keys: HashSet<(i64, i64, bool)>,
    order: VecDeque<(i64, i64, bool)>,
    capacity: usize,
}

impl Said {
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// True the first time `key` (from event, to event, retracted) is seen.
    fn first(&mut self, key: (i64, i64, bool)) -> bool {
        if !self.keys.insert(key) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.keys.remove(&oldest);
        }
        self.order.push_back(key);
        true
    }
}

/// The items of a batch of classified events, in event id order, each transition after its
/// event's `classified` item.
pub fn items(
    batch: Vec<Neighbours>,
    roads: &HashMap<SensorId, String>,
    said: &mut Said,
) -> Vec<Item> {
    let mut items = Vec::with_capacity(batch.len());
    for n in batch {
        let Some(classification) = &n.event.classification else {
            continue;
        };
        let sensor_id = n.event.reading.sensor_id().clone();
        let road = roads.get(&sensor_id).cloned();
        let base = format!(
            "{}.{}",
            n.event.id,
            n.event.classified_at.map_or(0, |t| t.timestamp_micros())
        );
        let label = classification.label;
        let current = Mark {
            event_id: n.event.id,
            observed_at: n.event.reading.observed_at(),
            label,
            level_of_service: classification.level_of_service,
        };
        let Ok(data) = serde_json::to_string(&n.event) else {
            continue;
        };
        items.push(Item::new(
            format!("{base}.c"),
            ItemKind::Classified,
            sensor_id.to_string(),
            road.clone(),
            vec![label],
            &data,
        ));
        let late = n.next.is_some();
        let mut change = |suffix: &str, from: &Mark, to: &Mark, retracted: bool| {
            if !said.first((from.event_id, to.event_id, retracted)) {
                return;
            }
            let transition = StreamTransition {
                transition: Transition {
                    sensor_id: sensor_id.clone(),
                    lane: n.event.reading.lane(),
                    at: to.observed_at,
                    from_label: from.label,
                    to_label: to.label,
                    from_level_of_service: from.level_of_service,
                    to_level_of_service: to.level_of_service,
                    event_id: to.event_id,
                    previous_event_id: from.event_id,
                    previous_observed_at: from.observed_at,
                },
                late,
                retracted,
            };
            if let Ok(data) = serde_json::to_string(&transition) {
                items.push(Item::new(
                    format!("{base}.{suffix}"),
                    ItemKind::Transition,
                    sensor_id.to_string(),
                    road.clone(),
                    vec![from.label, to.label],
                    &data,
                ));
            }
        };
        if let Some(previous) = n.previous.as_ref().filter(|p| p.label != label) {
            change("t", previous, &current, false);
        }
        if let Some(next) = &n.next {
            let now_one = label != next.label;
            match &n.previous {
                // Before this reading the next one followed `previous`.
                Some(previous) => {
                    let was_one = previous.label != next.label;
                    if was_one && !now_one {
                        change("n", previous, next, true);
                    } else if now_one && (!was_one || previous.label != label) {
                        change("n", &current, next, false);
                    }
                }
                None if now_one => change("n", &current, next, false),
                None => {}
            }
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use traffic_model::classification::{Classification, Label};
    use traffic_store::test_util::{minute, reading};
    use traffic_store::{Event, Processing, Status};

    use super::*;

    fn classified(id: i64, minutes: i64, label: Label) -> (Event, Mark) {
        let event = Event {
            id,
            reading: reading("s1", Some(1), minutes),
            received_at: Utc::now(),
            status: Status::Classified,
            classification: Some(Classification {
                label,
                level_of_service: None,
                flow_veh_h_lane: 0.0,
                density_veh_km_lane: None,
                confidence: 1.0,
                flags: vec![],
                reasons: vec![],
                classifier_version: "test".into(),
            }),
            classified_at: Some(Utc::now()),
            processing: Processing {
                attempts: 1,
                next_attempt_at: None,
                last_error: None,
                requeued: false,
            },
        };
        let mark = Mark {
            event_id: id,
            observed_at: minute(minutes),
            label,
            level_of_service: None,
        };
        (event, mark)
    }

    fn transitions(items: &[Item]) -> usize {
        items
            .iter()
            .filter(|i| i.kind == ItemKind::Transition)
            .count()
    }

    /// A change found from its later reading and, in the next batch, from its earlier one (the
    /// two classified out of order by two workers) is said once.
    #[test]
    fn a_change_seen_from_both_of_its_readings_is_said_once() {
        let (free, free_mark) = classified(1, 0, Label::FreeFlow);
        let (jam, jam_mark) = classified(2, 2, Label::Congested);
        let mut said = Said::new(16);
        let roads = HashMap::new();
        let from_later = items(
            vec![Neighbours {
                event: jam,
                previous: Some(free_mark),
                next: None,
            }],
            &roads,
            &mut said,
        );
        assert_eq!(transitions(&from_later), 1);
        let from_earlier = items(
            vec![Neighbours {
                event: free,
                previous: None,
                next: Some(jam_mark),
            }],
            &roads,
            &mut said,
        );
        assert_eq!(transitions(&from_earlier), 0, "already said");
        assert_eq!(
            from_earlier.len(),
            1,
            "the classified event itself still goes out"
        );
    }
}
