#!/usr/bin/env bash
# Sustained ingest with classification on PostgreSQL: readings/s ingested and classified, and the
# classification lag p50/p99: the harness's lag test (classify_lag.sh) on the fresh database, single
# POSTs at full speed, several offered rates of single POSTs and of 500-reading batches, the lag
# test again, then batches at full speed; then the FastAPI peer's lag, on its freshly reset database.
# The references come from the same run: first the ingest-only rates (classification paused, a
# database of its own), at the end a backlog of DRAIN readings drained alone (drain.sh), and the
# ratios of each target against them.
#   tools/bench/pipeline.sh [HARNESS_DIR] [SECONDS_PER_STEP] ["RATES"] ["BATCH_RATES"]
# DRAIN (default 1000000; 0 skips it) readings pending for the drain step. STEADY_MINUTES (default
# 0: skipped) runs batches at STEADY_RATE readings/s (default 8000) for that long and prints the lag
# of each minute.
# HARNESS_DIR defaults to ../shared/bench-peers/ingest. INGEST_BIN runs another build's `ingest`
# (another revision's, for a before-and-after in one run) instead of this tree's release build. RATES (paced single POSTs, offered
# readings/s) default "500 1000 2000"; BATCH_RATES (paced 500-reading batches at 4 connections,
# offered readings/s) default "2000 4000 8000".
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=${1:-../shared/bench-peers/ingest}
secs=${2:-15}
rates=${3:-"500 1000 2000"}
batch_rates=${4:-"2000 4000 8000"}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
port=${PIPELINE_BENCH_PORT:-18310}
database=bench_pipeline
db="$pg/$database"
export BENCH_LUA_DIR="$peers/harness/lua"
conns=16

bin=${INGEST_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet -p ingest
    bin="${CARGO_TARGET_DIR:-target}/release/ingest"
fi
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" >/dev/null
DATABASE_URL="$db" INGEST_BIND="127.0.0.1:$port" RUST_LOG=warn "$bin" 2>/dev/null &
ingest=$!
source tools/bench/lib.sh
trap 'kill $ingest 2>/dev/null || true; stop_peer' EXIT
url="http://127.0.0.1:$port"
wait_healthy "$url"
q() { psql "$db" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
drain_n=${DRAIN:-1000000}
steady_minutes=${STEADY_MINUTES:-0}
steady_rate=${STEADY_RATE:-8000}

# The references: what the same build stores per second with classification paused, on a
# database of its own, measured the way the full-speed steps below are.
echo "== reference: ingest only (classification paused)"
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ${database}_ref WITH (FORCE)" -c "CREATE DATABASE ${database}_ref" >/dev/null
DATABASE_URL="$pg/${database}_ref" INGEST_BIND="127.0.0.1:$((port + 1))" CLASSIFY_WORKERS=0 RUST_LOG=warn \
    "$bin" 2>/dev/null &
reference=$!
wait_healthy "http://127.0.0.1:$((port + 1))"
ref_single=$(POOL=$((secs * 10000)) bash "$peers/harness/ingest_single.sh" "http://127.0.0.1:$((port + 1))" 32 "$secs" \
    | sed -n 's/^ingest_single_rps=//p')
ref_batch=$(POOL=$((secs * 200)) bash "$peers/harness/ingest_batch.sh" "http://127.0.0.1:$((port + 1))" 4 "$secs" 500 \
    | sed -n 's/^ingest_batch_events_per_s=//p')
kill $reference; wait $reference 2>/dev/null || true
psql "$pg/postgres" -qc "DROP DATABASE ${database}_ref WITH (FORCE)" >/dev/null
echo "reference_single_rps=$ref_single reference_batch_readings_per_s=$ref_batch"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# Until nothing is pending or processing (at most 2 minutes).
drain() {
    for _ in $(seq 1 240); do
        [ "$(q "SELECT count(*) FROM queue")" = 0 ] && return 0
        sleep 0.5
    done
}

# Rows received in [t0, t1): how many, how many classified, and the lag percentiles.
window_stats() {
    q "SELECT count(*), count(classified_at),
              coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM classified_at - received_at)) * 1000)::numeric, 1), 0),
              coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM classified_at - received_at)) * 1000)::numeric, 1), 0)
       FROM event_states WHERE received_at >= '$1' AND received_at < '$2'"
}

