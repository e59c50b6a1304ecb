#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono_tz::{Asia, Europe};

use super::*;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The buckets of a window summed from its readings alone.
fn buckets(
    observations: &[Observation],
    size: BucketSize,
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_buckets: usize,
) -> Option<Vec<Bucket>> {
    Plan::new(size, zone, from, to, max_buckets).map(|plan| plan.sum(observations, &[]))
}

/// A one-minute reading ending `minutes` after 08:00Z on 2026-11-29.
fn minute_reading(minutes: i64, count: u32, speed: f64, label: Option<Label>) -> Observation {
    Observation {
        lane: Some(1),
        observed_at: at("2026-11-29T08:00:00Z") + TimeDelta::minutes(minutes),
        interval_s: 60,
        vehicle_count: count,
        avg_speed_kmh: Some(speed),
        occupancy_pct: Some(f64::from(count)),
        flow_veh_h_lane: f64::from(count) * 60.0,
        classified: label.map(|label| Classified {
            label,
            level_of_service: Some(match label {
                Label::Congested => LevelOfService::F,
                Label::Heavy => LevelOfService::E,
                _ => LevelOfService::B,
            }),
            flags: if label == Label::Congested {
                vec![Flag::SuddenSpeedDrop]
            } else {
                vec![]
            },
        }),
    }
}

#[test]
fn five_minute_buckets_sum_the_readings_whose_interval_starts_in_them() {
    // Readings ending 08:01 … 08:10 start 08:00 … 08:09: five in each bucket.
    let mut readings: Vec<Observation> = (1..=5)
        .map(|m| minute_reading(m, 10, 100.0, Some(Label::FreeFlow)))
        .collect();
    readings.push(minute_reading(6, 30, 20.0, Some(Label::Congested)));
    readings.push(minute_reading(7, 30, 20.0, Some(Label::Congested)));
    readings.push(minute_reading(8, 10, 60.0, Some(Label::Heavy)));
    readings.push(minute_reading(9, 10, 60.0, Some(Label::Heavy)));
    readings.push(minute_reading(10, 10, 60.0, None));
    let buckets = buckets(
        &readings,
        BucketSize::FiveMinutes,
        Tz::UTC,
        at("2026-11-29T08:00:00Z"),
        at("2026-11-29T08:15:00Z"),
        100,
    )
    .unwrap();
    assert_eq!(buckets.len(), 3);
    let [first, second, empty] = &buckets[..] else {
        unreachable!()
    };
    assert_eq!(
        (first.start, first.end),
        (at("2026-11-29T08:00:00Z"), at("2026-11-29T08:05:00Z"))
    );
    assert_eq!(
        (first.readings, first.classified, first.vehicles),
        (5, 5, 50)
    );
    assert_eq!(first.flow_veh_h_lane, Some(600.0));
    assert_eq!(first.label, Some(Label::FreeFlow));

    // 30, 30, 10, 10 (+10 unclassified) vehicles: flow mean 1080 veh/h/ln; speed weighted by
    // vehicles (30×20 + 30×20 + 10×60 × 3) / 90 = 33.33; occupancy mean 18 %.
    assert_eq!(
        (second.readings, second.classified, second.vehicles),
        (5, 4, 90)
    );
    assert_eq!(second.flow_veh_h_lane, Some(1080.0));
    assert!((second.mean_speed_kmh.unwrap() - 3000.0 / 90.0).abs() < 1e-9);
    assert_eq!(second.mean_occupancy_pct, Some(18.0));
    // Two minutes congested, two heavy: the tie goes to the worse.
    assert_eq!(second.label, Some(Label::Congested));
    assert_eq!(second.worst_label, Some(Label::Congested));
    assert_eq!(second.worst_los, Some(LevelOfService::F));
    assert_eq!(
        second.minutes_by_label,
        BTreeMap::from([(Label::Heavy, 2.0), (Label::Congested, 2.0)])
    );
    assert_eq!(second.flags, BTreeMap::from([(Flag::SuddenSpeedDrop, 2)]));

    assert_eq!((empty.readings, empty.vehicles), (0, 0));
    assert_eq!((empty.flow_veh_h_lane, empty.label), (None, None));
}

#[test]
fn a_reading_that_started_before_the_window_is_not_in_it() {
    let readings = [
        minute_reading(0, 10, 90.0, None),
        minute_reading(1, 10, 90.0, None),
    ];
    let buckets = buckets(
        &readings,
        BucketSize::Hour,
        Tz::UTC,
        at("2026-11-29T08:00:00Z"),
        at("2026-11-29T09:00:00Z"),
        10,
    )
    .unwrap();
    assert_eq!(
        buckets[0].readings, 1,
        "the reading ending at 08:00 started at 07:59"
    );
}

fn day_lengths(zone: Tz, from: &str, to: &str) -> Vec<(DateTime<Utc>, i64)> {
    buckets(&[], BucketSize::Day, zone, at(from), at(to), 10)
        .unwrap()
        .into_iter()
        .map(|b| (b.start, (b.end - b.start).num_hours()))
        .collect()
}

