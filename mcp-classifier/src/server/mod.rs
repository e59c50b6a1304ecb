//! The MCP server: one handler whose tools are thin wrappers over [`traffic_model::rules`], served over
//! stdio ([`stdio`]) and Streamable HTTP ([`http`]; access tokens: [`oauth`]), or over any byte
//! stream (ingest runs it in-process behind a duplex pipe).

pub mod args;
pub mod batch;
pub mod http;
pub mod oauth;
pub mod prompts;
pub mod query;
pub mod resources;
pub mod schema;
pub mod stdio;

use std::sync::Arc;

use chrono::Utc;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, Implementation, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData as McpError, Json, RoleServer, ServerHandler, tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::Serialize;

use self::args::{
    ArgReader, ClassifyArgs, ClassifyBatchArgs, ClassifyByIdArgs, MAX_BATCH_EVENTS, MAX_HISTORY,
    StoredHistory,
};
use self::batch::BatchOutput;
use std::collections::HashMap;
use traffic_model::classification::Classification;

use traffic_model::reading::SensorId;
use traffic_model::rules::{self, RulesConfig, Site};
use traffic_model::sensor::SensorMetadata;
use traffic_store::{Event, LaneHistory, Store};

/// Readings of history `classify_by_id` loads for the sensor-health rules.
pub const STORED_HISTORY_LIMIT: usize = 360;

const INSTRUCTIONS: &str = "Classifies traffic-sensor readings (vehicle count, mean speed, \
occupancy per counting interval) with traffic-engineering rules: HCM Level of Service A-F from \
density, a congestion label, data-quality flags and a confidence, with the reasons. Use \
`classify` for a reading you have, `classify_batch` for many, `classify_by_id` for a reading \
already stored by the smart-traffic ingest service. With the ingest service's database \
(DATABASE_URL) it also answers questions about the stored traffic: `traffic_state` (the \
network now or at a moment), `list_sensors`, `sensor_info`, `sensor_series` (time buckets) and \
`find_congestion` (congested periods, since when); without a database those tools are not \
listed.";

/// Why the server has no database, for `classify_by_id`'s error.
#[derive(Debug, Clone)]
pub enum Database {
    Connected(Store),
    Unavailable(String),
}

/// The MCP handler. Cheap to clone (the HTTP transport clones one per request or session).
#[derive(Clone)]
pub struct ClassifierServer {
    rules: Arc<RulesConfig>,
    database: Database,
    tool_router: ToolRouter<Self>,
}

/// `classify_by_id`'s result: the stored event and a fresh classification of it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClassifiedEvent {
    pub event: Event,
    pub classification: Classification,
}

#[tool_router]
impl ClassifierServer {
    /// The query tools are listed only with a database to answer them.
    pub fn new(rules: impl Into<Arc<RulesConfig>>, database: Database) -> Self {
        let mut tool_router = Self::tool_router();
        if matches!(database, Database::Connected(_)) {
            tool_router += Self::query_router();
        }
        Self {
            rules: rules.into(),
            database,
            tool_router,
        }
    }

    /// Classify one traffic-sensor reading.
    #[tool(
        name = "classify",
        title = "Classify a traffic reading",
        description = "Classify one traffic-sensor reading (one counting interval of a loop \
detector, radar or camera). Returns the congestion label (free_flow, moderate, heavy, \
congested, unknown), the HCM Level of Service A-F, flow in vehicles/hour/lane, density in \
vehicles/km/lane, data-quality flags, a confidence from 0 to 1 and the reasons (each naming the \
value and the threshold). Pass earlier readings of the same sensor and lane as `history` to \
also detect stuck or switched-off detectors, gaps and sudden speed drops (possible incidents). \
Pass the sensor's metadata as `site` (lanes, speed limit, free-flow speed, effective vehicle \
length, time zone) to fill what the reading leaves out. Speeds are km/h, occupancy is percent, \
times are RFC 3339 with an offset.",
        input_schema = schema::input::<ClassifyArgs>(),
        output_schema = schema_for_output::<Classification>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn classify(
        &self,
        arguments: JsonObject,
    ) -> Result<Json<Classification>, CallToolResult> {
        let mut args = ArgReader::new(Some(arguments), &["event", "history", "site"], Utc::now());
        let event = args.reading("event");
        let history = args.readings("history", MAX_HISTORY);
        let site = args.site("site").unwrap_or_default();
        let event = args.finish(event).map_err(tool_error)?;
        Ok(Json(rules::classify_at_site(
            &event,
            &history,
            &site,
            &self.rules,
        )))
    }

