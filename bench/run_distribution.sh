#!/usr/bin/env bash
# Lead distribution: assignments per second with 8 concurrent creators and two instances. Two `salesops serve`
# processes share one database; an account has 10 managers of equal weight and a pipeline; wrk runs against
# both instances at the same time, CONNECTIONS connections each (4 + 4 = 8 concurrent creators by default),
# posting POST /api/v1/deals {name, price, pipeline_id} without a manager_id (bench/deal_create.lua), so that
# every deal created is distributed: requests/s = assignments/s. Per run: the sum of both instances' rates,
# the latencies (the worse instance's p50 and p99), and afterwards, from the database, that every deal of the
# run has exactly one assignment row naming its manager (no duplicates, none missing) and how evenly the 10
# managers were served. Then the medians. PostgreSQL runs with fsync on (its defaults but max_connections)
# in a temporary directory; everything the script started is stopped on exit.
#
#   bench/run_distribution.sh [--runs N] [--duration SECONDS] [--connections N] [--wrk-threads N]
#                             [--managers N] [--server-threads N] [--warmup SECONDS]
#                             [--quiet-wait SECONDS] [--no-build]
#
#   --runs            runs (default 3)
#   --duration        seconds of each run (default 15)
#   --connections     wrk connections against each instance (default 4: 8 concurrent creators in all)
#   --wrk-threads     threads of each of the two wrk processes (default 1)
#   --managers        managers of the account, all weight 1 (default 10)
#   --server-threads  SALESOPS_THREADS of each instance (default: the service's own default, 4 per core)
#   --warmup          seconds of wrk against both instances before the first run (default 5)
#   --quiet-wait      before each run, wait up to this many seconds for the machine to be idle (under 10%
#                     busy); the CPU used by other processes during a run is reported (default 120)
#   --no-build        use build-bench2/salesops as it is
#
# Raw outputs and the summary go to bench/results/distribution-<date>/ (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

RUNS=3
DURATION=15
CONNECTIONS=4
WRK_THREADS=1
MANAGERS=10
SERVER_THREADS=${SALESOPS_THREADS:-}
WARMUP=5
QUIET_WAIT=120
BUILD=1

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        --wrk-threads) WRK_THREADS=$2; shift ;;
        --managers) MANAGERS=$2; shift ;;
        --server-threads) SERVER_THREADS=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --quiet-wait) QUIET_WAIT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'run_distribution: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for v in RUNS DURATION CONNECTIONS WRK_THREADS MANAGERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, got '${!v}'"
done
for v in WARMUP QUIET_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[ -z "$SERVER_THREADS" ] || [[ $SERVER_THREADS =~ ^[1-9][0-9]*$ ]] || die "--server-threads must be a number"
[ "$CONNECTIONS" -ge "$WRK_THREADS" ] || die "--connections must be at least --wrk-threads"
[ "$MANAGERS" -le 100 ] || die "--managers: at most 100"
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install $tool; or scripts/deps.sh --test)"
done

# ---------------------------------------------------------------------------------------------- state
TMP=""
SERVE_PIDS=()
PG_STARTED=0
# stop_pid, busy_ticks, all_ticks, ticks_of, postgres_ticks and wait_quiet (QUIET_WAIT) come from scripts/lib.sh

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for i in "${!SERVE_PIDS[@]}"; do
        stop_pid "${SERVE_PIDS[i]}" "salesops $((i + 1))"
    done
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

OUT="bench/results/distribution-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
log "results in $OUT"

BIN=build-bench2/salesops
release_build build-bench2 "$OUT"

