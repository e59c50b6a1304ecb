//! smart-traffic's shared core and classifier.
//!
//! - [`reading`]: the sensor reading, parsed from the wire with field-level errors.
//! - [`classification`]: the classifier's verdict, as stored and as served.
//! - [`rules`]: the traffic-engineering rules that classify a reading (pure, no I/O).
//! - [`store`]: events and the classification queue on PostgreSQL or SQLite.
//! - [`server`]: the MCP server (tools `classify`, `classify_by_id`, `classify_batch`) and its
//!   stdio and Streamable HTTP transports.
//! - [`wire`]: the newline-delimited JSON-RPC transport for stdio and in-process pipes.
//! - [`telemetry`]: logging setup shared by both binaries.

pub mod classification;
pub mod reading;
pub mod rules;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod wire;
