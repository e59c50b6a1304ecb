#!/usr/bin/env bash
# MCP tools/call benchmark: mcp-classifier beside the official TypeScript and Python SDK servers,
# over Streamable HTTP and stdio, at several concurrency levels, on this machine, in one run.
#   tools/bench/mcp.sh [PEERS_DIR] [--levels "1 8 32"] [--duration 10]
# PEERS_DIR defaults to ../shared/bench-peers/mcp (its compare.sh and load generator).
# Prints compare.sh's table (calls/s, p50/p99 ms, server CPU per call) and the classifier's peak
# resident memory under load.
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=${1:-../shared/bench-peers/mcp}
shift || true
levels="1 8 32"
duration=10
while [ $# -gt 0 ]; do
    case "$1" in
        --levels) levels=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
port=${MCP_BENCH_PORT:-18260}

cargo build --release --quiet -p mcp-classifier
binary="$(realpath "${CARGO_TARGET_DIR:-target}")/release/mcp-classifier"

server_log=${TMPDIR:-/tmp}/mcp-bench-http-server.log  # the HTTP server's own log, kept
"$binary" serve --bind "127.0.0.1:$port" 2>"$server_log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# The load generator's pool includes non-ASCII sensor ids, which this product rejects by rule
# (isError results, counted in "errors"); --any-label accepts this product's labels.
bash "$peers/compare.sh" --duration "$duration" --levels "$levels" \
    --http-modes stateful-sse,stateless-json --loadgen-args "--any-label" \
    --http "mcp-classifier=http://127.0.0.1:$port/mcp" \
    --stdio "mcp-classifier=$binary stdio" || true  # non-zero when any call was an error (see above)

# Peak resident memory (the kernel's high-water mark, VmHWM) under load: the HTTP server after
# the whole run, and a stdio server near the end of a 32-in-flight run.
if [ -r "/proc/$server/status" ]; then
    echo "mcp_classifier_http_peak_rss_mib=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status")"
else
    echo "mcp_classifier_http_peak_rss_mib=n/a (the HTTP server exited during the run; see $server_log)"
fi
loadgen=${CARGO_TARGET_DIR:-${MCP_PEERS_HOME:-/tmp/mcp-peers}/loadgen-target}/release/mcp-loadgen
"$loadgen" stdio --inflight 32 -d 5 --any-label --allow-errors -- "$binary" stdio >/dev/null 2>&1 &
sleep 5
child=$(pgrep -n -x mcp-classifier || true)
[ -n "$child" ] && echo "mcp_classifier_stdio_peak_rss_mib=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$child/status")"
wait
