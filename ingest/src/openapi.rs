//! The OpenAPI 3.1 document, generated from the route table in [`crate::routes`] and the
//! schemars schemas of the very types the handlers serialise (the reading's schema included),
//! so the document cannot drift from the code's types.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::auth::Access;
use crate::negotiate::Representation;
use crate::problem::Problem;
use crate::routes::events::MAX_BATCH_READINGS;
use crate::routes::{Body, Operation, ROUTES};
use traffic_model::sensor::SensorMetadata;

/// Collects component schemas while the document's operations are written.
struct Components {
    generator: SchemaGenerator,
}

impl Components {
    fn new() -> Self {
        let mut settings = SchemaSettings::draft2020_12();
        settings.definitions_path = "/components/schemas/".into();
        Self {
            generator: settings.into_generator(),
        }
    }

    fn reference<T: JsonSchema>(&mut self) -> Value {
        Value::from(self.generator.subschema_for::<T>())
    }

    fn finish(mut self) -> Value {
        Value::Object(self.generator.take_definitions(true).into_iter().collect())
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut components = Components::new();
    let problem = components.reference::<Problem>();
    let mut paths = Map::new();
    for route in ROUTES {
        let Some(op) = &route.operation else {
            continue;
        };
        let mut operation = operation(op, &mut components, &problem);
        if route.access != Access::Open {
            operation["security"] = json!([{"bearer": []}, {"apiKey": []}, {}]);
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Some(entry) = entry.as_object_mut() {
            entry.insert(route.method.as_str().to_ascii_lowercase(), operation);
        }
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "smart-traffic ingest API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sensors post traffic readings; each is stored durably and classified \
                (HCM Level of Service, congestion label, data-quality flags) by the MCP classifier. \
                Errors are RFC 9457 problem documents (application/problem+json).",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components.finish(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key from INGEST_API_KEYS."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    })
}

fn operation(op: &Operation, components: &mut Components, problem: &Value) -> Value {
    let mut out = Map::new();
    out.insert("operationId".into(), json!(op.id));
    out.insert("summary".into(), json!(op.summary));
    out.insert("tags".into(), json!([op.tag]));
    let mut parameters: Vec<Value> = op
        .path
        .iter()
        .map(|p| {
            let mut schema = (p.schema)(&mut components.generator);
            if let Some(schema) = schema.as_object_mut() {
                schema.remove("description");
            }
            json!({
                "name": p.name,
                "in": "path",
                "required": true,
                "description": p.description,
                "schema": schema,
            })
        })
        .collect();
    if let Some(query) = op.query {
        parameters.extend(query_parameters(query(&mut components.generator)));
    }
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = op.body {
        out.insert("requestBody".into(), request_body(body, components));
    }
    let mut responses = Map::new();
    for (status, description, schema) in op.responses {
        let mut response = json!({"description": description});
        if let Some(schema) = schema {
            response["content"] =
                json!({"application/json": {"schema": schema(&mut components.generator)}});
        }
        if *status == 200 {
            for format in op.formats.iter().filter(|f| **f != Representation::Json) {
                response["content"][format.media_type()] = alternative(*format);
            }
        }
        if *status == 201 {
            response["headers"] = json!({"Location": {"description": "The new event's URL", "schema": {"type": "string"}}});
        }
        responses.insert(status.to_string(), response);
    }
    let not_acceptable: &[(u16, &str)] = if op.formats.is_empty() {
        &[]
    } else {
        &[(406, "The Accept header asks for no representation offered")]
    };
    for (status, description) in op.problems.iter().copied().flatten().chain(not_acceptable) {
        responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/problem+json": {"schema": problem}}}),
        );
    }
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

/// The document of a `200` in a representation other than JSON.
fn alternative(format: Representation) -> Value {
    match format {
        Representation::Csv => json!({"schema": {
            "type": "string",
            "description": "RFC 4180 CSV with a header row: one row per item, the JSON item's \
                fields as columns (lists `;`-separated, unknown values empty); a next page's \
                URL comes in a `Link: <…>; rel=\"next\"` header."
        }}),
        Representation::GeoJson => json!({"schema": {
            "type": "object",
            "description": "An RFC 7946 FeatureCollection: a Point at each sensor's location \
                (null without one), the item's other fields in `properties`.",
            "required": ["type", "features"],
            "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}
        }}),
        Representation::EventStream => json!({"schema": {
            "type": "string",
            "description": "Server-Sent Events: `classified` (data: the event), `transition` \
                (data: the label change, with `late` and `retracted`), each with an `id:` to \
                resume from with `Last-Event-ID`; `reset` when that id is no longer kept, \
                `dropped` before a client that fell too far behind is disconnected; a comment \
                line as heartbeat."
        }}),
        Representation::Json => json!({}),
    }
}

/// The fields of a query struct's schema as query parameters: the field's description moves
/// to the parameter, and an optional field's `null` alternative goes (an absent parameter is
/// how a query says "none").
fn query_parameters(schema: Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = without_null(property.clone());
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or_else(|| json!(""));
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "description": description,
                "schema": property,
            })
        })
        .collect()
}

