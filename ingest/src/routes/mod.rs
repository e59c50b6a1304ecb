//! The route table: registers the handlers and describes them for the OpenAPI document.

pub mod docs;
pub mod events;
pub mod health;
pub mod sensors;

use actix_web::web::{self, ServiceConfig};
use schemars::SchemaGenerator;
use serde_json::Value;
use traffic_store::Event;

use crate::openapi::schema_of;
use crate::problem::{Kind, Problem};

type SchemaFn = fn(&mut SchemaGenerator) -> Value;

/// One documented route.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation: &'static Operation,
}

pub struct Operation {
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub parameters: &'static [Param],
    pub body: Option<Body>,
    pub responses: &'static [(u16, &'static str, Option<SchemaFn>)],
    pub problems: &'static [(u16, &'static str)],
    /// Guarded by API keys when they are configured.
    pub secured: bool,
}

pub struct Param {
    pub name: &'static str,
    /// `query` or `path`.
    pub location: &'static str,
    pub description: &'static str,
    /// The parameter's JSON Schema, as JSON text.
    pub schema: &'static str,
}

#[derive(Clone, Copy)]
pub enum Body {
    Reading,
    Batch,
}

const ID: Param = Param {
    name: "id",
    location: "path",
    description: "Event id",
    schema: r#"{"type":"integer","format":"int64"}"#,
};
const WRITE_PROBLEMS: &[(u16, &str)] = &[
    (
        400,
        "Malformed JSON, or a body that cannot be decoded (broken gzip)",
    ),
    (401, "Missing or wrong API key"),
    (
        408,
        "Body not complete within INGEST_BODY_TIMEOUT_S; the connection is closed",
    ),
    (413, "Body over the limit"),
    (
        415,
        "Content type other than JSON, or an encoding other than gzip",
    ),
    (503, "Database unavailable; nothing was written"),
];
const READ_PROBLEMS: &[(u16, &str)] = &[
    (400, "Invalid, unknown or repeated query parameters"),
    (401, "Missing or wrong API key (when reads need one)"),
    (503, "Database unavailable"),
];

pub static ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/v1/events",
        operation: &Operation {
            id: "createEvent",
            summary: "Store one reading and queue it for classification",
            tag: "events",
            parameters: &[],
            body: Some(Body::Reading),
            responses: &[
                (
                    201,
                    "Stored; the event is pending classification",
                    Some(schema_of::<Event>),
                ),
                (
                    200,
                    "Already stored (same sensor, lane and observed_at): the first copy",
                    Some(schema_of::<Event>),
                ),
            ],
            problems: &[
                (
                    400,
                    "Malformed JSON, or a body that cannot be decoded (broken gzip)",
                ),
                (401, "Missing or wrong API key"),
                (
                    408,
                    "Body not complete within INGEST_BODY_TIMEOUT_S; the connection is closed",
                ),
                (413, "Body over the limit"),
                (
                    415,
                    "Content type other than JSON, or an encoding other than gzip",
                ),
                (
                    422,
                    "Invalid reading (a field repeated included); `errors` lists every offending field",
                ),
                (503, "Database unavailable; nothing was written"),
            ],
            secured: true,
        },
    },
    Route {
        method: "POST",
        path: "/v1/events/batch",
        operation: &Operation {
            id: "createEvents",
            summary: "Store up to 10000 readings (JSON array or NDJSON)",
            tag: "events",
            parameters: &[],
            body: Some(Body::Batch),
            responses: &[(
                200,
                "Valid readings stored; invalid ones listed",
                Some(schema_of::<events::BatchResult>),
            )],
            problems: WRITE_PROBLEMS,
            secured: true,
        },
    },
    Route {
        method: "GET",
        path: "/v1/events",
        operation: &Operation {
            id: "listEvents",
            summary: "List events newest first, filtered, with a keyset cursor",
            tag: "events",
            parameters: &[
                Param {
                    name: "sensor_id",
                    location: "query",
                    description: "Only this sensor",
                    schema: r#"{"type":"string","pattern":"^[A-Za-z0-9._:/-]{1,128}$"}"#,
                },
                Param {
                    name: "from",
                    location: "query",
                    description: "observed_at at or after (RFC 3339)",
                    schema: r#"{"type":"string","format":"date-time"}"#,
                },
                Param {
                    name: "to",
                    location: "query",
                    description: "observed_at before (RFC 3339)",
                    schema: r#"{"type":"string","format":"date-time"}"#,
                },
                Param {
                    name: "status",
                    location: "query",
                    description: "Queue status",
                    schema: r#"{"type":"string","enum":["pending","processing","classified","failed"]}"#,
                },
                Param {
                    name: "label",
                    location: "query",
                    description: "Congestion label",
                    schema: r#"{"type":"string","enum":["free_flow","moderate","heavy","congested","unknown"]}"#,
                },
                Param {
                    name: "limit",
                    location: "query",
                    description: "Page size (default 100)",
                    schema: r#"{"type":"integer","minimum":1,"maximum":1000}"#,
                },
                Param {
                    name: "cursor",
                    location: "query",
                    description: "next_cursor of the previous page",
                    schema: r#"{"type":"string"}"#,
                },
            ],
            body: None,
            responses: &[(
                200,
                "One page of events",
                Some(schema_of::<events::EventPage>),
            )],
            problems: READ_PROBLEMS,
            secured: true,
        },
    },
    Route {
        method: "GET",
        path: "/v1/events/{id}",
        operation: &Operation {
            id: "getEvent",
            summary: "One event with its classification",
            tag: "events",
            parameters: &[ID],
            body: None,
            responses: &[(200, "The event", Some(schema_of::<Event>))],
            problems: &[
                (401, "Missing or wrong API key (when reads need one)"),
                (404, "No such event"),
                (503, "Database unavailable"),
            ],
            secured: true,
        },
    },
    Route {
        method: "POST",
        path: "/v1/events/{id}/classify",
        operation: &Operation {
            id: "requeueEvent",
            summary: "Queue an event for classification again",
            tag: "events",
            parameters: &[ID],
            body: None,
            responses: &[(
                202,
                "Queued; the event is pending",
                Some(schema_of::<Event>),
            )],
            problems: &[
                (401, "Missing or wrong API key"),
                (404, "No such event"),
                (503, "Database unavailable"),
            ],
            secured: true,
        },
    },
    Route {
        method: "GET",
        path: "/v1/sensors",
        operation: &Operation {
            id: "listSensors",
            summary: "Each sensor's latest reading and classification",
            tag: "sensors",
            parameters: &[
                Param {
                    name: "limit",
                    location: "query",
                    description: "Page size (default 100)",
                    schema: r#"{"type":"integer","minimum":1,"maximum":1000}"#,
                },
                Param {
                    name: "after",
                    location: "query",
                    description: "next_after of the previous page",
                    schema: r#"{"type":"string","pattern":"^[A-Za-z0-9._:/-]{1,128}$"}"#,
                },
            ],
            body: None,
            responses: &[(
                200,
                "Sensors in id order",
                Some(schema_of::<sensors::SensorPage>),
            )],
            problems: READ_PROBLEMS,
            secured: true,
        },
    },
    Route {
        method: "GET",
        path: "/v1/sensors/{sensor_id}",
        operation: &Operation {
            id: "getSensor",
            summary: "A sensor's latest state and its readings by label over a window",
            tag: "sensors",
            parameters: &[
                Param {
                    name: "sensor_id",
                    location: "path",
                    description: "Sensor id",
                    schema: r#"{"type":"string","pattern":"^[A-Za-z0-9._:/-]{1,128}$"}"#,
                },
                Param {
                    name: "window_minutes",
                    location: "query",
                    description: "Window length (default 60)",
                    schema: r#"{"type":"integer","minimum":1,"maximum":44640}"#,
                },
            ],
            body: None,
            responses: &[(
                200,
                "The sensor's summary",
                Some(schema_of::<sensors::SensorSummary>),
            )],
            problems: &[
                (400, "Invalid query parameters"),
                (401, "Missing or wrong API key (when reads need one)"),
                (404, "No readings from this sensor"),
                (503, "Database unavailable"),
            ],
            secured: true,
        },
    },
    Route {
        method: "GET",
        path: "/v1/health",
        operation: &Operation {
            id: "health",
            summary: "Liveness: the process answers (no I/O)",
            tag: "operations",
            parameters: &[],
            body: None,
            responses: &[(200, "Alive", Some(schema_of::<health::Health>))],
            problems: &[],
            secured: false,
        },
    },
    Route {
        method: "GET",
        path: "/v1/ready",
        operation: &Operation {
            id: "ready",
            summary: "Readiness: the database answers and is migrated",
            tag: "operations",
            parameters: &[],
            body: None,
            responses: &[(200, "Ready", Some(schema_of::<health::Readiness>))],
            problems: &[(503, "Not ready")],
            secured: false,
        },
    },
];

