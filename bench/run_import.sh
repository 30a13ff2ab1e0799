#!/usr/bin/env bash
# Bulk import: `salesops import` of a generated year of one sales department (bench/gen_events.py: by default
# 1,000,000 events on 200,000 deals, 20 managers, one pipeline), RUNS times, each into a fresh database and a
# fresh account; then the same file a second time into the same account (everything is a duplicate).
# Reports each run's events/s (the file's events over the import's own time, which is read, check, COPY,
# apply and commit) and the medians. PostgreSQL runs with fsync on (the defaults but max_connections) in a
# temporary directory and is stopped on exit.
#
#   bench/run_import.sh [--runs N] [--events N] [--deals N] [--seed N] [--file FILE.ndjson]
#                       [--no-second] [--no-floor] [--explain] [--keep-db] [--quiet-wait SECONDS] [--no-build]
#                       [--bin SALESOPS] [--timeout SECONDS]
#
#   --runs        imports into a fresh database (default 3)
#   --events      events in the generated file (default 1000000)
#   --deals       deals in it (default a fifth of the events)
#   --seed        generator seed (default 1)
#   --file        import this file instead of generating one
#   --no-second   skip the second import of the same file
#   --no-floor    skip the floor: after the last run's first import, PostgreSQL alone copies the rows that import
#                 wrote (INSERT ... SELECT into an empty table with the same indexes, no foreign keys, no
#                 triggers, rolled back), table by table: the least any import of that file can take to write
#                 them, which with the import's own read and COPY gives the highest rate any import could reach
#   --explain     after the measured runs, one more first import into a fresh database with auto_explain
#                 (log_analyze, triggers, nested statements over 100 ms): the plans and times of the statements inside
#                 salesops_import_apply() go to explain.txt (that import is slower and is not counted)
#   --keep-db     keep the cluster and the last run's database (for EXPLAIN by hand); prints how to reach
#                 it, and stop it yourself with pg_ctl
#   --quiet-wait  before each import, wait up to this many seconds for the machine to be idle (under 10%
#                 busy) so that a build or test beside us does not spoil the run (default 120); the share of
#                 CPU used by other processes during each import is reported
#   --no-build    use build-bench2/salesops as it is
#   --bin         use this salesops binary (implies --no-build), e.g. a build of a proposed change
#   --timeout     stop an import that has not finished after this many seconds (default 1800)
#
# An import that fails (for example on the service's statement timeout) is recorded as failed, with its
# time until the failure and the error, and the runs go on.
#
# Raw outputs and the summary go to bench/results/import-<date>/ (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

RUNS=3
EVENTS=1000000
DEALS=""
SEED=1
FILE=""
SECOND=1
FLOOR=1
EXPLAIN=0
KEEP_DB=0
QUIET_WAIT=120
BUILD=1
BIN=build-bench2/salesops
TIMEOUT=1800

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift ;;
        --events) EVENTS=$2; shift ;;
        --deals) DEALS=$2; shift ;;
        --seed) SEED=$2; shift ;;
        --file) FILE=$2; shift ;;
        --no-second) SECOND=0 ;;
        --no-floor) FLOOR=0 ;;
        --explain) EXPLAIN=1 ;;
        --keep-db) KEEP_DB=1 ;;
        --quiet-wait) QUIET_WAIT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --bin) BIN=$2; BUILD=0; shift ;;
        --timeout) TIMEOUT=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'run_import: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for v in RUNS EVENTS TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, got '${!v}'"
done
[ -z "$DEALS" ] || [[ $DEALS =~ ^[1-9][0-9]*$ ]] || die "--deals must be a positive number"
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed must be a number"
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "--quiet-wait must be a number"
[ -z "$FILE" ] || [ -r "$FILE" ] || die "cannot read $FILE"
[ -z "$FILE" ] || FILE=$(cd "$(dirname "$FILE")" && pwd -P)/$(basename "$FILE")

# ---------------------------------------------------------------------------------------------- state
TMP=""
PG_STARTED=0

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$KEEP_DB" = 1 ] && [ "$rc" = 0 ]; then
        log "kept: PostgreSQL in $PG_DATADIR ($DATABASE_URL); stop it with: pg_ctl -D $PG_DATADIR stop"
        log "(as root: runuser -u postgres -- $PG_BIN/pg_ctl -D $PG_DATADIR stop), then rm -rf $TMP"
        exit 0
    fi
    if [ "${PG_STARTED:-0}" = 1 ]; then
        pg_stop
    fi
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        rm -rf -- "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

OUT="bench/results/import-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
log "results in $OUT"

release_build build-bench2 "$OUT"

