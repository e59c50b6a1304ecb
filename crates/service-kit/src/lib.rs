//! What the smart-traffic services share to run, whatever they serve: logging, error chains
//! and the shutdown signal.

pub mod telemetry;
