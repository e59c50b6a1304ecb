#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Hand-computed cases (every figure worked out in the comment above it) and properties.
//!
//! Default LOS upper bounds in veh/km/ln (pc/mi/ln ÷ 1.609344):
//! A 11 → 6.835083, B 18 → 11.184681, C 26 → 16.155651, D 35 → 21.747991, E 45 → 27.961703.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::classification::{Flag, Label, LevelOfService};
// The hand-computed cases name a level of service by its letter.
use crate::classification::LevelOfService::{A, C, D, E, F};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const T0: &str = "2026-11-29T12:00:00Z";

fn at(rfc3339: &str) -> DateTime<Utc> {
    crate::reading::parse_timestamp(rfc3339).unwrap()
}

/// The server clock readings are parsed against: later than any test timestamp.
fn now() -> DateTime<Utc> {
    at("2030-01-01T00:00:00Z")
}

/// A reading of sensor `loop-1`, 60 s interval, ending at [`T0`], with `fields` on top.
fn reading(fields: Value) -> Reading {
    let mut base = json!({"sensor_id": "loop-1", "observed_at": T0, "interval_s": 60});
    for (k, v) in fields.as_object().unwrap() {
        base[k] = v.clone();
    }
    Reading::from_json(base, now()).unwrap()
}

/// [`reading`] ending `seconds_before` seconds before [`T0`].
fn earlier(seconds_before: i64, fields: Value) -> Reading {
    let stamp = at(T0) - TimeDelta::seconds(seconds_before);
    let mut fields = fields;
    fields["observed_at"] = json!(stamp.to_rfc3339());
    reading(fields)
}

fn classify_alone(fields: Value) -> Classification {
    classify(&reading(fields), &[], &RulesConfig::default())
}

/// What a hand-computed case must produce.
struct Expected<'a> {
    label: Label,
    los: Option<LevelOfService>,
    flow: f64,
    density: Option<f64>,
    confidence: f64,
    flags: &'a [Flag],
}

fn assert_case(c: &Classification, e: Expected<'_>) {
    let context = format!("{c:#?}");
    assert_eq!(c.label, e.label, "label\n{context}");
    assert_eq!(c.level_of_service, e.los, "LOS\n{context}");
    assert!((c.flow_veh_h_lane - e.flow).abs() < 1e-9, "flow\n{context}");
    match (c.density_veh_km_lane, e.density) {
        (Some(got), Some(want)) => assert!(
            (got - want).abs() < 1e-4,
            "density {got} != {want}\n{context}"
        ),
        (got, want) => assert_eq!(got, want, "density\n{context}"),
    }
    assert!(
        (c.confidence - e.confidence).abs() < 1e-9,
        "confidence\n{context}"
    );
    assert_eq!(c.flags, e.flags, "flags\n{context}");
    assert_eq!(
        c.classifier_version,
        crate::classification::CLASSIFIER_VERSION
    );
}

/// [`classify_alone`] of `fields` with `field` set to each of `values` in turn.
fn classify_each<const N: usize>(
    fields: Value,
    field: &str,
    values: [Value; N],
) -> [Classification; N] {
    values.map(|value| {
        let mut fields = fields.clone();
        fields[field] = value;
        classify_alone(fields)
    })
}

fn has_reason(c: &Classification, needle: &str) -> bool {
    c.reasons.iter().any(|r| r.contains(needle))
}

/// One test per hand-computed case: `name: {fields} => label, LOS, flow, density, confidence,
/// flags [..]`, and `reasons [..]` when the reasons must name something. The reading is
/// [`reading`] with `fields` on top, classified alone; the hand computation is the case's doc.
macro_rules! hand_computed {
    ($(
        $(#[$doc:meta])*
        $name:ident: $fields:tt
        => $label:ident, $los:expr, flow $flow:expr, density $density:expr,
           confidence $confidence:expr, flags [$($flag:ident),*]
        $(, reasons [$($reason:literal),+])?;
    )*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            let c = classify_alone(json!($fields));
            assert_case(
                &c,
                Expected {
                    label: Label::$label,
                    los: $los,
                    flow: $flow,
                    density: $density,
                    confidence: $confidence,
                    flags: &[$(Flag::$flag),*],
                },
            );
            $($(assert!(has_reason(&c, $reason), "{c:#?}");)+)?
        }
    )*};
}

// ---------------------------------------------------------------------------------------------
// One case per label
// ---------------------------------------------------------------------------------------------

hand_computed! {
    /// flow 10 × 3600 / 60 = 600; density 600 / 110 = 5.4545 ≤ 6.8351 → A → free_flow.
    /// speed 110 / 120 = 91.7 % ≥ 90 %: no override. Every input present, 10 ≥ 3 vehicles: 1.0.
    light_fast_traffic_is_free_flow_at_los_a:
        {"lane": 1, "vehicle_count": 10, "avg_speed_kmh": 110.0,
         "occupancy_pct": 4.0, "speed_limit_kmh": 120}
        => FreeFlow, Some(A), flow 600.0, density Some(600.0 / 110.0), confidence 1.0, flags [];

    /// flow 25 × 60 = 1500; density 1500 / 115 = 13.0435 in (11.1847, 16.1557] → C → moderate.
    /// 115 / 120 = 95.8 %: no override.
    medium_density_at_full_speed_is_moderate_at_los_c:
        {"lane": 1, "vehicle_count": 25, "avg_speed_kmh": 115.0,
         "occupancy_pct": 9.0, "speed_limit_kmh": 120}
        => Moderate, Some(C), flow 1500.0, density Some(1500.0 / 115.0), confidence 1.0, flags [];

    /// flow 40 × 60 = 2400; density 2400 / 100 = 24.0 in (21.7480, 27.9617] → E → heavy.
    /// 100 / 100 = 100 %: no override.
    near_capacity_traffic_is_heavy_at_los_e:
        {"lane": 1, "vehicle_count": 40, "avg_speed_kmh": 100.0,
         "occupancy_pct": 16.0, "speed_limit_kmh": 100}
        => Heavy, Some(E), flow 2400.0, density Some(24.0), confidence 1.0, flags [],
        reasons ["density 24.00 veh/km/ln > 21.75 (LOS D upper bound 35 pc/mi/ln): LOS E"];

    /// flow 30 × 60 = 1800; speed 30 < 56.33 with occupancy, so density from occupancy:
    /// 35 / 100 × 1000 / 6.5 = 53.846 > 27.9617 → F → congested.
    /// 30 / 100 = 30 % < 75 % (at least heavy): no override of congested.
    dense_slow_traffic_is_congested_at_los_f:
        {"lane": 1, "vehicle_count": 30, "avg_speed_kmh": 30.0,
         "occupancy_pct": 35.0, "speed_limit_kmh": 100}
        => Congested, Some(F), flow 1800.0, density Some(350.0 / 6.5), confidence 1.0, flags [];

    /// flow 12 × 60 = 720; no speed, no occupancy, count > 0: nothing supports a call.
    vehicles_without_speed_or_occupancy_are_unknown_with_zero_confidence:
        {"lane": 1, "vehicle_count": 12}
        => Unknown, None, flow 720.0, density None, confidence 0.0, flags [],
        reasons ["label unknown"];
}

