#!/usr/bin/env bash
# Webhook ingest: wrk posting amoCRM "leads[add]" bodies (bench/webhook.lua, every body different) to
# POST /api/v1/webhooks/amocrm/{token}, and beside it, in the same run, pgbench running the service's
# single-row INSERT of a body into the inbox (bench/ingest.sql, same body size) at the same concurrency.
# After each wrk run the script waits for the applier to drain the inbox (GET /webhooks/inbox?state=pending
# until empty) and reports how long that took and how many bodies were applied, failed or ignored.
# PostgreSQL runs with fsync on (its defaults but max_connections) in a temporary directory; pgbench writes
# into a second database of the same cluster with the same schema, where no applier runs. Both databases
# get VACUUM (ANALYZE) before each run, as an established database would have from autovacuum (on a fresh,
# never analyzed inbox the service's cached plans are those of an empty table). Everything the script
# started is stopped on exit.
#
#   bench/run_ingest.sh [--runs N] [--duration SECONDS] [--threads N] [--connections N]
#                       [--server-threads N] [--sched-threads N] [--drain-timeout SECONDS]
#                       [--warmup SECONDS] [--quiet-wait SECONDS] [--no-build]
#
#   --runs            runs of wrk + drain + pgbench (default 3)
#   --duration        seconds of each wrk and pgbench run (default 15)
#   --threads         wrk threads = pgbench jobs (default 2)
#   --connections     wrk connections = pgbench clients (default 64)
#   --server-threads  SALESOPS_THREADS of the service (default: the service's own default, 4 per core)
#   --sched-threads   SALESOPS_SCHED_THREADS, the appliers among them (default: the service's own, 2);
#                     0 runs the service without an applier: the HTTP ingest path alone (nothing drains)
#   --drain-timeout   give up waiting for the inbox to drain after this many seconds (default 600)
#   --warmup          seconds of wrk before the first run (then drained; default 5)
#   --quiet-wait      before each wrk and pgbench run, wait up to this many seconds for the machine to be
#                     idle (under 10% busy); the CPU used by other processes during a run is reported
#                     (default 120)
#   --no-build        use build-bench2/salesops as it is
#
# Raw outputs and the summary go to bench/results/ingest-<date>/ (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

RUNS=3
DURATION=15
WRK_THREADS=2
CONNECTIONS=64
SERVER_THREADS=${SALESOPS_THREADS:-}
SCHED_THREADS=${SALESOPS_SCHED_THREADS:-}
DRAIN_TIMEOUT=600
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
        --threads) WRK_THREADS=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        --server-threads) SERVER_THREADS=$2; shift ;;
        --sched-threads) SCHED_THREADS=$2; shift ;;
        --drain-timeout) DRAIN_TIMEOUT=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --quiet-wait) QUIET_WAIT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'run_ingest: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for v in RUNS DURATION WRK_THREADS CONNECTIONS DRAIN_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, got '${!v}'"
done
for v in WARMUP QUIET_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[ -z "$SERVER_THREADS" ] || [[ $SERVER_THREADS =~ ^[1-9][0-9]*$ ]] || die "--server-threads must be a number"
[ -z "$SCHED_THREADS" ] || [[ $SCHED_THREADS =~ ^[0-9]+$ ]] || die "--sched-threads must be a number"
APPLIER=1
[ "$SCHED_THREADS" != 0 ] || APPLIER=0
[ "$CONNECTIONS" -ge "$WRK_THREADS" ] || die "--connections must be at least --threads"
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install $tool)"
done

# ---------------------------------------------------------------------------------------------- state
TMP=""
SERVE_PID=""
PG_STARTED=0
# stop_pid PID NAME comes from scripts/lib.sh

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

OUT="bench/results/ingest-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
log "results in $OUT"

BIN=build-bench2/salesops
release_build build-bench2 "$OUT"

