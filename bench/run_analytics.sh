#!/usr/bin/env bash
# Analytics on a large account: the latency of GET /api/v1/analytics/managers, /summary and /funnel for the last
# full calendar month and the last full quarter, and of /checklist?weeks=8, on one account of 200 managers,
# 1,000,000 deals (about 5,000,000 history rows), 3,000,000 tasks and 3,000,000 calls over a year
# (bench/gen_analytics.sql); in the same run, the time of the plain SQL a naive implementation would run for
# the month's managers report (bench/naive_kpis.sql), of the service's own SQL (salesops_kpis) for the same
# month, and EXPLAIN (ANALYZE, BUFFERS) of the latter with its most expensive plan nodes.
#
#   bench/run_analytics.sh [--runs N] [--checklist-runs N] [--sql-runs N] [--deals N] [--managers N]
#                          [--tasks N] [--calls N] [--statement-timeout-ms MS] [--max-time SECONDS]
#                          [--quiet-wait SECONDS] [--no-build]
#
#   --runs        requests of each endpoint and period, one after another with curl (default 7); the median
#                 is reported, every sample is printed, none is discarded (the first is a cold one)
#   --checklist-runs  the same for /checklist?weeks=8 (default: --runs)
#   --sql-runs    runs of each timed SQL statement in psql with \timing (default 3; median)
#   --deals, --managers, --tasks, --calls
#                 size of the generated account (defaults 1000000, 200, 3000000, 3000000)
#   --statement-timeout-ms  SALESOPS_STATEMENT_TIMEOUT_MS of the service (default 0: none, so that a slow
#                 report is measured rather than cancelled; the service's own default is 30000)
#   --max-time    curl's limit for one request (default 900 s); a request over it counts as failed
#   --quiet-wait  before each series, wait up to this many seconds for the machine to be idle (under 10 %
#                 busy; default 120); the busy share before each series is recorded
#   --no-build    use build-bench-analytics/salesops as it is
#
# Everything runs on a fresh private PostgreSQL (fsync, synchronous_commit and full_page_writes off, otherwise
# its defaults; the settings are written to env.txt) in a temporary directory, and one `salesops serve`
# (release build, default threads). Both are stopped on exit. Raw outputs (generation log, every response
# body of the first sample, all samples, psql outputs, the plans) and summary.txt go to
# bench/results/analytics-<date>/ (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

RUNS=7
CHECKLIST_RUNS=""
SQL_RUNS=3
STATEMENT_TIMEOUT_MS=0
DEALS=1000000
MANAGERS=200
TASKS=3000000
CALLS=3000000
MAX_TIME=900
QUIET_WAIT=120
BUILD=1

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift ;;
        --checklist-runs) CHECKLIST_RUNS=$2; shift ;;
        --statement-timeout-ms) STATEMENT_TIMEOUT_MS=$2; shift ;;
        --sql-runs) SQL_RUNS=$2; shift ;;
        --deals) DEALS=$2; shift ;;
        --managers) MANAGERS=$2; shift ;;
        --tasks) TASKS=$2; shift ;;
        --calls) CALLS=$2; shift ;;
        --max-time) MAX_TIME=$2; shift ;;
        --quiet-wait) QUIET_WAIT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'run_analytics: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for v in RUNS SQL_RUNS DEALS MANAGERS TASKS CALLS MAX_TIME; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, got '${!v}'"
done
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "--quiet-wait must be a number, got '$QUIET_WAIT'"
[[ $STATEMENT_TIMEOUT_MS =~ ^[0-9]+$ ]] || die "--statement-timeout-ms must be a number"
CHECKLIST_RUNS=${CHECKLIST_RUNS:-$RUNS}
[[ $CHECKLIST_RUNS =~ ^[1-9][0-9]*$ ]] || die "--checklist-runs must be a positive number"

# ------------------------------------------------------------------------------------------ packages
need=(postgresql meson ninja-build pkg-config gcc libc6-dev libmicrohttpd-dev libjansson-dev libpq-dev libssl-dev
    python3 curl)
need_packages "${need[@]}"

# --------------------------------------------------------------------------------------------- state
TMP=""
SERVE_PID=""
PG_STARTED=0

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$SERVE_PID" salesops
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

OUT="bench/results/analytics-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
log "results in $OUT"

# --------------------------------------------------------------------------------------------- build
BIN=build-bench-analytics/salesops
release_build build-bench-analytics "$OUT"

