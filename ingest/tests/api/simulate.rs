//! `ingest simulate` as a library call against the running service and its in-process
//! classifier: every reading sent is accounted for, the database holds what the API said it
//! stored, the sensors carry their metadata, and the incident's queue is labelled congested.

use chrono::TimeDelta;
use ingest::simulate::{Options, parse_span, parse_start, run};

use crate::support::{Backend, TestApp, with_classifier};

pub async fn a_simulated_morning_is_stored_classified_and_its_incident_detected(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_classifier).await;
    let mut options = Options::new(app.url("").parse().expect("the app's URL"));
    options.sensors = 8;
    options.span = parse_span("90m").unwrap();
    // As fast as the service takes it.
    options.speedup = 1e6;
    options.batch = 50;
    // Seed 23 puts a crash in the rush hour of a Tuesday morning (07:30–09:00 local).
    options.seed = 23;
    options.start = Some(parse_start("2026-03-10T06:30:00Z").unwrap());

    let summary = run(options).await.expect("the simulation runs");
    let readings = summary.readings;
    assert_eq!(readings.failed_requests(), 0, "{summary}");
    assert_eq!(readings.sent, summary.plan.readings, "{summary}");
    assert_eq!(
        readings.sent,
        readings.stored + readings.duplicates + readings.rejected,
        "{summary}"
    );
    // On an empty database the API's answers are exactly what the simulator meant.
    assert!(
        summary.plan.refused > 0 && summary.plan.resent > 0,
        "{summary}"
    );
    assert_eq!(readings.rejected, summary.plan.refused, "{summary}");
    assert_eq!(readings.duplicates, summary.plan.resent, "{summary}");
    assert_eq!(app.row_count().await, readings.stored);

    assert_eq!(summary.registered, 8);
    assert_eq!(summary.sensor_ids.len(), 8);
    for id in &summary.sensor_ids {
        let sensor = app.get_ok(&format!("/v1/sensors/{id}")).await;
        let location = &sensor["metadata"]["location"];
        assert!(
            location["lat"].is_f64() && location["lon"].is_f64(),
            "{sensor}"
        );
        assert_eq!(sensor["metadata"]["time_zone"], "Europe/Berlin", "{sensor}");
    }

    assert!(summary.queue.drained, "{summary}");
    assert_eq!(summary.classes.readings, readings.stored, "{summary}");
    assert_eq!(summary.classes.classified, readings.stored, "{summary}");
    assert!(
        summary
            .classes
            .minutes_by_label
            .contains_key(&traffic_model::classification::Label::Congested)
    );

    let incident = summary
        .incidents
        .iter()
        .find(|i| i.sensors.len() >= 2)
        .unwrap_or_else(|| panic!("no queue over two sensors:\n{summary}"));
    let site = &incident.sensors[0];
    assert_eq!(site.sensor_id, incident.site);
    let delay = site
        .delay()
        .unwrap_or_else(|| panic!("the site was not labelled congested:\n{summary}"));
    assert!(
        delay >= TimeDelta::zero() && delay <= TimeDelta::minutes(2),
        "{summary}"
    );
    let (detected, all) = summary.agreement();
    assert_eq!(detected, all, "{summary}");
}
