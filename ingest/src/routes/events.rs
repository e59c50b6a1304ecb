//! `/v1/events`: sensors write readings, readers list and fetch events.

use actix_web::http::header;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use traffic_model::classification::Label;
use traffic_model::reading::{FieldError, Reading, ReadingInput, SensorId};
use traffic_store::{Cursor, Event, EventFilter, Status};

use crate::app::AppState;
use crate::body::{self, Format};
use crate::cache::{Scope, View, Written};
use crate::csv_body;
use crate::negotiate::{self, Representation};
use crate::params::{EventId, PageSize, Path, Timestamp};
use crate::problem::{Kind, Problem};
use crate::query::Query;

/// Most readings in one batch.
pub const MAX_BATCH_READINGS: usize = 10_000;

/// `POST /v1/events`: one reading → 201 with the stored event, or 200 with the first copy.
pub async fn create(
    state: Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, Problem> {
    body::format(&request, &[Format::Json])?;
    let bytes = body::read(&request, payload, state.limits.reading()).await?;
    let input: ReadingInput = serde_json::from_slice(&bytes).map_err(malformed)?;
    let now = Utc::now();
    let reading = Reading::from_input(input, now)
        .map_err(|e| e.errors)
        .and_then(|reading| kept(&state, reading, now))
        .map_err(|errors| {
            state.metrics.count_readings(0, 0, 1);
            Problem::new(
                Kind::InvalidReading,
                format!("{} field(s) are invalid", errors.len()),
            )
            .with_errors(errors)
        })?;
    state.admit(&request, 1).await?;
    let written = Written::of([&reading]);
    let inserted = state.store.insert(reading).await?;
    // A duplicate too: the first copy's request may have ended before its views were retired.
    state.cache.changed(&written).await;
    let event = inserted.event;
    if inserted.duplicate {
        state.metrics.count_readings(0, 1, 0);
        return Ok(HttpResponse::Ok().json(event));
    }
    state.metrics.count_readings(1, 0, 0);
    state.wake_workers();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/events/{}", event.id)))
        .json(event))
}

/// `reading`, unless it is older than the readings kept (DATA_RETENTION_DAYS).
fn kept(
    state: &AppState,
    reading: Reading,
    now: chrono::DateTime<Utc>,
) -> Result<Reading, Vec<FieldError>> {
    match state.retention.refusal(&reading, now) {
        Some(refusal) => Err(vec![refusal]),
        None => Ok(reading),
    }
}

/// The answer to a batch.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchResult {
    /// Readings stored by this request.
    pub accepted: usize,
    /// Readings that were already stored (same sensor, lane and time): not stored again.
    pub duplicates: usize,
    /// Readings refused, with every offending field.
    pub rejected: Vec<RejectedReading>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RejectedReading {
    /// Position in the array, or line number from 0 in NDJSON.
    pub index: usize,
    pub errors: Vec<FieldError>,
}

/// `POST /v1/events/batch`: a JSON array or NDJSON of readings; valid ones are stored even
/// when others are rejected.
pub async fn create_batch(
    state: Data<AppState>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, Problem> {
    let format = body::format(&request, &[Format::Json, Format::NdJson])?;
    let bytes = body::read(&request, payload, state.limits.batch()).await?;
    let items = split_batch(&bytes, format)?;
    if items.len() > MAX_BATCH_READINGS {
        return Err(Problem::new(
            Kind::TooManyReadings,
            format!(
                "the batch holds {} readings; at most {MAX_BATCH_READINGS} per request",
                items.len()
            ),
        ));
    }
    state.admit(&request, items.len()).await?;
    let now = Utc::now();
    let mut readings = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items {
        let reading = item
            .and_then(|input| Reading::from_input(input, now).map_err(|e| e.errors))
            .and_then(|reading| kept(&state, reading, now));
        match reading {
            Ok(reading) => readings.push(reading),
            Err(errors) => rejected.push(RejectedReading { index, errors }),
        }
    }
    let written = Written::of(&readings);
    let counts = state.store.insert_many_counted(readings).await?;
    if !written.is_empty() {
        state.cache.changed(&written).await;
    }
    let (accepted, duplicates) = (counts.inserted, counts.duplicates);
    state
        .metrics
        .count_readings(accepted, duplicates, rejected.len());
    if accepted > 0 {
        state.wake_workers();
    }
    Ok(HttpResponse::Ok().json(BatchResult {
        accepted,
        duplicates,
        rejected,
    }))
}

/// The batch's items with their index (array position, or NDJSON line number from 0; blank lines
/// are skipped but counted), each a parsed item or the reason its line is not JSON.
pub type BatchItems = Vec<(usize, Result<ReadingInput, Vec<FieldError>>)>;

/// Splits a batch body into its items: a JSON array's elements, or NDJSON's lines.
pub fn split_batch(bytes: &[u8], format: Format) -> Result<BatchItems, Problem> {
    match format {
        // Items accept any JSON value, so a data error can only be a body that is no array.
        // (A batch is never a merge patch: `create_batch` accepts JSON and NDJSON only.)
        Format::Json | Format::MergePatch => {
            match serde_json::from_slice::<Vec<ReadingInput>>(bytes) {
                Ok(items) => Ok(items.into_iter().map(Ok).enumerate().collect()),
                Err(e) if e.classify() == serde_json::error::Category::Data => Err(Problem::new(
                    Kind::MalformedJson,
                    "a JSON batch must be an array of readings (or send NDJSON)",
                )),
                Err(e) => Err(malformed(e)),
            }
        }
        Format::NdJson => Ok(bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(index, line)| {
                let value = serde_json::from_slice::<ReadingInput>(line).map_err(|e| {
                    vec![FieldError {
                        field: String::new(),
                        message: format!("this line is not JSON: {e}"),
                    }]
                });
                (index, value)
            })
            .collect()),
    }
}

