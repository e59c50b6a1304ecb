//! Every threshold the rules use, with its default and the public source it comes from.
//!
//! Operators override any subset: [`RulesConfig`] deserializes with `#[serde(default)]`, so
//! `{"effective_vehicle_length_m": 7.0}` keeps every other default. Unknown field names are
//! rejected so a typo cannot silently leave a default in place.

use serde::{Deserialize, Serialize};

/// Kilometres per international mile (exact by definition, 1959 international yard and pound).
pub const KM_PER_MILE: f64 = 1.609_344;

// --- Level of Service: HCM 6th ed. (2016) / 7th ed. (2022), Exhibit 12-15, "LOS criteria for
// basic freeway and multilane highway segments": maximum density per band in pc/mi/ln.
/// HCM Exhibit 12-15: LOS A up to 11 pc/mi/ln.
pub const HCM_LOS_A_MAX_PC_MI_LN: f64 = 11.0;
/// HCM Exhibit 12-15: LOS B up to 18 pc/mi/ln.
pub const HCM_LOS_B_MAX_PC_MI_LN: f64 = 18.0;
/// HCM Exhibit 12-15: LOS C up to 26 pc/mi/ln.
pub const HCM_LOS_C_MAX_PC_MI_LN: f64 = 26.0;
/// HCM Exhibit 12-15: LOS D up to 35 pc/mi/ln.
pub const HCM_LOS_D_MAX_PC_MI_LN: f64 = 35.0;
/// HCM Exhibit 12-15: LOS E up to 45 pc/mi/ln; above is LOS F (breakdown).
pub const HCM_LOS_E_MAX_PC_MI_LN: f64 = 45.0;

// --- Density.
/// Below this mean speed flow/speed is not used at all: q/v diverges as v → 0 and a loop's mean
/// speed of a crawling queue is mostly noise. Engineering choice (no standard).
pub const MIN_SPEED_FOR_DENSITY_KMH: f64 = 5.0;
/// Below this mean speed, when occupancy is also reported, density comes from occupancy: point
/// detectors report time-mean speed, which exceeds space-mean speed most in stop-and-go traffic
/// (Wardrop 1952), so q/v underestimates density exactly where it matters. Set at the congestion
/// speed PeMS uses (35 mph, as [`DELAY_SPEED_KMH`]); in our SUMO runs q/v read 0.5–0.6 × the true
/// density below 60 km/h while occupancy stayed within 5 % (docs/classification.md).
pub const PREFER_OCCUPANCY_BELOW_SPEED_KMH: f64 = DELAY_SPEED_KMH;
/// Effective vehicle length ("g-factor" length) for density = occupancy / length: ≈ 4.7 m mean
/// vehicle + 1.8 m (6 ft) loop. Same order as the constant g-factors PeMS used before its per-loop
/// estimation (Jia et al. 2001, "The PeMS algorithms for accurate, real-time estimates of
/// g-factors and speeds from single-loop detectors"). Calibrate per site where possible.
pub const EFFECTIVE_VEHICLE_LENGTH_M: f64 = 6.5;

// --- Speed evidence.
/// Below 25 % of the reference speed: stationary or queueing (DATEX II `abnormalTrafficType`
/// stationaryTraffic / queueingTraffic; speed-ratio band edges as in TomTom/HERE-style flow feeds).
pub const STATIONARY_SPEED_RATIO: f64 = 0.25;
/// Below 75 % of the reference speed: slow traffic (DATEX II slowTraffic band).
pub const SLOW_SPEED_RATIO: f64 = 0.75;
/// Below 90 % of the reference speed: heavy but moving; at or above: free-flow speed.
pub const FREE_FLOW_SPEED_RATIO: f64 = 0.90;
/// With no reference speed: below 35 mph counts as delay / congestion (Caltrans PeMS performance
/// measures and Caltrans Mobility Performance Report congestion threshold). 35 × 1.609344.
pub const DELAY_SPEED_KMH: f64 = 56.327_04;
/// With no reference speed: below 15 mph ≈ 24 km/h, i.e. 25 % (the stationary band) of the 60 mph
/// reference speed PeMS computes delay against. 15 × 1.609344.
pub const STATIONARY_SPEED_KMH: f64 = 24.140_16;

