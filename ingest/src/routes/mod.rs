//! The route table: one list drives the actix registration, the API-key checks and the
//! OpenAPI document, so a path, a method or a guard is written once.

pub mod docs;
pub mod events;
pub mod health;
pub mod pages;
pub mod sensors;
pub mod series;
pub mod state;
pub mod stream;
pub mod transitions;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;
use traffic_model::reading::SensorId;
use traffic_store::Event;

use crate::auth::{Access, ApiKeys};
use crate::negotiate::Representation;
use crate::openapi::{inline_schema_of, schema_of};
use crate::params::{EventId, PathParam};
use crate::problem::{Kind, Problem};

type SchemaFn = fn(&mut SchemaGenerator) -> Value;

/// One route.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    /// Who may call it: checked before the handler runs, and stated in the document.
    pub access: Access,
    /// Attaches the handler to the route.
    pub handler: fn(actix_web::Route) -> actix_web::Route,
    /// Its entry in the OpenAPI document; `None` leaves it out (the document itself, its page
    /// and the metrics scrape).
    pub operation: Option<Operation>,
}

pub struct Operation {
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub path: &'static [PathDoc],
    /// The schema of the query struct the handler extracts; its fields are the parameters.
    pub query: Option<SchemaFn>,
    pub body: Option<Body>,
    pub responses: &'static [(u16, &'static str, Option<SchemaFn>)],
    /// The representations its `200` comes in, JSON first (empty: JSON only); the handler
    /// negotiates among the same list.
    pub formats: &'static [Representation],
    /// The problem documents it may answer with, in groups (shared lists and its own).
    pub problems: &'static [&'static [(u16, &'static str)]],
}

impl Operation {
    /// No parameters, body or problems: an operation states only what it has.
    const NONE: Self = Self {
        id: "",
        summary: "",
        tag: "",
        path: &[],
        query: None,
        body: None,
        responses: &[],
        formats: &[],
        problems: &[],
    };
}

/// A path parameter, described by the type its handler extracts.
pub struct PathDoc {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: SchemaFn,
}

impl PathDoc {
    const fn of<T: PathParam>() -> Self {
        Self {
            name: T::NAME,
            description: T::DESCRIPTION,
            schema: inline_schema_of::<T>,
        }
    }
}

#[derive(Clone, Copy)]
pub enum Body {
    Reading,
    Batch,
    /// A sensor's metadata, whole (`PUT`).
    SensorMetadata,
    /// A JSON Merge Patch of a sensor's metadata (`PATCH`).
    SensorPatch,
}

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
    (
        507,
        "The database has no room to write; nothing was written (Retry-After)",
    ),
];
/// What a write of sensor metadata answers (`PUT` and `PATCH`).
const SENSOR_WRITTEN: &[(u16, &str, Option<SchemaFn>)] = &[
    (
        201,
        "Stored; the sensor had no metadata",
        Some(schema_of::<traffic_store::Sensor>),
    ),
    (
        200,
        "Stored, in place of the metadata it had",
        Some(schema_of::<traffic_store::Sensor>),
    ),
];
const METADATA_PROBLEMS: &[(u16, &str)] = &[
    (
        404,
        "The path names no possible sensor (an id of 1–128 letters, digits or . _ : / -)",
    ),
    (
        422,
        "Invalid sensor metadata (a field repeated included); `errors` lists every offending field",
    ),
];
/// What a write of readings may also answer.
const READINGS_LIMITED: &[(u16, &str)] = &[(
    429,
    "Over INGEST_RATE_LIMIT for this sender (a batch counts its readings); Retry-After says when to send again",
)];
/// A cached read's answer to `If-None-Match` naming its current `ETag`.
const NOT_MODIFIED: (u16, &str, Option<SchemaFn>) = (
    304,
    "Not modified: If-None-Match names the answer's current ETag",
    None,
);
const READ_PROBLEMS: &[(u16, &str)] = &[
    (400, "Invalid, unknown or repeated query parameters"),
    (401, "Missing or wrong API key (when reads need one)"),
    (503, "Database unavailable"),
];

const fn query_of<T: JsonSchema>() -> Option<SchemaFn> {
    Some(inline_schema_of::<T>)
}

