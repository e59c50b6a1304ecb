//! `classify_batch`: many readings in one call, each judged with its own sensor's history.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use traffic_model::classification::Classification;
use traffic_model::reading::{FieldError, Reading, SensorId};
use traffic_model::rules::{self, RulesConfig, Site};

use super::args::Sites;

/// The outcome for one input reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BatchItem {
    Classified {
        /// Position of the reading in `events`.
        index: usize,
        classification: Classification,
    },
    Rejected {
        /// Position of the reading in `events`.
        index: usize,
        error: BatchError,
    },
}

/// Why one reading of a batch could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchError {
    pub message: String,
    /// Each offending field of the reading and its rule.
    pub errors: Vec<FieldError>,
}

/// `classify_batch`'s result: one entry per input reading, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BatchOutput {
    pub results: Vec<BatchItem>,
}

type LaneKey = (SensorId, Option<u8>);

/// Classifies `events` (already parsed; `Err` entries are reported as they are). A reading's
/// history is every reading of its sensor and lane in `history` and in the batch itself; the
/// rules keep only those observed before it. A sensor's entry in `sites` fills what its
/// readings leave out.
pub fn classify_batch(
    events: Vec<Result<Reading, Vec<FieldError>>>,
    history: Vec<Reading>,
    sites: &Sites,
    config: &RulesConfig,
) -> BatchOutput {
    let unknown = Site::default();
    let mut by_lane: HashMap<LaneKey, Vec<Reading>> = HashMap::new();
    let valid = events.iter().filter_map(|e| e.as_ref().ok()).cloned();
    for reading in history.into_iter().chain(valid) {
        by_lane.entry(lane_key(&reading)).or_default().push(reading);
    }
    for readings in by_lane.values_mut() {
        readings.sort_by_key(Reading::observed_at);
    }
    let results = events
        .into_iter()
        .enumerate()
        .map(|(index, event)| match event {
            Ok(reading) => {
                let same_lane = by_lane
                    .get(&lane_key(&reading))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let earlier = &same_lane
                    [..same_lane.partition_point(|r| r.observed_at() < reading.observed_at())];
                BatchItem::Classified {
                    index,
                    classification: rules::classify_at_site(
                        &reading,
                        earlier,
                        sites.get(reading.sensor_id()).unwrap_or(&unknown),
                        config,
                    ),
                }
            }
            Err(errors) => BatchItem::Rejected {
                index,
                error: BatchError {
                    message: traffic_model::reading::ReadingError {
                        errors: errors.clone(),
                    }
                    .to_string(),
                    errors,
                },
            },
        })
        .collect();
    BatchOutput { results }
}

fn lane_key(reading: &Reading) -> LaneKey {
    (reading.sensor_id().clone(), reading.lane())
}
