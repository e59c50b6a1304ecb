#!/usr/bin/env bash
# The supply-chain policy of deny.toml: licences, duplicate versions, sources, and RustSec's
# advisories. The advisory database is a git repository; where it cannot be fetched (a machine
# without access to it), a copy already on the machine is used, and with none the advisories
# check is reported as not run, and why — the other three still run.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deny >/dev/null 2>&1 || cargo install cargo-deny --locked

cargo deny --workspace check licenses bans sources

db_dir=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs
heads() { for db in "$db_dir"/advisory-db-*; do [ -d "$db" ] && git -C "$db" rev-parse HEAD; done 2>/dev/null || true; }
before=$(heads)
# A fetch that cannot reach the database still exits 0; compare what is on disk instead.
timeout 120 cargo deny --workspace fetch db >/dev/null 2>&1 || true
after=$(heads)
if [ -z "$after" ]; then
    echo "advisories: NOT CHECKED: the advisory database could not be fetched and no copy is on this machine"
    exit 0
fi
[ "$before" = "$after" ] && state="not updated by this run" || state="updated by this run"
for db in "$db_dir"/advisory-db-*; do
    echo "advisory database $(basename "$db"), $state: newest advisory commit $(git -C "$db" log -1 --format=%cs)"
done
cargo deny --workspace --offline check advisories