# ---------------------------------------------------------------------------------------- PostgreSQL
TMP=$(mktemp -d /tmp/salesops-distribution.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$TMP"
fi
pg_start "$TMP/pgdata" || die "could not start PostgreSQL"
DB=salesops_distribution
pg_create_db "$DB" || die "could not create $DB"
DATABASE_URL=$(pg_url "$DB")
export DATABASE_URL
"$BIN" migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log" >&2; die "salesops migrate failed"; }
mapfile -t acct < <("$BIN" account create --name "Distribution bench" --timezone Europe/Moscow | account_fields)
ACCOUNT_ID=${acct[0]} API_KEY=${acct[1]}
[ -n "$API_KEY" ] || die "account create printed no api key"
q() { # q SQL: the rows, unaligned, fields separated by "|"
    pg_psql "$DB" -tA -c "$1"
}

# ------------------------------------------------------------------------------------------- services
URLS=()
serve_env=(SALESOPS_LOG_LEVEL=warn SALESOPS_MIGRATE_ON_START=false)
[ -z "$SERVER_THREADS" ] || serve_env+=(SALESOPS_THREADS="$SERVER_THREADS")
for n in 1 2; do
    port=$(free_port)
    env "${serve_env[@]}" SALESOPS_LISTEN="127.0.0.1:$port" "$BIN" serve >"$OUT/service$n.log" 2>&1 &
    SERVE_PIDS+=($!)
    URLS+=("http://127.0.0.1:$port")
done
for n in 0 1; do
    for _ in $(seq 1 100); do
        kill -0 "${SERVE_PIDS[n]}" 2>/dev/null || die "salesops $((n + 1)) exited (see $OUT/service$((n + 1)).log)"
        curl -fsS -o /dev/null "${URLS[n]}/healthz" 2>/dev/null && break
        sleep 0.1
    done
    curl -fsS -o /dev/null "${URLS[n]}/healthz" || die "salesops $((n + 1)) did not answer ${URLS[n]}/healthz"
    log "salesops $((n + 1)) serving on ${URLS[n]} (pid ${SERVE_PIDS[n]}; threads ${SERVER_THREADS:-default})"
done

# check_alive: dies with the way an instance ended if one is gone
check_alive() {
    local n rc
    for n in 0 1; do
        kill -0 "${SERVE_PIDS[n]}" 2>/dev/null && continue
        rc=0
        wait "${SERVE_PIDS[n]}" 2>/dev/null || rc=$?
        die "salesops $((n + 1)) is gone (exit status $rc; see $OUT/service$((n + 1)).log)"
    done
}

# api METHOD PATH [BODY]: the reply body (instance 1); fails on any status but 200/201
api() {
    local out status args=(-sS -X "$1" -H "Authorization: Bearer $API_KEY" -w '\n%{http_code}')
    [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data-binary "$3")
    out=$(curl "${args[@]}" "${URLS[0]}$2") || return 1
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$status" != 200 ] && [ "$status" != 201 ]; then
        log "$1 $2 answered $status: $out"
        return 1
    fi
    printf '%s\n' "$out"
}
json_field() { # json_field EXPR: a Python expression over the JSON object `b` on stdin
    python3 -c 'import json, sys; b = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# ------------------------------------------------------------------------------------------------ data
PIPELINE_ID=$(api POST /api/v1/pipelines '{"name":"Inbound leads","stages":[{"name":"New","kind":"open"},
    {"name":"Qualified","kind":"open"},{"name":"Proposal","kind":"open"},{"name":"Won","kind":"won"},
    {"name":"Lost","kind":"lost"}]}' | json_field 'b["id"]') || die "could not create the pipeline"
for i in $(seq 1 "$MANAGERS"); do
    api POST /api/v1/managers "{\"name\":\"Bench manager $i\",\"role\":\"manager\",\"weight\":1}" >/dev/null \
        || die "could not create manager $i"
done
eligible=$(api GET /api/v1/distribution | json_field 'sum(1 for m in b["managers"] if m["eligible"])') \
    || die "GET /api/v1/distribution failed"
[ "$eligible" = "$MANAGERS" ] || die "GET /api/v1/distribution: $eligible eligible managers, expected $MANAGERS"
# one deal through the whole path: created without a manager, distributed
answer=$(api POST /api/v1/deals "{\"name\":\"Bench check\",\"price\":1,\"pipeline_id\":$PIPELINE_ID}") \
    || die "the check deal was refused"
[ "$(printf '%s' "$answer" | json_field 'b.get("distribution", {}).get("assigned")')" = True ] \
    || die "the check deal was not distributed: $answer"
log "account $ACCOUNT_ID: pipeline $PIPELINE_ID, $MANAGERS managers eligible; check deal: $answer"
export BENCH_API_KEY=$API_KEY

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "memory: $(awk '/MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "postgresql: $("$PG_BIN/postgres" --version) (fsync on, otherwise defaults)"
    echo "wrk: $(wrk -v 2>&1 | head -n 1)"
    echo "salesops: $("$BIN" --version)"
    changes=$(git diff HEAD -- src include migrations meson.build 2>/dev/null | sha256sum | cut -c1-12)
    [ "$(git diff HEAD -- src include migrations meson.build 2>/dev/null | wc -c)" -gt 0 ] || changes=""
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)${changes:+ + uncommitted changes $changes}"
    [ "$BUILD" = 1 ] || echo "binary: not rebuilt (--no-build), built $(date -r "$BIN" '+%Y-%m-%d %H:%M:%S')"
    echo "runs: $RUNS; duration: ${DURATION}s; two instances, each: wrk -t$WRK_THREADS -c$CONNECTIONS" \
        "($((2 * CONNECTIONS)) concurrent creators)"
    echo "server threads: ${SERVER_THREADS:-default} per instance; managers: $MANAGERS (weight 1)"
} >"$OUT/env.txt"