    /// Classify a stored event by id.
    #[tool(
        name = "classify_by_id",
        title = "Classify a stored traffic reading",
        description = "Classify a reading already stored by the smart-traffic ingest service, \
by its event id. The server loads the event, its sensor's metadata and recent history (same \
sensor and lane) from the database, so the sensor-health flags (stuck, card_off, \
sudden_speed_drop, gap) are included and the site fills what the reading leaves out. Returns the stored event and the classification (label, Level of Service, flow \
veh/h/lane, density veh/km/lane, flags, confidence 0-1, reasons). Fails with an error when the \
id does not exist or the server has no database. Read-only: nothing is written.",
        input_schema = schema::input::<ClassifyByIdArgs>(),
        output_schema = schema_for_output::<ClassifiedEvent>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn classify_by_id(
        &self,
        arguments: JsonObject,
    ) -> Result<Json<ClassifiedEvent>, CallToolResult> {
        let mut args = ArgReader::new(Some(arguments), &["id"], Utc::now());
        let id = args.id("id");
        let id = args.finish(id).map_err(tool_error)?;
        let store = match &self.database {
            Database::Connected(store) => store,
            Database::Unavailable(why) => {
                return Err(error_text(format!(
                    "classify_by_id needs the events database: {why}"
                )));
            }
        };
        let event = store
            .get(id)
            .await
            .map_err(|e| {
                error_text(format!(
                    "could not read event {id}: {}",
                    service_kit::telemetry::error_chain(&e)
                ))
            })?
            .ok_or_else(|| error_text(format!("no event with id {id}")))?;
        let reading = &event.reading;
        let history = store
            .history(
                reading.sensor_id().clone(),
                reading.lane(),
                reading.observed_at(),
                STORED_HISTORY_LIMIT,
            )
            .await
            .map_err(|e| {
                error_text(format!(
                    "could not read the history of event {id}: {}",
                    service_kit::telemetry::error_chain(&e)
                ))
            })?;
        let site = store
            .metadata_of([reading.sensor_id().clone()])
            .await
            .map_err(|e| {
                error_text(format!(
                    "could not read the metadata of sensor {}: {}",
                    reading.sensor_id(),
                    service_kit::telemetry::error_chain(&e)
                ))
            })?
            .remove(reading.sensor_id())
            .map(|metadata| Site::from(&metadata))
            .unwrap_or_default();
        let classification = rules::classify_at_site(reading, &history, &site, &self.rules);
        Ok(Json(ClassifiedEvent {
            event,
            classification,
        }))
    }

    /// Classify up to 1000 readings in one call.
    #[tool(
        name = "classify_batch",
        title = "Classify many traffic readings",
        description = "Classify up to 1000 traffic-sensor readings in one call; faster than \
calling `classify` repeatedly. `history` is one optional pool of earlier readings for any of \
the batch's sensors; the server groups it by sensor and lane, and earlier readings inside \
`events` count as history for later ones. `stored_history` ({readings, minutes}) has a server \
with the events database add the readings it holds of each lane before the batch's earliest \
one there. `sites` gives sensors' metadata by sensor id (as `classify`'s `site`); \
`stored_sites: true` has a server with the database load it. Returns `results` in input order: for each reading \
either `{index, classification}` or, for an invalid reading, `{index, error}` naming the \
offending fields; one invalid reading does not fail the others.",
        input_schema = schema::input::<ClassifyBatchArgs>(),
        output_schema = schema_for_output::<BatchOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn classify_batch(
        &self,
        arguments: JsonObject,
    ) -> Result<Json<BatchOutput>, CallToolResult> {
        let mut args = ArgReader::new(
            Some(arguments),
            &[
                "events",
                "history",
                "stored_history",
                "sites",
                "stored_sites",
            ],
            Utc::now(),
        );
        let events = args.raw_readings("events", true, MAX_BATCH_EVENTS);
        let mut history = args.readings("history", MAX_HISTORY);
        let stored = args.stored_history("stored_history");
        let mut sites = args.sites("sites");
        let stored_sites = args.flag("stored_sites");
        let now = args.now();
        args.finish(Some(())).map_err(tool_error)?;
        let events: Vec<_> = events
            .into_iter()
            .map(|value| {
                traffic_model::reading::Reading::from_json(value, now).map_err(|e| e.errors)
            })
            .collect();
        if let Some(stored) = stored {
            let valid = events.iter().filter_map(|e| e.as_ref().ok());
            history.extend(self.stored_history(valid, stored).await?);
        }
        if stored_sites {
            let missing = events
                .iter()
                .filter_map(|e| e.as_ref().ok())
                .map(|r| r.sensor_id())
                .filter(|id| !sites.contains_key(*id))
                .cloned()
                .collect::<std::collections::HashSet<_>>();
            for (id, metadata) in self.stored_sites(missing).await? {
                sites.insert(id, Site::from(&metadata));
            }
        }
        Ok(Json(batch::classify_batch(
            events,
            history,
            &sites,
            &self.rules,
        )))
    }
}

