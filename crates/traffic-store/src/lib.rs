//! Storage of readings, their classifications and the classification queue, on PostgreSQL or
//! SQLite behind one async interface.
//!
//! Writes run in spawned tasks so that a caller dropping the future (a client hanging up)
//! cannot stop a write halfway; reads may be cancelled freely, and a connection left mid-query
//! by a cancelled read is discarded by the pool rather than reused.

#[macro_use]
mod backend;
#[macro_use]
mod lanes;
mod config;
mod congestion;
mod cursor;
mod decode;
mod error;
mod history;
mod migrate;
#[macro_use]
mod model;
mod feed;
mod network;
mod partitions;
mod prepared;
mod queue;
mod read;
mod retention;
mod retry;
mod rollup;
mod rows;
mod schema;
mod sensors;
mod series;
mod sql_time;
mod state;
#[cfg(feature = "test-util")]
pub mod test_util;
mod transitions;
mod write;

pub use backend::Store;
pub use config::{DatabaseUrl, StoreConfig};
pub use congestion::Period;
pub use cursor::Cursor;
pub use error::StoreError;
pub use feed::{CHANNEL, Mark, Neighbours};
pub use history::LaneHistory;
pub use model::{
    Event, EventFilter, Inserted, LabelCounts, Page, Processing, Status, StatusCounts,
};
pub use network::{
    AgedLane, NetworkFilter, NetworkState, SensorListing, SensorListingPage, StateItem,
    StateSummary,
};
pub use retention::{Removed, Retained};
pub use retry::{Retry, RetryPolicy};
pub use sensors::Sensor;
pub use series::{SeriesFrame, SeriesOutcome, SeriesSources, before_retention};
pub use state::LaneState;
pub use transitions::{Transition, TransitionPage, TransitionQuery};
pub use write::InsertCounts;