TMP=$(mktemp -d /tmp/salesops-import.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$TMP"
fi
pg_start "$TMP/pgdata" || die "could not start PostgreSQL"

# ------------------------------------------------------------------------------------------------ data
if [ -z "$FILE" ]; then
    FILE="$TMP/events.ndjson"
    log "generating $EVENTS events (seed $SEED)"
    gen_args=(--events "$EVENTS" --seed "$SEED")
    [ -z "$DEALS" ] || gen_args+=(--deals "$DEALS")
    python3 bench/gen_events.py "${gen_args[@]}" >"$FILE" 2> >(tee "$OUT/gen_events.log" >&2) \
        || die "gen_events failed"
    # the process substitution's tee may still be writing
    sleep 0.2
fi
LINES=$(wc -l <"$FILE")
BYTES=$(wc -c <"$FILE")
log "file: $LINES lines, $((BYTES / 1048576)) MiB"

# ------------------------------------------------------------------------------------- CPU accounting
# busy_ticks, all_ticks, ticks_of, postgres_ticks and wait_quiet (QUIET_WAIT) come from scripts/lib.sh.

# import_measured NAME ACCOUNT: runs `salesops import`, its JSON summary to OUT/NAME.json, stderr to
# OUT/NAME.log, then appends the wall time and the CPU used (busy: the whole machine; import: the client;
# postgres: the server; in clock ticks) to OUT/NAME.json's companion OUT/NAME.cpu.
import_measured() {
    local name=$1 account=$2 quiet b0 a0 c0 pg0 b1 a1 c1 pg1 t0 t1 rc=0
    quiet=$(wait_quiet)
    b0=$(busy_ticks); a0=$(all_ticks); c0=$(ticks_of --children $$); pg0=$(postgres_ticks); t0=$(date +%s.%N)
    timeout "$TIMEOUT" "$BIN" import --account "$account" "$FILE" >"$OUT/$name.json" 2>"$OUT/$name.log" || rc=$?
    t1=$(date +%s.%N)
    if [ "$rc" = 124 ]; then
        printf 'import failed: timed out after %s s (--timeout)\n' "$TIMEOUT" >>"$OUT/$name.log"
    fi
    if [ "$rc" != 0 ]; then
        log "$name: salesops import FAILED (exit $rc): $(grep -m 1 'import failed' "$OUT/$name.log" || tail -n 1 "$OUT/$name.log")"
    fi; b1=$(busy_ticks); a1=$(all_ticks); c1=$(ticks_of --children $$); pg1=$(postgres_ticks)
    printf 'hz=%s rc=%s before_busy_pct=%s wall=%s busy=%s all=%s import=%s postgres=%s\n' "$(getconf CLK_TCK)" \
        "$rc" "$quiet" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" $((b1 - b0)) $((a1 - a0)) $((c1 - c0)) $((pg1 - pg0)) \
        >"$OUT/$name.cpu"
    [ "$rc" != 0 ] || log "$name: $(tail -n 1 "$OUT/$name.log")"
    return "$rc"
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "memory: $(awk '/MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "postgresql: $("$PG_BIN/postgres" --version) (fsync on, otherwise defaults)"
    echo "salesops: $("$BIN" --version)"
    changes=$(git diff HEAD -- src include migrations meson.build 2>/dev/null | sha256sum | cut -c1-12)
    [ "$(git diff HEAD -- src include migrations meson.build 2>/dev/null | wc -c)" -gt 0 ] || changes=""
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)${changes:+ + uncommitted changes $changes}"
    echo "file: $LINES events, $BYTES bytes${DEALS:+, $DEALS deals}, seed $SEED"
    echo "runs: $RUNS"
} >"$OUT/env.txt"

# ------------------------------------------------------------------------------------------------ runs
for run in $(seq 1 "$RUNS"); do
    db="salesops_import_$run"
    pg_psql postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" >/dev/null
    pg_create_db "$db" || die "could not create $db"
    DATABASE_URL=$(pg_url "$db")
    export DATABASE_URL
    "$BIN" migrate >"$OUT/migrate-$run.log" 2>&1 || { cat "$OUT/migrate-$run.log" >&2; die "migrate failed"; }
    mapfile -t acct < <("$BIN" account create --name "Import bench $run" | account_fields)
    account=${acct[0]}
    [ -n "$account" ] || die "no account id"
    pg_psql "$db" -c "CHECKPOINT" >/dev/null
    log "run $run/$RUNS: import into a fresh database (account $account)"
    if ! import_measured "first-$run" "$account"; then
        pg_psql postgres -c "DROP DATABASE $db" >/dev/null
        continue
    fi
    # what the import made, for the record (and a check that it made it)
    pg_psql "$db" -tA -F ' ' >"$OUT/counts-$run.txt" <<SQL
