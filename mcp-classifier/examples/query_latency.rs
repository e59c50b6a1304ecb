//! Latency of the query tools over stdio, as an agent's host sees it (tools/bench/mcp_queries.sh
//! runs it): one rmcp client starts `mcp-classifier stdio` against a database and calls each
//! tool `CALLS` times in a row, then prints the p50/p99/max in milliseconds per tool.
//!
//!   cargo run --release -p mcp-classifier --example query_latency -- BINARY DATABASE_URL CALLS

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let binary = args.get(1).expect("BINARY");
    let database = args.get(2).expect("DATABASE_URL");
    let calls: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(200);

    let mut command = tokio::process::Command::new(binary);
    command
        .args(["stdio", "--database-url", database])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    let transport = TokioChildProcess::new(command).expect("spawn mcp-classifier stdio");
    let client = ().serve(transport).await.expect("initialize");

    let now = Utc::now();
    let day = json!({
        "from": (now - TimeDelta::days(1)).to_rfc3339(),
        "to": now.to_rfc3339(),
    });
    let workloads: [(&'static str, Value); 3] = [
        ("traffic_state", json!({})),
        ("find_congestion", day),
        ("list_sensors", json!({"limit": 100})),
    ];
    for (tool, arguments) in workloads {
        let mut latencies = Vec::with_capacity(calls);
        let mut answer = String::new();
        for _ in 0..calls {
            let params = CallToolRequestParams::new(tool)
                .with_arguments(arguments.as_object().cloned().unwrap_or_default());
            let started = Instant::now();
            let result = client.call_tool(params).await.expect("tools/call");
            latencies.push(started.elapsed());
            assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
            if answer.is_empty() {
                answer = result
                    .content
                    .first()
                    .and_then(|c| c.as_text().map(|t| t.text.clone()))
                    .unwrap_or_default();
            }
        }
        latencies.sort();
        let at = |q: f64| {
            let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len());
            ms(latencies[index - 1])
        };
        println!(
            "tool={tool} calls={calls} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
            at(0.50),
            at(0.99),
            ms(*latencies.last().unwrap())
        );
        println!("  {}", answer.chars().take(200).collect::<String>());
    }
    client.cancel().await.expect("cancel");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
