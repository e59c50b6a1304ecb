//! What the smart-traffic services share to run, whatever they serve: logging, error chains,
//! the shutdown signal, and the reading and comparison of client secrets.

pub mod auth;
pub mod telemetry;
