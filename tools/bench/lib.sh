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