SELECT 'deals', count(*) FROM deals WHERE account_id = $account
UNION ALL SELECT 'deals_won', count(*) FROM deals WHERE account_id = $account AND status = 'won'
UNION ALL SELECT 'deals_lost', count(*) FROM deals WHERE account_id = $account AND status = 'lost'
UNION ALL SELECT 'deal_changes', count(*) FROM deal_changes WHERE account_id = $account
UNION ALL SELECT 'deal_history', count(*) FROM deal_history WHERE account_id = $account
UNION ALL SELECT 'tasks', count(*) FROM tasks WHERE account_id = $account
UNION ALL SELECT 'tasks_completed', count(*) FROM tasks WHERE account_id = $account AND completed_at IS NOT NULL
UNION ALL SELECT 'task_history', count(*) FROM task_history WHERE account_id = $account
UNION ALL SELECT 'calls', count(*) FROM calls WHERE account_id = $account
UNION ALL SELECT 'notes', count(*) FROM notes WHERE account_id = $account
UNION ALL SELECT 'managers', count(*) FROM managers WHERE account_id = $account
UNION ALL SELECT 'stages', count(*) FROM stages WHERE account_id = $account
UNION ALL SELECT 'loss_reasons', count(*) FROM loss_reasons WHERE account_id = $account
UNION ALL SELECT 'inbox_' || state, count(*) FROM inbox WHERE account_id = $account GROUP BY state
UNION ALL SELECT 'database_mb', pg_database_size(current_database()) / 1048576;
SQL
    if [ "$FLOOR" = 1 ] && [ "$run" = "$RUNS" ]; then
        log "run $run/$RUNS: the floor: PostgreSQL alone copies the rows the import wrote"
        for t in inbox deals deal_changes deal_history tasks task_history calls notes kpi_contrib; do
            ms=$(pg_psql "$db" -At <<SQL | awk '/^Time:/ { n++; if (n == 3) print $2 }'
\timing on
BEGIN;
CREATE TABLE floor_copy (LIKE $t INCLUDING ALL);
INSERT INTO floor_copy SELECT * FROM $t WHERE account_id = $account;
ROLLBACK;
SQL
            )
            printf '%s %s\n' "$t" "$ms"
        done >"$OUT/floor-$run.txt"
    fi
    if [ "$SECOND" = 1 ]; then
        pg_psql "$db" -c "VACUUM ANALYZE" >/dev/null
        log "run $run/$RUNS: the same file again into the same account"
        import_measured "second-$run" "$account" || true
    fi
    if [ "$run" -lt "$RUNS" ] || [ "$KEEP_DB" = 0 ]; then
        pg_psql postgres -c "DROP DATABASE $db" >/dev/null
    fi
done

if [ "$EXPLAIN" = 1 ]; then
    db=salesops_import_explain
    pg_psql postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" >/dev/null
    pg_create_db "$db" || die "could not create $db"
    DATABASE_URL=$(pg_url "$db")
    export DATABASE_URL
    "$BIN" migrate >"$OUT/migrate-explain.log" 2>&1 || { cat "$OUT/migrate-explain.log" >&2; die "migrate failed"; }
    mapfile -t acct < <("$BIN" account create --name "Import bench explain" | account_fields)
    pg_psql postgres >/dev/null <<SQL
ALTER DATABASE $db SET session_preload_libraries = 'auto_explain';
ALTER DATABASE $db SET auto_explain.log_min_duration = '100ms';
ALTER DATABASE $db SET auto_explain.log_analyze = on;
ALTER DATABASE $db SET auto_explain.log_buffers = on;
ALTER DATABASE $db SET auto_explain.log_nested_statements = on;
ALTER DATABASE $db SET auto_explain.log_triggers = on;
SQL
    log_start=$(stat -c %s "$PG_DATADIR/server.log")
    log "explain: one more import with auto_explain (not counted)"
    timeout "$TIMEOUT" "$BIN" import --account "${acct[0]}" "$FILE" >"$OUT/explain-import.json" \
        2>"$OUT/explain-import.log" \
        || log "explain: the import failed: $(grep -m 1 'import failed' "$OUT/explain-import.log")"
    tail -c +"$((log_start + 1))" "$PG_DATADIR/server.log" >"$OUT/explain.txt"
    # one line per statement: its duration and first line, slowest first
    awk '/duration: [0-9.]+ ms  plan:/ { d = $0; sub(/.*duration: /, "", d); sub(/ ms.*/, "", d); getline;
         sub(/^[ \t]*Query Text: /, ""); printf "%10.1f ms  %s\n", d, substr($0, 1, 150) }' "$OUT/explain.txt" \
        | sort -rn >"$OUT/explain-top.txt" || true
    pg_psql postgres -c "DROP DATABASE $db" >/dev/null
    log "explain: $OUT/explain.txt, slowest statements in $OUT/explain-top.txt"
fi

# --------------------------------------------------------------------------------------------- summary
python3 - "$OUT" "$RUNS" "$SECOND" "$LINES" >"$OUT/summary.txt" <<'PY'
import json, re, statistics, sys
out, runs, second, lines = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])