pub(super) fn malformed(e: serde_json::Error) -> Problem {
    Problem::new(
        Kind::MalformedJson,
        format!("the body is not valid JSON: {e}"),
    )
}

/// One page of the listing.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The parameters of `GET /v1/events`; filters combine with AND.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this sensor
    sensor_id: Option<SensorId>,
    /// observed_at at or after (RFC 3339)
    from: Option<Timestamp>,
    /// observed_at before (RFC 3339)
    to: Option<Timestamp>,
    /// Queue status
    status: Option<Status>,
    /// Congestion label
    label: Option<Label>,
    /// Page size
    #[serde(default)]
    limit: PageSize,
    /// next_cursor of the previous page
    cursor: Option<Cursor>,
}

/// What `GET /v1/events` answers in.
pub const FORMATS: &[Representation] = &[Representation::Json, Representation::Csv];

/// `GET /v1/events`: newest first, filtered, keyset-paginated.
pub async fn list(
    state: Data<AppState>,
    request: HttpRequest,
    Query(query): Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let format = negotiate::choose(&request, FORMATS)?;
    let scope = query
        .sensor_id
        .clone()
        .map_or(Scope::Network, Scope::Sensor);
    let view = View::of(&request, scope, format.media_type(), false);
    state
        .cache
        .respond(&request, view, || {
            list_page(&state, &request, format, query)
        })
        .await
}

async fn list_page(
    state: &AppState,
    request: &HttpRequest,
    format: Representation,
    query: ListQuery,
) -> Result<HttpResponse, Problem> {
    let filter = EventFilter {
        sensor_id: query.sensor_id,
        from: query.from.map(|t| t.0),
        to: query.to.map(|t| t.0),
        status: query.status,
        label: query.label,
    };
    let page = state
        .store
        .list(filter, query.limit.get(), query.cursor)
        .await?;
    let next_cursor = page.next_cursor.map(|c| c.encode());
    if format == Representation::Csv {
        let next = next_cursor.map(|c| csv_body::next_page(request, "cursor", &c));
        return csv_body::response(&page.items, next);
    }
    Ok(HttpResponse::Ok().json(EventPage {
        items: page.items,
        next_cursor,
    }))
}

/// `GET /v1/events/{id}`.
pub async fn get(
    state: Data<AppState>,
    request: HttpRequest,
    Path(id): Path<EventId>,
) -> Result<HttpResponse, Problem> {
    // Its sensor is not known before it is read: any write retires it.
    let view = View::of(&request, Scope::Network, "application/json", false);
    state
        .cache
        .respond(&request, view, || async {
            match state.store.get(id.0).await? {
                Some(event) => Ok(HttpResponse::Ok().json(event)),
                None => Err(no_event(id)),
            }
        })
        .await
}

/// `POST /v1/events/{id}/classify`: queue the event again → 202.
pub async fn requeue(
    state: Data<AppState>,
    Path(id): Path<EventId>,
) -> Result<HttpResponse, Problem> {
    match state.store.requeue(id.0).await? {
        Some(event) => {
            state.cache.changed(&Written::of([&event.reading])).await;
            state.wake_workers();
            Ok(HttpResponse::Accepted().json(event))
        }
        None => Err(no_event(id)),
    }
}

fn no_event(id: EventId) -> Problem {
    Problem::new(Kind::NotFound, format!("no event with id {id}"))
}
