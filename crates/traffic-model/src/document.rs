//! JSON text read with its repeated members named: a `Value` alone keeps the last copy of a
//! member given twice, and two parsers keeping different copies is how request smuggling starts.

use std::fmt;

use serde_json::{Map, Value};

use crate::reading::FieldError;

/// A JSON document as it arrived, with the names of members given more than once (a plain
/// `Value` keeps only the last copy). A document with any is refused, naming them: two parsers
/// keeping different copies is how request smuggling starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    /// Paths of repeated members, e.g. `location.lat` or `items[2].name`.
    pub repeated: Vec<String>,
}

impl Document {
    /// Parses JSON text; the error is the text's syntax error.
    pub fn parse(text: &[u8]) -> serde_json::Result<Self> {
        let mut repeated = Vec::new();
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        let value = serde::de::DeserializeSeed::deserialize(
            Members {
                path: String::new(),
                repeated: &mut repeated,
            },
            &mut deserializer,
        )?;
        deserializer.end()?;
        Ok(Self { value, repeated })
    }

    /// The value, or a field error naming each repeated member.
    pub fn unique(self) -> Result<Value, Vec<FieldError>> {
        if self.repeated.is_empty() {
            return Ok(self.value);
        }
        Err(self
            .repeated
            .into_iter()
            .map(|field| FieldError {
                field,
                message: "appears more than once; send each field once".to_owned(),
            })
            .collect())
    }
}

/// Deserialises one value at `path`, noting repeated member names on the way down.
struct Members<'a> {
    path: String,
    repeated: &'a mut Vec<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Members<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Members<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            let path = if self.path.is_empty() {
                name.clone()
            } else {
                format!("{}.{name}", self.path)
            };
            let value = access.next_value_seed(Members {
                path: path.clone(),
                repeated: self.repeated,
            })?;
            if members.insert(name, value).is_some() && !self.repeated.contains(&path) {
                self.repeated.push(path);
            }
        }
        Ok(Value::Object(members))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element_seed(Members {
            path: format!("{}[{}]", self.path, items.len()),
            repeated: self.repeated,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
}

#[cfg(test)]
mod tests {
    use super::Document;

    #[test]
    fn a_repeated_member_is_named_at_any_depth() {
        let text = br#"{"road": "A1", "road": "A2", "location": {"lon": 1, "lat": 2, "lat": 3}}"#;
        let document = Document::parse(text).expect("valid JSON");
        assert_eq!(document.repeated, ["road", "location.lat"]);
        let refused = document.unique().expect_err("refused");
        let fields: Vec<&str> = refused.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["road", "location.lat"]);
        let once =
            Document::parse(br#"{"road": "A1", "tags": [{"a": 1}, {"a": 2}]}"#).expect("JSON");
        assert!(
            once.repeated.is_empty(),
            "members of different objects are not repeats"
        );
        assert_eq!(once.unique().expect("unique")["road"], "A1");
        let in_array = Document::parse(br#"{"tags": [{"a": 1}, {"a": 2, "a": 3}]}"#).expect("JSON");
        assert_eq!(in_array.repeated, ["tags[1].a"]);
        assert!(Document::parse(b"{\"road\": }").is_err());
        assert!(Document::parse(b"{} {}").is_err(), "one document only");
    }
}