# paced_step URL CONNS BATCH RATE: offers RATE readings/s for the step, prints its table row and
# sets `sustained` to the achieved input rate when the queue kept up.
paced_step() {
    local target=$1 connections=$2 batch=$3 rate=$4
    local delay t0 t1 pending total done p50 p99 span in_rate out_rate verdict
    delay=$(awk -v c="$connections" -v b="$batch" -v r="$rate" \
        'BEGIN { d = c * b * 1000 / r - 1; if (d < 0) d = 0; printf "%d", d }')
    t0=$(q "SELECT now()")
    wrk -t 2 -c "$connections" -d "${secs}s" -s tools/bench/lua/paced.lua "$target" -- \
        "$delay" $((rate * secs / batch / 2 + 100)) 500 "$batch" >/dev/null
    t1=$(q "SELECT now()")
    pending=$(q "SELECT count(*) FROM queue")
    sleep 3 # let the tail of the step drain before measuring its lag
    IFS='|' read -r total done p50 p99 < <(window_stats "$t0" "$t1")
    span=$(q "SELECT extract(epoch FROM '$t1'::timestamptz - '$t0'::timestamptz)")
    in_rate=$(awk -v n="$total" -v s="$span" 'BEGIN { printf "%.0f", n / s }')
    out_rate=$(awk -v n="$done" -v s="$span" 'BEGIN { printf "%.0f", n / s }')
    # The queue keeps up when what is left at the end of the step is under a second of input.
    verdict=grows
    if [ "$pending" -le "$in_rate" ]; then verdict=keeps_up; sustained=$in_rate; fi
    echo "$batch | $rate | $in_rate | $out_rate | $p50 | $p99 | $pending | $verdict"
    drain
}

# The harness's lag test against this service: 2000 readings posted by 16 connections.
lag_test() {
    echo "== classification lag, harness classify_lag.sh (2000 readings, 16 connections), $1"
    TABLE=event_states LABEL_COL=label LOW_HIGH_RULE=0 bash "$peers/harness/classify_lag.sh" "$url" "$db" 2000 16 | tail -n 4
}

# First, on the fresh database, as the FastAPI peer's lag is measured on its freshly reset one.
lag_test "fresh database"

# Then, as ingest.sh measures the ingest-only maximum it is compared with, on a young table.
echo "== single POSTs at full speed (32 connections), classification on"
t0=$(q "SELECT now()")
POOL=$((secs * 10000)) bash "$peers/harness/ingest_single.sh" "$url" 32 "$secs" | grep -E "^ingest_single_(rps|p99_ms)="
t1=$(q "SELECT now()")
drain
IFS='|' read -r total done p50 p99 < <(window_stats "$t0" "$t1")
# Rates over the span the readings arrived in (wrk renders its pool before it starts sending).
span=$(q "SELECT extract(epoch FROM max(received_at) - min(received_at)) FROM events WHERE received_at >= '$t0' AND received_at < '$t1'")
echo "single_readings=$total single_classified=$done single_lag_p50_ms=$p50 single_lag_p99_ms=$p99"
echo "single_ingested_per_s=$(awk -v n="$total" -v s="$span" 'BEGIN { printf "%.0f", n / s }')"
single_classified=$(awk -v n="$done" -v s="$span" 'BEGIN { printf "%.0f", n / s }')
echo "single_classified_per_s=$single_classified"