/// Registers every route; unknown paths get a 404 problem, other methods a 405 with `Allow`.
pub fn configure(config: &mut ServiceConfig) {
    config
        .service(resource(
            "/v1/events",
            "GET, POST",
            [web::post().to(events::create), web::get().to(events::list)],
        ))
        .service(resource(
            "/v1/events/batch",
            "POST",
            [web::post().to(events::create_batch)],
        ))
        .service(resource(
            "/v1/events/{id}",
            "GET",
            [web::get().to(events::get)],
        ))
        .service(resource(
            "/v1/events/{id}/classify",
            "POST",
            [web::post().to(events::requeue)],
        ))
        .service(resource(
            "/v1/sensors",
            "GET",
            [web::get().to(sensors::list)],
        ))
        .service(resource(
            "/v1/sensors/{sensor_id}",
            "GET",
            [web::get().to(sensors::get)],
        ))
        .service(resource(
            "/v1/health",
            "GET",
            [web::get().to(health::health)],
        ))
        .service(resource("/v1/ready", "GET", [web::get().to(health::ready)]))
        .service(resource(
            "/metrics",
            "GET",
            [web::get().to(health::metrics)],
        ))
        .service(resource(
            "/openapi.json",
            "GET",
            [web::get().to(docs::openapi)],
        ))
        .service(resource("/docs", "GET", [web::get().to(docs::page)]))
        .default_service(web::to(not_found));
}

/// A resource serving `routes`, answering any other method with a 405 that lists `methods`.
fn resource<const N: usize>(
    path: &str,
    methods: &'static str,
    routes: [actix_web::Route; N],
) -> actix_web::Resource {
    routes
        .into_iter()
        .fold(web::resource(path), actix_web::Resource::route)
        .default_service(web::to(allow(methods)))
}

/// The handler answering every method a resource does not serve.
fn allow(
    methods: &'static str,
) -> impl Fn(actix_web::HttpRequest) -> std::future::Ready<Result<actix_web::HttpResponse, Problem>>
+ Clone {
    move |request| {
        std::future::ready(Err(Problem::method_not_allowed(
            request.method().as_str(),
            request.path(),
            methods,
        )))
    }
}

async fn not_found(request: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::new(
        Kind::NotFound,
        format!("no route for {} {}", request.method(), request.path()),
    ))
}