// ---------------------------------------------------------------------------------------------
// Speed overrides (each only makes the label worse) and contradictions
// ---------------------------------------------------------------------------------------------

hand_computed! {
    /// flow 600; density 600 / 100 = 6.0 → A (free_flow); 100 / 120 = 83.3 % < 90 % → moderate.
    a_speed_below_90_percent_of_the_limit_makes_free_flow_moderate:
        {"lane": 1, "vehicle_count": 10, "avg_speed_kmh": 100.0,
         "occupancy_pct": 4.0, "speed_limit_kmh": 120}
        => Moderate, Some(A), flow 600.0, density Some(6.0), confidence 1.0, flags [],
        reasons ["speed 100.0 km/h is 83.3 % of the speed limit 120 km/h (< 90 %: below free-flow speed): \
                 at least moderate, overrides free_flow from LOS A"];

    /// flow 20 × 60 = 1200; density 1200 / 60 = 20.0 → D (moderate); 60 / 120 = 50 % < 75 % → heavy.
    a_speed_below_75_percent_of_the_limit_makes_moderate_heavy:
        {"lane": 1, "vehicle_count": 20, "avg_speed_kmh": 60.0,
         "occupancy_pct": 13.0, "speed_limit_kmh": 120}
        => Heavy, Some(D), flow 1200.0, density Some(20.0), confidence 1.0, flags [],
        reasons ["(< 75 %: slow): at least heavy, overrides moderate from LOS D"];

    /// flow 6 × 60 = 360; speed 25 < 56.33, so density 12 / 100 × 1000 / 6.5 = 18.4615 → D (moderate);
    /// 25 / 120 = 20.8 % < 25 % → congested. Stationary speed with LOS D is no contradiction (A–B are).
    a_speed_below_25_percent_of_the_limit_makes_moderate_congested:
        {"lane": 1, "vehicle_count": 6, "avg_speed_kmh": 25.0,
         "occupancy_pct": 12.0, "speed_limit_kmh": 120}
        => Congested, Some(D), flow 360.0, density Some(120.0 / 6.5), confidence 1.0, flags [],
        reasons ["(< 25 %: stationary or queueing): at least congested"];
}

#[test]
fn a_good_speed_never_improves_a_bad_los() {
    // flow 2400; density 2400 / 100 = 24 → E (heavy); 100 / 100 = 100 %: stays heavy.
    let c = classify_alone(
        json!({"lane": 1, "vehicle_count": 40, "avg_speed_kmh": 100.0,
        "occupancy_pct": 16.0, "speed_limit_kmh": 100}),
    );
    assert_eq!(c.label, Label::Heavy);
    assert!(has_reason(&c, "no override of heavy from LOS E"), "{c:#?}");
}

hand_computed! {
    /// flow 600; speed 50 < 56.33 with occupancy: 9 / 100 × 1000 / 6.5 = 13.846 → C (moderate);
    /// 50 < 56.33 km/h (35 mph) → heavy.
    without_a_limit_a_speed_below_35_mph_makes_moderate_heavy:
        {"lane": 1, "vehicle_count": 10, "avg_speed_kmh": 50.0, "occupancy_pct": 9.0}
        => Heavy, Some(C), flow 600.0, density Some(90.0 / 6.5), confidence 1.0, flags [],
        reasons ["< 56.3 km/h, 35 mph: PeMS delay"];
}

#[test]
fn without_a_limit_a_speed_of_35_mph_or_more_does_not_override() {
    // 56.4 ≥ 56.327 km/h: no floor; density 600 / 56.4 = 10.638 → B → free_flow.
    let c = classify_alone(
        json!({"lane": 1, "vehicle_count": 10, "avg_speed_kmh": 56.4,
        "occupancy_pct": 7.0}),
    );
    assert_eq!(
        (c.label, c.level_of_service),
        (Label::FreeFlow, Some(LevelOfService::B)),
        "{c:#?}"
    );
}

hand_computed! {
    /// flow 5 × 60 = 300; speed 20 < 56.33 with occupancy: 10 / 100 × 1000 / 6.5 = 15.385 → C;
    /// 20 < 24.14 km/h (15 mph) → congested.
    without_a_limit_a_speed_below_15_mph_makes_moderate_congested:
        {"lane": 1, "vehicle_count": 5, "avg_speed_kmh": 20.0, "occupancy_pct": 10.0}
        => Congested, Some(C), flow 300.0, density Some(100.0 / 6.5), confidence 1.0, flags [];
}