# ------------------------------------------------------------------------------------------------ runs
# both NAME SECONDS: wrk against both instances at the same time; outputs OUT/NAME-1.txt and OUT/NAME-2.txt
both() {
    local name=$1 seconds=$2 n pids=() rc=0
    for n in 1 2; do
        wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${seconds}s" --latency -s bench/deal_create.lua \
            "${URLS[n - 1]}" -- "$PIPELINE_ID" "$name-i$n" >"$OUT/$name-$n.txt" 2>&1 &
        pids+=($!)
    done
    for n in 0 1; do
        wait "${pids[n]}" || rc=$?
    done
    [ "$rc" = 0 ] || { cat "$OUT/$name-1.txt" "$OUT/$name-2.txt" >&2; die "wrk failed ($name)"; }
}

# settle: waits until the number of deals stops changing (the requests in flight when wrk stopped)
settle() {
    local before after
    after=$(q "SELECT count(*) FROM deals WHERE account_id = $ACCOUNT_ID")
    for _ in $(seq 1 20); do
        sleep 0.5
        before=$after
        after=$(q "SELECT count(*) FROM deals WHERE account_id = $ACCOUNT_ID")
        [ "$after" != "$before" ] || return 0
    done
    log "warning: deals were still being created 10 s after wrk stopped"
}

# verify NAME FIRST_DEAL: the deals of the run (ids above FIRST_DEAL) against their assignment rows, as
# key=value lines in OUT/NAME.db
verify() {
    local name=$1 first=$2
    q "WITH d AS (SELECT id, manager_id FROM deals WHERE account_id = $ACCOUNT_ID AND id > $first
                    AND name LIKE 'Bench lead %'),
            a AS (SELECT a.deal_id, a.manager_id FROM assignments a JOIN d ON d.id = a.deal_id
                  WHERE a.account_id = $ACCOUNT_ID),
            per_deal AS (SELECT d.id, count(a.deal_id) AS n, bool_and(a.manager_id = d.manager_id) AS same
                         FROM d LEFT JOIN a ON a.deal_id = d.id GROUP BY d.id),
            per_manager AS (SELECT manager_id, count(*) AS n FROM d GROUP BY manager_id)
       SELECT 'deals', count(*) FROM d
       UNION ALL SELECT 'assignments', count(*) FROM a
       UNION ALL SELECT 'duplicates', count(*) FROM per_deal WHERE n > 1
       UNION ALL SELECT 'missing', count(*) FROM per_deal WHERE n = 0
       UNION ALL SELECT 'wrong_manager', count(*) FROM per_deal WHERE n > 0 AND NOT same
       UNION ALL SELECT 'unassigned', count(*) FROM d WHERE manager_id IS NULL
       UNION ALL SELECT 'managers_served', count(*) FROM per_manager WHERE manager_id IS NOT NULL
       UNION ALL SELECT 'min_per_manager', coalesce(min(n), 0) FROM per_manager WHERE manager_id IS NOT NULL
       UNION ALL SELECT 'max_per_manager', coalesce(max(n), 0) FROM per_manager WHERE manager_id IS NOT NULL" \
        | tr '|' '=' >"$OUT/$name.db"
}

