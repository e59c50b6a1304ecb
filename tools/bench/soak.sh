#!/usr/bin/env bash
# Soak: SOAK_SECONDS (default 600) at a steady rate on PostgreSQL, with classification (the
# default in-process classifier), live stream clients and read-side polls all along; judges
# whether memory, descriptors, lag and the queue table level off.
#   tools/bench/soak.sh
# The load: `ingest simulate` (SOAK_SENSORS sensors, default 200, seed 1) plays a window of
# simulated minutes ending now at the pace that offers SOAK_RATE readings/s in all (default 2000)
# in 100-reading batches over 4 connections, plus a trickle of single POSTs (SOAK_SINGLE_RATE,
# default 20/s, 20 sensors of its own); SOAK_SSE (default 4) clients on GET /v1/stream; every
# second the sensor listing, a sensor's series and summary, the state, the last hour's
# transitions and the newest events. The simulator first plays one minute further back than the
# window reaches, so the run knows the network's lanes (the readings per simulated minute).
# Every 10 s soak.py records (SOAK_OUT, default target/soak/samples.csv): VmRSS and open fds of
# ingest (and of mcp-classifier when MCP_COMMAND runs it as a child), the private memory of the
# database's PostgreSQL backends, readings received, stored and classified, the queue (pending,
# oldest pending), the lag of the readings received in the 10 s before, the size of events,
# classifications (summed over their day partitions) and queue with their indexes, and the
# errors. At the end: a plot (SOAK_PLOT, default docs/images/soak.png) and a verdict.
# The verdict compares the middle third of the run with the last third; it passes when
#   1. each process's mean RSS over the last third is within +10 % (at least +4 MiB) of the
#      middle third's;
#   2. the most open fds in the last third are within +10 % (at least +8) of the middle third's;
#   3. the lag p99 of the readings received in the last third is at most 1.5x the middle
#      third's (at least +250 ms);
#   4. the queue table's largest size in the last third is within +50 % (at least +1 MiB) of
#      the middle third's;
#   5. readings arrive at >= 95 % of the offered rate in the middle and last thirds (a service
#      that slows the simulator down is not at a steady rate);
#   6. every reading is classified once the load stops (the queue drains within 2 minutes);
#   7. there are no errors: no non-2xx answer (/metrics), no failed request of any client (the
#      simulator's included), no SSE disconnect or dropped stream, no read-side error, no ERROR
#      line in ingest's log;
#   8. the live stream keeps up: each SSE client receives every reading classified while it is
#      connected (it is given the same 2 minutes to catch up), and the mean of its delay p99
#      (classified_at to received; one event in 50 is timed) over the last third is at most
#      1.5x the middle third's (at least +250 ms).
# It prints one line, "soak verdict: PASS|FAIL …", and exits 1 on FAIL.
# INGEST_BIN runs another build's `ingest`; REDIS_URL, when set, is passed to ingest (default:
# no Redis); BENCH_PG (default postgres://postgres@127.0.0.1:5432) holds the database bench_soak,
# created afresh and dropped at the end unless KEEP_DB=1. Needs python3 (matplotlib is installed
# with pip when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${SOAK_SECONDS:-600}
rate=${SOAK_RATE:-2000}
single_rate=${SOAK_SINGLE_RATE:-20}
sse=${SOAK_SSE:-4}
sensors=${SOAK_SENSORS:-200}
out=${SOAK_OUT:-target/soak}
plot=${SOAK_PLOT:-docs/images/soak.png}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
port=${SOAK_PORT:-18340}
database=bench_soak
db="$pg/$database"
url="http://127.0.0.1:$port"

bin=${INGEST_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet -p ingest
    bin="${CARGO_TARGET_DIR:-target}/release/ingest"
fi
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
mkdir -p "$out"
rm -f "$out/ready" "$out/samples.csv" "$out/summary.json"

ingest=""
sim=""
watcher=""
stop() {
    for pid in $watcher $sim $ingest; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_DB:-0}" != 1 ]; then
        psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    fi
}
trap stop EXIT

psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" >/dev/null
[ -n "${REDIS_URL:-}" ] || unset REDIS_URL
DATABASE_URL="$db" INGEST_BIND="127.0.0.1:$port" RUST_LOG=warn "$bin" 2>"$out/ingest.log" &
ingest=$!
source tools/bench/lib.sh
wait_healthy "$url"
q() { psql "$db" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# One simulated minute further back than any window the run can play (every sensor has two lanes
# or more; 51 hours with the defaults), to count the network's lanes.
warm_start=$(date -u -d "-$((rate * secs / (2 * sensors) + 60)) minutes" +%Y-%m-%dT%H:%M:00Z)
RUST_LOG=warn "$bin" simulate --url "$url" --sensors "$sensors" --seed 1 --span 1m --speedup 1e9 \
    --start "$warm_start" >"$out/warmup.log" 2>&1
lanes=$(q "SELECT count(DISTINCT (sensor_id, lane)) FROM events")
# The window: whole simulated minutes, played in SOAK_SECONDS.
minutes=$(awk -v r="$rate" -v s="$single_rate" -v t="$secs" -v l="$lanes" \
    'BEGIN { m = (r - s) * t / l; printf "%d", m < 1 ? 1 : m + 0.5 }')
speedup=$(awk -v m="$minutes" -v t="$secs" 'BEGIN { printf "%.4f", m * 60 / t }')
[ "$minutes" -le 44640 ] || { echo "a window of $minutes simulated minutes is over the simulator's 31 days" >&2; exit 1; }
echo "network: $sensors sensors, $lanes lanes; simulator: ${minutes} simulated minutes at ${speedup}x" \
    "($(awk -v l="$lanes" -v x="$speedup" 'BEGIN { printf "%.0f", l * x / 60 }') readings/s)" \
    "+ single POSTs at $single_rate/s; $sse SSE clients; ${secs} s"

children=()
if [ -n "${MCP_COMMAND:-}" ]; then children=(--child "$(basename "${MCP_COMMAND%% *}")"); fi
python3 tools/bench/soak.py run --url "$url" --db "$db" --pid "ingest=$ingest" "${children[@]}" \
    --seconds "$secs" --sse "$sse" --single-rate "$single_rate" --out "$out" &
watcher=$!
for _ in $(seq 1 300); do [ -e "$out/ready" ] && break; kill -0 "$watcher" || exit 1; sleep 0.1; done
[ -e "$out/ready" ] || { echo "soak.py did not start" >&2; exit 1; }
start=$(date -u -d "-$minutes minutes" +%Y-%m-%dT%H:%M:00Z)
RUST_LOG=warn "$bin" simulate --url "$url" --sensors "$sensors" --seed 1 --span "${minutes}m" \
    --speedup "$speedup" --start "$start" --batch 100 --concurrency 4 >"$out/simulate.log" 2>&1 &
sim=$!
wait "$watcher"
watcher=""

# The simulator reads its results back once the queue drained: give it 2 minutes more.
sim_failed=0
for _ in $(seq 1 240); do kill -0 "$sim" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$sim" 2>/dev/null; then
    echo "the simulator did not finish in time" >&2
    kill "$sim"
fi
if ! wait "$sim"; then
    sim_failed=$(sed -n 's/^.* \([0-9][0-9]*\) request(s) to .*failed.*$/\1/p' "$out/simulate.log" | tail -1)
    sim_failed=${sim_failed:-1}
fi
sim=""
echo "--- simulator summary"
sed -n '1,12p' "$out/simulate.log"
log_errors=$(grep -c ' ERROR ' "$out/ingest.log" || true)
echo "--- ingest log: $(wc -l <"$out/ingest.log") lines, $log_errors ERROR"
python3 tools/bench/soak.py report --out "$out" --plot "$plot" --offered "$rate" \
    --sim-failed "$sim_failed" --log-errors "$log_errors"