#[test]
fn local_days_have_23_or_25_hours_across_a_daylight_saving_change() {
    // Berlin leaves summer time on 2026-10-25 and enters it on 2026-03-29.
    assert_eq!(
        day_lengths(
            Europe::Berlin,
            "2026-10-24T22:00:00Z",
            "2026-10-26T23:00:00Z"
        ),
        [
            (at("2026-10-24T22:00:00Z"), 25),
            (at("2026-10-25T23:00:00Z"), 24)
        ]
    );
    assert_eq!(
        day_lengths(
            Europe::Berlin,
            "2026-03-29T12:00:00Z",
            "2026-03-29T13:00:00Z"
        ),
        [(at("2026-03-28T23:00:00Z"), 23)]
    );
    // Without a zone, days are UTC days.
    assert_eq!(
        day_lengths(Tz::UTC, "2026-03-29T12:00:00Z", "2026-03-29T13:00:00Z"),
        [(at("2026-03-29T00:00:00Z"), 24)]
    );
}

#[test]
fn hours_follow_the_local_clock_at_the_offset_in_force() {
    // India is UTC+05:30: its hours start at :30 UTC.
    let hours = buckets(
        &[],
        BucketSize::Hour,
        Asia::Kolkata,
        at("2026-11-29T08:00:00Z"),
        at("2026-11-29T09:00:00Z"),
        10,
    )
    .unwrap();
    let starts: Vec<_> = hours.iter().map(|b| b.start).collect();
    assert_eq!(
        starts,
        [at("2026-11-29T07:30:00Z"), at("2026-11-29T08:30:00Z")]
    );
    // Berlin's night of 2026-10-25 has two hours that read 02:00–03:00 locally: two buckets.
    let night = buckets(
        &[],
        BucketSize::Hour,
        Europe::Berlin,
        at("2026-10-24T23:00:00Z"),
        at("2026-10-25T02:00:00Z"),
        10,
    )
    .unwrap();
    assert_eq!(night.len(), 3);
    assert!(night.iter().all(|b| b.end - b.start == TimeDelta::hours(1)));
}

#[test]
fn too_many_buckets_is_none() {
    let from = at("2026-11-29T00:00:00Z");
    assert!(
        buckets(
            &[],
            BucketSize::Minute,
            Tz::UTC,
            from,
            from + TimeDelta::minutes(11),
            10
        )
        .is_none()
    );
    assert_eq!(
        buckets(
            &[],
            BucketSize::Minute,
            Tz::UTC,
            from,
            from + TimeDelta::minutes(10),
            10
        )
        .unwrap()
        .len(),
        10
    );
}

#[test]
fn stored_spans_are_used_only_where_they_never_straddle_a_bucket() {
    let span = |size, zone, from, to| {
        Plan::new(size, zone, at(from), at(to), 10_000)
            .unwrap()
            .rollup_span()
    };
    let (from, to) = ("2026-10-24T22:00:00Z", "2026-10-26T23:00:00Z");
    assert_eq!(
        span(BucketSize::Day, Europe::Berlin, from, to),
        Some(RollupSpan::Hour)
    );
    assert_eq!(
        span(BucketSize::Hour, Tz::UTC, from, to),
        Some(RollupSpan::Hour)
    );
    // India's days and hours start at :30 UTC.
    assert_eq!(
        span(BucketSize::Day, Asia::Kolkata, from, to),
        Some(RollupSpan::FiveMinutes)
    );
    assert_eq!(
        span(BucketSize::FifteenMinutes, Asia::Kolkata, from, to),
        Some(RollupSpan::FiveMinutes)
    );
    assert_eq!(span(BucketSize::Minute, Tz::UTC, from, to), None);
    // Chatham's offset, +13:45, is whole 5 minutes; Liberia's 1971 offset, −0:44:30, is not.
    assert_eq!(
        span(BucketSize::Hour, chrono_tz::Pacific::Chatham, from, to),
        Some(RollupSpan::FiveMinutes)
    );
    assert_eq!(
        span(
            BucketSize::Hour,
            chrono_tz::Africa::Monrovia,
            "1971-01-01T00:00:00Z",
            "1971-01-02T00:00:00Z"
        ),
        None
    );

    let plan = Plan::new(
        BucketSize::Hour,
        Tz::UTC,
        at("2026-10-25T00:20:00Z"),
        at("2026-10-25T03:10:00Z"),
        10,
    )
    .unwrap();
    assert_eq!(
        plan.covered(RollupSpan::Hour),
        Some((at("2026-10-25T01:00:00Z"), at("2026-10-25T03:00:00Z")))
    );
    assert_eq!(
        plan.covered(RollupSpan::FiveMinutes),
        Some((at("2026-10-25T00:20:00Z"), at("2026-10-25T03:10:00Z")))
    );
    let short = Plan::new(
        BucketSize::Hour,
        Tz::UTC,
        at("2026-10-25T00:20:00Z"),
        at("2026-10-25T00:50:00Z"),
        10,
    )
    .unwrap();
    assert_eq!(short.covered(RollupSpan::Hour), None);
}
