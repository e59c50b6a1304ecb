//! smart-traffic's classifier service and shared runtime.
//!
//! The reading, the classification and the rules live in the `traffic-model` crate.
//!
//! - [`store`]: events and the classification queue on PostgreSQL or SQLite.
//! - [`server`]: the MCP server (tools `classify`, `classify_by_id`, `classify_batch`) and its
//!   stdio and Streamable HTTP transports.
//! - [`wire`]: the newline-delimited JSON-RPC transport for stdio and in-process pipes.
//! - [`telemetry`]: logging setup shared by both binaries.

pub mod server;
pub mod store;
pub mod telemetry;
pub mod wire;
