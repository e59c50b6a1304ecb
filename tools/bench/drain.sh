#!/usr/bin/env bash
# A backlog drained with nothing else running: N readings stored pending (1000 sensors × 4
# lanes, one reading a minute each, oldest first), then one `ingest` classifies them all. Prints
# readings/s and the CPU each side spends per 1000 readings (the ingest process, which runs the
# in-process classifier, and PostgreSQL's server processes), so that a change can say where its
# time went. Any CLASSIFY_* or DATABASE_* variable set in the environment is passed on.
#   tools/bench/drain.sh [N]
# Needs PostgreSQL on 127.0.0.1:5432 (BENCH_PG) with its server processes visible in /proc.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
port=${DRAIN_BENCH_PORT:-18320}
database=bench_drain
db="$pg/$database"
bin="${CARGO_TARGET_DIR:-target}/release/ingest"
source tools/bench/lib.sh
q() { psql "$db" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
hz=$(getconf CLK_TCK)
cpu_of() {  # PID: CPU seconds (user + system) so far
    awk -v hz="$hz" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"
}
# "pid seconds" for every PostgreSQL server process: connections opened later count from zero.
pg_snapshot() {
    local pid
    for pid in $(pgrep -u postgres postgres); do
        awk -v p="$pid" -v hz="$hz" '{ printf "%s %.3f\n", p, ($14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || true
    done
}

cargo build --release --quiet -p ingest
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" >/dev/null
DATABASE_URL="$db" RUST_LOG=warn "$bin" migrate
q "INSERT INTO events (sensor_id, observed_at, interval_s, lane, vehicle_count, avg_speed_kmh,
                       occupancy_pct, next_attempt_at)
   SELECT 'drain-' || (k / 4 % 1000), timestamptz '2026-11-30 00:00:00+00' + make_interval(mins => k / 4000),
          60, k % 4, 20 + (k * 7 % 50), 40 + (k * 13 % 70), 5 + (k * 11 % 30), now() - interval '1 hour'
     FROM generate_series(0, $n - 1) AS k"
q "VACUUM ANALYZE events"
q "CHECKPOINT"

DATABASE_URL="$db" INGEST_BIND="127.0.0.1:$port" RUST_LOG=warn "$bin" 2>/dev/null &
ingest=$!
trap 'kill $ingest 2>/dev/null || true' EXIT
t0=$(date +%s.%N)
ingest_cpu0=$(cpu_of $ingest)
before=$(pg_snapshot)
while [ "$(q "SELECT count(*) FROM events WHERE status IN ('pending', 'processing')")" != 0 ]; do
    sleep 0.5
done
t1=$(date +%s.%N)
ingest_cpu1=$(cpu_of $ingest)
pg_cpu=$(awk 'NR == FNR { was[$1] = $2; next } { s += $2 - was[$1] } END { printf "%.3f", s }' \
    <(echo "$before") <(pg_snapshot))
classified=$(q "SELECT count(*) FROM events WHERE status = 'classified'")
awk -v n="$classified" -v a="$t0" -v b="$t1" -v i0="$ingest_cpu0" -v i1="$ingest_cpu1" \
    -v pg="$pg_cpu" 'BEGIN {
        printf "drain_readings=%d drain_readings_per_s=%.0f\n", n, n / (b - a)
        printf "drain_ingest_cpu_ms_per_1000=%.1f drain_pg_cpu_ms_per_1000=%.1f\n",
            (i1 - i0) * 1e6 / n, pg * 1e6 / n }'
