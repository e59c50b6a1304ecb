//! The OpenAPI 3.1 document, generated from the route table in [`crate::routes`] and the
//! schemars schemas of the very types the handlers serialise (the reading's schema included),
//! so the document cannot drift from the code's types.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::problem::Problem;
use crate::routes::{Body, Operation, ROUTES};

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
        let operation = operation(route.operation, &mut components, &problem);
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        if let Some(entry) = entry.as_object_mut() {
            entry.insert(route.method.to_ascii_lowercase(), operation);
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
    let parameters: Vec<Value> = op
        .parameters
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": p.location,
                "required": p.location == "path",
                "description": p.description,
                "schema": serde_json::from_str::<Value>(p.schema).unwrap_or_else(|_| json!({})),
            })
        })
        .collect();
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
        if *status == 201 {
            response["headers"] = json!({"Location": {"description": "The new event's URL", "schema": {"type": "string"}}});
        }
        responses.insert(status.to_string(), response);
    }
    for (status, description) in op.problems {
        responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/problem+json": {"schema": problem}}}),
        );
    }
    out.insert("responses".into(), Value::Object(responses));
    if op.secured {
        out.insert(
            "security".into(),
            json!([{"bearer": []}, {"apiKey": []}, {}]),
        );
    }
    Value::Object(out)
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
            "description": "Up to 10000 readings: a JSON array, or NDJSON (one reading per line). \
                May be sent gzip-compressed (Content-Encoding: gzip).",
            "content": {
                "application/json": {"schema": {"type": "array", "items": reading, "maxItems": 10000}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }),
    }
}

/// A schema reference for `T`, registering `T` (and what it uses) as components.
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    Value::from(generator.subschema_for::<T>())
}
