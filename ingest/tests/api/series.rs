//! `GET /v1/sensors/{sensor_id}/series`: buckets of a sensor's readings, the same on both
//! backends, local days across a daylight-saving change.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, problem, send};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// 30 hours of 5-minute readings on two lanes of sensor `ser` (in Berlin), ending every 5
/// minutes from 2026-10-24T20:05Z — across the night Berlin leaves summer time — with traffic
/// that builds up to a jam and clears, every reading classified by the rules.
async fn berlin_day(app: &TestApp) {
    app.put_sensor(
        "ser",
        json!({"time_zone": "Europe/Berlin", "speed_limit_kmh": 100}),
    )
    .await;
    let base = at("2026-10-24T20:00:00Z");
    let mut readings = Vec::new();
    for k in 1..=360_i64 {
        for lane in [1, 2] {
            let phase = (k * 7 + lane * 3) % 60;
            let (count, speed, occupancy) = match phase {
                0..=29 => (20 + phase, 100.0 - phase as f64, 5.0 + phase as f64 / 3.0),
                30..=44 => (160, 25.0 + (phase - 30) as f64, 30.0 + (phase - 30) as f64),
                _ => (0, 0.0, 0.0),
            };
            let mut reading = json!({
                "sensor_id": "ser", "lane": lane, "interval_s": 300,
                "observed_at": (base + TimeDelta::minutes(5 * k)).to_rfc3339(),
                "vehicle_count": count, "occupancy_pct": occupancy,
            });
            if count > 0 {
                reading["avg_speed_kmh"] = json!(speed);
            }
            readings.push(reading);
        }
    }
    app.create_many(&readings).await;
    app.classify_all_with_rules().await;
}

/// Readings on a third lane that stay unclassified (the PostgreSQL series reads them one by
/// one beside its rollups).
async fn unclassified(app: &TestApp) {
    let readings: Vec<Value> = (0..6)
        .map(|k| {
            json!({
                "sensor_id": "ser", "lane": 3, "interval_s": 60, "vehicle_count": 10 + k,
                "avg_speed_kmh": 70.5, "occupancy_pct": 6.25,
                "observed_at": (at("2026-10-25T00:31:00Z") + TimeDelta::minutes(37 * k)).to_rfc3339(),
            })
        })
        .collect();
    app.create_many(&readings).await;
}

const QUERIES: [&str; 7] = [
    "bucket=1d&from=2026-10-24T22%3A00%3A00Z&to=2026-10-26T23%3A00%3A00Z",
    "bucket=1h&from=2026-10-24T20%3A00%3A00Z&to=2026-10-26T02%3A00%3A00Z",
    "bucket=5m&from=2026-10-25T00%3A00%3A00Z&to=2026-10-25T02%3A00%3A00Z&lane=2",
    "bucket=15m&from=2026-10-25T06%3A00%3A00Z&to=2026-10-25T10%3A00%3A00Z",
    "bucket=1m&from=2026-10-25T06%3A00%3A00Z&to=2026-10-25T07%3A00%3A00Z&lane=1",
    // Windows that start and end inside a bucket.
    "bucket=5m&from=2026-10-25T00%3A02%3A30Z&to=2026-10-25T03%3A07%3A00Z",
    "bucket=1h&from=2026-10-25T00%3A20%3A00Z&to=2026-10-25T12%3A40%3A00Z",
];

async fn series_of(app: &TestApp) -> Vec<Value> {
    let mut answers = Vec::new();
    for query in QUERIES {
        answers.push(app.get_ok(&format!("/v1/sensors/ser/series?{query}")).await);
    }
    answers
}