pub static ROUTES: &[Route] = &[
    Route {
        method: Method::POST,
        path: "/v1/events",
        access: Access::Write,
        handler: |route| route.to(events::create),
        operation: Some(Operation {
            id: "createEvent",
            summary: "Store one reading and queue it for classification",
            tag: "events",
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
                WRITE_PROBLEMS,
                READINGS_LIMITED,
                &[(
                    422,
                    "Invalid reading (a field repeated included); `errors` lists every offending field",
                )],
            ],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::POST,
        path: "/v1/events/batch",
        access: Access::Write,
        handler: |route| route.to(events::create_batch),
        operation: Some(Operation {
            id: "createEvents",
            summary: "Store a batch of readings (JSON array or NDJSON)",
            tag: "events",
            body: Some(Body::Batch),
            responses: &[(
                200,
                "Valid readings stored; invalid ones listed",
                Some(schema_of::<events::BatchResult>),
            )],
            problems: &[WRITE_PROBLEMS, READINGS_LIMITED],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/events",
        access: Access::Read,
        handler: |route| route.to(events::list),
        operation: Some(Operation {
            id: "listEvents",
            summary: "List events newest first, filtered, with a keyset cursor",
            tag: "events",
            query: query_of::<events::ListQuery>(),
            responses: &[
                (
                    200,
                    "One page of events",
                    Some(schema_of::<events::EventPage>),
                ),
                NOT_MODIFIED,
            ],
            problems: &[READ_PROBLEMS],
            formats: events::FORMATS,
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/events/{id}",
        access: Access::Read,
        handler: |route| route.to(events::get),
        operation: Some(Operation {
            id: "getEvent",
            summary: "One event with its classification",
            tag: "events",
            path: &[PathDoc::of::<EventId>()],
            responses: &[(200, "The event", Some(schema_of::<Event>)), NOT_MODIFIED],
            problems: &[&[
                (401, "Missing or wrong API key (when reads need one)"),
                (404, "No such event"),
                (503, "Database unavailable"),
            ]],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::POST,
        path: "/v1/events/{id}/classify",
        access: Access::Write,
        handler: |route| route.to(events::requeue),
        operation: Some(Operation {
            id: "requeueEvent",
            summary: "Queue an event for classification again",
            tag: "events",
            path: &[PathDoc::of::<EventId>()],
            responses: &[(
                202,
                "Queued; the event is pending",
                Some(schema_of::<Event>),
            )],
            problems: &[&[
                (401, "Missing or wrong API key"),
                (404, "No such event"),
                (503, "Database unavailable"),
            ]],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/sensors",
        access: Access::Read,
        handler: |route| route.to(sensors::list),
        operation: Some(Operation {
            id: "listSensors",
            summary: "Sensors with their metadata and each lane's latest classification, filtered",
            tag: "sensors",
            query: query_of::<sensors::ListQuery>(),
            responses: &[
                (
                    200,
                    "Sensors in id order",
                    Some(schema_of::<sensors::SensorPage>),
                ),
                NOT_MODIFIED,
            ],
            problems: &[READ_PROBLEMS],
            formats: sensors::FORMATS,
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/sensors/{sensor_id}",
        access: Access::Read,
        handler: |route| route.to(sensors::get),
        operation: Some(Operation {
            id: "getSensor",
            summary: "A sensor's latest state and its readings by label over a window",
            tag: "sensors",
            path: &[PathDoc::of::<SensorId>()],
            query: query_of::<sensors::SummaryQuery>(),
            responses: &[
                (
                    200,
                    "The sensor's summary",
                    Some(schema_of::<sensors::SensorSummary>),
                ),
                NOT_MODIFIED,
            ],
            problems: &[
                READ_PROBLEMS,
                &[(404, "Neither readings nor metadata from this sensor")],
            ],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/sensors/{sensor_id}/series",
        access: Access::Read,
        handler: |route| route.to(series::get),
        operation: Some(Operation {
            id: "getSensorSeries",
            summary: "A sensor's readings summed up in time buckets (local days in its time zone)",
            tag: "sensors",
            path: &[PathDoc::of::<SensorId>()],
            query: query_of::<series::SeriesQuery>(),
            responses: &[
                (
                    200,
                    "Every bucket of the window",
                    Some(schema_of::<traffic_model::series::Series>),
                ),
                NOT_MODIFIED,
            ],
            problems: &[
                READ_PROBLEMS,
                &[(404, "Neither readings nor metadata from this sensor")],
            ],
            formats: series::FORMATS,
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::PUT,
        path: "/v1/sensors/{sensor_id}",
        access: Access::Write,
        handler: |route| route.to(sensors::put),
        operation: Some(Operation {
            id: "putSensor",
            summary: "Store a sensor's metadata (place, road, site), replacing what it had",
            tag: "sensors",
            path: &[PathDoc::of::<SensorId>()],
            body: Some(Body::SensorMetadata),
            responses: SENSOR_WRITTEN,
            problems: &[WRITE_PROBLEMS, METADATA_PROBLEMS],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::PATCH,
        path: "/v1/sensors/{sensor_id}",
        access: Access::Write,
        handler: |route| route.to(sensors::patch),
        operation: Some(Operation {
            id: "patchSensor",
            summary: "Change some of a sensor's metadata (JSON Merge Patch: null forgets a value)",
            tag: "sensors",
            path: &[PathDoc::of::<SensorId>()],
            body: Some(Body::SensorPatch),
            responses: SENSOR_WRITTEN,
            problems: &[WRITE_PROBLEMS, METADATA_PROBLEMS],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/state",
        access: Access::Read,
        handler: |route| route.to(state::get),
        operation: Some(Operation {
            id: "getNetworkState",
            summary: "The network at a moment: each sensor lane's latest classification, its age and staleness",
            tag: "network",
            query: query_of::<state::StateQuery>(),
            responses: &[
                (
                    200,
                    "Every lane the filters keep",
                    Some(schema_of::<traffic_store::NetworkState>),
                ),
                NOT_MODIFIED,
            ],
            problems: &[READ_PROBLEMS],
            formats: state::FORMATS,
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/transitions",
        access: Access::Read,
        handler: |route| route.to(transitions::list),
        operation: Some(Operation {
            id: "listTransitions",
            summary: "Every change of a lane's label in a window: the incident timeline",
            tag: "network",
            query: query_of::<transitions::TransitionsQuery>(),
            responses: &[(
                200,
                "One page of label changes",
                Some(schema_of::<transitions::TransitionPage>),
            )],
            problems: &[READ_PROBLEMS],
            formats: transitions::FORMATS,
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/stream",
        access: Access::Read,
        handler: |route| route.to(stream::stream),
        operation: Some(Operation {
            id: "streamEvents",
            summary: "Live classified events and label transitions (Server-Sent Events)",
            tag: "network",
            query: query_of::<stream::StreamQuery>(),
            responses: &[(200, "An endless event stream", None)],
            formats: stream::FORMATS,
            problems: &[READ_PROBLEMS],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/health",
        access: Access::Open,
        handler: |route| route.to(health::health),
        operation: Some(Operation {
            id: "health",
            summary: "Liveness: the process answers (no I/O)",
            tag: "operations",
            responses: &[(200, "Alive", Some(schema_of::<health::Health>))],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/v1/ready",
        access: Access::Open,
        handler: |route| route.to(health::ready),
        operation: Some(Operation {
            id: "ready",
            summary: "Readiness: the database answers and is migrated",
            tag: "operations",
            responses: &[(200, "Ready", Some(schema_of::<health::Readiness>))],
            problems: &[&[(503, "Not ready")]],
            ..Operation::NONE
        }),
    },
    Route {
        method: Method::GET,
        path: "/metrics",
        access: Access::Open,
        handler: |route| route.to(health::metrics),
        operation: None,
    },
    Route {
        method: Method::GET,
        path: "/openapi.json",
        access: Access::Open,
        handler: |route| route.to(docs::openapi),
        operation: None,
    },
    Route {
        method: Method::GET,
        path: "/docs",
        access: Access::Open,
        handler: |route| route.to(pages::docs),
        operation: None,
    },
    // The dashboard's page and files are open: the data they show comes from the API, behind
    // its keys.
    Route {
        method: Method::GET,
        path: "/",
        access: Access::Open,
        handler: |route| route.to(pages::dashboard),
        operation: None,
    },
    Route {
        method: Method::GET,
        path: "/ui/{path:.*}",
        access: Access::Open,
        handler: |route| route.to(pages::asset),
        operation: None,
    },
];

/// Registers every route of [`ROUTES`], each path once with all its methods, behind an API-key
/// check where `keys` require one; unknown paths get a 404 problem, other methods a 405 with
/// `Allow`.
pub fn configure(config: &mut ServiceConfig, keys: &Arc<ApiKeys>) {
    let mut paths: Vec<&str> = Vec::new();
    for route in ROUTES {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    for path in paths {
        let routes: Vec<&Route> = ROUTES.iter().filter(|r| r.path == path).collect();
        let mut allowed: Vec<&str> = routes.iter().map(|r| r.method.as_str()).collect();
        allowed.sort_unstable();
        let allowed = allowed.join(", ");
        let resource = routes
            .iter()
            .fold(web::resource(path), |resource, route| {
                resource.route(register(route, keys))
            })
            .default_service(web::to(allow(allowed)));
        config.service(resource);
    }
    config.default_service(web::to(not_found));
}

fn register(route: &Route, keys: &Arc<ApiKeys>) -> actix_web::Route {
    let registered = (route.handler)(web::method(route.method.clone()));
    if !keys.required_for(route.access) {
        return registered;
    }
    let keys = Arc::clone(keys);
    registered.wrap(from_fn(move |request, next| {
        crate::auth::require_key(Arc::clone(&keys), request, next)
    }))
}

/// The handler answering every method a resource does not serve.
fn allow(
    methods: String,
) -> impl Fn(actix_web::HttpRequest) -> std::future::Ready<Result<actix_web::HttpResponse, Problem>>
+ Clone {
    move |request| {
        std::future::ready(Err(Problem::method_not_allowed(
            request.method().as_str(),
            request.path(),
            &methods,
        )))
    }
}

async fn not_found(request: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::new(
        Kind::NotFound,
        format!("no route for {} {}", request.method(), request.path()),
    ))
}