#[test]
fn a_configured_free_flow_speed_is_the_reference_when_the_limit_is_unknown() {
    // Reference 100 km/h: 70 / 100 = 70 % < 75 % → heavy; density 600 / 70 = 8.571 → B.
    let config = RulesConfig {
        free_flow_speed_kmh: Some(100.0),
        ..RulesConfig::default()
    };
    let c = classify(
        &reading(
            json!({"lane": 1, "vehicle_count": 10, "avg_speed_kmh": 70.0,
        "occupancy_pct": 6.0}),
        ),
        &[],
        &config,
    );
    assert_eq!(
        (c.label, c.level_of_service),
        (Label::Heavy, Some(LevelOfService::B)),
        "{c:#?}"
    );
    assert!(
        has_reason(&c, "70.0 % of the configured free-flow speed 100 km/h"),
        "{c:#?}"
    );
}

hand_computed! {
    /// flow 50 × 60 = 3000 (not > 3000: no capacity flag); density 3000 / 100 = 30 → F → congested.
    /// 100 / 100 ≥ 90 % says free: contradiction −0.30 → 0.70.
    free_flow_speed_with_los_f_by_flow_over_speed_is_a_contradiction:
        {"lane": 1, "vehicle_count": 50, "avg_speed_kmh": 100.0,
         "occupancy_pct": 20.0, "speed_limit_kmh": 100}
        => Congested, Some(F), flow 3000.0, density Some(30.0), confidence 0.7, flags [],
        reasons ["contradiction: free-flow speed but LOS F from flow/speed"];

    /// Limit 20: speed 19 is 95 % (free) but < 56.33 km/h, so occupancy gives density:
    /// 40 / 100 × 1000 / 6.5 = 61.538 → F → congested; contradiction −0.30 → 0.70.
    free_flow_speed_with_los_f_from_occupancy_is_a_contradiction:
        {"lane": 1, "vehicle_count": 5, "avg_speed_kmh": 19.0,
         "occupancy_pct": 40.0, "speed_limit_kmh": 20}
        => Congested, Some(F), flow 300.0, density Some(400.0 / 6.5), confidence 0.7, flags [],
        reasons ["contradiction: free-flow speed but LOS F from occupancy"];

    /// flow 1 × 60 = 60; density 60 / 10 = 6.0 → A; 10 / 100 = 10 % < 25 % → congested.
    /// Drops: contradiction 0.30 + no occupancy 0.10 + small sample (1 < 3) 0.15 → 0.45.
    stationary_speed_with_los_a_is_a_contradiction:
        {"lane": 1, "vehicle_count": 1, "avg_speed_kmh": 10.0, "speed_limit_kmh": 100}
        => Congested, Some(A), flow 60.0, density Some(6.0), confidence 0.45, flags [],
        reasons ["contradiction: stationary speed but LOS A from flow/speed"];
}

// ---------------------------------------------------------------------------------------------
// Density paths
// ---------------------------------------------------------------------------------------------

hand_computed! {
    /// flow 20 × 60 = 1200; density 15 / 100 × 1000 / 6.5 = 23.0769 → E → heavy.
    /// No speed −0.20 → 0.80.
    without_speed_density_comes_from_occupancy_and_the_effective_vehicle_length:
        {"lane": 1, "vehicle_count": 20, "occupancy_pct": 15.0}
        => Heavy, Some(E), flow 1200.0, density Some(150.0 / 6.5), confidence 0.8, flags [],
        reasons ["density 15.0 % × 1000 / 6.5 m = 23.08 veh/km/ln"];

    /// speed 12 < 56.33 with occupancy: 40 / 100 × 1000 / 6.5 = 61.538 → F (flow/speed would be 600/12 = 50).
    at_low_speed_occupancy_is_preferred_over_flow_over_speed:
        {"lane": 1, "vehicle_count": 10, "avg_speed_kmh": 12.0,
         "occupancy_pct": 40.0, "speed_limit_kmh": 100}
        => Congested, Some(F), flow 600.0, density Some(400.0 / 6.5), confidence 1.0, flags [];

    /// speed 30 < 56.33 but occupancy 0 with 10 vehicles is a broken channel: density 600 / 30 = 20.0
    /// → D; 30 / 100 = 30 % < 75 % → heavy. count_with_zero_occupancy −0.30 → 0.70.
    a_zero_occupancy_with_vehicles_is_not_preferred_over_flow_over_speed:
        {"lane": 1, "vehicle_count": 10, "avg_speed_kmh": 30.0,
         "occupancy_pct": 0.0, "speed_limit_kmh": 100}
        => Heavy, Some(D), flow 600.0, density Some(20.0), confidence 0.7, flags [CountWithZeroOccupancy];
}

#[test]
fn at_a_speed_just_at_the_preference_bound_flow_over_speed_is_used() {
    // Bound 56.32704 km/h (35 mph). Speed 56.33 is not below it: density 600 / 56.33 = 10.6515.
    // Speed 56.32 is below it: density from occupancy 40 / 100 × 1000 / 6.5 = 61.538.
    let fields =
        json!({"lane": 1, "vehicle_count": 10, "occupancy_pct": 40.0, "speed_limit_kmh": 100});
    let [at, below] = classify_each(fields, "avg_speed_kmh", [json!(56.33), json!(56.32)]);
    assert_eq!(at.density_veh_km_lane, Some(600.0 / 56.33), "{at:#?}");
    assert_eq!(below.density_veh_km_lane, Some(400.0 / 6.5), "{below:#?}");
}

