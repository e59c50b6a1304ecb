//! One SQL type for a UTC instant on either backend: `timestamptz` on PostgreSQL, diesel's
//! timestamp text on SQLite. A row read by raw SQL, and a value bound to it, is then declared
//! once for both backends instead of once per timestamp type.

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::query_builder::QueryId;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{SqlType, Timestamptz, TimestamptzSqlite};
use diesel::sqlite::{Sqlite, SqliteValue};

/// A UTC instant, as each backend stores `observed_at` and its kin.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct UtcTime;

impl FromSql<UtcTime, Pg> for DateTime<Utc> {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <Self as FromSql<Timestamptz, Pg>>::from_sql(value)
    }
}

impl FromSql<UtcTime, Sqlite> for DateTime<Utc> {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        <Self as FromSql<TimestamptzSqlite, Sqlite>>::from_sql(value)
    }
}

impl ToSql<UtcTime, Pg> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Self as ToSql<Timestamptz, Pg>>::to_sql(self, out)
    }
}

impl ToSql<UtcTime, Sqlite> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        <Self as ToSql<TimestamptzSqlite, Sqlite>>::to_sql(self, out)
    }
}