# ---------------------------------------------------------------------------------------- PostgreSQL
TMP=$(mktemp -d /tmp/salesops-analytics.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$TMP"
fi
pg_start "$TMP/pgdata" --no-fsync || die "could not start PostgreSQL"
DB=salesops_analytics
pg_create_db "$DB" || die "could not create $DB"
DATABASE_URL=$(pg_url "$DB")
export DATABASE_URL
PSQL="$PG_BIN/psql"
"$BIN" migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log" >&2; die "salesops migrate failed"; }
mapfile -t acct < <("$BIN" account create --name "Analytics bench" --timezone Europe/Moscow | account_fields)
ACCOUNT_ID=${acct[0]} API_KEY=${acct[1]}
[ -n "$API_KEY" ] || die "account create printed no api key"
q() { # q SQL: the rows, unaligned, fields separated by "|"
    pg_psql "$DB" -tA -c "$1"
}

# ---------------------------------------------------------------------------------------------- data
log "generating: $MANAGERS managers, $DEALS deals, $TASKS tasks, $CALLS calls in account $ACCOUNT_ID (log: $OUT/gen.log)"
gen_start=$(date +%s.%N)
"$PSQL" -X -v ON_ERROR_STOP=1 -v account="$ACCOUNT_ID" -v deals="$DEALS" -v managers="$MANAGERS" \
    -v tasks="$TASKS" -v calls="$CALLS" -f bench/gen_analytics.sql "$DATABASE_URL" >"$OUT/gen.log" 2>&1 || {
    tail -n 30 "$OUT/gen.log" >&2
    die "generation failed (log: $OUT/gen.log)"
}
GEN_S=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$gen_start" "$(date +%s.%N)")
log "data generated in $GEN_S s"
grep -E '^== |^Time:|^INSERT|^SELECT [0-9]' "$OUT/gen.log" >"$OUT/gen_timings.txt" || true
q "CHECKPOINT" >/dev/null
PIPELINE_ID=$(q "SELECT id FROM pipelines WHERE account_id = $ACCOUNT_ID AND external_id = 'ab-pipeline'")
[ -n "$PIPELINE_ID" ] || die "no generated pipeline"
q "SELECT 'managers', count(*) FROM managers WHERE account_id = $ACCOUNT_ID AND role = 'manager'
   UNION ALL SELECT 'heads', count(*) FROM managers WHERE account_id = $ACCOUNT_ID AND role = 'head'
   UNION ALL SELECT 'deals', count(*) FROM deals WHERE account_id = $ACCOUNT_ID
   UNION ALL SELECT 'deal_history', count(*) FROM deal_history WHERE account_id = $ACCOUNT_ID
   UNION ALL SELECT 'stage_moves', count(*) FROM deal_history WHERE account_id = $ACCOUNT_ID
                                                                AND from_stage_id IS NOT NULL
   UNION ALL SELECT 'deal_changes', count(*) FROM deal_changes WHERE account_id = $ACCOUNT_ID
   UNION ALL SELECT 'tasks', count(*) FROM tasks WHERE account_id = $ACCOUNT_ID
   UNION ALL SELECT 'task_history', count(*) FROM task_history WHERE account_id = $ACCOUNT_ID
   UNION ALL SELECT 'calls', count(*) FROM calls WHERE account_id = $ACCOUNT_ID
   UNION ALL SELECT 'database_bytes', pg_database_size(current_database())" | tr '|' '=' >"$OUT/counts.txt"
q "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class
   WHERE relname IN ('deals', 'deal_history', 'deal_changes', 'tasks', 'task_history', 'calls') ORDER BY 1" \
    | tr '|' '=' >"$OUT/table_sizes.txt"

# ------------------------------------------------------------------------------------------- service
SERVE_PORT=$(free_port)
URL="http://127.0.0.1:$SERVE_PORT"
SALESOPS_LISTEN="127.0.0.1:$SERVE_PORT" SALESOPS_LOG_LEVEL=warn SALESOPS_MIGRATE_ON_START=false \
    SALESOPS_STATEMENT_TIMEOUT_MS=$STATEMENT_TIMEOUT_MS "$BIN" serve >"$OUT/service.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do
    kill -0 "$SERVE_PID" 2>/dev/null || die "salesops exited (see $OUT/service.log)"
    curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "$URL/healthz" || die "salesops did not answer $URL/healthz"
log "salesops serving on $URL (pid $SERVE_PID)"

# ------------------------------------------------------------------------------------------- periods
# the last full calendar month and the last full quarter before today, in the account's zone
read -r TODAY MONTH_FROM MONTH_TO QUARTER_FROM QUARTER_TO < <(
    q "SELECT (now() AT TIME ZONE timezone)::date FROM accounts WHERE id = $ACCOUNT_ID" | python3 -c '
import datetime, sys
today = datetime.date.fromisoformat(sys.stdin.read().strip())
month_to = today.replace(day=1) - datetime.timedelta(days=1)
month_from = month_to.replace(day=1)
q_start = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
quarter_to = q_start - datetime.timedelta(days=1)
quarter_from = quarter_to.replace(month=(quarter_to.month - 1) // 3 * 3 + 1, day=1)
print(today, month_from, month_to, quarter_from, quarter_to)')
log "today $TODAY; month $MONTH_FROM..$MONTH_TO; quarter $QUARTER_FROM..$QUARTER_TO; pipeline $PIPELINE_ID"
# the month's bounds as the service computes them (accounts.timezone; as_of = end - 1 s, or now)
IFS='|' read -r M_START M_END M_AS_OF < <(q "SELECT s, e, least(e - interval '1 second', now()) FROM (
    SELECT ('$MONTH_FROM'::date::timestamp AT TIME ZONE a.timezone) AS s,
           (('$MONTH_TO'::date + 1)::timestamp AT TIME ZONE a.timezone) AS e
    FROM accounts a WHERE a.id = $ACCOUNT_ID) x")

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "postgresql: $("$PG_BIN/postgres" --version)"
    echo "postgresql settings: $(q "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name)
        FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers',
        'work_mem', 'effective_cache_size', 'random_page_cost', 'max_parallel_workers_per_gather', 'jit',
        'jit_above_cost', 'max_wal_size', 'maintenance_work_mem', 'max_connections')")"
    echo "salesops: $("$BIN" --version) (release build, default threads, SALESOPS_STATEMENT_TIMEOUT_MS=$STATEMENT_TIMEOUT_MS)"
    changes=$(git diff HEAD -- src include migrations meson.build 2>/dev/null | sha256sum | cut -c1-12)
    [ "$(git diff HEAD -- src include migrations meson.build 2>/dev/null | wc -c)" -gt 0 ] || changes=""
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)${changes:+ + uncommitted changes $changes}"
    [ "$BUILD" = 1 ] || echo "binary: not rebuilt (--no-build), built $(date -r "$BIN" '+%Y-%m-%d %H:%M:%S')"
    echo "account: $ACCOUNT_ID (Europe/Moscow), pipeline $PIPELINE_ID; generation: $GEN_S s"
    echo "requested size: managers=$MANAGERS deals=$DEALS tasks=$TASKS calls=$CALLS"
    echo "rows: $(tr '\n' ' ' <"$OUT/counts.txt")"
    echo "table sizes (with indexes): $(tr '\n' ' ' <"$OUT/table_sizes.txt")"
    echo "today: $TODAY; month: $MONTH_FROM..$MONTH_TO [$M_START, $M_END) as_of $M_AS_OF;" \
        "quarter: $QUARTER_FROM..$QUARTER_TO"
    echo "runs: $RUNS requests per endpoint and period, $CHECKLIST_RUNS of the checklist (curl, one after another);" \
        "$SQL_RUNS runs per SQL statement"
} >"$OUT/env.txt"
cat "$OUT/env.txt" >&2

