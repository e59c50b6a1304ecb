//! smart-traffic's classifier service: the MCP server exposing the rules of the
//! `traffic-model` crate, over the store of the `traffic-store` crate.
//!
//! - [`server`]: the MCP server (tools `classify`, `classify_by_id`, `classify_batch`) and its
//!   stdio and Streamable HTTP transports.
//! - [`wire`]: the newline-delimited JSON-RPC transport for stdio and in-process pipes.

pub mod server;
pub mod wire;
