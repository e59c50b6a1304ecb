//! Raw SQL that PostgreSQL prepares once per connection. `diesel::sql_query` marks its
//! statements unsafe to cache (its text may be built from values), so each run is parsed and
//! planned again; on the read paths run hundreds of times a second that is a fifth of the
//! database's work. A [`Prepared`] statement's text is a constant of its call site (values
//! only ever go in binds), so the connection's statement cache keeps it by that text.
//!
//! Its text numbers its parameters as PostgreSQL does (`$1`, `$2`, … and a number used again
//! where the same value is needed again); diesel numbers binds in the order it meets them, so
//! each use of a number becomes a bind of its own, renumbered. The text must hold no `$`
//! elsewhere (no string constants with one, no dollar quoting).

use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// A statement and its bind values.
pub(crate) struct Prepared {
    sql: String,
    binds: Vec<Box<dyn QueryFragment<Pg> + Send>>,
}

struct Bind<ST, T> {
    value: T,
    sql_type: PhantomData<ST>,
}

impl Prepared {
    /// `sql`, with `$1`, `$2`, … for the values bound next, in order.
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            binds: Vec::new(),
        }
    }

    pub(crate) fn bind<ST, T>(mut self, value: T) -> Self
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + Send + 'static,
        ST: Send + 'static,
    {
        self.binds.push(Box::new(Bind {
            value,
            sql_type: PhantomData::<ST>,
        }));
        self
    }
}

impl<ST, T> QueryFragment<Pg> for Bind<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)
    }
}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = self.sql.as_str();
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let digits = rest[at + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(rest.len() - at - 1, |n| n);
            let number: usize = rest[at + 1..at + 1 + digits].parse().map_err(|_| {
                diesel::result::Error::QueryBuilderError("a `$` without a parameter number".into())
            })?;
            let bind = number
                .checked_sub(1)
                .and_then(|i| self.binds.get(i))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("${number} has no value bound").into(),
                    )
                })?;
            bind.walk_ast(out.reborrow())?;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl QueryId for Prepared {
    type QueryId = ();
    // Cached by its text, not by a type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{Integer, Text};

    use super::*;

    #[test]
    fn each_use_of_a_parameter_is_a_bind_of_its_own_numbered_in_order() {
        let query = Prepared::new("SELECT $2, $1 WHERE a = $2 AND b = $10")
            .bind::<Integer, _>(1)
            .bind::<Text, _>("two".to_owned())
            .bind::<Integer, _>(3)
            .bind::<Integer, _>(4)
            .bind::<Integer, _>(5)
            .bind::<Integer, _>(6)
            .bind::<Integer, _>(7)
            .bind::<Integer, _>(8)
            .bind::<Integer, _>(9)
            .bind::<Integer, _>(10);
        let shown = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            shown.starts_with(
                "SELECT $1, $2 WHERE a = $3 AND b = $4 -- binds: [\"two\", 1, \"two\", 10]"
            ),
            "{shown}"
        );
    }

    #[test]
    fn a_parameter_with_no_value_is_an_error_not_a_panic() {
        use diesel::pg::PgQueryBuilder;
        let unbound = Prepared::new("SELECT $1, $3").bind::<Integer, _>(1);
        assert!(unbound.to_sql(&mut PgQueryBuilder::default(), &Pg).is_err());
        let lone = Prepared::new("SELECT $");
        assert!(lone.to_sql(&mut PgQueryBuilder::default(), &Pg).is_err());
    }
}