# ------------------------------------------------------------------------------------------- requests
# cpu_mark: busy ticks of the machine, of salesops, of PostgreSQL and of the clients this script reaped
cpu_mark() {
    echo "$(busy_ticks) $(ticks_of "$SERVE_PID") $(postgres_ticks) $(ticks_of --children $$)"
}
# cpu_line NAME QUIET MARK_BEFORE: a line in OUT/cpu.txt with the ticks used since MARK_BEFORE; other = what
# neither the service, PostgreSQL nor our clients used (a build or a test beside us)
cpu_line() {
    local name=$1 quiet=$2 b0 s0 p0 c0 b1 s1 p1 c1
    read -r b0 s0 p0 c0 <<<"$3"
    read -r b1 s1 p1 c1 <<<"$(cpu_mark)"
    echo "$name hz=$(getconf CLK_TCK) busy_before_pct=$quiet busy=$((b1 - b0)) salesops=$((s1 - s0))" \
        "postgres=$((p1 - p0)) client=$((c1 - c0)) other=$((b1 - b0 - (s1 - s0) - (p1 - p0) - (c1 - c0)))" \
        >>"$OUT/cpu.txt"
}

# series NAME PATH [N]: N (default RUNS) requests one after another; a line "NAME i status seconds" per request in
# OUT/samples.txt, the first response body in OUT/NAME.json, the CPU used during the series in OUT/cpu.txt
series() {
    local name=$1 path=$2 n=${3:-$RUNS} i out quiet mark
    quiet=$(wait_quiet)
    mark=$(cpu_mark)
    for i in $(seq 1 "$n"); do
        kill -0 "$SERVE_PID" 2>/dev/null || die "salesops is gone (see $OUT/service.log)"
        out=$(curl -sS -o "$TMP/body" -w '%{http_code} %{time_total}' --max-time "$MAX_TIME" \
            -H "Authorization: Bearer $API_KEY" "$URL$path" 2>>"$OUT/curl.log") || out="000 $MAX_TIME"
        echo "$name $i $out" >>"$OUT/samples.txt"
        [ "$i" != 1 ] || cp "$TMP/body" "$OUT/$name.json" 2>/dev/null || true
        if [ "${out%% *}" != 200 ]; then
            log "$name request $i: status ${out%% *}"
            cp "$TMP/body" "$OUT/$name.error-$i.json" 2>/dev/null || true
        fi
        log "$name $i/$n: $out"
    done
    cpu_line "$name" "$quiet" "$mark"
}

