//! The `events` table per backend. Queries are written once against whichever module
//! [`with_conn!`](super::backend) brings into scope, so the two must keep the same column names.

pub mod postgres;
pub mod sqlite;