hand_computed! {
    /// speed 4 ≤ 5: flow/speed unusable, no occupancy → no density, no LOS.
    /// 4 / 100 = 4 % < 25 % → congested from speed alone. Drops: no density 0.20 + no occupancy 0.10 → 0.70.
    a_crawl_speed_without_occupancy_gives_no_density_but_a_congested_label:
        {"lane": 1, "vehicle_count": 3, "avg_speed_kmh": 4.0, "speed_limit_kmh": 100}
        => Congested, None, flow 180.0, density None, confidence 0.7, flags [],
        reasons ["from speed alone"];

    /// speed 5.1 > 5: density 180 / 5.1 = 35.294 → F; no occupancy −0.10 → 0.90.
    a_speed_just_above_the_minimum_is_used_for_density:
        {"lane": 1, "vehicle_count": 3, "avg_speed_kmh": 5.1, "speed_limit_kmh": 100}
        => Congested, Some(F), flow 180.0, density Some(180.0 / 5.1), confidence 0.9, flags [];

    /// Density 0 → A → free_flow. Drops: empty road 0.20 + no occupancy 0.10 → 0.70.
    no_vehicles_and_no_occupancy_is_an_empty_road_with_reduced_confidence:
        {"lane": 1, "vehicle_count": 0}
        => FreeFlow, Some(A), flow 0.0, density Some(0.0), confidence 0.7, flags [];

    /// Density 0 → A; empty road −0.20 → 0.80. A speed of no vehicles is ignored.
    no_vehicles_and_zero_occupancy_is_an_empty_road:
        {"lane": 1, "vehicle_count": 0, "occupancy_pct": 0.0,
         "avg_speed_kmh": 0.0, "speed_limit_kmh": 100}
        => FreeFlow, Some(A), flow 0.0, density Some(0.0), confidence 0.8, flags [],
        reasons ["avg_speed_kmh 0.0 ignored"];

    /// density 30 / 100 × 1000 / 6.5 = 46.154 → F → congested; zero_flow_with_occupancy −0.30 → 0.70.
    no_vehicles_with_high_occupancy_is_a_standing_queue_flagged_as_suspicious:
        {"lane": 1, "vehicle_count": 0, "occupancy_pct": 30.0}
        => Congested, Some(F), flow 0.0, density Some(300.0 / 6.5), confidence 0.7, flags [ZeroFlowWithOccupancy];
}

// ---------------------------------------------------------------------------------------------
// Lanes
// ---------------------------------------------------------------------------------------------

hand_computed! {
    /// flow 90 × 3600 / 60 / 3 = 1800; density 1800 / 100 = 18.0 → D → moderate.
    a_carriageway_count_is_divided_by_its_lanes:
        {"lanes": 3, "vehicle_count": 90, "avg_speed_kmh": 100.0,
         "occupancy_pct": 12.0, "speed_limit_kmh": 100}
        => Moderate, Some(D), flow 1800.0, density Some(18.0), confidence 1.0, flags [],
        reasons ["flow 90 veh × 3600 / 60 s / 3 lanes = 1800 veh/h/ln"];
}

#[test]
fn a_lane_count_is_not_divided_even_when_lanes_is_known() {
    // lane given: flow 30 × 3600 / 60 = 1800, not / 3.
    let c = classify_alone(
        json!({"lane": 2, "lanes": 3, "vehicle_count": 30, "avg_speed_kmh": 100.0,
        "occupancy_pct": 12.0, "speed_limit_kmh": 100}),
    );
    assert_eq!(c.flow_veh_h_lane, 1800.0);
    assert_eq!(c.confidence, 1.0);
}

hand_computed! {
    /// flow 30 × 60 = 1800 (one lane assumed); unknown lanes −0.10 → 0.90.
    a_carriageway_of_unknown_width_counts_as_one_lane_with_reduced_confidence:
        {"vehicle_count": 30, "avg_speed_kmh": 100.0, "occupancy_pct": 12.0, "speed_limit_kmh": 100}
        => Moderate, Some(D), flow 1800.0, density Some(18.0), confidence 0.9, flags [];
}

#[test]
fn a_carriageway_occupancy_is_a_lane_mean_by_default_and_a_total_when_configured() {
    // 26 / 100 × 1000 / 6.5 = 40.0 → F as a lane mean; 40.0 / 2 lanes = 20.0 → D as a total.
    let r = reading(json!({"lanes": 2, "vehicle_count": 40, "occupancy_pct": 26.0}));
    let mean = classify(&r, &[], &RulesConfig::default());
    assert_eq!(
        (mean.density_veh_km_lane, mean.level_of_service),
        (Some(40.0), Some(LevelOfService::F))
    );
    let total = RulesConfig {
        carriageway_occupancy_is_lane_mean: false,
        ..RulesConfig::default()
    };
    let total = classify(&r, &[], &total);
    assert_eq!(
        (total.density_veh_km_lane, total.level_of_service),
        (Some(20.0), Some(LevelOfService::D))
    );
}

// ---------------------------------------------------------------------------------------------
// LOS band edges: exactly at each bound (inclusive) and just above it
// ---------------------------------------------------------------------------------------------

#[test]
fn every_los_bound_belongs_to_the_lower_band_and_anything_above_to_the_next() {
    let config = RulesConfig::default();
    let edges = [
        (11.0, LevelOfService::A, LevelOfService::B),
        (18.0, LevelOfService::B, LevelOfService::C),
        (26.0, LevelOfService::C, LevelOfService::D),
        (35.0, LevelOfService::D, LevelOfService::E),
        (45.0, LevelOfService::E, LevelOfService::F),
    ];
    for (pc_mi_ln, at_bound, above) in edges {
        let bound = pc_mi_ln / 1.609_344;
        assert_eq!(
            level_of_service(bound, &config),
            at_bound,
            "at {pc_mi_ln} pc/mi/ln"
        );
        assert_eq!(
            level_of_service(bound.next_up(), &config),
            above,
            "just above {pc_mi_ln} pc/mi/ln"
        );
        assert_eq!(
            level_of_service(bound + 0.01, &config),
            above,
            "0.01 above {pc_mi_ln} pc/mi/ln"
        );
    }
    assert_eq!(level_of_service(0.0, &config), LevelOfService::A);
    assert_eq!(level_of_service(1e9, &config), LevelOfService::F);
}

