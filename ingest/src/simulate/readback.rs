//! What the service made of the readings, read back over the API once its classification
//! queue has drained: each sensor's series over the window (labels and flags, one request per
//! sensor), each faulty lane's series, and each queued sensor's readings labelled congested.

use std::time::Duration;

use chrono::TimeDelta;
use futures::{StreamExt, stream};
use tokio::time::Instant;
use traffic_model::series::Bucket;

use super::client::{Client, ClientError};
use super::report::{Classes, FaultCheck, IncidentCheck, QueueWait, SensorCheck};
use super::scenario::{INTERVAL_S, Scenario, Window};

/// How often the queue is looked at while waiting for it to drain.
const POLL: Duration = Duration::from_millis(250);

/// Waits at most `within` until no reading observed in the window is pending or being
/// classified.
pub async fn drain(
    client: &Client,
    window: Window,
    within: Duration,
) -> Result<QueueWait, ClientError> {
    let started = Instant::now();
    // `to` is exclusive: the last reading is observed at the window's very end.
    let to = window.end() + TimeDelta::seconds(1);
    loop {
        let queued = client.queued(window.start, to).await?;
        let waited = started.elapsed();
        if !queued || waited >= within {
            return Ok(QueueWait {
                drained: !queued,
                waited,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn add(classes: &mut Classes, buckets: &[Bucket]) {
    for bucket in buckets {
        classes.readings += u64::from(bucket.readings);
        classes.classified += u64::from(bucket.classified);
        for (label, minutes) in &bucket.minutes_by_label {
            *classes.minutes_by_label.entry(*label).or_default() += minutes;
        }
        for (flag, n) in &bucket.flags {
            *classes.flags.entry(*flag).or_default() += u64::from(*n);
        }
    }
}

/// What the reads found, and how many of them failed.
pub struct Readback {
    pub classes: Classes,
    pub faults: Vec<FaultCheck>,
    pub incidents: Vec<IncidentCheck>,
    pub errors: u64,
}

/// Reads the results of `scenario`, `concurrency` requests at a time.
pub async fn read(client: &Client, scenario: &Scenario, concurrency: usize) -> Readback {
    let window = scenario.window;
    let network = &scenario.network;
    let (from, to) = (window.start, window.end());
    let mut errors = 0;
    let mut failed = |e: &ClientError| {
        errors += 1;
        let error = service_kit::telemetry::error_chain(e);
        tracing::warn!(%error, "a read of the results failed");
    };

    // Labels and flags: each sensor's series over the window.
    let series: Vec<Result<Vec<Bucket>, ClientError>> = stream::iter(&network.sensors)
        .map(|sensor| client.series(&sensor.id, None, from, to))
        .buffered(concurrency)
        .collect()
        .await;
    let mut classes = Classes::default();
    for answer in &series {
        match answer {
            Ok(buckets) => add(&mut classes, buckets),
            Err(e) => failed(e),
        }
    }

    // Faults: the flag of the kind on the faulty lane.
    let flagged: Vec<Result<Vec<Bucket>, ClientError>> = stream::iter(&scenario.faults)
        .map(|fault| {
            let id = network
                .sensors
                .get(fault.sensor)
                .map_or("", |s| s.id.as_str());
            client.series(id, Some(fault.lane), from, to)
        })
        .buffered(concurrency)
        .collect()
        .await;
    let mut faults = Vec::with_capacity(scenario.faults.len());
    for (fault, answer) in scenario.faults.iter().zip(&flagged) {
        let flag = fault.kind.flag();
        let count = match answer {
            Ok(buckets) => Some(
                buckets
                    .iter()
                    .map(|b| u64::from(b.flags.get(&flag).copied().unwrap_or(0)))
                    .sum(),
            ),
            Err(e) => {
                failed(e);
                None
            }
        };
        let last = fault.to.min(window.minutes + 1).saturating_sub(1);
        faults.push(FaultCheck {
            sensor_id: network
                .sensors
                .get(fault.sensor)
                .map(|s| s.id.clone())
                .unwrap_or_default(),
            lane: fault.lane,
            kind: fault.kind,
            first: window.at(fault.from),
            last: window.at(last),
            readings: u64::from(last.saturating_sub(fault.from) + 1),
            flagged: count,
        });
    }

    // Incidents: each queued sensor's earliest reading labelled congested while it was queued
    // (its interval may end up to one interval after the queue left).
    let spans: Vec<(usize, &super::incidents::Congestion)> = scenario
        .incidents
        .iter()
        .enumerate()
        .flat_map(|(i, incident)| incident.queue.iter().map(move |c| (i, c)))
        .collect();
    let firsts: Vec<Result<Option<chrono::DateTime<chrono::Utc>>, ClientError>> =
        stream::iter(&spans)
            .map(|(_, c)| {
                let id = network.sensors.get(c.sensor).map_or("", |s| s.id.as_str());
                let until = (c.to + TimeDelta::seconds(i64::from(INTERVAL_S)))
                    .min(to + TimeDelta::seconds(1));
                client.first_congested(id, c.from, until)
            })
            .buffered(concurrency)
            .collect()
            .await;
    let mut incidents: Vec<IncidentCheck> = scenario
        .incidents
        .iter()
        .map(|incident| IncidentCheck {
            road: network
                .roads
                .get(incident.road)
                .map(|r| r.name())
                .unwrap_or_default(),
            site: network
                .sensors
                .get(incident.site)
                .map(|s| s.id.clone())
                .unwrap_or_default(),
            onset: incident.onset,
            cleared: incident.cleared,
            capacity_left: incident.capacity_left,
            sensors: Vec::new(),
        })
        .collect();
    for ((i, c), answer) in spans.iter().zip(firsts) {
        let first_congested = answer.unwrap_or_else(|e| {
            failed(&e);
            None
        });
        if let Some(check) = incidents.get_mut(*i) {
            check.sensors.push(SensorCheck {
                sensor_id: network
                    .sensors
                    .get(c.sensor)
                    .map(|s| s.id.clone())
                    .unwrap_or_default(),
                from: c.from,
                to: c.to,
                first_congested,
            });
        }
    }
    Readback {
        classes,
        faults,
        incidents,
        errors,
    }
}