# measured RUN: one run with the CPU ticks used during it appended to OUT/run-RUN.cpu
measured() {
    local run=$1 quiet b0 a0 c0 s0 pg0 b1 a1 c1 s1 pg1
    quiet=$(wait_quiet)
    b0=$(busy_ticks); a0=$(all_ticks); c0=$(ticks_of --children $$); s0=$(ticks_of "${SERVE_PIDS[@]}")
    pg0=$(postgres_ticks)
    both "run-$run" "$DURATION"
    b1=$(busy_ticks); a1=$(all_ticks); c1=$(ticks_of --children $$); s1=$(ticks_of "${SERVE_PIDS[@]}")
    pg1=$(postgres_ticks)
    printf 'cpu: hz=%s before_busy_pct=%s busy=%s all=%s client=%s salesops=%s postgres=%s\n' "$(getconf CLK_TCK)" \
        "$quiet" $((b1 - b0)) $((a1 - a0)) $((c1 - c0)) $((s1 - s0)) $((pg1 - pg0)) >"$OUT/run-$run.cpu"
}

if [ "$WARMUP" -gt 0 ]; then
    log "warm-up: ${WARMUP} s of wrk against both instances"
    both warmup "$WARMUP"
    settle
fi

for run in $(seq 1 "$RUNS"); do
    check_alive
    pg_psql "$DB" -c "VACUUM (ANALYZE)" >/dev/null
    first=$(q "SELECT coalesce(max(id), 0) FROM deals WHERE account_id = $ACCOUNT_ID")
    log "run $run/$RUNS: ${DURATION} s, $((2 * CONNECTIONS)) creators on two instances"
    measured "$run"
    settle
    verify "run-$run" "$first"
    log "run $run/$RUNS: $(grep -h 'Requests/sec' "$OUT/run-$run-1.txt" "$OUT/run-$run-2.txt" | tr -s ' ' \
        | tr '\n' ' ')| $(tr '\n' ' ' <"$OUT/run-$run.db")"
done
check_alive
# all deals of the account, the warm-up and the check deal included
q "WITH d AS (SELECT id FROM deals WHERE account_id = $ACCOUNT_ID),
        per_deal AS (SELECT d.id, count(a.id) AS n FROM d
                     LEFT JOIN assignments a ON a.account_id = $ACCOUNT_ID AND a.deal_id = d.id GROUP BY d.id)
   SELECT 'deals', count(*) FROM d
   UNION ALL SELECT 'assignments', (SELECT count(*) FROM assignments WHERE account_id = $ACCOUNT_ID)
   UNION ALL SELECT 'duplicates', count(*) FROM per_deal WHERE n > 1
   UNION ALL SELECT 'missing', count(*) FROM per_deal WHERE n = 0" | tr '|' '=' >"$OUT/totals.db"

# --------------------------------------------------------------------------------------------- summary
python3 - "$OUT" "$RUNS" "$DURATION" "$MANAGERS" >"$OUT/summary.txt" <<'PY'
import re, statistics, sys
out, runs, duration, managers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

def wrk(path):
    text = open(path).read()
    r = {"rate": float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1)),
         "requests": int(re.search(r"(\d+) requests in", text).group(1))}
    for p in ("50", "99"):
        m = re.search(rf"^\s+{p}(?:\.000)?%\s+([0-9.]+)(us|ms|s|m)\s*$", text, re.M)
        r["p" + p] = ms(*m.groups()) if m else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return r

def kv(path):
    return {k: int(v) for k, v in (line.split("=") for line in open(path).read().split())}

