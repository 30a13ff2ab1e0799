# shellcheck shell=bash
# Shared by the chaos scripts (tests/chaos/*.sh). Source it after setting NAME; do not run it (it lives in
# lib/ so that a loop over tests/chaos/*.sh does not pick it up).
#
#   BIN, TMP, CHAOS (chaos.py), check NAME EXPECTED ACTUAL, run_checks CMD... (runs a chaos.py check
#   subcommand, prints its lines and adds its "CHECKS passed=N failed=M" to the counts)
#   chaos_db                      private PostgreSQL cluster (fsync on) with database "chaos", migrated, one
#                                 account: exports DATABASE_URL (unix socket) and TCP_DATABASE_URL (the same
#                                 database over TCP); sets ACCOUNT, KEY, TOKEN
#   serve_start NAME PORT [VAR=VALUE...]   start `salesops serve` in the background on 127.0.0.1:PORT, wait
#                                 for /healthz; its pid is in SERVE_PID[NAME], its stderr in $TMP/NAME.N.err
#   load_start TARGETS [ARGS...]  start chaos.py load against TARGETS (host:port[,host:port]) in the
#                                 background (LOAD_PID); results in $TMP/load.jsonl
#   sleep_until_load T            sleep until T seconds after the timed load started
#   load_wait                     wait for the load to end
#   now                           the time, seconds since the epoch with decimals
#   verify_and_resend TARGETS [ARGS...]  chaos.py verify of the load (ARGS: e.g. --claimed FILE), then
#                                 chaos.py resend of the unacknowledged requests, then verify --require-all
#   backends_gone WHERE           wait until no backend of the database matches WHERE (pg_stat_activity)
#   wait_applied FILE             poll until the inbox ids of a claimed file are applied; print the seconds
#                                 since its kill time
#   summary TITLE [OUTAGES.json]  the run's figures
#   finish                        print "N passed, M failed" and exit 1 on any failure
#
# Settings (environment): DURATION (s of load, default 45), WEBHOOK_CLIENTS, EVENTS_CLIENTS (4 each),
# WEBHOOK_RATE (bodies/s, default 40), EVENTS_RATE (/events requests/s, default 5), DEALS (deals per /events
# request, 2 events each, default 10), CLIENT_TIMEOUT (s, default 5), KEEP_TMP=1 keeps $TMP.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
BIN=${1:-$ROOT/build/salesops}
BIN=$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")
[ -x "$BIN" ] || die "no salesops binary at $BIN (build first: meson compile -C build)"
CHAOS="$ROOT/tests/chaos/chaos.py"

DURATION=${DURATION:-45}
WEBHOOK_CLIENTS=${WEBHOOK_CLIENTS:-4}
EVENTS_CLIENTS=${EVENTS_CLIENTS:-4}
WEBHOOK_RATE=${WEBHOOK_RATE:-40}
EVENTS_RATE=${EVENTS_RATE:-5}
DEALS=${DEALS:-10}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-5}

