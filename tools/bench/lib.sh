# Shared by the benchmark scripts (sourced, not run).

peer_pids=""

# The FastAPI peer's uvicorn waits on its background tasks at SIGTERM: make sure it goes.
stop_peer() {
    for pid in $peer_pids; do pkill -9 -P "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true; done
}

# wait_healthy URL: until URL/v1/health answers (at most ~20 s).
wait_healthy() {
    for _ in $(seq 1 100); do curl -fs "$1/v1/health" >/dev/null && return 0; sleep 0.2; done
    echo "$1 did not come up" >&2
    return 1
}

# start_fastapi_peer PEERS_DIR: the FastAPI peer on ports 18100 (API) and 18101 (its MCP
# classifier), on its freshly reset database; sets peer_pids.
start_fastapi_peer() {
    bash "$1/fastapi-peer/setup.sh" --reset >/dev/null
    local out
    out=$(bash "$1/fastapi-peer/run.sh" 18100 18101)
    peer_pids=$(echo "$out" | sed -n 's/^\(api\|mcp\)_pid=//p' | tr '\n' ' ')
    wait_healthy http://127.0.0.1:18100
}

# csv_partitions DATABASE_URL CSV: where the schema has day partitions, those of every day the
# harness's generated rows (observed_at in the second column) fall on, and the days beside them.
csv_partitions() {
    local days
    partitioned "$1" || return 0
    days=$(awk -F, '{ print substr($2, 1, 10) }' "$2" | sort -u | sed "s/.*/'&'::date/" | paste -sd,)
    psql "$1" -qAtX -c "SELECT create_event_partitions(ARRAY(
                              SELECT d + k FROM unnest(ARRAY[$days]) AS d, generate_series(-1, 1) AS k
                          )::timestamptz[])" >/dev/null
}

# partitioned DATABASE_URL: whether its schema has day partitions (an earlier revision's has not).
partitioned() {
    [ "$(psql "$1" -qAtX -c "SELECT to_regproc('create_event_partitions') IS NOT NULL")" = t ]
}

# load_read_side DATABASE_URL SENSORS DAYS: the read-side benchmarks' database, SENSORS × DAYS ×
# 1440 one-minute readings, classified (sql/read_side_load.sql); with KEEP_DB=1 a database a
# previous run loaded with as many sensors is reused (the load takes minutes). Needs the release
# `ingest` built, for its migrations.
load_read_side() {
    local db=$1 sensors=$2 days=$3 server=${1%/*} name=${1##*/}
    q() { psql "$db" -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
    if [ "${KEEP_DB:-0}" = 1 ] && [ "$(q "SELECT count(*) FROM sensors" 2>/dev/null || echo 0)" = "$sensors" ]; then
        echo "reusing $name"
    else
        psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
        DATABASE_URL="$db" RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/release/ingest" migrate
        local started=$SECONDS
        psql "$db" -X -q -v sensors="$sensors" -v days="$days" -f tools/bench/sql/read_side_load.sql
        echo "loaded in $((SECONDS - started)) s"
    fi
    echo "readings: $(q "SELECT count(*) FROM events")  table+indexes: $(q "SELECT pg_size_pretty(pg_total_relation_size('events') + pg_total_relation_size('classifications'))")"
}
