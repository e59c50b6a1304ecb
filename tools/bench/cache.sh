#!/usr/bin/env bash
# The Redis read cache on PostgreSQL, one run, without and with REDIS_URL:
#   - reads on the read-side load (tools/bench/read_side.sh's 10.08 million readings; KEEP_DB=1
#     reuses it): the sensor listing, the network state and a sensor's day in 5-minute
#     buckets, wrk at CONNS connections (a random sensor per request), each warmed for 2 s —
#     requests/s, p50, p99; then the last day (a window that ends now) in 1-minute buckets
#     with every whole answer retired at once (CACHE_CLOCK_TTL_MS=1, as when each sensor
#     reports every second), so that only the settled buckets come from the cache;
#   - the same last day in 5-minute buckets on SQLite (SQLITE=0 skips it): 200 sensors' day of
#     minute readings, posted in batches (classification paused);
#   - the ingest rate: single POSTs at 32 connections and 500-reading batches at 4 (the
#     harness of ../shared/bench-peers/ingest), classification paused, on a fresh database per
#     run, cache off and on alternated twice.
#   tools/bench/cache.sh [SECONDS]     (READS=0 or INGEST=0 skips that part)
# Needs Redis at REDIS_BENCH_URL (default redis://127.0.0.1:6379; each run uses keys of its
# own) and wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${CONNS:-4}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
redis_url=${REDIS_BENCH_URL:-redis://127.0.0.1:6379}
port=${CACHE_BENCH_PORT:-18330}
harness=${HARNESS_DIR:-../shared/bench-peers/ingest/harness}
target=${CARGO_TARGET_DIR:-target}
url="http://127.0.0.1:$port"

cargo build --release --quiet -p ingest
source tools/bench/lib.sh
[ "${READS:-1}" = 0 ] || load_read_side "$pg/bench_read" 1000 7

# serve DATABASE MODE [ENV…]: ingest on DATABASE (a name on $pg, or a URL), with Redis
# (MODE=on) or without (off).
serve() {
    local database=$1 mode=$2; shift 2
    local redis=()
    [ "$mode" = on ] && redis=(REDIS_URL="$redis_url" REDIS_PREFIX="bench-cache-$$-$RANDOM")
    [[ "$database" == *://* ]] || database="$pg/$database"
    env DATABASE_URL="$database" INGEST_BIND="127.0.0.1:$port" RUST_LOG=warn "${redis[@]}" "$@" \
        "$target/release/ingest" 2>/dev/null &
    ingest=$!
    wait_healthy "$url"
}
trap 'kill ${ingest:-} 2>/dev/null || true' EXIT

read_route() { # NAME PATH MODE
    SENSORS=${SENSORS:-1000} SENSOR_PATH="$2" wrk -t1 -c"$conns" -d2s -s tools/bench/lua/random_sensor.lua "$url" >/dev/null 2>&1
    local out
    out=$(SENSORS=${SENSORS:-1000} SENSOR_PATH="$2" wrk -t"$(( conns < 2 ? conns : 2 ))" -c"$conns" -d"${secs}s" --latency \
        -s tools/bench/lua/random_sensor.lua "$url" 2>&1)
    if echo "$out" | grep -q "Non-2xx"; then echo "$out" >&2; echo "$1: errors" >&2; return 1; fi
    printf '%-10s cache %-3s %8s req/s  p50 %8s  p99 %8s\n' "$1" "$3" \
        "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(echo "$out" | awk '$1 == "50%" {print $2}')" \
        "$(echo "$out" | awk '$1 == "99%" {print $2}')"
}

enc() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ | sed 's/:/%3A/g'; }
day="/v1/sensors/{sensor}/series?bucket=5m&from=$(enc '-1 day')&to=$(enc now)"
[ "${READS:-1}" = 0 ] || echo "--- reads: $conns connections, ${secs} s each"
for mode in off on; do
    [ "${READS:-1}" = 0 ] && break
    serve bench_read "$mode" CLASSIFY_WORKERS=0
    read_route sensors "/v1/sensors?limit=1000" "$mode"
    read_route state_now "/v1/state" "$mode"
    read_route day_5m "$day" "$mode"
    kill "$ingest"; wait "$ingest" 2>/dev/null || true
    serve bench_read "$mode" CLASSIFY_WORKERS=0 CACHE_CLOCK_TTL_MS=1
    read_route last_day_1m "/v1/sensors/{sensor}/series?bucket=1m" "$mode"
    kill "$ingest"; wait "$ingest" 2>/dev/null || true
done

if [ "${READS:-1}" != 0 ] && [ "${SQLITE:-1}" = 1 ]; then
    sqlite_dir=$(mktemp -d)
    serve "sqlite://$sqlite_dir/bench.db" off CLASSIFY_WORKERS=0
    python3 - "$url" <<'PY'
import datetime, json, sys, urllib.request
url, now = sys.argv[1], datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
lines = [json.dumps({"sensor_id": f"bench-{s:04d}", "lane": 1, "vehicle_count": 12 + m % 7,
                     "avg_speed_kmh": 90.0, "occupancy_pct": 8.0,
                     "observed_at": (now - datetime.timedelta(minutes=m)).isoformat()})
         for s in range(200) for m in range(1440)]
for i in range(0, len(lines), 10000):
    request = urllib.request.Request(url + "/v1/events/batch", "\n".join(lines[i:i + 10000]).encode(),
                                     {"content-type": "application/x-ndjson"})
    urllib.request.urlopen(request).read()
PY
    kill "$ingest"; wait "$ingest" 2>/dev/null || true
    echo "--- SQLite: 200 sensors, a day of minute readings each"
    for mode in off on; do
        serve "sqlite://$sqlite_dir/bench.db" "$mode" CLASSIFY_WORKERS=0 CACHE_CLOCK_TTL_MS=1
        SENSORS=200 read_route sqlite_last_day "/v1/sensors/{sensor}/series?bucket=5m" "$mode"
        kill "$ingest"; wait "$ingest" 2>/dev/null || true
    done
    rm -rf "$sqlite_dir"
fi

[ "${INGEST:-1}" = 0 ] || echo "--- ingest: classification paused, ${secs} s per step"
for round in 1 2; do
    [ "${INGEST:-1}" = 0 ] && break
    for mode in off on; do
        psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS bench_cache_ingest WITH (FORCE)" \
            -c "CREATE DATABASE bench_cache_ingest" >/dev/null
        serve bench_cache_ingest "$mode" CLASSIFY_WORKERS=0
        single=$(POOL=$((secs * 10000)) bash "$harness/ingest_single.sh" "$url" 32 "$secs" | sed -n 's/^ingest_single_rps=//p' | tail -1)
        batch=$(POOL=$((secs * 200)) bash "$harness/ingest_batch.sh" "$url" 4 "$secs" 500 | sed -n 's/^ingest_batch_events_per_s=//p' | tail -1)
        printf 'round %s cache %-3s single POSTs %8s req/s  batches %9s readings/s\n' "$round" "$mode" "$single" "$batch"
        kill "$ingest"; wait "$ingest" 2>/dev/null || true
    done
done
psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS bench_cache_ingest WITH (FORCE)" >/dev/null