# ---------------------------------------------------------------------------------------- PostgreSQL
TMP=$(mktemp -d /tmp/salesops-ingest.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$TMP"
fi
pg_start "$TMP/pgdata" || die "could not start PostgreSQL"
PGBENCH="$PG_BIN/pgbench"
DB=salesops_ingest
PGB_DB=salesops_ingest_pgbench
for db in "$DB" "$PGB_DB"; do
    pg_create_db "$db" || die "could not create $db"
    DATABASE_URL=$(pg_url "$db") "$BIN" migrate >>"$OUT/migrate.log" 2>&1 \
        || { cat "$OUT/migrate.log" >&2; die "salesops migrate failed"; }
done
mapfile -t acct < <(DATABASE_URL=$(pg_url "$DB") "$BIN" account create --name "Ingest bench" | account_fields)
ACCOUNT_ID=${acct[0]} API_KEY=${acct[1]} TOKEN=${acct[2]}
[ -n "$TOKEN" ] || die "account create printed no webhook token"
mapfile -t acct < <(DATABASE_URL=$(pg_url "$PGB_DB") "$BIN" account create --name "pgbench" | account_fields)
PGB_ACCOUNT_ID=${acct[0]}
DATABASE_URL=$(pg_url "$DB")
export DATABASE_URL
q() { # q SQL: one value from the service's database
    pg_psql "$DB" -tA -c "$1"
}

# ------------------------------------------------------------------------------------------- service
SERVE_PORT=$(free_port)
URL="http://127.0.0.1:$SERVE_PORT"
serve_env=(SALESOPS_LISTEN="127.0.0.1:$SERVE_PORT" SALESOPS_LOG_LEVEL=warn SALESOPS_MIGRATE_ON_START=false)
[ -z "$SERVER_THREADS" ] || serve_env+=(SALESOPS_THREADS="$SERVER_THREADS")
[ -z "$SCHED_THREADS" ] || serve_env+=(SALESOPS_SCHED_THREADS="$SCHED_THREADS")
env "${serve_env[@]}" "$BIN" serve >"$OUT/service.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do
    kill -0 "$SERVE_PID" 2>/dev/null || die "salesops exited (see $OUT/service.log)"
    curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "$URL/healthz" || die "salesops did not answer $URL/healthz"
log "salesops serving on port $SERVE_PORT (pid $SERVE_PID; threads ${SERVER_THREADS:-default}," \
    "scheduler threads ${SCHED_THREADS:-default})"

# pending_count: inbox rows not applied yet, as the API says (state=pending, one row is enough)
inbox_pending() {
    curl -fsS -H "Authorization: Bearer $API_KEY" "$URL/api/v1/webhooks/inbox?state=pending&limit=1" \
        | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))'
}

# drain NAME: polls the API until no inbox row is pending (or DRAIN_TIMEOUT); writes the seconds it took
# (from the call) to OUT/NAME.drain, with the backlog at the start (pending rows, from the database)
drain() {
    local name=$1 t0 backlog left=1 now
    t0=$(date +%s.%N)
    backlog=$(q "SELECT count(*) FROM inbox WHERE state = 'pending' AND source = 'amocrm'")
    if [ "$APPLIER" = 0 ]; then
        printf 'backlog=%s drain_s=nan drained=0\n' "$backlog" >"$OUT/$name.drain"
        return 0
    fi
    while :; do
        left=$(inbox_pending) || die "GET /api/v1/webhooks/inbox failed"
        now=$(date +%s.%N)
        [ "$left" != 0 ] || break
        if awk -v a="$t0" -v b="$now" -v m="$DRAIN_TIMEOUT" 'BEGIN { exit !(b - a > m) }'; then
            log "warning: $name: the inbox did not drain in $DRAIN_TIMEOUT s"
            break
        fi
        sleep 0.1
    done
    printf 'backlog=%s drain_s=%s drained=%s\n' "$backlog" \
        "$(awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.2f", b - a }')" "$([ "$left" = 0 ] && echo 1 || echo 0)" \
        >"$OUT/$name.drain"
}