echo "readings_per_request | rate_offered | ingested/s | classified/s | lag_p50_ms | lag_p99_ms | pending_at_end | queue"
sustained=0
for rate in $rates; do paced_step "$url/v1/events" $conns 1 "$rate"; done
best=$sustained
echo "pipeline_highest_sustained_single_rate=$best"
sustained=0
for rate in $batch_rates; do paced_step "$url/v1/events/batch" 4 500 "$rate"; done
echo "pipeline_highest_sustained_batch_rate=$sustained"

# Again after the paced steps (their dead queue entries not yet vacuumed), before the batch flood.
lag_test "after the paced steps"
echo "== batches of 500 at full speed, classification on"
t0=$(q "SELECT now()")
POOL=$((secs * 60)) bash "$peers/harness/ingest_batch.sh" "$url" 4 "$secs" 500 | tail -n 1
t1=$(q "SELECT now()")
drain
IFS='|' read -r total done p50 p99 < <(window_stats "$t0" "$t1")
span=$(q "SELECT extract(epoch FROM max(classified_at) - min(received_at)) FROM event_states WHERE received_at >= '$t0' AND received_at < '$t1'")
echo "batch_readings=$total batch_classified=$done batch_lag_p50_ms=$p50 batch_lag_p99_ms=$p99"
batch_classified=$(awk -v n="$done" -v s="$span" 'BEGIN { printf "%.0f", n / s }')
echo "batch_classified_per_s=$batch_classified"
# How long after the last request of the step its last reading was classified.
batch_tail_s=$(q "SELECT round(extract(epoch FROM max(classified_at) - max(received_at))::numeric, 2) FROM event_states WHERE received_at >= '$t0' AND received_at < '$t1'")
echo "batch_last_classified_after_last_request_s=$batch_tail_s"

if [ "$steady_minutes" -gt 0 ]; then
    echo "== steady: batches of 500 at $steady_rate readings/s offered, $steady_minutes minutes"
    delay=$(awk -v r="$steady_rate" 'BEGIN { d = 4 * 500 * 1000 / r - 1; if (d < 0) d = 0; printf "%d", d }')
    t0=$(q "SELECT now()")
    wrk -t 2 -c 4 -d "${steady_minutes}m" -s tools/bench/lua/paced.lua "$url/v1/events/batch" -- \
        "$delay" $((steady_rate * steady_minutes * 60 / 500 / 2 + 100)) 500 500 >/dev/null
    t1=$(q "SELECT now()")
    drain
    echo "minute | readings | lag_p50_ms | lag_p99_ms"
    q "SELECT floor(extract(epoch FROM received_at - '$t0'::timestamptz) / 60)::int + 1, count(*),
              round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM classified_at - received_at)) * 1000)::numeric, 1),
              round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM classified_at - received_at)) * 1000)::numeric, 1)
         FROM event_states WHERE received_at >= '$t0' AND received_at < '$t1' GROUP BY 1 ORDER BY 1" | tr '|' ' '
fi
lost=$(q "SELECT count(*) FROM queue")
echo "pipeline_not_classified=$lost"

kill $ingest; wait $ingest 2>/dev/null || true
drained=0
if [ "$drain_n" -gt 0 ]; then
    echo "== a backlog of $drain_n readings drained, nothing else running (drain.sh)"
    drain_out=$(bash tools/bench/drain.sh "$drain_n")
    echo "$drain_out"
    drained=$(echo "$drain_out" | sed -n 's/.*drain_readings_per_s=\([0-9]*\).*/\1/p')
fi
echo "== against the same run's ingest-only references"
echo "target_single_classified_of_ingest_only=$(ratio "$single_classified" "$ref_single")"
echo "target_batch_classified_of_ingest_only=$(ratio "$batch_classified" "$ref_batch")"
echo "target_drain_of_ingest_only_batch=$(ratio "$drained" "$ref_batch")"
echo "== FastAPI peer, same script"
start_fastapi_peer "$peers"
bash "$peers/harness/classify_lag.sh" http://127.0.0.1:18100 "$pg/peer_fastapi" 2000 16 | tail -n 4
