//! The tables per backend, and the `event_states` view over them. Queries are written once
//! against whichever modules [`with_conn!`](super::backend) brings into scope, so the two must
//! keep the same column names.

#[path = "postgres.rs"]
mod postgres_tables;
pub mod sqlite;

pub mod postgres {
    pub use super::postgres_tables::*;
    include!("postgres_views.rs");
}
