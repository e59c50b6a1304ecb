//! The sensor's metadata fills what a reading leaves out; a value in the reading wins.

use super::*;
use crate::sensor::SensorMetadata;

fn site_reason(c: &Classification) -> Option<&String> {
    c.reasons
        .iter()
        .find(|r| r.starts_with("from the sensor's metadata"))
}

#[test]
fn the_site_lane_count_spreads_a_carriageway_count_and_the_reading_s_own_wins() {
    let carriageway = json!({"vehicle_count": 60, "avg_speed_kmh": 100.0});
    let site = Site {
        lanes: Some(3),
        ..Site::default()
    };
    // 60 veh/min = 3600 veh/h over 3 lanes = 1200 veh/h/ln; no unknown-lanes drop.
    let c = classify_at_site(
        &reading(carriageway.clone()),
        &[],
        &site,
        &RulesConfig::default(),
    );
    assert!((c.flow_veh_h_lane - 1200.0).abs() < 1e-9, "{c:#?}");
    assert_eq!(
        c.confidence, 0.9,
        "only the missing occupancy drops: {c:#?}"
    );
    assert!(
        site_reason(&c).is_some_and(|r| r.contains("lanes 3")),
        "{c:#?}"
    );

    let mut own = carriageway;
    own["lanes"] = json!(2);
    let c = classify_at_site(&reading(own), &[], &site, &RulesConfig::default());
    assert!((c.flow_veh_h_lane - 1800.0).abs() < 1e-9, "{c:#?}");
    assert_eq!(site_reason(&c), None, "{c:#?}");

    // A one-lane reading has no use for the carriageway's width.
    let c = classify_at_site(
        &reading(json!({"lane": 1, "vehicle_count": 20, "avg_speed_kmh": 100.0})),
        &[],
        &site,
        &RulesConfig::default(),
    );
    assert_eq!(site_reason(&c), None, "{c:#?}");
}

#[test]
fn the_site_speed_limit_is_the_reference_unless_the_reading_has_one() {
    // 40 km/h against 100 km/h is 40 % (< 75 %: slow → at least heavy); against the reading's
    // own 50 km/h it is 80 % (moderate).
    let slow = json!({"lane": 1, "vehicle_count": 5, "avg_speed_kmh": 40.0});
    let site = Site {
        speed_limit_kmh: Some(100),
        free_flow_speed_kmh: Some(110.0),
        ..Site::default()
    };
    let c = classify_at_site(&reading(slow.clone()), &[], &site, &RulesConfig::default());
    assert!(
        c.reasons
            .iter()
            .any(|r| r.contains("40.0 % of the speed limit 100 km/h")),
        "{c:#?}"
    );
    let supplied = site_reason(&c).expect("named");
    assert!(supplied.contains("speed limit 100 km/h"), "{supplied}");
    assert!(
        !supplied.contains("free-flow"),
        "a speed limit applies, so the free-flow speed is not used: {supplied}"
    );

    let mut own = slow;
    own["speed_limit_kmh"] = json!(50);
    let c = classify_at_site(&reading(own), &[], &site, &RulesConfig::default());
    assert!(
        c.reasons
            .iter()
            .any(|r| r.contains("80.0 % of the speed limit 50 km/h")),
        "{c:#?}"
    );
}

#[test]
fn the_site_free_flow_speed_replaces_the_configured_one() {
    let config = RulesConfig {
        free_flow_speed_kmh: Some(60.0),
        ..RulesConfig::default()
    };
    let slow = reading(json!({"lane": 1, "vehicle_count": 5, "avg_speed_kmh": 40.0}));
    let c = classify(&slow, &[], &config);
    assert!(
        c.reasons
            .iter()
            .any(|r| r.contains("66.7 % of the configured free-flow speed 60 km/h")),
        "{c:#?}"
    );
    let site = Site {
        free_flow_speed_kmh: Some(120.0),
        ..Site::default()
    };
    let c = classify_at_site(&slow, &[], &site, &config);
    assert!(
        c.reasons
            .iter()
            .any(|r| r.contains("33.3 % of the sensor's free-flow speed 120 km/h")),
        "{c:#?}"
    );
    assert!(site_reason(&c).is_some_and(|r| r.contains("free-flow speed 120 km/h")));
}

