#!/usr/bin/env bash
# Read-side speed on PostgreSQL holding SENSORS × DAYS × 1440 one-minute readings, classified
# (default 1000 × 7: 10.08 million; loaded by sql/read_side_load.sql in time order, as a live
# network writes them):
#   - wrk (CONNS connections, SECONDS each, a random sensor per request): one sensor's day in
#     5-minute buckets, a month in 1-hour buckets, the network state now and three days ago,
#     the sensor listing, the last hour's transitions — requests/s, p50 and p99;
#   - the live stream: STREAM_CLIENTS SSE clients (ingest/examples/stream_latency.rs) while
#     STREAM_RATE readings/s are posted and classified — commit-to-receipt p50/p99, and ingest's
#     largest resident memory meanwhile.
#   tools/bench/read_side.sh [SECONDS]
# KEEP_DB=1 reuses a database a previous run loaded (the load takes minutes); INGEST_BIN runs
# another build's `ingest` (e.g. an earlier revision's, for a before/after on one load).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
sensors=${SENSORS:-1000}
days=${DAYS:-7}
conns=${CONNS:-4}
clients=${STREAM_CLIENTS:-1000}
stream_rate=${STREAM_RATE:-20}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
port=${READ_BENCH_PORT:-18320}
database=bench_read
db="$pg/$database"
target=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet -p ingest --bin ingest --example stream_latency
source tools/bench/lib.sh
load_read_side "$db" "$sensors" "$days"

# Ulimit for a thousand stream clients on each side.
ulimit -n 65536 2>/dev/null || true
DATABASE_URL="$db" INGEST_BIND="127.0.0.1:$port" RUST_LOG=warn "${INGEST_BIN:-$target/release/ingest}" 2>/dev/null &
ingest=$!
trap 'kill $ingest 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port"
wait_healthy "$url"

enc() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ | sed 's/:/%3A/g'; }
now=$(enc now)
day=$(enc '-1 day')
month=$(enc '-30 days')
three_days=$(enc '-3 days')
hour=$(enc '-1 hour')

# run NAME PATH: wrk over PATH ({sensor}: a random sensor), one line of figures; a 2-second
# run first warms the pool's connections and their prepared statements.
run() {
    local out
    SENSORS=$sensors SENSOR_PATH="$2" wrk -t1 -c"$conns" -d2s -s tools/bench/lua/random_sensor.lua "$url" >/dev/null 2>&1
    out=$(SENSORS=$sensors SENSOR_PATH="$2" wrk -t"$(( conns < 2 ? conns : 2 ))" -c"$conns" -d"${secs}s" --latency \
        -s tools/bench/lua/random_sensor.lua "$url" 2>&1)
    if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; echo "$1: errors" >&2; return 1; fi
    printf '%-14s %8s req/s  p50 %8s  p99 %8s\n' "$1" \
        "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(echo "$out" | awk '$1 == "50%" {print $2}')" \
        "$(echo "$out" | awk '$1 == "99%" {print $2}')"
}

echo "--- reads: $conns connections, ${secs} s each"
run day_5m "/v1/sensors/{sensor}/series?bucket=5m&from=$day&to=$now"
run month_1h "/v1/sensors/{sensor}/series?bucket=1h&from=$month&to=$now"
run state_now "/v1/state"
run state_at "/v1/state?at=$three_days"
run sensors "/v1/sensors?limit=1000"
run transitions "/v1/transitions?from=$hour&limit=1000"

echo "--- stream: $clients clients, $stream_rate readings/s"
rss_max=0
(
    while kill -0 "$ingest" 2>/dev/null; do
        awk '/VmRSS/ {print $2}' "/proc/$ingest/status"
        sleep 0.5
    done
) >/tmp/read_side_rss.$$ &
sampler=$!
"$target/release/examples/stream_latency" "$url" "$clients" "$secs" "$stream_rate"
kill "$sampler" 2>/dev/null || true
rss_max=$(sort -n /tmp/read_side_rss.$$ | tail -1)
rm -f /tmp/read_side_rss.$$
echo "ingest max RSS with $clients stream clients: $((rss_max / 1024)) MiB"
