#!/usr/bin/env bash
# Runs the official MCP clients and conformance suite (../shared/mcp-compliance) against
# mcp-classifier over stdio and over Streamable HTTP; every check must pass.
#   tests/mcp_compliance.sh [COMPLIANCE_DIR]
# Needs PostgreSQL at TEST_DATABASE_URL's server (for classify_by_id's stored event and the
# query tools' data).
set -euo pipefail
cd "$(dirname "$0")/.."

suite=${1:-${MCP_COMPLIANCE_DIR:-../shared/mcp-compliance}}
[ -x "$suite/run.sh" ] || [ -f "$suite/run.sh" ] || { echo "mcp_compliance: no suite at $suite" >&2; exit 2; }
port=${MCP_COMPLIANCE_PORT:-18080}
base_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
server_url=${base_url%/*}
database="mcp_compliance_$$"

# The workspace's feature set, as the test run built them: nothing is compiled or linked again.
cargo build --quiet --workspace --bins
bin=${CARGO_TARGET_DIR:-target}/debug  # where cargo put the binaries
classifier=$bin/mcp-classifier

# One stored event for classify_by_id, in a database of its own.
psql "$server_url/postgres" -qc "CREATE DATABASE $database" >/dev/null
cleanup() {
    [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    psql "$server_url/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
export DATABASE_URL="$server_url/$database"
"$bin/ingest" migrate >/dev/null 2>&1
# A row written by hand needs its day's partition (the service makes its own).
psql "$DATABASE_URL" -qAtc "SELECT create_event_partitions(ARRAY['2026-03-02T07:00:00Z'::timestamptz])" >/dev/null
event_id=$(psql "$DATABASE_URL" -qAtc "INSERT INTO events (sensor_id, observed_at, interval_s, lane, vehicle_count, avg_speed_kmh, occupancy_pct)
                                      VALUES ('A1-north', '2026-03-02T07:00:00Z', 60, 1, 25, 62.5, 14.2) RETURNING id")
# The query tools' data: the sensor's place, and one classified reading in the lane's state.
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO sensors (sensor_id, name, road, direction, lon, lat, lanes, time_zone, updated_at)
VALUES ('A1-north', 'A1 km 12 northbound', 'A1', 'northbound', 13.4, 52.5, 2, 'Europe/Berlin', now());
DELETE FROM queue WHERE event_id = $event_id;
INSERT INTO classifications (event_id, observed_at, label, level_of_service, flow_veh_h_lane,
    density_veh_km_lane, confidence, flags, reasons, classifier_version, classified_at, attempts)
VALUES ($event_id, '2026-03-02T07:00:00Z', 'congested', 'F', 1500, 24, 0.9, '[]', '["test"]', 'test', now(), 1);
SELECT rebuild_lane_state();
SQL

reading='{"sensor_id": "A1-north", "observed_at": "2026-03-02T07:01:00Z", "lane": 1, "vehicle_count": 31, "avg_speed_kmh": 48.0, "occupancy_pct": 19.5, "speed_limit_kmh": 100}'
earlier='{"sensor_id": "A1-north", "observed_at": "2026-03-02T07:00:00Z", "lane": 1, "vehicle_count": 25, "avg_speed_kmh": 62.5, "occupancy_pct": 14.2}'
window='"from": "2026-03-02T06:00:00Z", "to": "2026-03-02T08:00:00Z"'
checks=(
    --expect-tools classify,classify_by_id,classify_batch,traffic_state,list_sensors,sensor_info,sensor_series,find_congestion
    --call classify "{\"event\": $reading, \"history\": [$earlier]}"
    --call classify_batch "{\"events\": [$earlier, $reading, {\"sensor_id\": \"bad id\"}]}"
    --call classify_by_id "{\"id\": $event_id}"
    --call-error classify_by_id '{"id": 987654321}'
    --call-error classify '{"event": {"sensor_id": "A1", "observed_at": "yesterday", "vehicle_count": -3}}'
    --call traffic_state '{"road": "A1", "at": "2026-03-02T07:30:00Z"}'
    --call list_sensors '{"prefix": "A1", "limit": 10}'
    --call sensor_info '{"sensor_id": "A1-north"}'
    --call sensor_series "{\"sensor_id\": \"A1-north\", $window, \"bucket\": \"15m\"}"
    --call find_congestion "{$window, \"road\": \"A1\"}"
    --call-error find_congestion '{"from": "yesterday", "to": "2026-03-02T08:00:00Z"}'
    --call-error sensor_info '{"sensor_id": "nobody"}'
)

status=0
tools=${MCP_TOOLS_DIR:-/tmp/mcp-compliance-tools}
wait_port() {
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
}
agent() { "$tools/venv/bin/python" tests/mcp_agent.py --sensor A1-north --road A1 "$@"; }
# inspect TARGET...: the MCP Inspector CLI reads the resources and gets the prompts; each answer
# must name what it should.
inspect() {
    local cli="$tools/npm/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"
    local failed=0 method expected out
    while IFS='|' read -r expected method; do
        # shellcheck disable=SC2086  # the method's arguments are words
        out=$(HOME="$tools/inspector-home" timeout 120 "$(cat "$tools/.node22")" "$cli" --cli --format json -q $method "$@" 2>&1) || true
        if grep -qF -- "$expected" <<<"$out"; then
            echo "PASS  inspector | $method"
        else
            echo "FAIL  inspector | $method: ${out:0:300}"; failed=1
        fi
    done <<'CHECKS'
traffic://network/state|--method resources/list
traffic://sensors/{sensor_id}|--method resources/templates/list
\"sensor_id\":\"A1-north\"|--method resources/read --uri traffic://sensors/A1-north
\"lanes\":1|--method resources/read --uri traffic://network/state
corridor_report|--method prompts/list
find_congestion|--method prompts/get --prompt-name incident_briefing --prompt-args road=A1 hours=2
list_sensors|--method prompts/get --prompt-name corridor_report --prompt-args road=A1
CHECKS
    return $failed
}
echo "== MCP compliance over stdio"
# MCP hosts start stdio servers with a minimal environment: pass the database as a flag.
bash "$suite/run.sh" --stdio "$classifier stdio --database-url $DATABASE_URL" "${checks[@]}" || status=1
echo "== resources, completions, prompts (official Python SDK) over stdio"
agent --stdio "$classifier stdio --database-url $DATABASE_URL" || status=1
echo "== resources and prompts (MCP Inspector CLI) over stdio"
inspect -- sh -c "exec $classifier stdio --database-url $DATABASE_URL" || status=1

# The same on SQLite, the default deployment: ingest stores the sensor and classifies the
# reading itself, then stops; the classifier opens its file.
echo "== resources, prompts and query tools on SQLite over stdio (Python SDK, Inspector CLI)"
sqlite_dir=$(mktemp -d)
sqlite_url="sqlite://$sqlite_dir/traffic.db"
ingest_port=$((port + 1))
DATABASE_URL="$sqlite_url" INGEST_BIND="127.0.0.1:$ingest_port" RUST_LOG=warn "$bin/ingest" 2>"$sqlite_dir/ingest.log" &
ingest_pid=$!
api="http://127.0.0.1:$ingest_port"
for _ in $(seq 1 100); do curl -fs "$api/v1/health" >/dev/null && break; sleep 0.1; done
curl -fsS -X PUT "$api/v1/sensors/A1-north" -H 'Content-Type: application/json' \
    -d '{"name": "A1 km 12 northbound", "road": "A1", "direction": "northbound", "location": {"lon": 13.4, "lat": 52.5}, "lanes": 2, "time_zone": "Europe/Berlin"}' >/dev/null
sqlite_event=$(curl -fsS -X POST "$api/v1/events" -H 'Content-Type: application/json' -d "$earlier" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 1 100); do
    curl -fs "$api/v1/events/$sqlite_event" | grep -q '"status":"classified"' && break
    sleep 0.1
done
kill "$ingest_pid" && wait "$ingest_pid" 2>/dev/null || true
agent --stdio "$classifier stdio --database-url $sqlite_url" || status=1
inspect -- sh -c "exec $classifier stdio --database-url $sqlite_url" || status=1
echo "== resources, prompts and query tools on SQLite over Streamable HTTP (Python SDK, Inspector CLI)"
sqlite_port=$((port + 2))
"$classifier" serve --bind "127.0.0.1:$sqlite_port" --database-url "$sqlite_url" 2>"$sqlite_dir/serve.log" &
sqlite_server=$!
wait_port "$sqlite_port"
agent --http "http://127.0.0.1:$sqlite_port/mcp" || status=1
inspect --transport http --server-url "http://127.0.0.1:$sqlite_port/mcp" || status=1
kill "$sqlite_server" && wait "$sqlite_server" 2>/dev/null || true
rm -rf "$sqlite_dir"

echo "== MCP compliance over Streamable HTTP"
"$classifier" serve --bind "127.0.0.1:$port" 2>"${TMPDIR:-/tmp}/mcp-classifier-http-$$.log" &
server_pid=$!
wait_port "$port"
bash "$suite/run.sh" --http "http://127.0.0.1:$port/mcp" "${checks[@]}" || status=1
echo "== resources, completions, prompts (official Python SDK) over Streamable HTTP"
agent --http "http://127.0.0.1:$port/mcp" || status=1
echo "== resources and prompts (MCP Inspector CLI) over Streamable HTTP"
inspect --transport http --server-url "http://127.0.0.1:$port/mcp" || status=1

# OAuth: a key of the test's own makes the issuer's key set and signs an access token with both
# scopes; the agent presents it, and a request without one is refused with the way to the
# protected resource metadata.
echo "== the Python SDK with an OAuth access token over Streamable HTTP"
oauth_dir=$(mktemp -d)
oauth_port=$((port + 3))
resource="http://127.0.0.1:$oauth_port/mcp"
token=$("$tools/venv/bin/python" - "$oauth_dir/jwks.json" "$resource" <<'PY'
import json, sys, time
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
key = Ed25519PrivateKey.generate()
public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
public.update(kid="compliance", alg="EdDSA", use="sig")
json.dump({"keys": [public]}, open(sys.argv[1], "w"))
now = int(time.time())
claims = {"iss": "https://issuer.test", "aud": sys.argv[2], "sub": "compliance-agent",
          "iat": now, "exp": now + 600, "scope": "traffic:read traffic:classify"}
print(jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "compliance"}))
PY
)
MCP_OAUTH_ISSUER=https://issuer.test MCP_OAUTH_JWKS="$oauth_dir/jwks.json" MCP_RESOURCE_URL="$resource" \
    "$classifier" serve --bind "127.0.0.1:$oauth_port" --database-url "$DATABASE_URL" 2>"$oauth_dir/serve.log" &
oauth_server=$!
wait_port "$oauth_port"
agent --http "$resource" --bearer "$token" || status=1
refused=$(curl -s -o /dev/null -D - -X POST "$resource" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"ping"}')
if grep -q '^HTTP/1.1 401' <<<"$refused" && grep -qi '^www-authenticate: Bearer resource_metadata=' <<<"$refused"; then
    echo "PASS  no token: 401 with the protected resource metadata's address"
else
    echo "FAIL  no token: $refused"; status=1
fi
kill "$oauth_server" && wait "$oauth_server" 2>/dev/null || true
rm -rf "$oauth_dir"
exit $status