TMP=$(mktemp -d "/tmp/salesops-chaos-${NAME:?set NAME before sourcing}.XXXXXX")
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$TMP"
declare -A SERVE_PID=()
SERVE_STARTS=0
LOAD_PID=""
EXTRA_PIDS=()
# shellcheck disable=SC2317  # invoked by trap
chaos_cleanup() {
    local pid
    [ -z "$LOAD_PID" ] || { kill -TERM "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; }
    for pid in "${EXTRA_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for pid in "${SERVE_PID[@]}"; do
        kill -CONT "$pid" 2>/dev/null || true
        stop_pid "$pid" salesops
    done
    pg_stop >/dev/null 2>&1 || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP"; else rm -rf -- "$TMP"; fi
}
trap chaos_cleanup EXIT

passed=0 failed=0
check() { # name, expected, actual
    if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1: expected $2, got $3"; fi
}

# run_checks ARGS...: python3 chaos.py ARGS, its check lines shown and counted
run_checks() {
    local out line p f
    out=$(python3 "$CHAOS" "$@" 2>&1) || true
    while IFS= read -r line; do
        if [[ $line =~ ^CHECKS\ passed=([0-9]+)\ failed=([0-9]+)$ ]]; then
            p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
            passed=$((passed + p)) failed=$((failed + f))
        else
            printf '%s\n' "$line"
        fi
    done <<<"$out"
    if [ -z "${p:-}" ]; then
        failed=$((failed + 1))
        echo "FAIL chaos.py $1 did not finish its checks"
    fi
}

now() {
    date +%s.%N | cut -c1-15
}

chaos_db() {
    pg_start "$TMP/pgdata" >/dev/null # fsync on: what is acknowledged must be on disk
    pg_create_db chaos >/dev/null
    export DATABASE_URL
    DATABASE_URL=$(pg_url chaos)
    "$BIN" migrate 2>/dev/null
    local acct
    mapfile -t acct < <("$BIN" account create --name "Chaos $NAME" | account_fields)
    ACCOUNT=${acct[0]} KEY=${acct[1]} TOKEN=${acct[2]}
    [ -n "$TOKEN" ] || die "account create gave no webhook token"
    # the same database over TCP, for an instance whose connections must be told apart (client_addr)
    export TCP_DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/chaos"
}

# serve_start NAME PORT [VAR=VALUE...]
serve_start() {
    local name=$1 port=$2 _
    shift 2
    SERVE_STARTS=$((SERVE_STARTS + 1))
    env SALESOPS_LISTEN="127.0.0.1:$port" SALESOPS_MIGRATE_ON_START=false "$@" "$BIN" serve \
        >"$TMP/$name.$SERVE_STARTS.out" 2>"$TMP/$name.$SERVE_STARTS.err" &
    SERVE_PID[$name]=$!
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" && return 0
        kill -0 "${SERVE_PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    tail -n 20 "$TMP/$name.$SERVE_STARTS.err" >&2 || true
    die "salesops $name did not start on port $port"
}

# load_start TARGETS [extra chaos.py load args...]
load_start() {
    local targets=$1
    shift
    python3 "$CHAOS" load --targets "$targets" --key "$KEY" --token "$TOKEN" --timeout "$CLIENT_TIMEOUT" \
        --deals "$DEALS" --duration "$DURATION" --webhook-clients "$WEBHOOK_CLIENTS" \
        --events-clients "$EVENTS_CLIENTS" --webhook-rate "$WEBHOOK_RATE" --events-rate "$EVENTS_RATE" \
        --out "$TMP/load.jsonl" --started "$TMP/load.started" "$@" 2>"$TMP/load.err" &
    LOAD_PID=$!
    local _
    for _ in $(seq 1 200); do
        [ -s "$TMP/load.started" ] && return 0
        kill -0 "$LOAD_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$TMP/load.err" >&2
    die "the load generator did not start"
}

load_wait() {
    wait "$LOAD_PID" || { cat "$TMP/load.err" >&2; LOAD_PID=""; die "the load generator failed"; }
    LOAD_PID=""
    log "$(tail -n 1 "$TMP/load.err")"
}

# sleep_until_load T: sleep until T seconds after the timed load started
sleep_until_load() {
    local start
    start=$(cat "$TMP/load.started")
    python3 -c 'import sys, time; d = float(sys.argv[1]) + float(sys.argv[2]) - time.time(); time.sleep(max(d, 0))' \
        "$start" "$1"
}

# verify_and_resend TARGETS [verify args...]: checks the load's results against the database, sends the
# unacknowledged requests again until answered, then checks that every request is applied exactly once.
verify_and_resend() {
    local targets=$1
    shift
    run_checks verify --psql "$PG_BIN/psql" --db "$DATABASE_URL" --account "$ACCOUNT" \
        --label "acknowledged during the load" --figures "$TMP/verify.json" "$@" "$TMP/load.jsonl"
    python3 "$CHAOS" resend --targets "$targets" --key "$KEY" --token "$TOKEN" --timeout "$CLIENT_TIMEOUT" \
        --out "$TMP/resend.jsonl" "$TMP/load.jsonl" 2>"$TMP/resend.err" || true
    log "$(tail -n 1 "$TMP/resend.err")"
    run_checks verify --psql "$PG_BIN/psql" --db "$DATABASE_URL" --account "$ACCOUNT" --require-all \
        --label "after resending the unacknowledged" --figures "$TMP/verify2.json" \
        "$TMP/load.jsonl" "$TMP/resend.jsonl"
}

# summary TITLE [outages.json]: the figures of the run
summary() {
    python3 - "$1" "$TMP/verify.json" "$TMP/verify2.json" "${2:-}" "$(nproc)" <<'PY'
import json, os, sys
title, v1, v2, outages, cpus = sys.argv[1:6]
def load(p):
    try:
        return json.load(open(p)) if p and os.path.exists(p) else None
    except ValueError:
        return None
f, g, o = load(v1), load(v2), load(outages)
print(f"--- summary: {title} ({cpus} CPUs)")
if f:
    w, e = f["by_kind"]["webhook"], f["by_kind"]["events"]
    print(f"  requests sent        {f['sent']} (webhook bodies {w['sent']}, /events batches {e['sent']} with "
          f"{f['events_sent']} events)")
    print(f"  answered 2xx         {f['2xx']} (webhook {w['2xx']}, events {e['2xx']})")
    print(f"  answered 503         {f['503']} (webhook {w['503']}, events {e['503']})")
    print(f"  timeouts             {f['timeout']}")
    print(f"  connection errors    {f['conn_error']}")
    print(f"  other answers        {f['other']}")
    print(f"  slowest answer       {f['max_latency_s']} s")
    print(f"  applied exactly once {f['applied']} of {f['acknowledged']} acknowledged requests "
          f"({f['acknowledged_events']} acknowledged events)")
    print(f"  duplicates           {f['duplicates']}")
    print(f"  lost                 {f['lost']}")
    print(f"  unacknowledged but applied whole: {f['unacknowledged_applied']}, partly: {f['partial']}")
    print(f"  inbox drained in     {f['drain_s']} s after the load")
if g:
    unacked = f["requests"] - f["acknowledged"] if f else "?"
    print(f"  after resending the {unacked} unacknowledged ({g['resends']} sends): {g['applied']} of "
          f"{g['requests']} requests applied exactly once, duplicates {g['duplicates']}, lost {g['lost']}")
after = os.path.join(os.path.dirname(v1), "applied-after.txt")
if f:
    for c in f.get("claimed", []):
        print(f"  {c['label']}: {c['bodies']}, applied afterwards {c['applied']}")
if os.path.exists(after):
    for line in open(after):
        label, took = line.split(None, 1)
        print(f"  {label}: those bodies all applied {took.strip()} s after the kill")
for w in o or []:
    rec = w.get("recovery_s")
    print(f"  {w['label']}: out {w['outage_s']} s, {w['requests_in_outage']} requests in it "
          f"({w['503_in_outage']} answered 503, {w['conn_error_in_outage']} connection errors), "
          f"recovery {rec} s to the first 2xx, "
          f"{w['non_2xx_after_up']} non-2xx after it was back")
PY
}

# backends_gone WHERE: wait (up to 10 s) until no backend of the chaos database matches WHERE (a condition on
# pg_stat_activity), e.g. the backends of a killed instance, whose open transactions end with them
backends_gone() {
    local n _
    for _ in $(seq 1 200); do
        n=$(pg_psql chaos -tA -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'chaos' AND ($1)")
        [ "$n" != 0 ] || return 0
        sleep 0.05
    done
    log "backends ($1) still there after 10 s: $n"
    return 1
}

# wait_applied FILE: polls (every 0.1 s, up to 60 s) until every inbox id listed in FILE (a claimed file:
# label, kill time, mode, then "id [xid]" lines) is applied; prints the seconds from the kill time to then
wait_applied() {
    local file=$1 ids t0 left _
    ids=$(tail -n +4 "$file" | cut -d' ' -f1 | paste -sd, -)
    [ -n "$ids" ] || { echo "none"; return 0; }
    t0=$(sed -n 2p "$file")
    for _ in $(seq 1 600); do
        left=$(pg_psql chaos -tA -c "SELECT count(*) FROM inbox WHERE account_id = $ACCOUNT AND id IN ($ids)
            AND state <> 'applied'")
        if [ "$left" = 0 ]; then
            python3 -c 'import sys; print(f"{float(sys.argv[1]) - float(sys.argv[2]):.2f}")' "$(now)" "$t0"
            return 0
        fi
        sleep 0.1
    done
    echo "not within 60 s"
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
