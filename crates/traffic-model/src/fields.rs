//! Field-level checks of JSON documents, shared by every input the service validates (readings,
//! sensor metadata): each reports its problem in words into a list, so that a caller can report
//! every offending field at once.

use std::fmt;

use serde_json::Value;

use crate::reading::FieldError;

pub(crate) fn push(errors: &mut Vec<FieldError>, field: &str, message: &str) {
    errors.push(FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    });
}

/// Reports a missing value, unless the field was sent with the wrong JSON type (already reported).
pub(crate) fn required<T>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<T>,
) -> Option<T> {
    if value.is_none() && !errors.iter().any(|e| e.field == field) {
        push(errors, field, "is required");
    }
    value
}

/// `Some(None)` for an absent optional value, `None` when the conversion fails.
pub(crate) fn narrow<T: TryFrom<i64>>(value: Option<i64>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(v) => T::try_from(v).ok().map(Some),
    }
}

pub(crate) fn in_range(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<i64>,
    (min, max): (i64, i64),
    unit: &str,
) -> Option<i64> {
    let v = value?;
    if (min..=max).contains(&v) {
        Some(v)
    } else {
        push(errors, field, &range_message((min, max), unit, v));
        None
    }
}

pub(crate) fn in_range_f(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<f64>,
    (min, max): (f64, f64),
    unit: &str,
) -> Option<f64> {
    let v = value?;
    if v.is_finite() && (min..=max).contains(&v) {
        Some(v)
    } else {
        push(
            errors,
            field,
            &range_message((min, max), unit, v).replacen("an integer", "a number", 1),
        );
        None
    }
}

pub(crate) fn string(errors: &mut Vec<FieldError>, field: &str, value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        other => {
            push(
                errors,
                field,
                &format!("must be a string, got {}", json_type_name(&other)),
            );
            None
        }
    }
}

/// A JSON integer; `range` and `unit` only word the error for a number too large for any range.
pub(crate) fn integer(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Value,
    range: (i64, i64),
    unit: &str,
) -> Option<i64> {
    match &value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Some(i);
            }
            // JSON Schema's "integer" admits any number with a zero fraction (60.0, 1e3);
            // the published schema says "integer", so the parser agrees with it.
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
                Some(f) if f.fract() == 0.0 => {
                    push(errors, field, &range_message(range, unit, n));
                    None
                }
                _ => {
                    push(errors, field, &format!("must be a whole number, got {n}"));
                    None
                }
            }
        }
        other => {
            push(
                errors,
                field,
                &format!("must be an integer, got {}", json_type_name(other)),
            );
            None
        }
    }
}

pub(crate) fn range_message(
    (min, max): (impl fmt::Display, impl fmt::Display),
    unit: &str,
    got: impl fmt::Display,
) -> String {
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    format!("must be an integer from {min} to {max}{unit}, got {got}")
}

pub(crate) fn number(errors: &mut Vec<FieldError>, field: &str, value: Value) -> Option<f64> {
    match &value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => Some(f),
            _ => {
                push(errors, field, "must be a finite number");
                None
            }
        },
        other => {
            push(
                errors,
                field,
                &format!("must be a number, got {}", json_type_name(other)),
            );
            None
        }
    }
}

pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