: >"$OUT/samples.txt"
: >"$OUT/cpu.txt"
V1=/api/v1/analytics
series managers_month "$V1/managers?from=$MONTH_FROM&to=$MONTH_TO"
series summary_month "$V1/summary?from=$MONTH_FROM&to=$MONTH_TO"
series funnel_month "$V1/funnel?pipeline_id=$PIPELINE_ID&from=$MONTH_FROM&to=$MONTH_TO"
series managers_quarter "$V1/managers?from=$QUARTER_FROM&to=$QUARTER_TO"
series summary_quarter "$V1/summary?from=$QUARTER_FROM&to=$QUARTER_TO"
series funnel_quarter "$V1/funnel?pipeline_id=$PIPELINE_ID&from=$QUARTER_FROM&to=$QUARTER_TO"
series checklist_8w "$V1/checklist?weeks=8" "$CHECKLIST_RUNS"

# ------------------------------------------------------------------------------------------------ SQL
# sql_timed NAME FILE [PGOPTIONS]: the statement in FILE, SQL_RUNS times in one psql session with \timing; the
# output in OUT/NAME.out (rows unaligned, then "Time: ..." after each run)
sql_timed() {
    local name=$1 file=$2 options=${3:-} quiet mark
    quiet=$(wait_quiet)
    mark=$(cpu_mark)
    log "SQL: $name, $SQL_RUNS runs"
    {
        printf '%s\n' '\timing on'
        for _ in $(seq 1 "$SQL_RUNS"); do printf '\\i %s\n' "$file"; done
    } >"$TMP/$name.psql"
    PGOPTIONS=$options "$PSQL" -X -At -v ON_ERROR_STOP=1 -v account="$ACCOUNT_ID" -v start="$M_START" \
        -v end="$M_END" -v as_of="$M_AS_OF" -f "$TMP/$name.psql" "$DATABASE_URL" >"$OUT/$name.out" 2>&1 || {
        tail -n 20 "$OUT/$name.out" >&2
        die "SQL $name failed"
    }
    cpu_line "$name" "$quiet" "$mark"
    log "SQL: $name: $(grep '^Time:' "$OUT/$name.out" | sed 's/^Time: //; s/ ms.*//' | tr '\n' ' ')ms"
}
KPIS_SQL="SELECT * FROM salesops_kpis(:account, :'start'::timestamptz, :'end'::timestamptz, :'as_of'::timestamptz);"
echo "$KPIS_SQL" >"$TMP/kpis.sql"
sql_timed naive_month bench/naive_kpis.sql
sql_timed kpis_sql_month "$TMP/kpis.sql"
sql_timed kpis_sql_month_jit_off "$TMP/kpis.sql" "-c jit=off"
# the naive rows against the service's (first run of each)
first_rows() { awk '/^Time:/ { exit } /^Timing is/ { next } { print }' "$1"; }
if diff <(first_rows "$OUT/naive_month.out") <(first_rows "$OUT/kpis_sql_month.out") >"$OUT/naive_vs_kpis.diff"; then
    NAIVE_SAME="yes ($(first_rows "$OUT/naive_month.out" | wc -l) manager rows identical)"
