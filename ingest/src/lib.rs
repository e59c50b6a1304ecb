//! The ingest service: sensors POST readings, workers get them classified over MCP, readers
//! list them. See `docs/architecture.md` for the map.

pub mod app;
pub mod auth;
pub mod body;
pub mod cache;
pub mod classify;
pub mod cli;
pub mod csv_body;
pub mod digest;
pub mod geojson;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod params;
pub mod problem;
pub mod query;
pub mod rate_limit;
pub mod redis;
pub mod request;
pub mod retention;
pub mod routes;
pub mod server;
pub mod settings;
pub mod simulate;
pub mod stream;
pub mod unread_body;