def read(name):
    try:
        cpu = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", open(f"{out}/{name}.cpu").read())}
    except FileNotFoundError:
        return None  # not run: the first import of that run failed
    log = open(f"{out}/{name}.log").read()
    if cpu["rc"] != 0:
        m = re.search(r"import failed: (.*)", log)
        return {"failed": True, "wall": cpu["wall"], "error": m.group(1) if m else log.strip()[-200:]}
    summary = json.load(open(f"{out}/{name}.json"))
    summary["failed"] = False
    m = re.search(r"events read and checked in ([0-9.]+) s", log)
    summary["read_s"] = float(m.group(1)) if m else float("nan")
    summary["wall"] = cpu["wall"]
    summary["rate"] = lines / summary["seconds"]
    hz = cpu["hz"]
    summary["cpu_import"] = cpu["import"] / hz
    summary["cpu_postgres"] = cpu["postgres"] / hz
    other = cpu["busy"] - cpu["import"] - cpu["postgres"]
    summary["other_pct"] = 100.0 * max(other, 0) / max(cpu["all"], 1)
    summary["idle_pct"] = 100.0 * (cpu["all"] - cpu["busy"]) / max(cpu["all"], 1)
    return summary

print(open(f"{out}/env.txt").read().rstrip())
print()
kinds = ["first"] + (["second"] if second else [])
res = {k: [read(f"{k}-{r}") for r in range(1, runs + 1)] for k in kinds}
print(f"{'run':>4} {'import':>7} {'accepted':>9} {'dupl.':>8} {'rejected':>8} {'read+COPY s':>11} {'total s':>8}"
      f" {'events/s':>9} {'CPU import s':>12} {'CPU postgres s':>14} {'other %':>8} {'idle %':>7}")
for k in kinds:
    for r, s in enumerate(res[k], 1):
        if s is None:
            continue
        if s["failed"]:
            print(f"{r:>4} {k:>7} FAILED after {s['wall']:.1f} s: {s['error']}")
            continue
        print(f"{r:>4} {k:>7} {s['accepted']:>9} {s['duplicates']:>8} {s['rejected']:>8} {s['read_s']:>11.1f}"
              f" {s['seconds']:>8.1f} {s['rate']:>9.0f} {s['cpu_import']:>12.1f} {s['cpu_postgres']:>14.1f}"
              f" {s['other_pct']:>7.1f}% {s['idle_pct']:>6.1f}%")
print()
ok = {k: [s for s in res[k] if s is not None and not s["failed"]] for k in kinds}
for k in kinds:
    label = "first import (fresh account)" if k == "first" else "second import (all duplicates)"
    failed = sum(1 for s in res[k] if s is not None and s["failed"])
    if not ok[k]:
        print(f"{label}: every run failed")
        continue
    secs = statistics.median(s["seconds"] for s in ok[k])
    rate = statistics.median(s["rate"] for s in ok[k])
    print(f"median {label}: {secs:.1f} s, {rate:.0f} events/s"
          + (f" (of {len(ok[k])} runs; {failed} failed)" if failed else ""))
first = statistics.median(s["rate"] for s in ok["first"]) if ok["first"] else 0
print(f"aim: 50000 events/s or more on the first import: {'met' if first >= 50000 else 'NOT met'}")
print("(events/s: the file's events over the import's own time: read, check, COPY, apply, commit;"
      " 'other %': CPU used by other processes on the machine during the import)")
print()
for r in range(runs, 0, -1):
    try:
        rows = [line.split() for line in open(f"{out}/floor-{r}.txt") if line.strip()]
    except FileNotFoundError:
        continue
    s = res["first"][r - 1]
    copy_s = sum(float(ms) for _, ms in rows) / 1000
    print(f"floor (run {r}): PostgreSQL alone copying the rows the first import wrote, table by table"
          " (same indexes, no foreign keys, no triggers):")
    print("  " + ", ".join(f"{t} {float(ms) / 1000:.1f} s" for t, ms in rows) + f"; in all {copy_s:.1f} s")
    if s is not None and not s["failed"]:
        low = copy_s + s["read_s"]
        print(f"  with the import's own read and COPY ({s['read_s']:.1f} s): {low:.1f} s, at most"
              f" {lines / low:.0f} events/s for any import that writes these rows; this one took"
              f" {s['seconds']:.1f} s ({s['seconds'] / low:.1f} x the floor)")
    print()
    break
for r in range(1, runs + 1):
    try:
        counts = open(f"{out}/counts-{r}.txt").read().rstrip()
    except FileNotFoundError:
        continue
    print(f"what the first import made (run {r}):")
    print(counts)
    break
PY
cat "$OUT/summary.txt"
log "raw outputs and summary in $OUT"
