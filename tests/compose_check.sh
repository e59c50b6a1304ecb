#!/usr/bin/env bash
# Checks the Compose files users run (compose.yaml, .devcontainer/compose.yaml) without Docker:
# against the Compose Specification's JSON Schema (vendored in tests/fixtures/compose-spec) and
# against the code (tests/compose_check.py says what).
#   tests/compose_check.sh
# Environment: COMPOSE_CHECK_VENV, the venv with PyYAML and jsonschema (default
# ${TMPDIR:-/tmp}/smart-traffic-compose-check; created on first use, outside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

PYYAML_VERSION=6.0.2
JSONSCHEMA_VERSION=4.23.0
venv=${COMPOSE_CHECK_VENV:-${TMPDIR:-/tmp}/smart-traffic-compose-check}

python=$(command -v python3.11 || command -v python3 || true)
[ -n "$python" ] || { echo "compose_check: python3 is required" >&2; exit 2; }
installed=$("$venv/bin/python" -c "
from importlib.metadata import version
print(version('PyYAML'), version('jsonschema'))" 2>/dev/null || true)
if [ "$installed" != "$PYYAML_VERSION $JSONSCHEMA_VERSION" ]; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "PyYAML==$PYYAML_VERSION" "jsonschema==$JSONSCHEMA_VERSION"
fi

# The workspace's feature set, as the test run built them: nothing is compiled or linked again.
cargo build --quiet --workspace --bins
"$venv/bin/python" tests/compose_check.py "${CARGO_TARGET_DIR:-target}/debug" \
    compose.yaml compose.yaml,.devcontainer/compose.yaml