# sanity: one body through the whole path (stored, applied, a deal made)
body="leads%5Badd%5D%5B0%5D%5Bid%5D=1&leads%5Badd%5D%5B0%5D%5Bname%5D=check&leads%5Badd%5D%5B0%5D%5Bstatus_id%5D=55012001"
body+="&leads%5Badd%5D%5B0%5D%5Bpipeline_id%5D=6101001&leads%5Badd%5D%5B0%5D%5Bprice%5D=1000"
body+="&leads%5Badd%5D%5B0%5D%5Bupdated_at%5D=$(date +%s)&account%5Bsubdomain%5D=acme"
answer=$(curl -fsS -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$body" \
    "$URL/api/v1/webhooks/amocrm/$TOKEN") || die "the check webhook was refused"
log "check webhook: $answer"
drain check
if [ "$APPLIER" = 1 ]; then
    state=$(q "SELECT state FROM inbox WHERE source = 'amocrm' ORDER BY id LIMIT 1")
    [ "$state" = applied ] || die "the check webhook was not applied (state $state; see $OUT/service.log)"
    [ "$(q "SELECT count(*) FROM deals WHERE external_id = '1'")" = 1 ] || die "the check webhook made no deal"
else
    log "no applier (--sched-threads 0): the bodies stay pending"
fi

# ------------------------------------------------------------------------------------- CPU accounting
# busy_ticks, all_ticks, ticks_of, postgres_ticks and wait_quiet (QUIET_WAIT) come from scripts/lib.sh.
# run_measured NAME CMD...: CMD's output to OUT/NAME.txt, then a line with the CPU ticks used during the run
run_measured() {
    local name=$1 quiet b0 a0 c0 s0 pg0 b1 a1 c1 s1 pg1
    shift
    quiet=$(wait_quiet)
    b0=$(busy_ticks); a0=$(all_ticks); c0=$(ticks_of --children $$); s0=$(ticks_of "$SERVE_PID"); pg0=$(postgres_ticks)
    "$@" >"$OUT/$name.txt" 2>&1 || { cat "$OUT/$name.txt" >&2; die "$name failed"; }
    b1=$(busy_ticks); a1=$(all_ticks); c1=$(ticks_of --children $$); s1=$(ticks_of "$SERVE_PID"); pg1=$(postgres_ticks)
    printf 'cpu: hz=%s before_busy_pct=%s busy=%s all=%s client=%s salesops=%s postgres=%s\n' "$(getconf CLK_TCK)" \
        "$quiet" $((b1 - b0)) $((a1 - a0)) $((c1 - c0)) $((s1 - s0)) $((pg1 - pg0)) >>"$OUT/$name.txt"
}

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
    echo "runs: $RUNS; duration: ${DURATION}s; wrk -t$WRK_THREADS -c$CONNECTIONS; pgbench -c $CONNECTIONS -j $WRK_THREADS"
    echo "server threads: ${SERVER_THREADS:-default}; scheduler threads: ${SCHED_THREADS:-default}"
} >"$OUT/env.txt"

# ------------------------------------------------------------------------------------------------ runs
WRK_ARGS=(-t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s bench/webhook.lua "$URL")
tag=1 # the lead ids' prefix: different for every wrk invocation
if [ "$WARMUP" -gt 0 ]; then
    log "warm-up: ${WARMUP} s of wrk, then drain"
    wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" -s bench/webhook.lua "$URL" -- "$TOKEN" "$tag" \
        >"$OUT/warmup.txt"
    drain warmup
fi

