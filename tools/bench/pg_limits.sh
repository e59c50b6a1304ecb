#!/usr/bin/env bash
# What PostgreSQL alone can do, on this machine, of the work each reading needs, to bound what
# any implementation of this schema can reach:
#   1. COPY of the harness's generated rows into its bare table, and into `events` as migrated,
#      with only the unique reading key, and with the reading key and the queue trigger (no
#      CHECK constraints in those two);
#   2. the claim-and-complete cycle of classification (tools/bench/sql/claim_complete.pgbench:
#      lease 1000 due events, record 1000 results under the lease) at 4 clients on a backlog.
#   tools/bench/pg_limits.sh [HARNESS_DIR]
# Needs PostgreSQL on 127.0.0.1:5432 (BENCH_PG); reuses pg_ceiling.sh's generated rows (CSV).
set -euo pipefail
export PGOPTIONS="${PGOPTIONS:-} --client-min-messages=warning"
cd "$(dirname "$0")/../.."
peers=${1:-../shared/bench-peers/ingest}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
database=bench_pg_limits
db="$pg/$database"
csv=${CSV:-/tmp/bench_ceiling_1000000.csv}
backlog=${BACKLOG:-200000}
clients=4
unique_csv=${TMPDIR:-/tmp}/bench-pg-limits-unique.csv
source tools/bench/lib.sh
trap 'rm -f "$unique_csv"; psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

if [ ! -s "$csv" ]; then
    ROWS=1000000 SKIP_COPY=0 bash "$peers/harness/pg_ceiling.sh" 2 1 "$pg/postgres" >/dev/null
fi
# The generator can repeat a (sensor, lane, time) key, which the reading key refuses.
awk -F, '!seen[$1 FS $2 FS $6]++' "$csv" > "$unique_csv"
rows=$(wc -l < "$unique_csv")
columns="sensor_id, observed_at, vehicle_count, avg_speed_kmh, occupancy_pct, lane"

q() { psql "$db" -qX -v ON_ERROR_STOP=1 "$@" >/dev/null; }
fresh() {  # a new database with the product's schema, as migrated
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" >/dev/null
    for up in migrations/postgres/*/up.sql; do q -f "$up"; done
    csv_partitions "$db" "$unique_csv"
    q -c "ALTER TABLE events ALTER interval_s SET DEFAULT 60"
}
checks() {  # every CHECK constraint of events, as DROP CONSTRAINT clauses
    psql "$db" -AtXc "SELECT string_agg(format('DROP CONSTRAINT %I', conname), ', ')
                        FROM pg_constraint WHERE conrelid = 'events'::regclass AND contype = 'c'"
}
copy_rate() {  # NAME: COPY the rows into events, print NAME=rows/s
    q -c CHECKPOINT
    local t0 t1
    t0=$(date +%s.%N)
    q -c "\\copy events ($columns) FROM '$unique_csv' WITH (FORMAT csv)"
    t1=$(date +%s.%N)
    awk -v n="$rows" -v a="$t0" -v b="$t1" -v name="$1" 'BEGIN { printf "%s=%.0f\n", name, n / (b - a) }'
}

echo "# COPY of $rows rows" >&2
fresh
q -v tbl=events -v persistence= -f "$peers/harness/sql/ceiling_schema.sql"
copy_rate pg_copy_bare_rows_per_s
fresh
copy_rate pg_copy_events_rows_per_s
fresh
q -c "ALTER TABLE events $(checks)" -c "DROP INDEX events_newest_idx" \
  -c "ALTER TABLE events DISABLE TRIGGER events_enqueue"
copy_rate pg_copy_events_key_only_no_checks_rows_per_s
fresh
q -c "ALTER TABLE events $(checks)" -c "DROP INDEX events_newest_idx"
copy_rate pg_copy_events_key_and_queue_no_checks_rows_per_s

echo "# claim and complete, $clients clients, 1000 per claim, backlog of $backlog" >&2
fresh
head -n "$backlog" "$unique_csv" | psql "$db" -qXc "\\copy events ($columns) FROM STDIN WITH (FORMAT csv)"
q -c "UPDATE queue SET next_attempt_at = now() - interval '1 hour'" -c "VACUUM ANALYZE events, queue" -c CHECKPOINT
t0=$(date +%s.%N)
pgbench -n -c "$clients" -j 2 -t $((backlog / 1000 / clients)) -f tools/bench/sql/claim_complete.pgbench "$db" >/dev/null 2>&1
t1=$(date +%s.%N)
classified=$(psql "$db" -AtXc "SELECT count(*) FROM classifications")
awk -v n="$classified" -v a="$t0" -v b="$t1" 'BEGIN { printf "pg_claim_complete_rows_per_s=%.0f\n", n / (b - a) }'
