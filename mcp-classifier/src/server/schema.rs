//! Tool input schemas, made portable: an optional argument is written as "may be absent"
//! (not in `required`) with a single `type`, not as `"type": [T, "null"]`, which some model
//! providers' function-calling dialects reject. `null` is still accepted as absent.

use std::sync::Arc;

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The input schema of a tool whose arguments are described by `T`.
pub fn input<T: JsonSchema>() -> Arc<JsonObject> {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = Value::from(schema);
    if let Some(root) = value.as_object_mut() {
        // The wrapper type's own name and doc comment are noise to a language model.
        root.remove("title");
        root.remove("description");
    }
    single_typed_optionals(&mut value);
    match value {
        Value::Object(object) => Arc::new(object),
        _ => Arc::new(JsonObject::new()),
    }
}

/// Rewrites `"type": [T, "null"]` to `"type": T` for every property that is not required.
fn single_typed_optionals(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let required: Vec<String> = object
                .get("required")
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if !required.contains(name) {
                        drop_null_type(property);
                    }
                }
            }
            object.values_mut().for_each(single_typed_optionals);
        }
        Value::Array(items) => items.iter_mut().for_each(single_typed_optionals),
        _ => {}
    }
}

fn drop_null_type(property: &mut Value) {
    drop_null_alternative(property);
    let Some(types) = property.get("type").and_then(Value::as_array) else {
        return;
    };
    let kept: Vec<Value> = types
        .iter()
        .filter(|t| t.as_str() != Some("null"))
        .cloned()
        .collect();
    if let (Some(object), [single]) = (property.as_object_mut(), kept.as_slice()) {
        object.insert("type".into(), single.clone());
    }
}

/// Rewrites `"anyOf": [S, {"type": "null"}]` (an optional object) to S's keywords.
fn drop_null_alternative(property: &mut Value) {
    let Some(object) = property.as_object_mut() else {
        return;
    };
    let Some(Value::Array(alternatives)) = object.get("anyOf") else {
        return;
    };
    let is_null = |s: &Value| s.get("type").and_then(Value::as_str) == Some("null");
    let kept: Vec<&Value> = alternatives.iter().filter(|s| !is_null(s)).collect();
    let [Value::Object(single)] = kept.as_slice() else {
        return;
    };
    let single = single.clone();
    object.remove("anyOf");
    object.extend(single);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::args::ClassifyArgs;

    #[test]
    fn optional_fields_have_one_type_and_stay_optional() {
        let schema = Value::Object((*input::<ClassifyArgs>()).clone());
        assert_eq!(schema["type"], "object");
        assert!(schema.get("title").is_none());
        assert_eq!(schema["properties"]["history"]["type"], "array");
        assert_eq!(schema["required"], serde_json::json!(["event"]));
        let reading = &schema["$defs"]["Reading"];
        assert_eq!(reading["properties"]["lane"]["type"], "integer");
        assert_eq!(reading["properties"]["avg_speed_kmh"]["type"], "number");
        assert_eq!(reading["properties"]["lane"]["maximum"], 32);
        assert_eq!(
            schema["properties"]["site"]["$ref"],
            "#/$defs/SensorMetadata"
        );
        let location = &schema["$defs"]["SensorMetadata"]["properties"]["location"];
        assert_eq!(location["$ref"], "#/$defs/Location");
        let text = schema.to_string();
        assert!(!text.contains("\"null\""), "{text}");
    }
}
