#!/usr/bin/env bash
# Ingest benchmark on PostgreSQL: single POSTs at 32 connections and 500-reading batches at 4,
# with the classification workers paused, beside what PostgreSQL alone does for the same rows in
# the same run (pgbench INSERT … RETURNING at 32 clients; COPY and 500-row INSERTs), and beside
# the FastAPI design this product replaces.
#   tools/bench/ingest.sh [HARNESS_DIR] [SECONDS]
# HARNESS_DIR defaults to ../shared/bench-peers/ingest (harness/ and fastapi-peer/). INGEST_BIN runs
# another build's `ingest` (another revision's, for a before-and-after in one run) instead of this
# tree's release build.
# Needs PostgreSQL on 127.0.0.1:5432 (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=${1:-../shared/bench-peers/ingest}
secs=${2:-15}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
port=${INGEST_BENCH_PORT:-18300}
harness="$peers/harness"
database=bench_ingest
export PG_PIDS=$(pgrep -o -u postgres -x postgres || pgrep -o postgres || true)
# Enough distinct pre-rendered readings per wrk thread (2 threads) that none is sent twice — a
# re-sent reading takes the duplicate path, not a new row: room for 20 000 single POSTs/s and
# 200 000 batched readings/s. The run's summary counts what was actually stored.
single_pool=$((secs * 10000))
batch_pool=$((secs * 200))