#[test]
fn the_los_bounds_in_veh_per_km_are_the_hcm_bounds_divided_by_1_609344() {
    let got = RulesConfig::default().los_upper_bounds_veh_km_lane();
    let want = [6.835_083, 11.184_681, 16.155_651, 21.747_991, 27.961_703];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?}");
    }
}

#[test]
fn classify_puts_a_density_just_below_and_just_above_the_los_d_bound_in_d_and_e() {
    // Bound D = 21.747991 veh/km/ln. flow 2400 (40 veh/min):
    // speed 110.4 → 21.7391 (D); speed 110.3 → 21.7588 (E).
    let fields =
        json!({"lane": 1, "vehicle_count": 40, "occupancy_pct": 14.0, "speed_limit_kmh": 120});
    let [below, above] = classify_each(fields, "avg_speed_kmh", [json!(110.4), json!(110.3)]);
    assert_eq!(
        (below.level_of_service, below.label),
        (Some(LevelOfService::D), Label::Moderate)
    );
    assert_eq!(
        (above.level_of_service, above.label),
        (Some(LevelOfService::E), Label::Heavy)
    );
}

#[test]
fn misordered_los_bounds_still_give_a_monotonic_los() {
    // B configured below A: B's effective bound becomes A's, so B is empty and C follows A.
    let config = RulesConfig {
        los_b_max_pc_mi_ln: 5.0,
        ..RulesConfig::default()
    };
    assert_eq!(level_of_service(6.0, &config), LevelOfService::A);
    assert_eq!(level_of_service(7.0, &config), LevelOfService::C);
    assert!(!config.problems().is_empty());
    assert!(RulesConfig::default().problems().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Single-reading flags: on, and just not on
// ---------------------------------------------------------------------------------------------

/// One test per single-reading flag: `name: {fields} => [flags], …;` — a reading of lane 1
/// with `fields`, classified alone, raises exactly `flags`.
macro_rules! flags_alone {
    ($($name:ident: $($fields:tt => [$($flag:ident),*]),+;)*) => {$(
        #[test]
        fn $name() {
            $(
                let mut fields = json!($fields);
                fields["lane"] = json!(1);
                let raised = classify_alone(fields.clone()).flags;
                assert_eq!(raised, [$(Flag::$flag),*], "{fields}");
            )+
        }
    )*};
}

flags_alone! {
    zero_flow_with_occupancy_needs_no_vehicles_and_some_occupancy:
        {"vehicle_count": 0, "occupancy_pct": 0.1} => [ZeroFlowWithOccupancy],
        {"vehicle_count": 0, "occupancy_pct": 0.0} => [],
        {"vehicle_count": 1, "occupancy_pct": 0.1} => [];
    count_with_zero_occupancy_needs_vehicles_and_exactly_zero_occupancy:
        {"vehicle_count": 5, "occupancy_pct": 0.0} => [CountWithZeroOccupancy],
        {"vehicle_count": 5, "occupancy_pct": 0.1} => [],
        {"vehicle_count": 5} => [];
    high_occupancy_starts_at_70_percent:
        {"vehicle_count": 5, "occupancy_pct": 70.0} => [HighOccupancy],
        {"vehicle_count": 5, "occupancy_pct": 69.9} => [];
    // limit 100 → bound 100 × 1.5 + 20 = 170.
    implausible_speed_is_above_limit_times_1_5_plus_20:
        {"vehicle_count": 5, "avg_speed_kmh": 170.1, "speed_limit_kmh": 100} => [ImplausibleSpeed],
        {"vehicle_count": 5, "avg_speed_kmh": 170.0, "speed_limit_kmh": 100} => [];
    // No vehicles: the speed is ignored.
    implausible_speed_without_a_limit_is_above_200_kmh:
        {"vehicle_count": 5, "avg_speed_kmh": 200.1} => [ImplausibleSpeed],
        {"vehicle_count": 5, "avg_speed_kmh": 200.0} => [],
        {"vehicle_count": 0, "avg_speed_kmh": 300.0} => [];
    // 51 × 60 = 3060 > 3000; 50 × 60 = 3000 is not above.
    flow_above_capacity_is_above_3000_veh_per_hour_per_lane:
        {"vehicle_count": 51, "avg_speed_kmh": 100.0} => [FlowAboveCapacity],
        {"vehicle_count": 50, "avg_speed_kmh": 100.0} => [];
}

#[test]
fn flow_above_capacity_is_judged_per_lane_for_a_carriageway() {
    // 101 × 60 / 2 = 3030 > 3000; 100 × 60 / 2 = 3000.
    let fields = json!({"lanes": 2, "avg_speed_kmh": 100.0});
    let [on, off] = classify_each(fields, "vehicle_count", [json!(101), json!(100)]);
    assert_eq!(on.flags, [Flag::FlowAboveCapacity]);
    assert_eq!(off.flags, []);
}

#[test]
fn fewer_than_three_vehicles_lower_the_confidence_but_three_do_not() {
    // 2 vehicles: small sample −0.15 → 0.85; 3 vehicles: 1.0.
    let fields =
        json!({"lane": 1, "avg_speed_kmh": 100.0, "occupancy_pct": 1.0, "speed_limit_kmh": 100});
    let [two, three] = classify_each(fields, "vehicle_count", [json!(2), json!(3)]);
    assert!((two.confidence - 0.85).abs() < 1e-9, "{two:#?}");
    assert_eq!(three.confidence, 1.0);
}

#[test]
fn several_flags_add_their_drops_and_come_sorted() {
    // 0 vehicles, occupancy 80: zero_flow_with_occupancy 0.30 + high_occupancy 0.20 → 0.50.
    // density 80 / 100 × 1000 / 6.5 = 123.08 → F.
    let c = classify_alone(json!({"lane": 1, "vehicle_count": 0, "occupancy_pct": 80.0}));
    assert_eq!(c.flags, [Flag::ZeroFlowWithOccupancy, Flag::HighOccupancy]);
    assert!((c.confidence - 0.5).abs() < 1e-9, "{c:#?}");
}

#[test]
fn confidence_is_rounded_to_four_decimals() {
    // 1 − (zero_flow_with_occupancy 0.30 + high_occupancy 0.20 + gap 0.05) = 0.45 exactly, not the
    // 0.44999999999999996 floating-point addition gives.
    let history = [earlier(
        180,
        json!({"lane": 1, "vehicle_count": 12, "avg_speed_kmh": 95.0}),
    )];
    let c = classify(
        &reading(json!({"lane": 1, "vehicle_count": 0, "occupancy_pct": 80.0})),
        &history,
        &RulesConfig::default(),
    );
    assert_eq!(
        c.flags,
        [Flag::ZeroFlowWithOccupancy, Flag::HighOccupancy, Flag::Gap]
    );
    assert_eq!(c.confidence, 0.45);
}

// ---------------------------------------------------------------------------------------------
// History flags
// ---------------------------------------------------------------------------------------------

fn classify_with(current: Value, history: &[Reading]) -> Classification {
    classify(&reading(current), history, &RulesConfig::default())
}

const STEADY: fn() -> Value =
    || json!({"lane": 1, "vehicle_count": 12, "avg_speed_kmh": 95.0, "occupancy_pct": 7.0});

#[test]
fn a_gap_is_more_than_one_and_a_half_intervals_since_the_previous_reading() {
    // interval 60: 91 s > 90 s → gap, round(91 / 60) − 1 = 1 missing; 90 s is not a gap.
    let gap = classify_with(STEADY(), &[earlier(91, STEADY())]);
    assert_eq!(gap.flags, [Flag::Gap]);
    assert!(has_reason(&gap, "≈ 1 interval(s) missing"), "{gap:#?}");
    assert!((gap.confidence - 0.95).abs() < 1e-9);
    let no_gap = classify_with(STEADY(), &[earlier(90, STEADY())]);
    assert_eq!(no_gap.flags, []);
}

#[test]
fn a_gap_says_how_many_intervals_are_missing() {
    // 180 s / 60 s = 3 intervals elapsed → 2 missing.
    let c = classify_with(STEADY(), &[earlier(180, STEADY()), earlier(240, STEADY())]);
    assert!(
        has_reason(
            &c,
            "gap: 180 s since the previous reading > 1.50 × 60 s interval: ≈ 2 interval(s) missing"
        ),
        "{c:#?}"
    );
}

fn repeated(n: i64, fields: Value) -> Vec<Reading> {
    (1..=n).map(|i| earlier(60 * i, fields.clone())).collect()
}

#[test]
fn six_identical_non_zero_readings_in_a_row_are_stuck() {
    // 5 earlier + current = 6 ≥ 6 → stuck (−0.50); 4 earlier + current = 5 → not stuck.
    let stuck = classify_with(STEADY(), &repeated(5, STEADY()));
    assert_eq!(stuck.flags, [Flag::Stuck]);
    assert!((stuck.confidence - 0.5).abs() < 1e-9);
    assert_eq!(classify_with(STEADY(), &repeated(4, STEADY())).flags, []);
}

#[test]
fn a_different_reading_in_between_breaks_a_stuck_run() {
    // Newest first: 4 identical, then a different one, then 5 identical → run of 5 with current.
    let mut history = repeated(4, STEADY());
    history.push(earlier(
        300,
        json!({"lane": 1, "vehicle_count": 13, "avg_speed_kmh": 95.0, "occupancy_pct": 7.0}),
    ));
    history.extend((6..=10).map(|i| earlier(60 * i, STEADY())));
    assert_eq!(classify_with(STEADY(), &history).flags, []);
}

#[test]
fn repeated_empty_readings_are_not_stuck() {
    let empty = json!({"lane": 1, "vehicle_count": 0, "occupancy_pct": 0.0});
    let c = classify_with(empty.clone(), &repeated(10, empty));
    assert!(!c.flags.contains(&Flag::Stuck), "{c:#?}");
}

#[test]
fn history_of_other_sensors_other_lanes_and_later_times_is_ignored() {
    // Five identical readings, each disqualified: another sensor, another lane, or not earlier.
    let mut other_sensor = STEADY();
    other_sensor["sensor_id"] = json!("loop-2");
    let mut other_lane = STEADY();
    other_lane["lane"] = json!(2);
    let history = vec![
        earlier(60, other_sensor.clone()),
        earlier(120, other_lane.clone()),
        earlier(180, other_sensor),
        earlier(240, other_lane),
        earlier(0, STEADY()),
        earlier(-60, STEADY()),
    ];
    assert_eq!(classify_with(STEADY(), &history).flags, []);
}

#[test]
fn history_in_any_order_gives_the_same_result() {
    let mut history = repeated(5, STEADY());
    let sorted = classify_with(STEADY(), &history);
    history.reverse();
    history.swap(1, 3);
    assert_eq!(classify_with(STEADY(), &history), sorted);
}

fn silent() -> Value {
    json!({"lane": 1, "vehicle_count": 0, "occupancy_pct": 0.0})
}

#[test]
fn sixty_minutes_of_daytime_zero_occupancy_is_card_off() {
    // Current (11:59–12:00) + 59 earlier one-minute readings = 60 min ≥ 60 → card_off.
    // Drops: empty road 0.20 + card_off 0.50 → 0.30.
    let c = classify_with(silent(), &repeated(59, silent()));
    assert_eq!(c.flags, [Flag::CardOff]);
    assert!((c.confidence - 0.3).abs() < 1e-9, "{c:#?}");
    // 59 min is not enough.
    assert_eq!(classify_with(silent(), &repeated(58, silent())).flags, []);
}

#[test]
fn zero_occupancy_at_night_is_not_card_off() {
    // 60 minutes ending at 03:00 UTC: outside 06–21.
    let night = |s: i64| {
        let mut f = silent();
        f["observed_at"] = json!((at("2026-11-29T03:00:00Z") - TimeDelta::seconds(s)).to_rfc3339());
        reading(f)
    };
    let history: Vec<Reading> = (1..=70).map(|i| night(60 * i)).collect();
    let c = classify(&night(0), &history, &RulesConfig::default());
    assert!(!c.flags.contains(&Flag::CardOff), "{c:#?}");
}

#[test]
fn the_daytime_window_follows_the_configured_utc_offset() {
    // 12:00 UTC is 22:00 at UTC+10:00: outside 06–21 local.
    let config = RulesConfig {
        utc_offset_minutes: 600,
        ..RulesConfig::default()
    };
    let c = classify(&reading(silent()), &repeated(70, silent()), &config);
    assert!(!c.flags.contains(&Flag::CardOff), "{c:#?}");
}

#[test]
fn a_gap_or_a_non_zero_reading_ends_a_card_off_run() {
    // 30 silent minutes, then a 10-minute hole, then 40 more silent minutes: the run is 30 min.
    let mut history: Vec<Reading> = (1..=29).map(|i| earlier(60 * i, silent())).collect();
    history.extend((40..=80).map(|i| earlier(60 * i, silent())));
    assert!(
        !classify_with(silent(), &history)
            .flags
            .contains(&Flag::CardOff)
    );
    // 30 silent minutes, then one reading with occupancy, then 40 silent.
    let mut history: Vec<Reading> = (1..=29).map(|i| earlier(60 * i, silent())).collect();
    history.push(earlier(
        60 * 30,
        json!({"lane": 1, "vehicle_count": 1, "occupancy_pct": 0.5}),
    ));
    history.extend((31..=80).map(|i| earlier(60 * i, silent())));
    assert!(
        !classify_with(silent(), &history)
            .flags
            .contains(&Flag::CardOff)
    );
}

#[test]
fn without_occupancy_an_hour_of_zero_counts_is_card_off() {
    let zero = json!({"lane": 1, "vehicle_count": 0});
    let c = classify_with(zero.clone(), &repeated(59, zero));
    assert!(c.flags.contains(&Flag::CardOff), "{c:#?}");
}

fn at_speed(speed: f64) -> Value {
    json!({"lane": 1, "vehicle_count": 10, "avg_speed_kmh": speed, "occupancy_pct": 5.0})
}

fn five_readings_at_100() -> Vec<Reading> {
    // Speeds 90, 95, 100, 105, 110 → median 100.
    [90.0, 95.0, 100.0, 105.0, 110.0]
        .iter()
        .zip(1..)
        .map(|(s, i)| earlier(60 * i, at_speed(*s)))
        .collect()
}

#[test]
fn a_speed_below_half_the_recent_median_is_a_sudden_drop() {
    // 49.9 < 0.5 × 100 → sudden_speed_drop (no confidence drop by default); 50.0 is not below.
    let c = classify_with(at_speed(49.9), &five_readings_at_100());
    assert_eq!(c.flags, [Flag::SuddenSpeedDrop]);
    assert!(
        has_reason(&c, "median 100.0 km/h of 5 readings in the last 30 min"),
        "{c:#?}"
    );
    assert_eq!(
        classify_with(at_speed(50.0), &five_readings_at_100()).flags,
        []
    );
}

#[test]
fn a_sudden_drop_needs_five_recent_readings() {
    // Four readings are too few; five older than 30 minutes do not count.
    let four: Vec<Reading> = five_readings_at_100().into_iter().take(4).collect();
    assert_eq!(classify_with(at_speed(20.0), &four).flags, []);
    let old: Vec<Reading> = (31..=35)
        .map(|i| earlier(60 * i, at_speed(100.0)))
        .collect();
    let c = classify_with(at_speed(20.0), &old);
    assert_eq!(c.flags, [Flag::Gap], "{c:#?}");
}

#[test]
fn the_median_of_an_even_number_of_speeds_is_the_mean_of_the_middle_two() {
    // Speeds 90, 95, 100, 105, 110, 120 → median (100 + 105) / 2 = 102.5; 51.2 < 51.25.
    let mut history = five_readings_at_100();
    history.push(earlier(360, at_speed(120.0)));
    assert_eq!(
        classify_with(at_speed(51.2), &history).flags,
        [Flag::SuddenSpeedDrop]
    );
    assert_eq!(classify_with(at_speed(51.3), &history).flags, []);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[test]
fn an_operator_override_of_one_field_keeps_every_other_default() {
    let config: RulesConfig =
        serde_json::from_value(json!({"effective_vehicle_length_m": 7.0})).unwrap();
    assert_eq!(
        config,
        RulesConfig {
            effective_vehicle_length_m: 7.0,
            ..RulesConfig::default()
        }
    );
}

#[test]
fn a_misspelt_override_field_is_rejected() {
    assert!(
        serde_json::from_value::<RulesConfig>(json!({"efective_vehicle_length_m": 7.0})).is_err()
    );
}

#[test]
fn the_default_configuration_round_trips_through_json() {
    let config = RulesConfig::default();
    let back: RulesConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    assert_eq!(back, config);
}

#[test]
fn reasons_are_deterministic() {
    let r = reading(
        json!({"lane": 1, "vehicle_count": 7, "avg_speed_kmh": 33.3, "occupancy_pct": 11.1,
        "speed_limit_kmh": 80}),
    );
    let history = repeated(5, STEADY());
    let a = classify(&r, &history, &RulesConfig::default());
    let b = classify(&r, &history, &RulesConfig::default());
    assert_eq!(a.reasons, b.reasons);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Any valid reading's fields, with values biased towards repeats, zeros and thresholds so the
/// history rules fire often.
fn arb_fields() -> impl Strategy<Value = Value> {
    (
        0..3u8,
        1u32..=3600,
        prop::option::of(0u8..=32),
        prop_oneof![Just(0u32), 1u32..5, 0u32..=100_000],
        prop::option::of(prop_oneof![Just(0.0), 0.0..=400.0f64]),
        prop::option::of(prop_oneof![Just(0.0), Just(100.0), 0.0..=100.0f64]),
        prop::option::of(5u16..=200),
        prop::option::of(1u8..=32),
    )
        .prop_map(
            |(sensor, interval, lane, count, speed, occupancy, limit, lanes)| {
                json!({
                    "sensor_id": format!("s{sensor}"),
                    "interval_s": interval,
                    "lane": lane,
                    "vehicle_count": count,
                    "avg_speed_kmh": speed,
                    "occupancy_pct": occupancy,
                    "speed_limit_kmh": limit,
                    "lanes": lanes,
                })
            },
        )
}

/// A reading from `fields` ending `offset_s` seconds after 2026-06-01T00:00:00Z.
fn build(fields: &Value, offset_s: i64) -> Reading {
    let mut fields = fields.clone();
    fields["observed_at"] =
        json!((at("2026-06-01T00:00:00Z") + TimeDelta::seconds(offset_s)).to_rfc3339());
    Reading::from_json(fields, now()).unwrap()
}

fn arb_case() -> impl Strategy<Value = (Reading, Vec<Reading>)> {
    (
        arb_fields(),
        0i64..172_800,
        prop::collection::vec((prop::bool::ANY, arb_fields(), -7200i64..600), 0..80),
    )
        .prop_map(|(fields, offset, history)| {
            let current = build(&fields, offset);
            let history = history
                .iter()
                // Half the history repeats the current reading's values (same sensor and lane).
                .map(|(copy, other, delta)| {
                    build(if *copy { &fields } else { other }, offset + delta)
                })
                .collect();
            (current, history)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn classify_never_panics_and_its_numbers_are_sound((current, history) in arb_case()) {
        let c = classify(&current, &history, &RulesConfig::default());
        prop_assert!(c.confidence.is_finite() && (0.0..=1.0).contains(&c.confidence), "{c:?}");
        prop_assert!(c.flow_veh_h_lane.is_finite() && c.flow_veh_h_lane >= 0.0, "{c:?}");
        if let Some(d) = c.density_veh_km_lane {
            prop_assert!(d.is_finite() && d >= 0.0, "{c:?}");
            prop_assert_eq!(c.level_of_service, Some(level_of_service(d, &RulesConfig::default())));
        } else {
            prop_assert_eq!(c.level_of_service, None);
        }
        if c.label == Label::Unknown {
            prop_assert_eq!(c.confidence, 0.0);
        }
        prop_assert!(c.flags.windows(2).all(|w| w[0] < w[1]), "flags sorted and unique: {:?}", c.flags);
        prop_assert!(!c.reasons.is_empty());
    }

    #[test]
    fn speed_evidence_never_makes_the_label_better_than_the_los((current, history) in arb_case()) {
        let c = classify(&current, &history, &RulesConfig::default());
        if let Some(los) = c.level_of_service {
            prop_assert!(c.label.severity() >= los::label_of(los).severity(), "{c:?}");
            prop_assert_ne!(c.label, Label::Unknown);
        }
    }

    #[test]
    fn los_is_monotonic_in_density(a in 0.0..200.0f64, b in 0.0..200.0f64) {
        let config = RulesConfig::default();
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(level_of_service(lo, &config) <= level_of_service(hi, &config));
    }

    #[test]
    fn los_is_monotonic_in_density_for_any_configured_bounds(
        bounds in prop::array::uniform5(-10.0..100.0f64),
        a in -10.0..200.0f64,
        b in -10.0..200.0f64,
    ) {
        let config = RulesConfig {
            los_a_max_pc_mi_ln: bounds[0], los_b_max_pc_mi_ln: bounds[1], los_c_max_pc_mi_ln: bounds[2],
            los_d_max_pc_mi_ln: bounds[3], los_e_max_pc_mi_ln: bounds[4], ..RulesConfig::default()
        };
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(level_of_service(lo, &config) <= level_of_service(hi, &config));
    }

    #[test]
    fn classify_never_panics_under_an_arbitrary_configuration(
        (current, history) in arb_case(),
        length in prop_oneof![Just(0.0), Just(f64::NAN), -10.0..20.0f64],
        min_speed in prop_oneof![Just(0.0), Just(f64::NAN), -10.0..50.0f64],
        penalty in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -2.0..2.0f64],
        offset in prop_oneof![Just(i32::MIN), Just(i32::MAX), -1440..1440i32],
        hours in (0u8..=255, 0u8..=255),
        repeats in 0u32..10,
    ) {
        let config = RulesConfig {
            effective_vehicle_length_m: length,
            min_speed_for_density_kmh: min_speed,
            penalty_stuck: penalty,
            penalty_missing_speed: penalty,
            penalty_contradiction: penalty,
            utc_offset_minutes: offset,
            day_start_hour: hours.0,
            day_end_hour: hours.1,
            stuck_repeats: repeats,
            speed_drop_min_samples: repeats,
            ..RulesConfig::default()
        };
        let c = classify(&current, &history, &config);
        prop_assert!(c.confidence.is_finite() && (0.0..=1.0).contains(&c.confidence), "{c:?}");
        prop_assert!(c.density_veh_km_lane.is_none_or(|d| d.is_finite() && d >= 0.0), "{c:?}");
    }
}

mod site_metadata;