// --- Single-reading data quality.
/// Occupancy at or above which a loop is likely "hanging on" (PeMS high-occupancy diagnostic;
/// Chen et al. 2003 count daily samples above 35 %, we flag the single sample at 70 %).
pub const HIGH_OCCUPANCY_PCT: f64 = 70.0;
/// Mean speed above limit × 1.5 + 20 km/h is implausible. Engineering choice (no standard).
pub const IMPLAUSIBLE_SPEED_LIMIT_FACTOR: f64 = 1.5;
/// See [`IMPLAUSIBLE_SPEED_LIMIT_FACTOR`].
pub const IMPLAUSIBLE_SPEED_MARGIN_KMH: f64 = 20.0;
/// With no speed limit: an interval mean above 200 km/h is implausible on any public road.
pub const IMPLAUSIBLE_SPEED_KMH: f64 = 200.0;
/// HCM 6th ed. Ch. 12 base capacity of a basic freeway lane is 2,400 pc/h/ln (FFS ≥ 70 mph);
/// 3,000 veh/h/ln (+25 %) leaves room for short-interval peaks before calling a count implausible.
pub const FLOW_CAPACITY_VEH_H_LANE: f64 = 3000.0;

// --- History-based detector health.
/// The same non-zero reading this many consecutive times (current included) is "stuck"
/// (PeMS flags long runs of constant values; Chen et al. 2003 use a low-entropy test).
pub const STUCK_REPEATS: u32 = 6;
/// Zero occupancy for this long (daytime, consecutive) is "card off" (PeMS card-off diagnostic;
/// Chen et al. 2003 count zero-occupancy samples between 05:00 and 22:00).
pub const CARD_OFF_MIN_DURATION_S: u32 = 3600;
/// Local hour at which "daytime" (traffic expected) starts, inclusive.
pub const DAY_START_HOUR: u8 = 6;
/// Local hour at which "daytime" ends, exclusive.
pub const DAY_END_HOUR: u8 = 21;
/// Offset of the sensor's local time from UTC, in minutes (one value for the whole network).
pub const UTC_OFFSET_MINUTES: i32 = 0;
/// Current speed below this share of the recent median is a sudden drop (possible incident).
/// Engineering choice in the spirit of speed-drop incident detection (e.g. California algorithms).
pub const SPEED_DROP_RATIO: f64 = 0.5;
/// How far back the median speed looks.
pub const SPEED_DROP_WINDOW_S: u32 = 1800;
/// How many earlier readings with a speed the median needs.
pub const SPEED_DROP_MIN_SAMPLES: u32 = 5;
/// A reading more than interval × (1 + 0.5) after the previous one means intervals are missing.
pub const GAP_TOLERANCE: f64 = 0.5;

// --- Confidence (our model: 1 minus the sum of the drops below, clamped to [0, 1]).
/// No speed: density from occupancy via an assumed vehicle length.
pub const PENALTY_MISSING_SPEED: f64 = 0.2;
/// No occupancy: nothing to cross-check the speed-based density against.
pub const PENALTY_MISSING_OCCUPANCY: f64 = 0.1;
/// No density at all: the label rests on speed alone.
pub const PENALTY_NO_DENSITY: f64 = 0.2;
/// Zero vehicles read as an empty road: a dead detector reads the same.
pub const PENALTY_EMPTY_ROAD: f64 = 0.2;
/// Whole-carriageway reading with no lane count: flow per lane assumes one lane.
pub const PENALTY_UNKNOWN_LANES: f64 = 0.1;
/// Speed and density disagree (free speed with LOS F, or stationary speed with LOS A–B).
pub const PENALTY_CONTRADICTION: f64 = 0.3;
/// Fewer than this many vehicles make a mean speed of little weight.
pub const SMALL_SAMPLE_COUNT: u32 = 3;
/// See [`SMALL_SAMPLE_COUNT`].
pub const PENALTY_SMALL_SAMPLE: f64 = 0.15;
/// Per-flag drops, weighted by how strongly the flag says the reading itself is wrong.
pub const PENALTY_ZERO_FLOW_WITH_OCCUPANCY: f64 = 0.3;
pub const PENALTY_COUNT_WITH_ZERO_OCCUPANCY: f64 = 0.3;
pub const PENALTY_HIGH_OCCUPANCY: f64 = 0.2;
pub const PENALTY_IMPLAUSIBLE_SPEED: f64 = 0.4;
pub const PENALTY_FLOW_ABOVE_CAPACITY: f64 = 0.3;
pub const PENALTY_STUCK: f64 = 0.5;
pub const PENALTY_CARD_OFF: f64 = 0.5;
/// A speed drop is news about traffic, not about the detector: no drop by default.
pub const PENALTY_SUDDEN_SPEED_DROP: f64 = 0.0;
pub const PENALTY_GAP: f64 = 0.05;

