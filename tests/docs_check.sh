#!/usr/bin/env bash
# Runs the shell blocks of README.md and docs/ marked `<!-- runnable -->` against a live
# `ingest` (the quickstart's default: a SQLite file in its working directory, the classifier
# in-process), so that the commands the docs show keep working. tests/docs_check.py says how.
#   tests/docs_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The workspace's feature set, as the test run built them: nothing is compiled or linked again.
cargo build --quiet --workspace --bins
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/debug
work=$(mktemp -d "${TMPDIR:-/tmp}/smart-traffic-docs.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$work" && exec env -u DATABASE_URL -u REDIS_URL INGEST_BIND="127.0.0.1:$port" RUST_LOG=warn \
    "$bin/ingest" serve > "$work/ingest.log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/v1/ready" >/dev/null && break
    sleep 0.2
done
python3 tests/docs_check.py "$bin" "$work" "$port"
