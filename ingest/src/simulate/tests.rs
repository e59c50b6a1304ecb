//! The scenario as a whole, judged by the API's own reading rules and the classifier's own
//! rules: what the simulator claims to make is what they see.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Url;
use traffic_model::classification::{Classification, Flag, Label};
use traffic_model::reading::Reading;
use traffic_model::rules::{RulesConfig, Site, classify_at_site};
use traffic_model::sensor::SensorMetadata;

use super::faults::FaultKind;
use super::scenario::{Scenario, Window};
use super::{Options, SimulateError, parse_span};

/// An RFC 3339 time, for the model's tests.
pub(super) fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// 07:30 to 09:00 local on a Tuesday: the morning rush hour.
fn morning() -> Window {
    Window::new(utc("2026-03-10T06:30:00Z"), 90)
}

/// Every reading the scenario sends, as JSON text, minute by minute.
fn all_text(scenario: &Scenario) -> String {
    (1..=scenario.window.minutes)
        .map(|m| serde_json::to_string(&scenario.minute(m)).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_same_seed_gives_the_same_readings_byte_for_byte_and_another_seed_others() {
    let one = all_text(&Scenario::new(7, 8, morning()));
    assert_eq!(one, all_text(&Scenario::new(7, 8, morning())));
    assert_ne!(one, all_text(&Scenario::new(8, 8, morning())));
    // In whatever order the minutes are made.
    let scenario = Scenario::new(7, 8, morning());
    let mut backwards: Vec<String> = (1..=90)
        .rev()
        .map(|m| serde_json::to_string(&scenario.minute(m)).unwrap())
        .collect();
    backwards.reverse();
    assert_eq!(one, backwards.join("\n"));
}

#[test]
fn every_reading_is_valid_by_the_api_s_rules_except_the_refused_share() {
    let scenario = Scenario::new(3, 30, Window::new(utc("2026-03-10T05:00:00Z"), 240));
    let plan = scenario.plan();
    let now = scenario.window.end() + TimeDelta::minutes(1);
    let (mut readings, mut refused, mut resent) = (0_u64, 0_u64, 0_u64);
    for minute in 1..=scenario.window.minutes {
        for reading in scenario.minute(minute) {
            readings += 1;
            resent += u64::from(reading.resent);
            let parsed = Reading::from_json(serde_json::to_value(&reading).unwrap(), now);
            if reading.refused {
                refused += 1;
                assert!(
                    parsed.is_err(),
                    "accepted though meant to be refused: {reading:?}"
                );
            } else {
                let parsed = parsed.unwrap_or_else(|e| panic!("{e}: {reading:?}"));
                assert_eq!(parsed.interval_s(), 60);
            }
        }
    }
    assert_eq!(
        (readings, refused, resent),
        (plan.readings, plan.refused, plan.resent)
    );
    // A small share, but some.
    let share = refused as f64 / readings as f64;
    assert!(refused > 0 && share < 0.01, "{refused} of {readings}");
    assert!(
        resent > 0 && (resent as f64 / readings as f64) < 0.01,
        "{resent}"
    );
}

/// The lane's readings as the service would store them (refused ones missing), each with
/// the classification the rules give it with the lane's earlier readings as history.
fn classified_lane(
    scenario: &Scenario,
    sensor: usize,
    lane: u8,
) -> Vec<(u32, Reading, Classification)> {
    let metadata = SensorMetadata::from_json(scenario.network.metadata(sensor).unwrap()).unwrap();
    let site = Site::from(&metadata);
    let config = RulesConfig::default();
    let now = scenario.window.end() + TimeDelta::minutes(1);
    let mut history: Vec<Reading> = Vec::new();
    let mut out = Vec::new();
    for minute in 1..=scenario.window.minutes {
        let sent = scenario.reading(sensor, lane, minute).unwrap();
        if sent.refused {
            continue;
        }
        let reading = Reading::from_json(serde_json::to_value(&sent).unwrap(), now).unwrap();
        let classification = classify_at_site(&reading, &history, &site, &config);
        history.push(reading.clone());
        out.push((minute, reading, classification));
    }
    out
}

#[test]
fn an_incident_congests_its_sensor_then_its_upstream_neighbours_until_after_it_clears() {
    let scenario = Scenario::new(23, 8, morning());
    let window = scenario.window;
    let incident = scenario
        .incidents
        .iter()
        .find(|i| i.queue.len() >= 2)
        .expect("seed 23 makes a queue over two sensors or more");
    assert_eq!(incident.queue[0].sensor, incident.site);
    assert!(
        incident.queue[1].from > incident.queue[0].from,
        "upstream later"
    );
    let dissolved = incident.dissolved.unwrap();
    let (mut queued, mut before, mut recovered) = (0, 0, 0);
    for c in &incident.queue {
        let lanes = scenario.network.sensors[c.sensor].lanes;
        // The readings whose interval's middle lies in the queue's time at the sensor.
        let (first, last) = (
            window.first_middle_from(c.from),
            window.first_middle_from(c.to) - 1,
        );
        let onset = window.first_middle_from(incident.onset);
        let after = window.first_middle_from(dissolved) + 3;
        for lane in 0..lanes {
            for (minute, reading, classification) in classified_lane(&scenario, c.sensor, lane) {
                if scenario
                    .faults
                    .iter()
                    .any(|f| f.covers(c.sensor, lane, minute))
                {
                    continue;
                }
                let speed = reading.avg_speed_kmh();
                let occupancy = reading.occupancy_pct().unwrap();
                if (first..=last).contains(&minute) {
                    assert!(speed.is_none_or(|s| s < 35.0), "{minute}: {reading:?}");
                    assert!(occupancy > 25.0, "{minute}: {reading:?}");
                    assert_eq!(
                        classification.label,
                        Label::Congested,
                        "{minute}: {classification:?}"
                    );
                    queued += 1;
                } else if minute < onset || (minute >= after && minute <= window.minutes) {
                    assert!(speed.is_some_and(|s| s > 60.0), "{minute}: {reading:?}");
                    assert!(occupancy < 20.0, "{minute}: {reading:?}");
                    assert_ne!(
                        classification.label,
                        Label::Congested,
                        "{minute}: {classification:?}"
                    );
                    if minute < onset {
                        before += 1;
                    } else {
                        recovered += 1;
                    }
                }
            }
        }
    }
    assert!(
        queued > 60 && before > 20 && recovered > 20,
        "{queued} queued, {before} before, {recovered} after"
    );
}

#[test]
fn faulty_loops_are_flagged_as_their_fault_and_working_ones_are_not() {
    // 08:00 to 10:00 local: daytime, when a silent loop is a dead one.
    let scenario = Scenario::new(1, 20, Window::new(utc("2026-03-10T07:00:00Z"), 120));
    let kinds: Vec<FaultKind> = scenario.faults.iter().map(|f| f.kind).collect();
    for kind in [
        FaultKind::Stuck,
        FaultKind::CardOff,
        FaultKind::OccupancyWithoutVehicles,
        FaultKind::Speeding,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    let hardware = [
        Flag::Stuck,
        Flag::CardOff,
        Flag::ImplausibleSpeed,
        Flag::FlowAboveCapacity,
    ];
    for (s, sensor) in scenario.network.sensors.iter().enumerate() {
        for lane in 0..sensor.lanes {
            let fault = scenario
                .faults
                .iter()
                .find(|f| f.sensor == s && f.lane == lane);
            for (minute, _, classification) in classified_lane(&scenario, s, lane) {
                let flags = &classification.flags;
                let Some(fault) = fault.filter(|f| (f.from..f.to).contains(&minute)) else {
                    let wrong: Vec<&Flag> = flags.iter().filter(|f| hardware.contains(f)).collect();
                    assert!(
                        wrong.is_empty(),
                        "{} lane {lane} minute {minute}: {wrong:?}",
                        sensor.id
                    );
                    continue;
                };
                // Stuck needs six equal readings, card_off an hour of silence; the others show
                // at once.
                let shown_from = match fault.kind {
                    FaultKind::Stuck => fault.from + 5,
                    FaultKind::CardOff => fault.from + 59,
                    _ => fault.from,
                };
                let flagged = flags.contains(&fault.kind.flag());
                assert_eq!(
                    flagged,
                    minute >= shown_from,
                    "{fault:?} minute {minute}: {flags:?}"
                );
            }
        }
    }
}

fn options(start: Option<DateTime<Utc>>, span: &str, speedup: f64) -> Options {
    let mut options = Options::new(Url::parse("http://127.0.0.1:1").unwrap());
    options.start = start;
    options.span = parse_span(span).unwrap();
    options.speedup = speedup;
    options
}

#[test]
fn spans_are_whole_minutes_up_to_a_month() {
    for (raw, minutes) in [
        ("2h", 120),
        ("30m", 30),
        ("1d", 1440),
        ("1h30m", 90),
        ("90s30s", 2),
        ("31d", 44_640),
    ] {
        assert_eq!(parse_span(raw).unwrap().num_minutes(), minutes, "{raw}");
    }
    for raw in ["", "0m", "90s", "2", "h", "2x", "32d", "-1h"] {
        assert!(parse_span(raw).is_err(), "{raw}");
    }
}

#[test]
fn the_default_window_ends_at_the_last_whole_minute_and_the_future_is_refused() {
    let now = utc("2026-03-10T08:17:42.5Z");
    let window = options(None, "2h", 720.0).window(now).unwrap();
    assert_eq!(window.end(), utc("2026-03-10T08:17:00Z"));
    assert_eq!(window.minutes, 120);
    // Played in real time from now, a window starting now stays behind the clock …
    assert!(options(Some(now), "2h", 1.0).window(now).is_ok());
    // … compressed, it would run ahead of it.
    let ahead = options(Some(now), "2h", 720.0).window(now);
    assert!(
        matches!(ahead, Err(SimulateError::Future { .. })),
        "{ahead:?}"
    );
}

#[test]
fn the_summary_counts_detected_sensor_incidents_and_prints_every_table() {
    use super::report::{Classes, IncidentCheck, QueueWait, SensorCheck, Summary};
    let at = utc("2026-03-10T07:00:00Z");
    let sensor = |id: &str, first: Option<i64>| SensorCheck {
        sensor_id: id.to_owned(),
        from: at,
        to: at + TimeDelta::minutes(20),
        first_congested: first.map(|s| at + TimeDelta::seconds(s)),
    };
    let summary = Summary {
        url: "http://127.0.0.1:8080/".into(),
        seed: 1,
        window: Window::new(at, 60),
        roads: vec!["A9 northbound".into()],
        sensor_ids: vec!["A9-N-km010.0".into(), "A9-N-km010.7".into()],
        registered: 2,
        plan: Default::default(),
        readings: Default::default(),
        played_in: std::time::Duration::from_secs(2),
        queue: QueueWait {
            drained: true,
            waited: std::time::Duration::from_millis(300),
        },
        classes: Classes::default(),
        faults: Vec::new(),
        incidents: vec![IncidentCheck {
            road: "A9 northbound".into(),
            site: "A9-N-km010.7".into(),
            onset: at,
            cleared: at + TimeDelta::minutes(15),
            capacity_left: 0.4,
            sensors: vec![
                sensor("A9-N-km010.7", Some(75)),
                sensor("A9-N-km010.0", None),
            ],
        }],
        read_errors: 0,
    };
    assert_eq!(summary.agreement(), (1, 2));
    let text = summary.to_string();
    for line in [
        "Readings",
        "Labels",
        "Flags",
        "Faulty loops",
        "Incidents",
        "1:15",
        "not labelled",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(
        text.ends_with(
            "Agreement: the classifier labelled 1 of 2 sensor-incidents congested (50.0 %)\n"
        ),
        "{text}"
    );
}

#[test]
fn the_command_line_gives_the_options_and_refuses_what_cannot_be_played() {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    let simulate = |args: &[&str]| {
        let argv = ["ingest", "simulate"].iter().chain(args).copied();
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Some(Command::Simulate(args)) => Options::from(args),
            other => panic!("not simulate: {other:?}"),
        })
    };
    let defaults = simulate(&[]).unwrap();
    assert_eq!(defaults.url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(
        (
            defaults.sensors,
            defaults.span,
            defaults.speedup,
            defaults.seed,
            defaults.batch,
            defaults.concurrency
        ),
        (20, TimeDelta::hours(2), 720.0, 1, 100, 4)
    );
    assert!(defaults.start.is_none() && !defaults.progress);

    let given = simulate(&[
        "--url",
        "http://ingest:9000/base",
        "--sensors",
        "8",
        "--span",
        "1h30m",
        "--speedup",
        "1e4",
        "--seed",
        "23",
        "--batch",
        "1",
        "--start",
        "2026-03-10T07:30:00+01:00",
        "--api-key",
        "k-1",
        "--concurrency",
        "2",
    ])
    .unwrap();
    assert_eq!(given.url.as_str(), "http://ingest:9000/base");
    assert_eq!(
        (given.sensors, given.span.num_minutes(), given.speedup),
        (8, 90, 1e4)
    );
    assert_eq!((given.seed, given.batch, given.concurrency), (23, 1, 2));
    assert_eq!(given.start, Some(utc("2026-03-10T06:30:00Z")));
    let key = given
        .api_key
        .as_ref()
        .map(|k| service_kit::auth::ExposeSecret::expose_secret(k).to_owned());
    assert_eq!(key.as_deref(), Some("k-1"));

    for bad in [
        ["--span", "90s"],
        ["--span", "40d"],
        ["--batch", "0"],
        ["--batch", "10001"],
        ["--speedup", "0"],
        ["--sensors", "0"],
        ["--concurrency", "0"],
        ["--start", "yesterday"],
        ["--url", "not a url"],
    ] {
        assert!(simulate(&bad).is_err(), "{bad:?}");
    }
}
