#!/usr/bin/env bash
# Property-based API testing of the ingest service against its own OpenAPI document.
#
#   tests/schemathesis.sh
#
# 1. Creates (or reuses) a Python venv outside the repository with pinned schemathesis and
#    openapi-spec-validator from PyPI.
# 2. Builds `ingest`, starts it on a free 127.0.0.1 port over a fresh SQLite file in a temporary
#    directory, and waits for /v1/health.
# 3. Validates /openapi.json with openapi-spec-validator.
# 4. Runs schemathesis against the live service with every check but positive_data_acceptance
#    (server errors, response schema, status codes, content types, headers, negative data,
#    undeclared methods, …); the reasons for the exceptions are beside the configuration below.
# 5. Stops the service. Exits non-zero on any failure.
#
# Environment:
#   SCHEMATHESIS_VENV          venv directory      (default ${TMPDIR:-/tmp}/smart-traffic-schemathesis)
#   SCHEMATHESIS_MAX_EXAMPLES  examples/operation  (default 100; the run stays well under 3 min)
#   SCHEMATHESIS_WORKERS       concurrent workers  (default 1: with two, Hypothesis parses lambda
#                              sources on two threads at once, which Python 3.11.7's `ast`
#                              cannot do — a run once died of "AST constructor recursion depth
#                              mismatch", CPython gh-106905 — and the service, not the load, is
#                              under test)
#   SCHEMATHESIS_SEED          fixed seed to reproduce a run (default: random, printed at the end)
#   SCHEMATHESIS_REPORT_DIR    write JUnit and HAR reports there (default: none)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
SPEC_VALIDATOR_VERSION=0.9.0

venv=${SCHEMATHESIS_VENV:-${TMPDIR:-/tmp}/smart-traffic-schemathesis}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-100}
workers=${SCHEMATHESIS_WORKERS:-1}

log() { printf '[schemathesis] %s\n' "$*" >&2; }

# --- the tools ---------------------------------------------------------------------------------
python=$(command -v python3.11 || command -v python3 || true)
[ -n "$python" ] || { log "python3 is required"; exit 2; }
installed=$("$venv/bin/python" -c "
from importlib.metadata import version
print(version('schemathesis'), version('openapi-spec-validator'))" 2>/dev/null || true)
if [ "$installed" != "$SCHEMATHESIS_VERSION $SPEC_VALIDATOR_VERSION" ]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator $SPEC_VALIDATOR_VERSION into $venv"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$SPEC_VALIDATOR_VERSION"
else
    log "reusing $venv"
fi
py="$venv/bin/python"

# --- the service -------------------------------------------------------------------------------
log "building ingest"
# The workspace's feature set, as the test run built them: nothing is compiled or linked again.
cargo build --quiet --workspace --bins
binary="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/ingest"

work=$(mktemp -d "${TMPDIR:-/tmp}/ingest-schemathesis.XXXXXX")
server_pid=
cleanup() {
    local status=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$work/ingest.log" ]; then
        log "last lines of the service's log:"
        tail -n 20 "$work/ingest.log" >&2 || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
log "starting ingest on $base (SQLite in $work)"
# A clean environment (no stray keys or classifier settings), run from the temporary directory
# so no .env file is picked up; the classifier runs in-process.
(
    cd "$work"
    exec env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
        DATABASE_URL="sqlite://$work/events.db" INGEST_BIND="127.0.0.1:$port" \
        RUST_LOG="${RUST_LOG:-info}" "$binary" serve
) >"$work/ingest.log" 2>&1 &
server_pid=$!

"$py" - "$base" "$server_pid" <<'EOF'
import os, sys, time, urllib.request
base, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(base + "/v1/health", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("ingest exited before answering /v1/health")
    if time.monotonic() > deadline:
        sys.exit("ingest did not answer /v1/health within 60 s")
    time.sleep(0.1)
EOF
log "ingest is up"

# --- the document ------------------------------------------------------------------------------
"$py" -c "
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + '/openapi.json', timeout=10) as r:
    open(sys.argv[2], 'wb').write(r.read())" "$base" "$work/openapi.json"
log "validating /openapi.json"
"$venv/bin/openapi-spec-validator" --schema 3.1 "$work/openapi.json"

# --- schemathesis ------------------------------------------------------------------------------
# What the document cannot express, said once here:
# - positive_data_acceptance is off: `cursor` is an opaque token only the service issues, and a
#   reading's observed_at may be at most 5 minutes ahead of the server clock, so schema-valid
#   values are rightly refused.
# - a refused body may also be 413 (over the size limit or over 10000 readings).
# - the batch accepts schema-invalid items by design: it stores the valid readings and lists the
#   others under `rejected` with 200, so negative data is not expected to fail it as a whole.
# - the live stream (streamEvents) is left out: a valid request's answer never ends, so every
#   example would run into the request timeout. Its parameters, refusals and events are tested
#   by the API suite (ingest/tests/api/stream.rs).
cat >"$work/schemathesis.toml" <<'EOF'
[checks]
enabled = true
positive_data_acceptance.enabled = false

[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

[[operations]]
include-operation-id = "createEvents"
checks.negative_data_rejection.enabled = false

[[operations]]
include-operation-id = "streamEvents"
enabled = false
EOF

args=(
    run "$base/openapi.json"
    --max-examples "$max_examples"
    --workers "$workers"
    --request-timeout 30
    --generation-database none
    --continue-on-failure
    --no-color
)
[ -n "${SCHEMATHESIS_SEED:-}" ] && args+=(--seed "$SCHEMATHESIS_SEED")
[ -n "${SCHEMATHESIS_REPORT_DIR:-}" ] && args+=(--report junit,har --report-dir "$SCHEMATHESIS_REPORT_DIR")

log "running schemathesis $SCHEMATHESIS_VERSION (${max_examples} examples per operation, ${workers} workers)"
started=$SECONDS
status=0
(cd "$work" && "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" "${args[@]}") || status=$?
log "schemathesis finished in $((SECONDS - started)) s with status $status"

if ! kill -0 "$server_pid" 2>/dev/null; then
    log "ingest died during the run"
    status=1
fi
exit "$status"
