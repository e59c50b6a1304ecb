#!/usr/bin/env bash
# The MCP query tools over stdio on PostgreSQL holding SENSORS × DAYS × 1440 one-minute readings
# (default 1000 × 7: 10.08 million, the read-side benchmark's database): one rmcp client calls
# traffic_state (the whole network), find_congestion (a day of every sensor) and list_sensors
# CALLS times each, one call at a time, and prints p50/p99/max per tool
# (mcp-classifier/examples/query_latency.rs).
#   tools/bench/mcp_queries.sh [CALLS]
# KEEP_DB=1 reuses a database a previous run of this or read_side.sh loaded.
set -euo pipefail
cd "$(dirname "$0")/../.."
calls=${1:-200}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
db="$pg/bench_read"
target=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet -p ingest --bin ingest -p mcp-classifier --bin mcp-classifier --example query_latency
source tools/bench/lib.sh
load_read_side "$db" "${SENSORS:-1000}" "${DAYS:-7}"
"$target/release/examples/query_latency" "$(realpath "$target/release/mcp-classifier")" "$db" "$calls"