for run in $(seq 1 "$RUNS"); do
    tag=$((tag + 1))
    for db in "$DB" "$PGB_DB"; do
        pg_psql "$db" -c "VACUUM (ANALYZE)" >/dev/null
    done
    first=$(q "SELECT coalesce(max(id), 0) FROM inbox")
    log "run $run/$RUNS: wrk, ${DURATION} s"
    run_measured "service-$run" wrk "${WRK_ARGS[@]}" -- "$TOKEN" "$tag"
    drain "service-$run"
    # what became of this run's bodies (and of the events mapped from them)
    q "SELECT 'inbox_' || state, count(*) FROM inbox WHERE id > $first AND source = 'amocrm' GROUP BY state
       UNION ALL SELECT 'stored', count(*) FROM inbox WHERE id > $first AND source = 'amocrm'
       UNION ALL SELECT 'events_' || state, count(*) FROM inbox WHERE id > $first AND source = 'amocrm_event'
       GROUP BY state
       UNION ALL SELECT 'body_len', round(avg(length(body))) FROM inbox WHERE id > $first AND source = 'amocrm'
       UNION ALL SELECT 'apply_s', round(extract(epoch FROM max(applied_at) - min(received_at))::numeric, 2)
       FROM inbox WHERE id > $first AND source = 'amocrm'" | tr '|' '=' >"$OUT/service-$run.states"
    body_len=$(sed -n 's/^body_len=//p' "$OUT/service-$run.states")
    log "run $run/$RUNS: $(cat "$OUT/service-$run.drain" "$OUT/service-$run.states" | tr '\n' ' ')"
    log "run $run/$RUNS: pgbench, ${DURATION} s, bodies of $body_len bytes"
    run_measured "pgbench-$run" "$PGBENCH" -M prepared -n -c "$CONNECTIONS" -j "$WRK_THREADS" -T "$DURATION" \
        -h "$PG_SOCKDIR" -p "$PG_PORT" -U postgres -D "account_id=$PGB_ACCOUNT_ID" -D "body_len=$body_len" -D state=pending \
        -f bench/ingest.sql "$PGB_DB"
done
q "SELECT 'deals', count(*) FROM deals UNION ALL SELECT 'inbox', count(*) FROM inbox" | tr '|' '=' >"$OUT/totals.txt"

# --------------------------------------------------------------------------------------------- summary
python3 - "$OUT" "$RUNS" "$DURATION" >"$OUT/summary.txt" <<'PY'
import re, statistics, sys
out, runs, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def cpu(text):
    c = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", text.split("cpu: ", 1)[1]))
    c["other_pct"] = 100.0 * max(c["busy"] - c["client"] - c["salesops"] - c["postgres"], 0) / max(c["all"], 1)
    return c

def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

def wrk(run):
    text = open(f"{out}/service-{run}.txt").read()
    r = {"rate": float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1)),
         "requests": int(re.search(r"(\d+) requests in", text).group(1))}
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s+{p}(?:\.000)?%\s+([0-9.]+)(us|ms|s|m)\s*$", text, re.M)
        r["p" + p] = ms(*m.groups()) if m else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    r["cpu"] = cpu(text)
    for line in open(f"{out}/service-{run}.drain").read().split():
        k, v = line.split("=")
        r[k] = float(v)
    r["states"] = {}
    for line in open(f"{out}/service-{run}.states").read().split():
        k, v = line.split("=")
        if v:
            r["states"][k] = float(v)
    return r

def pgb(run):
    text = open(f"{out}/pgbench-{run}.txt").read()
    r = {"rate": float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text).group(1))}
    m = re.search(r"latency average = ([0-9.]+) ms", text)
    r["lat"] = float(m.group(1)) if m else float("nan")
    failed = re.search(r"number of failed transactions: (\d+)", text)
    r["errors"] = int(failed.group(1)) if failed else 0
    r["cpu"] = cpu(text)
    return r