/// Every threshold of the classification rules. Defaults are the constants of this module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// km/h; at or below, flow/speed is never used for density.
    pub min_speed_for_density_kmh: f64,
    /// km/h; below, occupancy (when reported) is preferred for density.
    pub prefer_occupancy_below_speed_kmh: f64,
    /// m; vehicle length plus detection-zone length.
    pub effective_vehicle_length_m: f64,
    /// Whole-carriageway occupancy is the mean over lanes (true, PeMS station practice) rather than
    /// a carriageway total to be divided by `lanes` (false).
    pub carriageway_occupancy_is_lane_mean: bool,

    /// pc/mi/ln, upper bound of LOS A (inclusive).
    pub los_a_max_pc_mi_ln: f64,
    /// pc/mi/ln, upper bound of LOS B (inclusive).
    pub los_b_max_pc_mi_ln: f64,
    /// pc/mi/ln, upper bound of LOS C (inclusive).
    pub los_c_max_pc_mi_ln: f64,
    /// pc/mi/ln, upper bound of LOS D (inclusive).
    pub los_d_max_pc_mi_ln: f64,
    /// pc/mi/ln, upper bound of LOS E (inclusive); above is F.
    pub los_e_max_pc_mi_ln: f64,

    /// km/h; reference speed when a reading has no `speed_limit_kmh`. `None`: use the absolute
    /// bounds `delay_speed_kmh` and `stationary_speed_kmh` instead of ratios.
    pub free_flow_speed_kmh: Option<f64>,
    /// Share of the reference speed below which traffic is at least congested.
    pub stationary_speed_ratio: f64,
    /// Share below which traffic is at least heavy.
    pub slow_speed_ratio: f64,
    /// Share below which traffic is at least moderate.
    pub free_flow_speed_ratio: f64,
    /// km/h; with no reference speed, below this traffic is at least heavy.
    pub delay_speed_kmh: f64,
    /// km/h; with no reference speed, below this traffic is at least congested.
    pub stationary_speed_kmh: f64,

    /// %; at or above, `high_occupancy`.
    pub high_occupancy_pct: f64,
    /// With a speed limit, `implausible_speed` above limit × factor + margin.
    pub implausible_speed_limit_factor: f64,
    /// km/h; see `implausible_speed_limit_factor`.
    pub implausible_speed_margin_kmh: f64,
    /// km/h; with no speed limit, `implausible_speed` above this.
    pub implausible_speed_kmh: f64,
    /// veh/h/ln; above, `flow_above_capacity`.
    pub flow_capacity_veh_h_lane: f64,

    /// Identical non-zero readings in a row (current included) for `stuck`.
    pub stuck_repeats: u32,
    /// s of consecutive daytime zero-occupancy readings for `card_off`.
    pub card_off_min_duration_s: u32,
    /// Local hour (0–23) daytime starts, inclusive.
    pub day_start_hour: u8,
    /// Local hour (0–24) daytime ends, exclusive; a window may wrap midnight.
    pub day_end_hour: u8,
    /// Local time = UTC + this many minutes.
    pub utc_offset_minutes: i32,
    /// `sudden_speed_drop` when speed < ratio × recent median.
    pub speed_drop_ratio: f64,
    /// s; how far back the recent median looks.
    pub speed_drop_window_s: u32,
    /// Earlier readings with a speed the median needs.
    pub speed_drop_min_samples: u32,
    /// `gap` when the time since the previous reading exceeds interval × (1 + tolerance).
    pub gap_tolerance: f64,

    pub penalty_missing_speed: f64,
    pub penalty_missing_occupancy: f64,
    pub penalty_no_density: f64,
    pub penalty_empty_road: f64,
    pub penalty_unknown_lanes: f64,
    pub penalty_contradiction: f64,
    /// Vehicle counts from 1 to this minus one get `penalty_small_sample`.
    pub small_sample_count: u32,
    pub penalty_small_sample: f64,
    pub penalty_zero_flow_with_occupancy: f64,
    pub penalty_count_with_zero_occupancy: f64,
    pub penalty_high_occupancy: f64,
    pub penalty_implausible_speed: f64,
    pub penalty_flow_above_capacity: f64,
    pub penalty_stuck: f64,
    pub penalty_card_off: f64,
    pub penalty_sudden_speed_drop: f64,
    pub penalty_gap: f64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            min_speed_for_density_kmh: MIN_SPEED_FOR_DENSITY_KMH,
            prefer_occupancy_below_speed_kmh: PREFER_OCCUPANCY_BELOW_SPEED_KMH,
            effective_vehicle_length_m: EFFECTIVE_VEHICLE_LENGTH_M,
            carriageway_occupancy_is_lane_mean: true,
            los_a_max_pc_mi_ln: HCM_LOS_A_MAX_PC_MI_LN,
            los_b_max_pc_mi_ln: HCM_LOS_B_MAX_PC_MI_LN,
            los_c_max_pc_mi_ln: HCM_LOS_C_MAX_PC_MI_LN,
            los_d_max_pc_mi_ln: HCM_LOS_D_MAX_PC_MI_LN,
            los_e_max_pc_mi_ln: HCM_LOS_E_MAX_PC_MI_LN,
            free_flow_speed_kmh: None,
            stationary_speed_ratio: STATIONARY_SPEED_RATIO,
            slow_speed_ratio: SLOW_SPEED_RATIO,
            free_flow_speed_ratio: FREE_FLOW_SPEED_RATIO,
            delay_speed_kmh: DELAY_SPEED_KMH,
            stationary_speed_kmh: STATIONARY_SPEED_KMH,
            high_occupancy_pct: HIGH_OCCUPANCY_PCT,
            implausible_speed_limit_factor: IMPLAUSIBLE_SPEED_LIMIT_FACTOR,
            implausible_speed_margin_kmh: IMPLAUSIBLE_SPEED_MARGIN_KMH,
            implausible_speed_kmh: IMPLAUSIBLE_SPEED_KMH,
            flow_capacity_veh_h_lane: FLOW_CAPACITY_VEH_H_LANE,
            stuck_repeats: STUCK_REPEATS,
            card_off_min_duration_s: CARD_OFF_MIN_DURATION_S,
            day_start_hour: DAY_START_HOUR,
            day_end_hour: DAY_END_HOUR,
            utc_offset_minutes: UTC_OFFSET_MINUTES,
            speed_drop_ratio: SPEED_DROP_RATIO,
            speed_drop_window_s: SPEED_DROP_WINDOW_S,
            speed_drop_min_samples: SPEED_DROP_MIN_SAMPLES,
            gap_tolerance: GAP_TOLERANCE,
            penalty_missing_speed: PENALTY_MISSING_SPEED,
            penalty_missing_occupancy: PENALTY_MISSING_OCCUPANCY,
            penalty_no_density: PENALTY_NO_DENSITY,
            penalty_empty_road: PENALTY_EMPTY_ROAD,
            penalty_unknown_lanes: PENALTY_UNKNOWN_LANES,
            penalty_contradiction: PENALTY_CONTRADICTION,
            small_sample_count: SMALL_SAMPLE_COUNT,
            penalty_small_sample: PENALTY_SMALL_SAMPLE,
            penalty_zero_flow_with_occupancy: PENALTY_ZERO_FLOW_WITH_OCCUPANCY,
            penalty_count_with_zero_occupancy: PENALTY_COUNT_WITH_ZERO_OCCUPANCY,
            penalty_high_occupancy: PENALTY_HIGH_OCCUPANCY,
            penalty_implausible_speed: PENALTY_IMPLAUSIBLE_SPEED,
            penalty_flow_above_capacity: PENALTY_FLOW_ABOVE_CAPACITY,
            penalty_stuck: PENALTY_STUCK,
            penalty_card_off: PENALTY_CARD_OFF,
            penalty_sudden_speed_drop: PENALTY_SUDDEN_SPEED_DROP,
            penalty_gap: PENALTY_GAP,
        }
    }
}

