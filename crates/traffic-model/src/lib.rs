//! smart-traffic's domain: what a sensor reports and what the classifier makes of it. Pure —
//! no I/O, no database — so the store, the MCP server and the REST API share one definition.
//!
//! - [`reading`]: the sensor reading, parsed from the wire with field-level errors.
//! - [`document`]: JSON text parsed with its repeated members named.
//! - [`classification`]: the classifier's verdict, as stored and as served.
//! - [`rules`]: the traffic-engineering rules that classify a reading.
//! - [`sensor`]: what is known about a sensor besides its readings (place, site, time zone).
//! - [`place`]: a road and a WGS84 box, as reads of the network select sensors.
//! - [`series`]: readings summed up in local-time buckets.

pub mod classification;
pub mod document;
mod fields;
pub mod place;
pub mod reading;
pub mod rules;
pub mod sensor;
pub mod series;