pub async fn local_days_span_23_to_25_hours_and_buckets_sum_their_readings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    berlin_day(&app).await;
    let [days, hours, fives, quarters, minutes, ..] = &series_of(&app).await[..] else {
        unreachable!()
    };
    assert_eq!(days["time_zone"], "Europe/Berlin");
    assert_eq!(days["bucket"], "1d");
    let buckets = days["buckets"].as_array().unwrap();
    let span = |b: &Value| at(b["end"].as_str().unwrap()) - at(b["start"].as_str().unwrap());
    assert_eq!(buckets.len(), 2);
    assert_eq!(span(&buckets[0]), TimeDelta::hours(25), "{days}");
    assert_eq!(span(&buckets[1]), TimeDelta::hours(24));
    assert_eq!(buckets[0]["readings"], 600, "25 h × 12 × 2 lanes");
    assert_eq!(
        buckets[1]["readings"], 72,
        "01:55Z is the last start: 3 h × 12 × 2"
    );
    assert_eq!(buckets[0]["classified"], 600);
    let minutes_by_label: f64 = buckets[0]["minutes_by_label"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m.as_f64().unwrap())
        .sum();
    assert_eq!(minutes_by_label, 2.0 * 25.0 * 60.0);
    assert_eq!(buckets[0]["worst_label"], "congested", "{}", buckets[0]);
    assert_eq!(buckets[0]["worst_los"], "F");

    let hour_buckets = hours["buckets"].as_array().unwrap();
    assert_eq!(hour_buckets.len(), 30);
    assert!(hour_buckets.iter().all(|b| b["readings"] == 24), "{hours}");
    let vehicles: u64 = hour_buckets
        .iter()
        .map(|b| b["vehicles"].as_u64().unwrap())
        .sum();
    let day_vehicles =
        buckets[0]["vehicles"].as_u64().unwrap() + buckets[1]["vehicles"].as_u64().unwrap();
    // The hourly series starts two hours before the first local day.
    let early: u64 = hour_buckets[..2]
        .iter()
        .map(|b| b["vehicles"].as_u64().unwrap())
        .sum();
    assert_eq!(vehicles, day_vehicles + early);

    assert_eq!(fives["lane"], 2);
    let five = fives["buckets"].as_array().unwrap();
    assert_eq!(five.len(), 24);
    assert!(five.iter().all(|b| b["readings"] == 1));
    assert_eq!(quarters["buckets"].as_array().unwrap().len(), 16);
    // One-minute buckets of five-minute readings: one in five holds a reading.
    let filled = minutes["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["readings"] == 1)
        .count();
    assert_eq!(filled, 12);
    let empty = &minutes["buckets"][1];
    assert_eq!(empty["readings"], 0);
    assert!(
        empty["mean_speed_kmh"].is_null() && empty["label"].is_null(),
        "{empty}"
    );
}

/// The same readings on SQLite (which sums every reading) and on PostgreSQL (which sums its
/// rollups and the readings not classified yet) give the same series; means agree to the
/// rounding of floating-point sums taken in another order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_give_the_same_series() {
    if !Backend::Postgres.available() {
        return;
    }
    let sqlite = TestApp::spawn(Backend::Sqlite).await;
    // PostgreSQL builds the closed spans' rollups by itself, in the background.
    let postgres = TestApp::spawn_with(Backend::Postgres, |s| {
        s.classify.rollup_build = Duration::from_millis(100);
    })
    .await;
    for app in [&sqlite, &postgres] {
        berlin_day(app).await;
        unclassified(app).await;
    }
    let store = &postgres.state.store;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store
        .rollups_built_until()
        .await
        .unwrap()
        .is_none_or(|built| built < at("2026-10-26T03:00:00Z"))
    {
        assert!(tokio::time::Instant::now() < deadline, "no rollups built");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (a, b) = (series_of(&sqlite).await, series_of(&postgres).await);
    for (query, (a, b)) in QUERIES.iter().zip(a.iter().zip(&b)) {
        assert_same(a, b, query);
    }
    let pending = &b[5]["buckets"][6];
    assert_eq!(
        (&pending["readings"], &pending["classified"]),
        (&json!(3), &json!(2)),
        "00:30Z holds both lanes' readings and lane 3's unclassified one: {pending}"
    );
}

/// `a` and `b` are equal, numbers to a relative 1e-12.
fn assert_same(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                "{at}: {x} ≠ {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_same(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (key, x) in x {
                assert_same(x, &y[key], &format!("{at}.{key}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

pub async fn bad_series_requests_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    problem(
        send(app.get("/v1/sensors/nobody/series")).await,
        404,
        "not-found",
    )
    .await;
    app.create(&traffic_store::test_util::reading_json("known", Some(1), 0))
        .await;
    // A known sensor with nothing in the window: every bucket is there, empty; the day
    // before now starts and ends inside an hour, so 25 hours hold it.
    let quiet = app.get_ok("/v1/sensors/known/series?bucket=1h").await;
    let buckets = quiet["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 25);
    assert!(buckets.iter().all(|b| b["readings"] == 0));
    app.assert_invalid_query(
        "/v1/sensors/known/series?bucket=2m&lane=x&from=then",
        &["bucket", "from", "lane"],
    )
    .await;
    app.assert_invalid_query("/v1/sensors/known/series?lane=33", &["lane"])
        .await;
    app.assert_invalid_query(
        "/v1/sensors/known/series?bucket=1m&from=2026-01-01T00%3A00%3A00Z&to=2026-01-08T00%3A01%3A00Z",
        &["bucket"],
    )
    .await;
    app.assert_invalid_query(
        "/v1/sensors/known/series?from=2026-01-02T00%3A00%3A00Z&to=2026-01-01T00%3A00%3A00Z",
        &["to"],
    )
    .await;
}
