use serde_json::{Value, json};

use super::{Location, SensorMetadata};

/// A document with every field, shared with the API tests of `PUT /v1/sensors/{sensor_id}`.
fn full() -> Value {
    serde_json::from_str(include_str!(
        "../../../../tests/fixtures/sensor-metadata.json"
    ))
    .expect("the fixture is JSON")
}

/// The offending field names, in the order reported.
fn offending(document: Value) -> Vec<String> {
    SensorMetadata::from_json(document)
        .expect_err("refused")
        .errors
        .into_iter()
        .map(|e| e.field)
        .collect()
}

#[test]
fn a_full_document_keeps_every_value() {
    let metadata = SensorMetadata::from_json(full()).expect("valid");
    assert_eq!(metadata.name.as_deref(), Some("A1 km 12.4 northbound"));
    assert_eq!(metadata.road.as_deref(), Some("A1"));
    assert_eq!(metadata.direction.as_deref(), Some("northbound"));
    assert_eq!(
        metadata.location,
        Some(Location {
            lon: 13.405,
            lat: 52.52
        })
    );
    assert_eq!(metadata.lanes, Some(3));
    assert_eq!(metadata.speed_limit_kmh, Some(100));
    assert_eq!(metadata.free_flow_speed_kmh, Some(112.5));
    assert_eq!(metadata.effective_vehicle_length_m, Some(6.2));
    assert_eq!(metadata.time_zone.as_deref(), Some("Europe/Berlin"));
    // What it serialises to is a document it accepts again, unchanged.
    let again = SensorMetadata::from_json(serde_json::to_value(&metadata).expect("json"));
    assert_eq!(again, Ok(metadata));
}

#[test]
fn an_empty_document_or_nulls_mean_nothing_is_known() {
    assert_eq!(
        SensorMetadata::from_json(json!({})),
        Ok(SensorMetadata::default())
    );
    assert_eq!(
        SensorMetadata::from_json(json!({"name": null, "location": null})),
        Ok(SensorMetadata::default())
    );
}

#[test]
fn every_offending_field_is_reported_at_once() {
    let document = json!({
        "name": "   ",
        "road": 7,
        "direction": "n".repeat(51),
        "location": {"lon": 181.0, "height": 3},
        "lanes": 0,
        "speed_limit_kmh": 80.5,
        "free_flow_speed_kmh": -1,
        "effective_vehicle_length_m": "6",
        "time_zone": "Mars/Olympus_Mons",
        "Name": "wrong case"
    });
    let mut fields = offending(document);
    fields.sort();
    assert_eq!(
        fields,
        [
            "Name",
            "direction",
            "effective_vehicle_length_m",
            "free_flow_speed_kmh",
            "lanes",
            "location.height",
            "location.lat",
            "location.lon",
            "name",
            "road",
            "speed_limit_kmh",
            "time_zone",
        ]
    );
}

#[test]
fn bounds_are_inclusive() {
    let edges = json!({
        "location": {"lon": -180, "lat": 90},
        "lanes": 32,
        "speed_limit_kmh": 5,
        "free_flow_speed_kmh": 250,
        "effective_vehicle_length_m": 2,
        "name": "x".repeat(200)
    });
    assert!(SensorMetadata::from_json(edges).is_ok());
    assert_eq!(offending(json!({"lanes": 33})), ["lanes"]);
    assert_eq!(
        offending(json!({"effective_vehicle_length_m": 30.01})),
        ["effective_vehicle_length_m"]
    );
    assert_eq!(
        offending(json!({"location": {"lon": 0, "lat": -90.5}})),
        ["location.lat"]
    );
}

#[test]
fn a_label_with_control_characters_or_a_non_object_is_refused() {
    assert_eq!(offending(json!({"road": "A1\nA2"})), ["road"]);
    assert_eq!(offending(json!({"location": [13.4, 52.5]})), ["location"]);
    let whole = SensorMetadata::from_json(json!([1, 2])).expect_err("refused");
    assert_eq!(whole.errors.len(), 1);
    assert!(whole.errors[0].field.is_empty());
    assert!(
        whole
            .to_string()
            .contains("must be a JSON object, not an array")
    );
}

#[test]
fn a_time_zone_must_be_an_iana_name() {
    let zone = |name: &str| SensorMetadata::from_json(json!({ "time_zone": name }));
    for name in [
        "America/New_York",
        "UTC",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
    ] {
        assert_eq!(
            zone(name).expect("known zone").time_zone.as_deref(),
            Some(name)
        );
    }
    for name in ["", "+01:00", "CEST", "Europe/Berlin "] {
        assert!(zone(name).is_err(), "{name:?} accepted");
    }
}

#[test]
fn a_merge_patch_replaces_forgets_and_merges_the_location() {
    let stored = SensorMetadata::from_json(full()).expect("valid");
    let patched = stored
        .patched(json!({"road": "A2", "direction": null, "location": {"lat": 48.1}}))
        .expect("valid patch");
    assert_eq!(patched.road.as_deref(), Some("A2"));
    assert_eq!(patched.direction, None, "null forgets the value");
    assert_eq!(
        patched.location,
        Some(Location {
            lon: 13.405,
            lat: 48.1
        }),
        "the location merges member by member"
    );
    assert_eq!(patched.lanes, stored.lanes, "an absent member is kept");
    assert_eq!(stored.patched(json!({})), Ok(stored.clone()));
    assert_eq!(
        stored
            .patched(json!({"location": null}))
            .expect("valid")
            .location,
        None
    );
}

#[test]
fn a_merge_patch_is_checked_as_the_document_it_makes() {
    let stored = SensorMetadata::default();
    let refused = stored
        .patched(json!({"lanes": 99, "colour": "red"}))
        .expect_err("refused");
    let mut fields: Vec<String> = refused.errors.into_iter().map(|e| e.field).collect();
    fields.sort();
    assert_eq!(fields, ["colour", "lanes"]);
    // Forgetting a member that is no field is refused too, at any depth.
    for (patch, field) in [
        (json!({"": null}), ""),
        (json!({"colour": null}), "colour"),
        (
            json!({"location": {"lon": 2.35, "lat": 48.85, "alt": null}}),
            "location.alt",
        ),
    ] {
        let refused = stored.patched(patch).expect_err("refused");
        assert_eq!(refused.errors[0].field, field);
    }
    // A location patched into metadata that had none needs both coordinates.
    let half = stored
        .patched(json!({"location": {"lon": 2.35}}))
        .expect_err("refused");
    assert_eq!(half.errors[0].field, "location.lat");
    assert!(
        stored.patched(json!("road")).is_err(),
        "a patch is an object"
    );
}
