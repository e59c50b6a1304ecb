//! Query strings: every parameter known and given at most once, every problem reported in one
//! `400 invalid-query` naming the parameters at fault.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use traffic_model::reading::FieldError;

use crate::problem::{Kind, Problem};

/// A request's query parameters, taken one by one by the handler, which then calls
/// [`QueryParams::finish`]. A repeated parameter is an error rather than "the last one wins":
/// a proxy or cache that keeps the first copy would otherwise read a different request.
pub struct QueryParams {
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

impl QueryParams {
    /// Parses `query` (without the `?`); `+` and percent escapes are decoded.
    pub fn parse(query: &str) -> Self {
        let mut params = Self {
            values: HashMap::new(),
            errors: Vec::new(),
        };
        let pairs = form_urlencoded::parse(query.as_bytes());
        for (name, value) in pairs {
            match params.values.entry(name.into_owned()) {
                Entry::Vacant(slot) => {
                    slot.insert(value.into_owned());
                }
                Entry::Occupied(slot) => {
                    let name = slot.key().clone();
                    if !params.errors.iter().any(|e| e.field == name) {
                        params.push(&name, "is given more than once; send it once");
                    }
                }
            }
        }
        params
    }

    /// Removes and returns a parameter.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// Takes a parameter and parses it with `parse`, recording its error.
    pub fn parsed<T, E: ToString>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let raw = self.take(name)?;
        parse(&raw)
            .map_err(|e| self.push(name, &e.to_string()))
            .ok()
    }

    /// An optional integer parameter within `range` (inclusive), `default` when absent or
    /// invalid (an invalid one is recorded).
    pub fn integer<T>(&mut self, name: &str, range: std::ops::RangeInclusive<T>, default: T) -> T
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let message = format!(
            "must be an integer from {} to {}",
            range.start(),
            range.end()
        );
        self.parsed(name, |raw| {
            raw.parse::<T>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or(message)
        })
        .unwrap_or(default)
    }

    fn push(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    }

    /// Every parameter not taken is unknown; `known` lists the ones the resource has.
    pub fn finish(mut self, known: &str) -> Result<(), Problem> {
        let mut unknown: Vec<String> = self.values.drain().map(|(name, _)| name).collect();
        unknown.sort();
        for name in unknown {
            self.push(&name, &format!("is not a parameter here ({known})"));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::new(
                Kind::InvalidQuery,
                format!("{} query parameter(s) are invalid", self.errors.len()),
            )
            .with_errors(self.errors))
        }
    }
}

impl FromRequest for QueryParams {
    type Error = Problem;
    type Future = std::future::Ready<Result<Self, Problem>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self::parse(request.query_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(result: Result<(), Problem>) -> Vec<(String, String)> {
        result
            .err()
            .map(|p| p.errors.into_iter().map(|e| (e.field, e.message)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_repeated_parameter_is_refused_by_name_even_when_both_copies_agree() {
        for query in [
            "limit=10&limit=20",
            "limit=10&limit=10",
            "limit=1&limit=2&limit=3",
        ] {
            let mut params = QueryParams::parse(query);
            params.integer("limit", 1..=1000, 100);
            let errors = errors(params.finish("limit"));
            assert_eq!(errors.len(), 1, "{query}: {errors:?}");
            assert_eq!(errors[0].0, "limit");
            assert!(errors[0].1.contains("more than once"), "{errors:?}");
        }
    }

    #[test]
    fn an_encoded_name_is_the_same_parameter() {
        let params = QueryParams::parse("limit=10&%6Cimit=20");
        assert_eq!(errors(params.finish("limit"))[0].0, "limit");
    }

    #[test]
    fn values_are_decoded_and_unknown_names_listed() {
        let mut params = QueryParams::parse("from=2026-11-29T08%3A00%3A00%2B01%3A00&b=1&a=2");
        assert_eq!(
            params.take("from").as_deref(),
            Some("2026-11-29T08:00:00+01:00")
        );
        let errors = errors(params.finish("from"));
        let names: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn an_invalid_integer_is_recorded_and_the_default_used() {
        let mut params = QueryParams::parse("limit=0");
        assert_eq!(params.integer("limit", 1..=1000, 100), 100);
        assert_eq!(errors(params.finish("limit"))[0].0, "limit");
    }
}
