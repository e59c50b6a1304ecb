//! The classifier links' state, for `GET /v1/ready`.

use std::sync::Mutex;

use schemars::JsonSchema;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// No call made yet.
    Idle,
    Connected,
    /// Unreachable or lost; events stay pending and are retried.
    Down,
    /// Workers are disabled (`CLASSIFY_WORKERS=0`).
    Paused,
}

/// What `/v1/ready` reports about classification.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClassifierStatus {
    pub state: LinkState,
    /// `in-process`, `stdio: …` or `http: …`.
    pub transport: String,
    pub workers: usize,
    /// The latest connection problem, if any.
    pub last_error: Option<String>,
}

/// One slot per worker.
pub struct ClassifierHealth {
    transport: String,
    slots: Mutex<Vec<(LinkState, Option<String>)>>,
}

impl ClassifierHealth {
    pub fn new(transport: String, workers: usize) -> Self {
        Self {
            transport,
            slots: Mutex::new(vec![(LinkState::Idle, None); workers]),
        }
    }

    pub fn set(&self, slot: usize, state: LinkState, error: Option<String>) {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = slots.get_mut(slot) {
            let error = error.or_else(|| entry.1.take().filter(|_| state != LinkState::Connected));
            *entry = (state, error);
        }
    }

    /// Connected when any worker is; down when all that tried are down.
    pub fn status(&self) -> ClassifierStatus {
        let slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let workers = slots.len();
        let state = if workers == 0 {
            LinkState::Paused
        } else if slots.iter().any(|(s, _)| *s == LinkState::Connected) {
            LinkState::Connected
        } else if slots.iter().any(|(s, _)| *s == LinkState::Down) {
            LinkState::Down
        } else {
            LinkState::Idle
        };
        let last_error = slots.iter().find_map(|(_, e)| e.clone());
        ClassifierStatus {
            state,
            transport: self.transport.clone(),
            workers,
            last_error,
        }
    }
}
