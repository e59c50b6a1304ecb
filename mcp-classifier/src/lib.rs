//! smart-traffic's shared core and classifier.
//!
//! - [`reading`]: the sensor reading, parsed from the wire with field-level errors.
//! - [`classification`]: the classifier's verdict, as stored and as served.
//! - [`rules`]: the traffic-engineering rules that classify a reading (pure, no I/O).
//! - [`store`]: events and the classification queue on PostgreSQL or SQLite.

pub mod classification;
pub mod reading;
pub mod rules;
pub mod store;
