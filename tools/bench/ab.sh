#!/usr/bin/env bash
# Two builds side by side, in one run on this machine: the release binaries of this tree against
# those of another revision, so that a change can show it made nothing slower.
#   tools/bench/ab.sh BASE_BIN_DIR [SECONDS] [ROUNDS]
# BASE_BIN_DIR holds the other revision's release `ingest` and `mcp-classifier`, e.g. built with
#   git worktree add ../base REV && (cd ../base && CARGO_TARGET_DIR=../base-target cargo build --release -p ingest -p mcp-classifier)
# For each round, base then this tree: single POSTs at 32 connections and 500-reading batches at
# 4 (PostgreSQL, classification paused, a fresh database each), with the ingest harness of
# ../shared/bench-peers; then MCP tools/call over Streamable HTTP and stdio at 1, 8 and 32 with
# its load generator, both builds in the same table. Needs PostgreSQL (BENCH_PG) and wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
base_dir=$(realpath "${1:?usage: ab.sh BASE_BIN_DIR [SECONDS] [ROUNDS]}")
secs=${2:-10}
rounds=${3:-2}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
harness=../shared/bench-peers/ingest/harness
peers=../shared/bench-peers/mcp
port=${AB_PORT:-18310}

cargo build --release --quiet -p ingest -p mcp-classifier
this_dir=$(realpath "${CARGO_TARGET_DIR:-target}/release")
pids=""
trap 'kill $pids 2>/dev/null || true' EXIT

# run_ingest NAME BIN_DIR: one single and one batch measurement on a fresh database.
run_ingest() {
    local name=$1 dir=$2 database=bench_ab
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" >/dev/null
    DATABASE_URL="$pg/$database" INGEST_BIND="127.0.0.1:$port" CLASSIFY_WORKERS=0 RUST_LOG=warn \
        "$dir/ingest" 2>/dev/null &
    local ingest=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/v1/health" >/dev/null && break; sleep 0.1; done
    local single batch
    single=$(POOL=$((secs * 10000)) bash "$harness/ingest_single.sh" "http://127.0.0.1:$port" 32 "$secs" \
        | sed -n 's/^ingest_single_rps=//p')
    batch=$(POOL=$((secs * 200)) bash "$harness/ingest_batch.sh" "http://127.0.0.1:$port" 4 "$secs" 500 \
        | sed -n 's/^ingest_batch_events_per_s=//p')
    kill $ingest; wait $ingest 2>/dev/null || true
    echo "$name single_rps=$single batch_readings_per_s=$batch"
}

echo "== ingest (PostgreSQL, ${secs} s per step)"
for round in $(seq 1 "$rounds"); do
    run_ingest "round$round base" "$base_dir"
    run_ingest "round$round this" "$this_dir"
done

echo "== MCP tools/call (${secs} s per level)"
"$base_dir/mcp-classifier" serve --bind "127.0.0.1:$((port + 1))" 2>/dev/null & pids="$pids $!"
"$this_dir/mcp-classifier" serve --bind "127.0.0.1:$((port + 2))" 2>/dev/null & pids="$pids $!"
for p in $((port + 1)) $((port + 2)); do
    for _ in $(seq 1 50); do (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
bash "$peers/compare.sh" --peers none --duration "$secs" --levels "1 8 32" --loadgen-args "--any-label" \
    --http "base=http://127.0.0.1:$((port + 1))/mcp" --http "this=http://127.0.0.1:$((port + 2))/mcp" \
    --stdio "base=$base_dir/mcp-classifier stdio" --stdio "this=$this_dir/mcp-classifier stdio" || true
