//! Stream items from classified events: the event itself, and the label transitions its
//! classification made or changed — at the event (its label differs from the lane's reading
//! before it) and, for a late reading, at the lane's reading after it, which may now be a
//! transition it was not, no longer be one (`retracted`), or start from another label.

use std::collections::{HashMap, HashSet};

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

/// The items of a batch of classified events, in event id order, each transition after its
/// event's `classified` item.
pub fn items(batch: Vec<Neighbours>, roads: &HashMap<SensorId, String>) -> Vec<Item> {
    let mut items = Vec::with_capacity(batch.len());
    // Two events of one lane in one batch see each other: the change between them is found
    // from both sides and said once.
    let mut said: HashSet<(i64, i64, bool)> = HashSet::new();
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
            if !said.insert((from.event_id, to.event_id, retracted)) {
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