impl ClassifierServer {
    /// The stored metadata of sensors `ids` (those that have any).
    async fn stored_sites(
        &self,
        ids: impl IntoIterator<Item = SensorId>,
    ) -> Result<HashMap<SensorId, SensorMetadata>, CallToolResult> {
        let store = self.store("stored_sites", "send the metadata in `sites` instead")?;
        store.metadata_of(ids).await.map_err(|e| {
            error_text(format!(
                "could not read the sensors' metadata: {}",
                service_kit::telemetry::error_chain(&e)
            ))
        })
    }

    /// The database, when the server has one.
    fn connected(&self) -> Option<&Store> {
        match &self.database {
            Database::Connected(store) => Some(store),
            Database::Unavailable(_) => None,
        }
    }

    /// The database, or a tool error saying that `what` needs it and what to do instead.
    fn store(&self, what: &str, instead: &str) -> Result<&Store, CallToolResult> {
        match &self.database {
            Database::Connected(store) => Ok(store),
            Database::Unavailable(why) => Err(error_text(format!(
                "{what} needs the events database: {why}; {instead}"
            ))),
        }
    }

    /// The database's readings of each lane of `readings` before its earliest one there: at
    /// most `stored.readings` per lane, and [`MAX_HISTORY`] in all.
    async fn stored_history<'a>(
        &self,
        readings: impl IntoIterator<Item = &'a traffic_model::reading::Reading>,
        stored: StoredHistory,
    ) -> Result<Vec<traffic_model::reading::Reading>, CallToolResult> {
        let store = self.store("stored_history", "send the readings in `history` instead")?;
        let lanes = LaneHistory::before_each_lane(readings);
        let per_lane = usize::try_from(stored.readings)
            .unwrap_or(usize::MAX)
            .min(MAX_HISTORY / lanes.len().max(1));
        let window = std::time::Duration::from_secs(u64::from(stored.minutes) * 60);
        store
            .recent_history(lanes, per_lane, window)
            .await
            .map_err(|e| {
                error_text(format!(
                    "could not read the stored history: {}",
                    service_kit::telemetry::error_chain(&e)
                ))
            })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ClassifierServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools();
        // Resources, prompts and completions all read the stored traffic.
        let capabilities = if self.connected().is_some() {
            capabilities
                .enable_resources()
                .enable_prompts()
                .enable_completions()
                .build()
        } else {
            capabilities.build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("smart-traffic-classifier", env!("CARGO_PKG_VERSION"))
                    .with_title("smart-traffic classifier"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.resources_page(request.as_ref().and_then(|r| r.cursor.as_deref()))
            .await
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        self.resource_templates()
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let contents = self.resource(&request.uri).await?;
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        self.completion(&request).await
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.connected().ok_or_else(no_prompts)?;
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.connected().ok_or_else(no_prompts)?;
        Ok(prompts::get(&request.name, request.arguments.as_ref())?.into())
    }
}

fn no_prompts() -> McpError {
    McpError::invalid_params("prompts need the events database (set DATABASE_URL)", None)
}

fn tool_error(errors: args::ArgumentErrors) -> CallToolResult {
    error_text(errors.to_string())
}

fn error_text(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch limit is one constant: the published schema and the tool's prose follow it.
    #[test]
    fn classify_batch_publishes_the_limit_it_enforces() {
        let tool = ClassifierServer::classify_batch_tool_attr();
        let events = &tool.input_schema["properties"]["events"];
        assert_eq!(events["maxItems"], MAX_BATCH_EVENTS, "{events}");
        let description = tool.description.unwrap_or_default();
        assert!(
            description.contains(&format!("up to {MAX_BATCH_EVENTS} ")),
            "{description}"
        );
    }
}