else
    NAIVE_SAME="NO (see naive_vs_kpis.diff)"
fi
log "naive rows equal to salesops_kpis rows: $NAIVE_SAME"

log "EXPLAIN (ANALYZE, BUFFERS) of the month's salesops_kpis (as served, then with jit off)"
for variant in served jit_off; do
    options=""
    [ "$variant" = served ] || options="-c jit=off"
    for format in text json; do
        fmt=""
        [ "$format" = text ] || fmt=", FORMAT JSON"
        PGOPTIONS=$options "$PSQL" -X -At -v ON_ERROR_STOP=1 -v account="$ACCOUNT_ID" -v start="$M_START" \
            -v end="$M_END" -v as_of="$M_AS_OF" "$DATABASE_URL" <<<"EXPLAIN (ANALYZE, BUFFERS$fmt) $KPIS_SQL" \
            >"$OUT/explain_kpis_month_$variant.$format" 2>&1 || die "EXPLAIN failed"
    done
done

# the most expensive nodes: each node's own time (its actual time x loops less its children's; the plan of a
# CTE is charged to itself, not to the node it hangs under; a CTE Scan less the CTE's plan)
python3 - "$OUT" >"$OUT/plan_top_nodes.txt" <<'PY'
import json, sys
out = sys.argv[1]
for variant in ("served", "jit_off"):
    doc = json.load(open(f"{out}/explain_kpis_month_{variant}.json"))[0]
    root = doc["Plan"]
    ctes = {}
    def collect(n):
        if n.get("Subplan Name", "").startswith("CTE "):
            ctes[n["Subplan Name"][4:]] = n["Actual Total Time"] * n["Actual Loops"]
        for c in n.get("Plans", []):
            collect(c)
    collect(root)
    nodes = []
    def walk(n, path):
        total = n["Actual Total Time"] * n["Actual Loops"]
        own = total
        for c in n.get("Plans", []):
            if not c.get("Subplan Name", "").startswith("CTE "):
                own -= c["Actual Total Time"] * c["Actual Loops"]
        if n["Node Type"] == "CTE Scan":
            own -= ctes.get(n.get("CTE Name"), 0)
        label = n["Node Type"]
        for k in ("Relation Name", "Index Name", "CTE Name", "Alias"):
            if k in n:
                label += f" {k.split()[0].lower()}={n[k]}"
        where = n.get("Subplan Name") or n.get("Parent Relationship", "")
        nodes.append((max(own, 0.0), total, label, n["Actual Rows"], n["Actual Loops"],
                      n.get("Shared Hit Blocks", 0), n.get("Shared Read Blocks", 0),
                      n.get("Temp Written Blocks", 0), " > ".join(path + [where]) if where else " > ".join(path)))
        for c in n.get("Plans", []):
            walk(c, path + ([n["Subplan Name"]] if "Subplan Name" in n else []))
    walk(root, [])
    nodes.sort(reverse=True)
    jit = doc.get("JIT", {}).get("Timing", {})
    jt = jit.get("Total")
    jt = jt if isinstance(jt, (int, float)) else (jt or {}).get("Total") if isinstance(jt, dict) else None
    print(f"== {variant}: execution {doc['Execution Time']:.0f} ms, planning {doc['Planning Time']:.1f} ms, "
          f"JIT {('%.0f ms' % jt) if jt is not None else 'none'}")
    print(f"{'own ms':>9} {'incl ms':>9} {'rows':>9} {'loops':>8} {'hit':>9} {'read':>7} {'temp_w':>7}  node  [in]")
    for own, total, label, rows, loops, hit, read, tw, where in nodes[:8]:
        print(f"{own:9.0f} {total:9.0f} {rows:9d} {loops:8d} {hit:9d} {read:7d} {tw:7d}  {label}  [{where}]")
    print()
PY
cat "$OUT/plan_top_nodes.txt" >&2