rows = []
for run in range(1, runs + 1):
    a, b = wrk(f"{out}/run-{run}-1.txt"), wrk(f"{out}/run-{run}-2.txt")
    db = kv(f"{out}/run-{run}.db")
    c = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", open(f"{out}/run-{run}.cpu").read()))
    other = max(c["busy"] - c["client"] - c["salesops"] - c["postgres"], 0)
    us = 1e6 / c["hz"] / max(db["assignments"], 1)  # CPU microseconds per assignment for one tick
    rows.append({"r1": a["rate"], "r2": b["rate"], "sum": a["rate"] + b["rate"],
                 "p50": max(a["p50"], b["p50"]), "p99": max(a["p99"], b["p99"]),
                 "errors": a["errors"] + b["errors"], "requests": a["requests"] + b["requests"],
                 "db_rate": db["assignments"] / duration, "db": db,
                 "other_pct": 100.0 * other / max(c["all"], 1),
                 "cpu_salesops": c["salesops"] * us, "cpu_postgres": c["postgres"] * us, "cpu_all": c["busy"] * us})

print(open(f"{out}/env.txt").read().rstrip())
print()
print(f"{'run':>3} {'inst 1/s':>9} {'inst 2/s':>9} {'assign/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
      f" {'wrk reqs':>8} {'deals':>7} {'assigned':>8} {'dup':>4} {'miss':>4} {'wrong':>5} {'min-max/mgr':>11}"
      f" {'other CPU %':>11}")
for i, r in enumerate(rows, 1):
    d = r["db"]
    print(f"{i:>3} {r['r1']:>9.0f} {r['r2']:>9.0f} {r['sum']:>9.0f} {r['p50']:>7.2f} {r['p99']:>7.2f}"
          f" {r['errors']:>6} {r['requests']:>8} {d['deals']:>7} {d['assignments']:>8} {d['duplicates']:>4}"
          f" {d['missing']:>4} {d['wrong_manager']:>5} {str(d['min_per_manager']) + '-' + str(d['max_per_manager']):>11}"
          f" {r['other_pct']:>11.1f}")
med = lambda k: statistics.median(r[k] for r in rows)
print(f"{'med':>3} {med('r1'):>9.0f} {med('r2'):>9.0f} {med('sum'):>9.0f} {med('p50'):>7.2f} {med('p99'):>7.2f}")
print()
print(f"median assignments/s (sum of both instances' requests/s): {med('sum'):.0f}; p99 {med('p99'):.2f} ms"
      " (the worse instance's)")
print(f"median assignments/s from the database (assignment rows of the run / {duration} s): {med('db_rate'):.0f}")
print(f"median CPU per assignment: {med('cpu_all'):.0f} us in all, salesops {med('cpu_salesops'):.0f} us,"
      f" PostgreSQL {med('cpu_postgres'):.0f} us")
bad = [i for i, r in enumerate(rows, 1)
       if r["db"]["assignments"] != r["db"]["deals"] or r["db"]["duplicates"] or r["db"]["missing"]
       or r["db"]["wrong_manager"] or r["db"]["unassigned"]]
t = kv(f"{out}/totals.db")
ok = not bad and t["deals"] == t["assignments"] and not t["duplicates"] and not t["missing"]
print(f"database: {t['deals']} deals, {t['assignments']} assignment rows, {t['duplicates']} deals with more than"
      f" one, {t['missing']} without: {'OK' if ok else 'NOT OK (runs ' + ', '.join(map(str, bad)) + ')'}")
spread = max(r["db"]["max_per_manager"] - r["db"]["min_per_manager"] for r in rows)
served = min(r["db"]["managers_served"] for r in rows)
print(f"equal weights: every run served {served} of {managers} managers; largest spread of one run"
      f" {spread} (the weighted round robin gives at most 1)")
print(f"errors: wrk non-2xx or socket errors {sum(r['errors'] for r in rows)}")
print("other CPU %: share of all CPU time used by processes other than wrk, the two instances and PostgreSQL")
PY
rc=0
cat "$OUT/summary.txt"
grep -q ': OK$' "$OUT/summary.txt" || { log "the database check failed (see above)"; rc=1; }
log "raw outputs and summary in $OUT"
exit "$rc"