impl RulesConfig {
    /// Upper density bounds of LOS A–E in veh/km/ln (veh ≈ pc: no heavy-vehicle adjustment).
    /// Each bound is at least the one before, so LOS stays monotonic in density even when an
    /// override lists the bands out of order.
    pub fn los_upper_bounds_veh_km_lane(&self) -> [f64; 5] {
        let mut bounds = self.los_upper_bounds_pc_mi_ln().map(|pc| pc / KM_PER_MILE);
        let mut floor = f64::NEG_INFINITY;
        for bound in &mut bounds {
            // `max` ignores NaN: a NaN bound collapses onto the previous one.
            floor = floor.max(*bound);
            *bound = floor;
        }
        bounds
    }

    /// Upper density bounds of LOS A–E as configured, in pc/mi/ln.
    pub fn los_upper_bounds_pc_mi_ln(&self) -> [f64; 5] {
        [
            self.los_a_max_pc_mi_ln,
            self.los_b_max_pc_mi_ln,
            self.los_c_max_pc_mi_ln,
            self.los_d_max_pc_mi_ln,
            self.los_e_max_pc_mi_ln,
        ]
    }

    /// Every setting that makes no physical sense, in words; empty when the configuration is sound.
    /// The rules never panic on an unsound configuration, but their results may be meaningless.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut positive = |name: &str, value: f64| {
            if !(value.is_finite() && value > 0.0) {
                problems.push(format!("{name} must be a positive number, got {value}"));
            }
        };
        positive(
            "effective_vehicle_length_m",
            self.effective_vehicle_length_m,
        );
        positive("min_speed_for_density_kmh", self.min_speed_for_density_kmh);
        positive("flow_capacity_veh_h_lane", self.flow_capacity_veh_h_lane);
        if let Some(ffs) = self.free_flow_speed_kmh {
            positive("free_flow_speed_kmh", ffs);
        }
        let bounds = self.los_upper_bounds_pc_mi_ln();
        let increasing = bounds.windows(2).all(|w| matches!(w, [lo, hi] if lo < hi));
        if !increasing || bounds.iter().any(|b| !b.is_finite()) {
            problems
                .push("los_a..e_max_pc_mi_ln must be finite and strictly increasing".to_owned());
        }
        let ordered = |lo: f64, hi: f64| lo <= hi;
        if !(ordered(self.stationary_speed_ratio, self.slow_speed_ratio)
            && ordered(self.slow_speed_ratio, self.free_flow_speed_ratio))
        {
            problems.push(
                "speed ratios must satisfy stationary_speed_ratio ≤ slow_speed_ratio ≤ free_flow_speed_ratio".to_owned(),
            );
        }
        if !ordered(self.stationary_speed_kmh, self.delay_speed_kmh) {
            problems.push("stationary_speed_kmh must not exceed delay_speed_kmh".to_owned());
        }
        if self.day_start_hour > 23 || self.day_end_hour > 24 {
            problems.push("day_start_hour must be 0–23 and day_end_hour 0–24".to_owned());
        }
        problems
    }
}

/// `value` when it is a finite positive number, else `fallback` (guards every division).
pub(crate) fn positive_or(value: f64, fallback: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        fallback
    }
}

/// A configured confidence drop as used: within [0, 1], NaN as 0.
pub(crate) fn penalty(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}
