#!/usr/bin/env bash
# A backlog drained with nothing else running: N readings stored pending (1000 sensors × 4
# lanes, one reading a minute each, oldest first), then one `ingest` classifies them all. Prints
# readings/s and the CPU each side spends per 1000 readings (the ingest process, which runs the
# in-process classifier, and PostgreSQL's server processes), so that a change can say where its
# time went. Any CLASSIFY_* variable set in the environment is passed on.
#   tools/bench/drain.sh [N] [postgres|sqlite]
# PostgreSQL: the backlog is generated in SQL; needs PostgreSQL on 127.0.0.1:5432 (BENCH_PG)
# with its server processes visible in /proc. SQLite: a file in a temporary directory, the
# backlog posted through the batch API with classification paused (its CPU is the ingest
# process's own). INGEST_BIN runs another build's `ingest` instead of this tree's release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
backend=${2:-postgres}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
port=${DRAIN_BENCH_PORT:-18320}
url="http://127.0.0.1:$port"
bin=${INGEST_BIN:-"${CARGO_TARGET_DIR:-target}/release/ingest"}
source tools/bench/lib.sh
hz=$(getconf CLK_TCK)
cpu_of() {  # PID: CPU seconds (user + system) so far
    awk -v hz="$hz" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"
}
# "pid seconds" for every PostgreSQL server process: connections opened later count from zero.
pg_snapshot() {
    [ "$backend" = postgres ] || return 0
    local pid
    for pid in $(pgrep -u postgres postgres); do
        awk -v p="$pid" -v hz="$hz" '{ printf "%s %.3f\n", p, ($14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null || true
    done
}
ingest=""
start_ingest() {  # extra VAR=VALUE pairs
    env DATABASE_URL="$database_url" INGEST_BIND="127.0.0.1:$port" RUST_LOG=warn "$@" "$bin" 2>/dev/null &
    ingest=$!
    wait_healthy "$url"
}
trap 'kill $ingest 2>/dev/null || true' EXIT

[ -n "${INGEST_BIN:-}" ] || cargo build --release --quiet -p ingest
case $backend in
postgres)
    database_url="$pg/bench_drain"
    q() { psql "$database_url" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS bench_drain WITH (FORCE)" -c "CREATE DATABASE bench_drain" >/dev/null
    DATABASE_URL="$database_url" RUST_LOG=warn "$bin" migrate
    # The days the backlog spans get their partitions (where the schema has them).
    if partitioned "$database_url"; then
        q "SELECT create_event_partitions(ARRAY(SELECT timestamptz '2026-11-30 00:00:00+00' + d * interval '1 day'
                                                 FROM generate_series(0, $n / 5760000) AS d))" >/dev/null
    fi
    q "INSERT INTO events (sensor_id, observed_at, interval_s, lane, vehicle_count, avg_speed_kmh,
                           occupancy_pct, received_at)
       SELECT 'drain-' || (k / 4 % 1000), timestamptz '2026-11-30 00:00:00+00' + make_interval(mins => k / 4000),
              60, k % 4, 20 + (k * 7 % 50), 40 + (k * 13 % 70), 5 + (k * 11 % 30), now() - interval '1 hour'
         FROM generate_series(0, $n - 1) AS k"
    q "VACUUM ANALYZE events, queue"
    q "CHECKPOINT"
    ;;
sqlite)
    dir=$(mktemp -d)
    trap 'kill $ingest 2>/dev/null || true; rm -rf "$dir"' EXIT
    database_url="sqlite://$dir/drain.db"
    q() { sqlite3 -cmd ".timeout 10000" "$dir/drain.db" "$1"; }
    start_ingest CLASSIFY_WORKERS=0
    # The same readings, 10 000 per NDJSON batch.
    for ((from = 0; from < n; from += 10000)); do
        awk -v from="$from" -v to=$((from + 10000 < n ? from + 10000 : n)) 'BEGIN {
            for (k = from; k < to; k++) {
                m = int(k / 4000)
                printf "{\"sensor_id\":\"drain-%d\",\"observed_at\":\"2026-11-30T%02d:%02d:00Z\",\"interval_s\":60,\"lane\":%d,\"vehicle_count\":%d,\"avg_speed_kmh\":%d,\"occupancy_pct\":%d}\n",
                    int(k / 4) % 1000, int(m / 60) % 24, m % 60, k % 4, 20 + (k * 7 % 50), 40 + (k * 13 % 70), 5 + (k * 11 % 30)
            } }' | curl -fsS -o /dev/null -H 'content-type: application/x-ndjson' --data-binary @- "$url/v1/events/batch"
    done
    kill $ingest; wait $ingest 2>/dev/null || true
    ;;
*) echo "unknown backend $backend (postgres or sqlite)" >&2; exit 2 ;;
esac

start_ingest
t0=$(date +%s.%N)
ingest_cpu0=$(cpu_of $ingest)
before=$(pg_snapshot)
# The workers start before the service answers: what they did by now is not counted.
done0=$(q "SELECT count(*) FROM classifications")
while [ "$(q "SELECT count(*) FROM queue")" != 0 ]; do
    sleep 0.5
done
t1=$(date +%s.%N)
ingest_cpu1=$(cpu_of $ingest)
pg_cpu=$(awk 'NR == FNR { was[$1] = $2; next } { s += $2 - was[$1] } END { printf "%.3f", s }' \
    <(echo "$before") <(pg_snapshot))
classified=$(q "SELECT count(*) FROM classifications")
awk -v n=$((classified - done0)) -v a="$t0" -v b="$t1" -v i0="$ingest_cpu0" -v i1="$ingest_cpu1" \
    -v pg="$pg_cpu" -v backend="$backend" 'BEGIN {
        printf "drain_backend=%s drain_readings=%d drain_readings_per_s=%.0f\n", backend, n, n / (b - a)
        printf "drain_ingest_cpu_ms_per_1000=%.1f", (i1 - i0) * 1e6 / n
        if (backend == "postgres") printf " drain_pg_cpu_ms_per_1000=%.1f", pg * 1e6 / n
        printf "\n" }'
