#!/usr/bin/env bash
# What PostgreSQL alone spends per classified reading under each queue design, on this machine:
# every design stores batches of 500 readings and records a classification for each, the way
# its workers would, at 4 clients for SECONDS (tools/bench/sql/queue/*.pgbench; no ingest
# process, no MCP, no rules). Prints readings/s, PostgreSQL CPU per 1000 readings, the share of
# HOT updates and the size of the tables with their indexes afterwards.
#   tools/bench/queue_designs.sh [SECONDS] ["DESIGNS"]
# Needs PostgreSQL on 127.0.0.1:5432 (BENCH_PG) with its server processes visible in /proc.
set -euo pipefail
export PGOPTIONS="${PGOPTIONS:-} --client-min-messages=warning"
cd "$(dirname "$0")/../.."
secs=${1:-20}
designs=${2:-"stored_only current claimed_at_insert pending_table_hot results_table"}
pg=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
database=bench_queue_designs
db="$pg/$database"
sql=tools/bench/sql/queue
trap 'psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

q() { psql "$db" -qX -v ON_ERROR_STOP=1 "$@" >/dev/null; }
# CPU seconds (user + system) of every PostgreSQL server process so far.
pg_cpu() {
    local ticks
    ticks=$(for pid in $(pgrep -u postgres postgres); do
        awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || true
    done | awk '{ s += $1 } END { print s + 0 }')
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }'
}

printf '%-20s %12s %22s %10s %12s\n' design readings/s "pg_cpu_ms_per_1000" hot_upd% "size_MiB"
for design in $designs; do
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" >/dev/null
    for up in migrations/postgres/*/up.sql; do q -f "$up"; done
    q -f "$sql/setup.sql"
    [ -f "$sql/$design.sql" ] && q -f "$sql/$design.sql"
    q -c "VACUUM ANALYZE" -c CHECKPOINT
    cpu0=$(pg_cpu)
    tps=$(pgbench -n -c 4 -j 2 -T "$secs" -f "$sql/$design.pgbench" "$db" 2>/dev/null \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    cpu1=$(pg_cpu)
    read -r stored hot updated size < <(psql "$db" -AtXF ' ' -c "
        SELECT (SELECT count(*) FROM events),
               coalesce(sum(n_tup_hot_upd), 0), coalesce(sum(n_tup_upd), 0),
               round(sum(pg_total_relation_size(relid)) / 1048576.0, 1)
          FROM pg_stat_user_tables")
    awk -v d="$design" -v tps="$tps" -v n="$stored" -v c0="$cpu0" -v c1="$cpu1" -v hot="$hot" \
        -v upd="$updated" -v size="$size" 'BEGIN {
            printf "%-20s %12.0f %22.1f %10s %12s\n", d, tps * 500, (c1 - c0) * 1e6 / n,
                (upd > 0 ? sprintf("%.0f", 100 * hot / upd) : "-"), size }'
done
