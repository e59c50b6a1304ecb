//! DATA_RETENTION_DAYS over REST: readings older than what is kept are refused, and once
//! retention has removed a day, its series comes from the rollups (PostgreSQL, saying so) or
//! is refused naming the window's start.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::support::{Backend, TestApp, error_fields, lane_reading, problem, send};

/// The UTC midnight starting today.
fn today() -> DateTime<Utc> {
    Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
}

pub async fn readings_older_than_the_retention_are_refused_and_expired_days_are_said_so(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.classify.retention.readings_days = Some(2);
        settings.classify.retention.rollups_days = Some(30);
    })
    .await;
    let too_old = today() - TimeDelta::days(2) - TimeDelta::minutes(1);
    let body = problem(
        app.post_json("/v1/events", &lane_reading("ret", too_old, false))
            .await,
        422,
        "invalid-reading",
    )
    .await;
    assert_eq!(error_fields(&body), ["observed_at"]);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("DATA_RETENTION_DAYS is 2")),
        "{body}"
    );

    // A batch keeps what is kept and names what is not.
    // Readings of a minute each, ending 06:01 to 06:56: all start within 06:00–07:00.
    let yesterday = today() - TimeDelta::days(1) + TimeDelta::hours(6);
    let mut readings = vec![lane_reading("ret", too_old, false)];
    readings.extend(
        (0..12).map(|k| lane_reading("ret", yesterday + TimeDelta::minutes(5 * k + 1), false)),
    );
    let batch: serde_json::Value = crate::support::json(
        app.post_json("/v1/events/batch", &json!(readings)).await,
        200,
    )
    .await;
    assert_eq!(batch["accepted"], 12, "{batch}");
    assert_eq!(batch["rejected"][0]["index"], 0, "{batch}");
    assert_eq!(batch["rejected"][0]["errors"][0]["field"], "observed_at");
    app.classify_all_with_rules().await;

    // A day later, yesterday's readings expire (its rollups are built first).
    let store = &app.state.store;
    while store
        .build_rollups(today(), TimeDelta::hours(24))
        .await
        .unwrap()
        .is_some()
    {}
    let mut later = app.state.retention.clone();
    later.readings_days = Some(0);
    let done = ingest::retention::upkeep(store, &later, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (done.days_dropped, done.readings_deleted),
        if backend == Backend::Postgres {
            (1, 0)
        } else {
            (0, 12)
        },
        "{done:?}"
    );

    let window = |bucket: &str| {
        format!(
            "/v1/sensors/ret/series?lane=1&bucket={bucket}&from={}&to={}",
            yesterday.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            (yesterday + TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    };
    let minutes = problem(send(app.get(&window("1m"))).await, 400, "invalid-query").await;
    assert_eq!(error_fields(&minutes), ["from"]);
    if backend == Backend::Postgres {
        let hourly = app.get_ok(&window("1h")).await;
        assert_eq!(hourly["buckets"][0]["readings"], 12, "{hourly}");
        assert_eq!(
            hourly["retention"]["readings_from"],
            today().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "{hourly}"
        );
    } else {
        let hourly = problem(send(app.get(&window("1h"))).await, 400, "invalid-query").await;
        assert_eq!(error_fields(&hourly), ["from"]);
    }
}
