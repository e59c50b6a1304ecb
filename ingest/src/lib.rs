//! The ingest service: sensors POST readings, workers get them classified over MCP, readers
//! list them. See `docs/architecture.md` for the map.

pub mod cli;
