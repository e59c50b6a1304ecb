//! Query strings into typed structs: every parameter known and given at most once, every
//! problem reported in one `400 invalid-query` naming the parameters at fault.
//!
//! A query struct derives `Deserialize` (with `deny_unknown_fields`, every field optional or
//! defaulted) and `JsonSchema`; the OpenAPI document lists its fields as the operation's
//! parameters, so the limits its field types carry are stated once.

use std::collections::HashSet;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use traffic_model::reading::FieldError;

use crate::problem::{Kind, Problem};

/// The query string of a request as `T`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> Query<T> {
    /// Parses `query` (without the `?`); `+` and percent escapes are decoded. A repeated
    /// parameter is an error rather than "the last one wins": a proxy or cache that keeps the
    /// first copy would otherwise read a different request.
    pub fn parse(query: &str) -> Result<Self, Problem> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut seen = HashSet::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if !seen.insert(name.clone()) {
                if !errors.iter().any(|e| e.field == name) {
                    errors.push(field_error(&name, "is given more than once; send it once"));
                }
                continue;
            }
            // Each parameter alone, so that every bad one is named, not only the first.
            let alone = form_urlencoded::Serializer::new(String::new())
                .append_pair(&name, &value)
                .finish();
            if let Err(e) = serde_urlencoded::from_str::<T>(&alone) {
                errors.push(field_error(&name, &e.to_string()));
            }
        }
        if !errors.is_empty() {
            return Err(Problem::new(
                Kind::InvalidQuery,
                format!("{} query parameter(s) are invalid", errors.len()),
            )
            .with_errors(errors));
        }
        serde_urlencoded::from_str(query)
            .map(Self)
            .map_err(|e| Problem::new(Kind::InvalidQuery, e.to_string()))
    }
}

fn field_error(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = Problem;
    type Future = std::future::Ready<Result<Self, Problem>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::parse(request.query_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::params::{Bounded, Timestamp};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        limit: Bounded<1, 1000, 100>,
        from: Option<Timestamp>,
    }

    fn errors(query: &str) -> Vec<(String, String)> {
        Query::<Sample>::parse(query)
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
            let errors = errors(query);
            assert_eq!(errors.len(), 1, "{query}: {errors:?}");
            assert_eq!(errors[0].0, "limit");
            assert!(errors[0].1.contains("more than once"), "{errors:?}");
        }
    }

    #[test]
    fn an_encoded_name_is_the_same_parameter() {
        assert_eq!(errors("limit=10&%6Cimit=20")[0].0, "limit");
    }

    #[test]
    fn values_are_decoded_and_defaults_applied() {
        let Query(sample) =
            Query::<Sample>::parse("from=2026-11-29T08%3A00%3A00%2B01%3A00").unwrap();
        assert_eq!(
            sample.from.map(|t| t.0.to_rfc3339()).as_deref(),
            Some("2026-11-29T07:00:00+00:00")
        );
        assert_eq!(sample.limit.get(), 100);
    }

    #[test]
    fn every_bad_and_unknown_parameter_is_named_in_one_answer() {
        let errors = errors("b=1&limit=0&from=yesterday&a=2");
        let names: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["b", "limit", "from", "a"]);
        assert!(errors[0].1.contains("unknown field"), "{errors:?}");
        assert!(errors[1].1.contains("from 1 to 1000"), "{errors:?}");
    }
}