/// `T` from the schema schemars gives `Option<T>`: `anyOf [T, null]` or a `type` list with
/// `"null"`.
fn without_null(mut schema: Value) -> Value {
    let is_null = |s: &Value| s.get("type") == Some(&json!("null"));
    if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array) {
        let rest: Vec<&Value> = any_of.iter().filter(|s| !is_null(s)).collect();
        if let [only] = rest.as_slice() {
            let mut only = (*only).clone();
            if let (Some(target), Some(source)) = (only.as_object_mut(), schema.as_object()) {
                for (key, value) in source.iter().filter(|(key, _)| *key != "anyOf") {
                    target.insert(key.clone(), value.clone());
                }
            }
            return only;
        }
    }
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let types: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        schema["type"] = match types.as_slice() {
            [only] => only.clone(),
            _ => Value::Array(types),
        };
    }
    schema
}

fn request_body(body: Body, components: &mut Components) -> Value {
    let reading = components.reference::<traffic_model::reading::Reading>();
    match body {
        Body::Reading => json!({
            "required": true,
            "description": "One reading. May be sent gzip-compressed (Content-Encoding: gzip).",
            "content": {"application/json": {"schema": reading}},
        }),
        Body::Batch => json!({
            "required": true,
            "description": format!("Up to {MAX_BATCH_READINGS} readings: a JSON array, or NDJSON \
                (one reading per line). May be sent gzip-compressed (Content-Encoding: gzip)."),
            "content": {
                "application/json": {"schema": {"type": "array", "items": reading, "maxItems": MAX_BATCH_READINGS}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }),
        Body::SensorMetadata => json!({
            "required": true,
            "description": "The sensor's metadata, whole: a field left out or null is not known. \
                May be sent gzip-compressed (Content-Encoding: gzip).",
            "content": {"application/json": {"schema": components.reference::<SensorMetadata>()}},
        }),
        Body::SensorPatch => {
            let schema = merge_patch_schema(components);
            json!({
                "required": true,
                "description": "A JSON Merge Patch (RFC 7396): a member given replaces the stored \
                    value, null forgets it, a member left out is kept; `location` merges member \
                    by member. The result must be valid metadata.",
                "content": {
                    "application/merge-patch+json": {"schema": schema},
                    "application/json": {"schema": schema},
                },
            })
        }
    }
}

/// The schema of a JSON Merge Patch of sensor metadata: the metadata's own, except that a
/// patch's `location` may give one coordinate (it merges into the stored one).
fn merge_patch_schema(components: &mut Components) -> Value {
    let mut schema = inline_schema_of::<SensorMetadata>(&mut components.generator);
    let mut location =
        inline_schema_of::<traffic_model::sensor::Location>(&mut components.generator);
    if let Some(members) = location.as_object_mut() {
        members.remove("required");
        members.insert("type".into(), json!(["object", "null"]));
    }
    schema["properties"]["location"] = location;
    schema
}

/// `T`'s own schema, inline (what it uses is registered as components).
pub fn inline_schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    Value::from(T::json_schema(generator))
}

/// A schema reference for `T`, registering `T` (and what it uses) as components.
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    Value::from(generator.subschema_for::<T>())
}
