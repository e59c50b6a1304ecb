//! GeoJSON (RFC 7946) FeatureCollections of sensors and of the network's state, for a map
//! library to load as they are: a Point at the sensor's location (a sensor without one has a
//! `null` geometry, as RFC 7946 allows), everything else in `properties`.

use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::{Map, Value, json};
use traffic_model::sensor::Location;
use traffic_store::{NetworkState, SensorListing};

use crate::problem::{Kind, Problem};

pub const MEDIA_TYPE: &str = "application/geo+json";

fn point(location: Option<Location>) -> Value {
    location.map_or(
        Value::Null,
        |l| json!({"type": "Point", "coordinates": [l.lon, l.lat]}),
    )
}

/// The members of `value` (an object) but `skip`.
fn properties(value: &impl Serialize, skip: &[&str]) -> Result<Map<String, Value>, Problem> {
    match serde_json::to_value(value) {
        Ok(Value::Object(mut members)) => {
            for key in skip {
                members.remove(*key);
            }
            Ok(members)
        }
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(Problem::new(
            Kind::Internal,
            format!("writing GeoJSON: {e}"),
        )),
    }
}

fn collection(features: Vec<Value>, foreign: Map<String, Value>) -> HttpResponse {
    let mut body = Map::new();
    body.insert("type".into(), json!("FeatureCollection"));
    body.insert("features".into(), Value::Array(features));
    body.extend(foreign);
    HttpResponse::Ok()
        .content_type(MEDIA_TYPE)
        .body(Value::Object(body).to_string())
}

/// One Feature per sensor: the properties are the listing's item as JSON has it, plus `label`
/// and `level_of_service`, the worst of its lanes (what a marker's colour shows), and `stale`
/// when any lane is. `next_after` is a foreign member.
pub fn sensors(items: &[SensorListing], next_after: Option<&str>) -> Result<HttpResponse, Problem> {
    let mut features = Vec::with_capacity(items.len());
    for sensor in items {
        let mut props = properties(sensor, &[])?;
        let worst = sensor
            .lanes
            .iter()
            .max_by_key(|l| (l.state.label.severity(), l.state.level_of_service));
        props.insert("label".into(), json!(worst.map(|l| l.state.label)));
        props.insert(
            "level_of_service".into(),
            json!(worst.and_then(|l| l.state.level_of_service)),
        );
        props.insert("stale".into(), json!(sensor.lanes.iter().any(|l| l.stale)));
        features.push(json!({
            "type": "Feature",
            "id": sensor.sensor_id,
            "geometry": point(sensor.metadata.as_ref().and_then(|m| m.location)),
            "properties": props,
        }));
    }
    let mut foreign = Map::new();
    foreign.insert("next_after".into(), json!(next_after));
    Ok(collection(features, foreign))
}

/// One Feature per sensor lane of the state; `at` and `summary` are foreign members.
pub fn state(network: &NetworkState) -> Result<HttpResponse, Problem> {
    let mut features = Vec::with_capacity(network.items.len());
    for item in &network.items {
        let s = &item.lane.state;
        let id = match s.lane {
            Some(lane) => format!("{}#{lane}", s.sensor_id),
            None => s.sensor_id.to_string(),
        };
        features.push(json!({
            "type": "Feature",
            "id": id,
            "geometry": point(item.location),
            "properties": properties(item, &["location"])?,
        }));
    }
    let mut foreign = Map::new();
    foreign.insert("at".into(), json!(network.at));
    foreign.insert("summary".into(), json!(network.summary));
    Ok(collection(features, foreign))
}