#[test]
fn the_site_effective_vehicle_length_sets_the_density_from_occupancy() {
    // 20 % × 1000 / 10 m = 20 veh/km/ln (LOS D); with the default 6.5 m it is 30.77 (LOS F).
    let occupancy_only = reading(json!({"lane": 1, "vehicle_count": 10, "occupancy_pct": 20.0}));
    let default = classify(&occupancy_only, &[], &RulesConfig::default());
    assert_eq!(
        default.level_of_service,
        Some(LevelOfService::F),
        "{default:#?}"
    );
    let site = Site {
        effective_vehicle_length_m: Some(10.0),
        ..Site::default()
    };
    let c = classify_at_site(&occupancy_only, &[], &site, &RulesConfig::default());
    assert!(
        (c.density_veh_km_lane.unwrap() - 20.0).abs() < 1e-9,
        "{c:#?}"
    );
    assert_eq!(c.level_of_service, Some(LevelOfService::D), "{c:#?}");
    assert!(site_reason(&c).is_some_and(|r| r.contains("effective vehicle length 10.0 m")));
}

/// 20 silent one-minute readings ending at `end` (UTC), card-off after 10 daytime minutes.
fn card_off_at(end: &str, site: &Site) -> Classification {
    let config = RulesConfig {
        card_off_min_duration_s: 600,
        ..RulesConfig::default()
    };
    let silent_at = |t: DateTime<Utc>| {
        let mut f = json!({"lane": 1, "vehicle_count": 0, "occupancy_pct": 0.0});
        f["observed_at"] = json!(t.to_rfc3339());
        reading(f)
    };
    let end = at(end);
    let history: Vec<Reading> = (1..=20)
        .map(|i| silent_at(end - TimeDelta::minutes(i)))
        .collect();
    classify_at_site(&silent_at(end), &history, site, &config)
}

#[test]
fn the_daytime_window_follows_the_site_time_zone_and_its_daylight_saving() {
    let berlin = Site {
        time_zone: Some(chrono_tz::Europe::Berlin),
        ..Site::default()
    };
    // 04:30 UTC is 06:30 in a Berlin summer (UTC+2): daytime, card off.
    let summer = card_off_at("2026-07-15T04:30:00Z", &berlin);
    assert!(summer.flags.contains(&Flag::CardOff), "{summer:#?}");
    assert!(
        summer
            .reasons
            .iter()
            .any(|r| r.contains("Europe/Berlin (UTC+02:00)")),
        "{summer:#?}"
    );
    // ... and 05:30 in a Berlin winter (UTC+1): night, no flag.
    let winter = card_off_at("2026-01-15T04:30:00Z", &berlin);
    assert!(!winter.flags.contains(&Flag::CardOff), "{winter:#?}");
    // Without a time zone the configured UTC+0 makes it 04:30: night.
    let utc = card_off_at("2026-07-15T04:30:00Z", &Site::default());
    assert!(!utc.flags.contains(&Flag::CardOff), "{utc:#?}");
    assert_eq!(site_reason(&utc), None);
}

#[test]
fn a_site_comes_from_the_metadata_fields_the_rules_use() {
    let metadata = SensorMetadata {
        name: Some("A1 km 12".into()),
        lanes: Some(3),
        speed_limit_kmh: Some(120),
        free_flow_speed_kmh: Some(115.0),
        effective_vehicle_length_m: Some(7.5),
        time_zone: Some("Europe/Berlin".into()),
        ..SensorMetadata::default()
    };
    assert_eq!(
        Site::from(&metadata),
        Site {
            lanes: Some(3),
            speed_limit_kmh: Some(120),
            free_flow_speed_kmh: Some(115.0),
            effective_vehicle_length_m: Some(7.5),
            time_zone: Some(chrono_tz::Europe::Berlin),
        }
    );
    assert_eq!(Site::from(&SensorMetadata::default()), Site::default());
}

proptest! {
    /// An empty site changes nothing: `classify` and `classify_at_site` agree.
    #[test]
    fn an_empty_site_changes_nothing(
        count in 0u32..200,
        speed in proptest::option::of(0.0f64..200.0),
        occupancy in proptest::option::of(0.0f64..100.0),
        lanes in proptest::option::of(1u8..6),
    ) {
        let r = reading(json!({
            "vehicle_count": count, "avg_speed_kmh": speed, "occupancy_pct": occupancy, "lanes": lanes
        }));
        prop_assert_eq!(
            classify(&r, &[], &RulesConfig::default()),
            classify_at_site(&r, &[], &Site::default(), &RulesConfig::default())
        );
    }
}
