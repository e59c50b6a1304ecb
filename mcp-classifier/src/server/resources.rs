//! Resources an agent can attach or read without a tool call: the network's state
//! (`traffic://network/state`) and each sensor's (`traffic://sensors/{sensor_id}`), with
//! completions of sensor ids and roads by prefix. Offered only with the events database.

use std::collections::BTreeSet;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, ListResourceTemplatesResult,
    ListResourcesResult, Reference, Resource, ResourceContents, ResourceTemplate,
};
use serde::Serialize;
use traffic_model::reading::SensorId;
use traffic_store::{NetworkFilter, Store, StoreError};

use super::ClassifierServer;
use super::query::{overview, sensor_info};

pub const NETWORK_STATE_URI: &str = "traffic://network/state";
pub const SENSOR_URI_TEMPLATE: &str = "traffic://sensors/{sensor_id}";
const SENSOR_URI_PREFIX: &str = "traffic://sensors/";
/// Sensors per `resources/list` page, and completion values per answer (the protocol's cap).
const PAGE: usize = 100;
const JSON: &str = "application/json";

impl ClassifierServer {
    fn resource_store(&self) -> Result<&Store, McpError> {
        self.connected().ok_or_else(|| {
            McpError::invalid_params(
                "resources need the events database (set DATABASE_URL)",
                None,
            )
        })
    }

    /// The network's state, then one resource per sensor in id order, 100 a page.
    pub(super) async fn resources_page(
        &self,
        cursor: Option<&str>,
    ) -> Result<ListResourcesResult, McpError> {
        let store = self.resource_store()?;
        let after = cursor
            .map(|c| {
                SensorId::parse(c).map_err(|_| {
                    McpError::invalid_params("cursor: pass the nextCursor of an earlier page", None)
                })
            })
            .transpose()?;
        let page = store
            .sensor_listing(&NetworkFilter::default(), after.as_ref(), PAGE)
            .await
            .map_err(internal)?;
        let mut resources = Vec::new();
        if after.is_none() {
            resources.push(
                Resource::new(NETWORK_STATE_URI, "network-state")
                    .with_title("Traffic state of the network")
                    .with_description(
                        "Lanes per label now, the worst, stale and flagged lanes (as the \
                         traffic_state tool)",
                    )
                    .with_mime_type(JSON),
            );
        }
        for sensor in &page.items {
            let name = sensor.metadata.as_ref().and_then(|m| m.name.clone());
            let mut resource = Resource::new(
                format!("{SENSOR_URI_PREFIX}{}", sensor.sensor_id),
                &sensor.sensor_id,
            )
            .with_title(name.unwrap_or_else(|| format!("Sensor {}", sensor.sensor_id)))
            .with_mime_type(JSON);
            if let Some(road) = sensor.metadata.as_ref().and_then(|m| m.road.as_deref()) {
                resource = resource.with_description(format!("A sensor on {road}"));
            }
            resources.push(resource);
        }
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = page.next_after.map(|id| id.to_string());
        Ok(result)
    }

    pub(super) fn resource_templates(&self) -> Result<ListResourceTemplatesResult, McpError> {
        self.resource_store()?;
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(SENSOR_URI_TEMPLATE, "sensor")
                .with_title("A sensor and its lanes")
                .with_description(
                    "The sensor's metadata, each lane's latest classification and today so far \
                     (as the sensor_info tool)",
                )
                .with_mime_type(JSON),
        ]))
    }

    /// The JSON of `uri`; an unknown URI or sensor is `-32002` (resource not found).
    pub(super) async fn resource(&self, uri: &str) -> Result<ResourceContents, McpError> {
        let store = self.resource_store()?;
        let not_found = || {
            McpError::resource_not_found(
                format!("no resource {uri}: resources/list names them"),
                None,
            )
        };
        let text = if uri == NETWORK_STATE_URI {
            json(
                &overview(store, None, &NetworkFilter::default())
                    .await
                    .map_err(internal)?,
            )?
        } else {
            let id = uri
                .strip_prefix(SENSOR_URI_PREFIX)
                .and_then(|id| SensorId::parse(id).ok())
                .ok_or_else(not_found)?;
            let info = sensor_info(store, id)
                .await
                .map_err(internal)?
                .ok_or_else(not_found)?;
            json(&info)?
        };
        Ok(ResourceContents::text(text, uri).with_mime_type(JSON))
    }

    /// Sensor ids (the template's and the prompts' `sensor_id`) and roads (the prompts'
    /// `road`) starting with what was typed, at most 100.
    pub(super) async fn completion(
        &self,
        request: &CompleteRequestParams,
    ) -> Result<CompleteResult, McpError> {
        let store = self.resource_store()?;
        let applies = match &request.r#ref {
            Reference::Resource(template) => template.uri == SENSOR_URI_TEMPLATE,
            Reference::Prompt(prompt) => {
                super::prompts::PROMPT_NAMES.contains(&prompt.name.as_str())
            }
            _ => false,
        };
        let typed = request.argument.value.as_str();
        let values = match (applies, request.argument.name.as_str()) {
            (true, "sensor_id") => sensor_ids(store, typed).await.map_err(internal)?,
            (true, "road") => roads(store, typed).await.map_err(internal)?,
            _ => Vec::new(),
        };
        let more = values.len() > PAGE;
        let total = (!more).then(|| u32::try_from(values.len()).ok()).flatten();
        let shown: Vec<String> = values.into_iter().take(PAGE).collect();
        let info = CompletionInfo::with_pagination(shown, total, more)
            .map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }
}

async fn sensor_ids(store: &Store, prefix: &str) -> Result<Vec<String>, StoreError> {
    let filter = NetworkFilter {
        id_prefix: Some(prefix.to_owned()),
        ..NetworkFilter::default()
    };
    // One more than shown tells whether more exist.
    let page = store.sensor_listing(&filter, None, PAGE + 1).await?;
    Ok(page.items.into_iter().map(|s| s.sensor_id).collect())
}

async fn roads(store: &Store, prefix: &str) -> Result<Vec<String>, StoreError> {
    let roads: BTreeSet<String> = store
        .all_sensors()
        .await?
        .into_iter()
        .filter_map(|s| s.metadata.road)
        .filter(|road| road.starts_with(prefix))
        .collect();
    Ok(roads.into_iter().collect())
}

fn json<T: Serialize>(value: &T) -> Result<String, McpError> {
    serde_json::to_string(value).map_err(|e| McpError::internal_error(e.to_string(), None))
}

fn internal(e: StoreError) -> McpError {
    McpError::internal_error(
        format!(
            "could not read the store: {}",
            service_kit::telemetry::error_chain(&e)
        ),
        None,
    )
}