bin=${INGEST_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet -p ingest
    bin="${CARGO_TARGET_DIR:-target}/release/ingest"
fi
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" >/dev/null

DATABASE_URL="$pg/$database" INGEST_BIND="127.0.0.1:$port" CLASSIFY_WORKERS=0 RUST_LOG=warn \
    "$bin" 2>/dev/null &
ingest=$!
source tools/bench/lib.sh
cleanup() { kill $ingest $peer_pids 2>/dev/null || true; }
trap 'cleanup; stop_peer' EXIT
url="http://127.0.0.1:$port"
wait_healthy "$url"

echo "== PostgreSQL alone (same machine, same run)"
bash "$harness/pg_ceiling.sh" 32 "$secs" "$pg/$database" | tee /tmp/bench-pg.txt
echo "== PostgreSQL alone, one reading into the events table (pgbench, 32 clients)"
pgbench -n -c 32 -j 2 -T "$secs" -f tools/bench/sql/events_insert.pgbench "$pg/$database" 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/pg_events_insert_tps=\1/p' | tee /tmp/bench-pg-events.txt
echo "== PostgreSQL alone, COPY of the harness's rows into the events table"
# The same generated rows pg_ceiling.sh copied into its bare table, now into this product's own
# table with its unique key and queue/listing indexes (interval_s gets a default for the load).
csv=${CSV:-/tmp/bench_ceiling_1000000.csv}  # pg_ceiling.sh's generated rows, kept for reuse
rm -f /tmp/bench-pg-copy-events.txt
if [ -s "$csv" ]; then
    # The generator can repeat a (sensor, lane, time) key, which the unique key refuses: copy
    # each key once (columns: sensor_id, observed_at, …, lane) and count what was copied.
    unique_csv=${TMPDIR:-/tmp}/bench-pg-copy-events-unique.csv
    awk -F, '!seen[$1 FS $2 FS $6]++' "$csv" > "$unique_csv"
    rows=$(wc -l < "$unique_csv")
    csv_partitions "$pg/$database" "$unique_csv"
    psql "$pg/$database" -qc "TRUNCATE events" -c "ALTER TABLE events ALTER interval_s SET DEFAULT 60" -c CHECKPOINT >/dev/null
    t0=$(date +%s.%N)
    psql "$pg/$database" -qc "\\copy events (sensor_id, observed_at, vehicle_count, avg_speed_kmh, occupancy_pct, lane) FROM '$unique_csv' WITH (FORMAT csv)" >/dev/null
    t1=$(date +%s.%N)
    psql "$pg/$database" -qc "ALTER TABLE events ALTER interval_s DROP DEFAULT" >/dev/null
    rm -f "$unique_csv"
    awk -v n="$rows" -v a="$t0" -v b="$t1" 'BEGIN { printf "pg_copy_events_rows_per_s=%.1f\n", n / (b - a) }' | tee /tmp/bench-pg-copy-events.txt
fi
psql "$pg/$database" -qc "TRUNCATE events" >/dev/null
echo "== smart-traffic ingest: single POST /v1/events, 32 connections"
POOL=$single_pool CPU_PIDS=$ingest bash "$harness/ingest_single.sh" "$url" 32 "$secs" | tee /tmp/bench-single.txt
stored_single=$(psql "$pg/$database" -Atc "SELECT count(*) FROM events")
echo "== smart-traffic ingest: POST /v1/events/batch (500 readings), 4 connections"
POOL=$batch_pool CPU_PIDS=$ingest bash "$harness/ingest_batch.sh" "$url" 4 "$secs" 500 | tee /tmp/bench-batch.txt
stored_batch=$(( $(psql "$pg/$database" -Atc "SELECT count(*) FROM events") - stored_single ))
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$ingest/status")
kill $ingest; wait $ingest 2>/dev/null || true

echo "== FastAPI peer"
start_fastapi_peer "$peers"
POOL=$single_pool CPU_PIDS="$peer_pids" bash "$harness/ingest_single.sh" http://127.0.0.1:18100 32 "$secs" | tee /tmp/bench-peer-single.txt
POOL=$batch_pool CPU_PIDS="$peer_pids" bash "$harness/ingest_batch.sh" http://127.0.0.1:18100 4 "$secs" 500 | tee /tmp/bench-peer-batch.txt

value() { sed -n "s/^$2=//p" "$1" | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
single=$(value /tmp/bench-single.txt ingest_single_rps)
batch=$(value /tmp/bench-batch.txt ingest_batch_events_per_s)
echo
echo "== summary"
echo "ingest_single_rps=$single"
echo "ingest_single_p99_ms=$(value /tmp/bench-single.txt ingest_single_p99_ms)"
echo "ingest_single_rows_stored=$stored_single"
echo "pg_single_insert_tps=$(value /tmp/bench-pg.txt pg_single_insert_tps)"
echo "single_vs_pg=$(ratio "$single" "$(value /tmp/bench-pg.txt pg_single_insert_tps)")"
echo "pg_events_insert_tps=$(value /tmp/bench-pg-events.txt pg_events_insert_tps)"
echo "single_vs_pg_events_table=$(ratio "$single" "$(value /tmp/bench-pg-events.txt pg_events_insert_tps)")"
echo "ingest_batch_events_per_s=$batch"
echo "ingest_batch_rows_stored=$stored_batch"
echo "pg_copy_logged_rows_per_s=$(value /tmp/bench-pg.txt pg_copy_logged_rows_per_s)"
echo "batch_vs_copy=$(ratio "$batch" "$(value /tmp/bench-pg.txt pg_copy_logged_rows_per_s)")"
echo "pg_copy_events_rows_per_s=$(value /tmp/bench-pg-copy-events.txt pg_copy_events_rows_per_s)"
echo "batch_vs_copy_events_table=$(ratio "$batch" "$(value /tmp/bench-pg-copy-events.txt pg_copy_events_rows_per_s)")"
echo "fastapi_single_rps=$(value /tmp/bench-peer-single.txt ingest_single_rps)"
echo "single_vs_fastapi=$(ratio "$single" "$(value /tmp/bench-peer-single.txt ingest_single_rps)")"
echo "fastapi_batch_events_per_s=$(value /tmp/bench-peer-batch.txt ingest_batch_events_per_s)"
echo "batch_vs_fastapi=$(ratio "$batch" "$(value /tmp/bench-peer-batch.txt ingest_batch_events_per_s)")"
echo "ingest_peak_rss_mib=$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')"
