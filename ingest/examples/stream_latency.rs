//! Live-stream latency under load (tools/bench/read_side.sh runs it): `CLIENTS` Server-Sent
//! Events clients of `GET /v1/stream` stay connected while readings are posted at `RATE` per
//! second; for every `classified` event each client receives, the time from the event's
//! `classified_at` (set when its classification is recorded, just before the commit) to its
//! receipt. Prints the count and the p50/p99/max in milliseconds.
//!
//!   cargo run --release -p ingest --example stream_latency -- URL CLIENTS SECONDS RATE

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let clients: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(20);
    let rate: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(20);

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let connected = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url) = (http.clone(), url.clone());
        let (latencies, connected) = (Arc::clone(&latencies), Arc::clone(&connected));
        tasks.push(tokio::spawn(async move {
            let mut response = http
                .get(format!("{url}/v1/stream"))
                .header("accept", "text/event-stream")
                .send()
                .await
                .expect("stream");
            connected.add_permits(1);
            let mut buffer = String::new();
            let mut mine = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let received = Utc::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    if frame.contains("event: classified\n")
                        && let Some(at) = classified_at(&frame)
                    {
                        mine.push((received - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                    }
                }
                if mine.len() >= 64 {
                    latencies.lock().unwrap().append(&mut mine);
                }
            }
            latencies.lock().unwrap().append(&mut mine);
        }));
    }
    let _all = connected.acquire_many(clients as u32).await.unwrap();
    eprintln!("{clients} clients connected; posting {rate} readings/s for {seconds} s");

    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let mut posted = 0_u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let reading = json!({
            "sensor_id": format!("stream-bench-{}", posted % 50), "lane": 1,
            "observed_at": Utc::now().to_rfc3339(), "vehicle_count": 12,
            "avg_speed_kmh": 80.0, "occupancy_pct": 9.0,
        });
        let sent = http
            .post(format!("{url}/v1/events"))
            .json(&reading)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            posted += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for task in &tasks {
        task.abort();
    }
    let mut all = std::mem::take(&mut *latencies.lock().unwrap());
    all.sort_by(f64::total_cmp);
    let at = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "clients={clients} posted={posted} received={} per_client={:.1} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        all.len(),
        all.len() as f64 / clients as f64,
        at(0.5),
        at(0.99),
        all.last().copied().unwrap_or(f64::NAN)
    );
}

/// The `classified_at` of a `classified` frame's event.
fn classified_at(frame: &str) -> Option<DateTime<Utc>> {
    let key = "\"classified_at\":\"";
    let start = frame.find(key)? + key.len();
    let end = start + frame[start..].find('"')?;
    DateTime::parse_from_rfc3339(&frame[start..end])
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