W = [wrk(r) for r in range(1, runs + 1)]
P = [pgb(r) for r in range(1, runs + 1)]
print(open(f"{out}/env.txt").read().rstrip())
print()
print(f"{'run':>3} {'service req/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'pgbench tps':>11}"
      f" {'svc/pgb':>7} {'backlog':>8} {'drain s':>7} {'stored':>7} {'applied':>7} {'failed':>6}"
      f" {'other':>6} {'ignored':>7} {'pending':>7} {'other CPU % svc/pgb':>19}")
for i, (w, p) in enumerate(zip(W, P), 1):
    s = w["states"]
    print(f"{i:>3} {w['rate']:>13.0f} {w['p50']:>7.2f} {w['p99']:>7.2f} {w['errors']:>6} {p['rate']:>11.0f}"
          f" {w['rate'] / p['rate']:>7.1%} {w['backlog']:>8.0f} {w['drain_s']:>7.1f} {s.get('stored', 0):>7.0f}"
          f" {s.get('inbox_applied', 0):>7.0f} {s.get('inbox_failed', 0):>6.0f}"
          f" {s.get('inbox_waiting', 0):>6.0f} {s.get('inbox_ignored', 0):>7.0f} {s.get('inbox_pending', 0):>7.0f}"
          f" {w['cpu']['other_pct']:>9.1f}/{p['cpu']['other_pct']:.1f}")
med = lambda xs: statistics.median(xs)
svc, pg = med(w["rate"] for w in W), med(p["rate"] for p in P)
p99 = med(w["p99"] for w in W)
applier_on = all(w["drain_s"] == w["drain_s"] for w in W)  # nan when there was no applier
drain = med(w["drain_s"] for w in W) if applier_on else float("nan")
backlog = med(w["backlog"] for w in W)
stored = sum(w["states"].get("stored", 0) for w in W)
applied = sum(w["states"].get("inbox_applied", 0) for w in W)
failed = sum(w["states"].get("inbox_failed", 0) for w in W)
left = sum(w["states"].get("inbox_pending", 0) for w in W)
apply_rate = med(w["states"].get("stored", 0) / max(w["states"].get("apply_s", 0), 1e-9) for w in W)
print(f"{'med':>3} {svc:>13.0f} {med(w['p50'] for w in W):>7.2f} {p99:>7.2f} {'':>6} {pg:>11.0f} {svc / pg:>7.1%}"
      f" {backlog:>8.0f} {drain:>7.1f}")
print()
print(f"median service:   {svc:.0f} webhooks/s, p99 {p99:.2f} ms  (aim: p99 under 50 ms: "
      f"{'met' if p99 < 50 else 'NOT met'})")
print(f"median pgbench:   {pg:.0f} INSERT transactions/s")
print(f"service/pgbench:  {svc / pg:.1%}  (aim: 50% or more: {'met' if svc / pg >= 0.5 else 'NOT met'})")
if not applier_on:
    print(f"applier:          off (--sched-threads 0): {backlog:.0f} bodies pending after each run (median)")
else:
  print(f"applier:          backlog at the end of the load {backlog:.0f} bodies (median), drained in {drain:.1f} s"
        f" (median); applied {applied:.0f}, failed {failed:.0f}, still pending {left:.0f} of {stored:.0f} stored;"
        f" median throughput from first receipt to last apply {apply_rate:.0f} bodies/s")
  print(f"                  (aim: the inbox empty within seconds after the load: "
        f"{'met' if drain <= 10 and left == 0 else 'NOT met'})")
errors = sum(w["errors"] for w in W), sum(p["errors"] for p in P)
print(f"errors: wrk non-2xx or socket errors {errors[0]}, pgbench failed transactions {errors[1]}")
print(f"requests counted by wrk {sum(w['requests'] for w in W)}, bodies stored {stored:.0f}"
      " (wrk does not count the requests in flight when it stops)")
print("other CPU %: share of all CPU time used by processes other than the client, salesops and PostgreSQL")
PY
cat "$OUT/summary.txt"
log "raw outputs and summary in $OUT"