# --------------------------------------------------------------------------------------------- summary
python3 - "$OUT" "$GEN_S" "$NAIVE_SAME" >"$OUT/summary.txt" <<'PY'
import re, statistics, sys
out, gen_s, naive_same = sys.argv[1], float(sys.argv[2]), sys.argv[3]
env = dict(l.rstrip("\n").split(": ", 1) for l in open(f"{out}/env.txt") if ": " in l)
counts = dict(l.strip().split("=", 1) for l in open(f"{out}/counts.txt") if "=" in l)
samples = {}
for line in open(f"{out}/samples.txt"):
    name, i, status, sec = line.split()
    samples.setdefault(name, []).append((status, float(sec) * 1000))
def sql_times(name):
    return [float(m.group(1)) for m in re.finditer(r"^Time: ([0-9.]+) ms", open(f"{out}/{name}.out").read(), re.M)]
print(f"Analytics on a large account, {env['date']}")
print(f"machine: nproc {env['nproc']}, {env['cpu']}, {env['memory']}, kernel {env['kernel']}")
print(f"{env['postgresql']}; {env['postgresql settings']}")
print(f"{env['salesops']}; git {env['git']}")
print(f"generation: {gen_s:.0f} s; rows: " + ", ".join(f"{k} {int(v):,}" for k, v in counts.items()
                                                      if k != "database_bytes")
      + f"; database {int(counts['database_bytes']) / 2**30:.1f} GiB")
print("today: " + env["today"])
print()
cpu = {}
for line in open(f"{out}/cpu.txt"):
    f = line.split()
    kv = dict(x.split("=") for x in f[1:])
    busy = int(kv["busy"])
    cpu[f[0]] = (100.0 * int(kv["other"]) / busy if busy else 0.0, int(kv["busy_before_pct"]))
def cpu_note(name):
    if name not in cpu:
        return ""
    o, q = cpu[name]
    return f"  [others: {o:.0f}% of busy CPU{' DISTURBED' if o > 10 else ''}; {q}% busy before]"
print(f"{'endpoint':<20} {'median ms':>10}   samples ms (in order)")
med = {}
for name, s in samples.items():
    ok = all(st == "200" for st, _ in s)
    med[name] = statistics.median(ms for _, ms in s)
    bad = "" if ok else "  statuses: " + " ".join(st for st, _ in s)
    print(f"{name:<20} {med[name]:>10.1f}   " + " ".join(f"{ms:.1f}" for _, ms in s) + bad + cpu_note(name))
print()
sql = {}
for name in ("naive_month", "kpis_sql_month", "kpis_sql_month_jit_off"):
    t = sql_times(name)
    sql[name] = statistics.median(t) if t else float("nan")
    print(f"{name:<24} median {sql[name]:>10.1f} ms   runs: " + " ".join(f"{x:.1f}" for x in t) + cpu_note(name))
print(f"naive rows equal to salesops_kpis rows: {naive_same}")
print()
slow = sum(1 for s in samples.values() for _, ms in s if ms > 30000)
if slow:
    print(f"{slow} requests took over 30 s: with the service's default SALESOPS_STATEMENT_TIMEOUT_MS (30000) their"
          " statement would have been cancelled (500)")
    print()
def verdict(ok):
    return "met" if ok else "NOT met"
month = [n for n in ("managers_month", "summary_month", "funnel_month") if n in med]
print("aims:")
for n in month:
    print(f"  {n} under 100 ms: {med[n]:.1f} ms, {verdict(med[n] < 100)}")
if "checklist_8w" in med:
    print(f"  checklist_8w under 300 ms: {med['checklist_8w']:.1f} ms, {verdict(med['checklist_8w'] < 300)}")
if "managers_month" in med:
    n, r = sql["naive_month"], sql["naive_month"] / med["managers_month"]
    if n > 1000:
        print(f"  managers_month at least 10x faster than the naive SQL ({n:.0f} ms): {r:.2f}x, {verdict(r >= 10)}")
    else:
        print(f"  the naive SQL takes {n:.0f} ms (not over a second): the 10x aim does not apply ({r:.2f}x)")
PY
echo >>"$OUT/summary.txt"
echo "most expensive plan nodes of the month's salesops_kpis:" >>"$OUT/summary.txt"
cat "$OUT/plan_top_nodes.txt" >>"$OUT/summary.txt"
cat "$OUT/summary.txt"
log "raw outputs and summary in $OUT"
