#!/usr/bin/env bash
# End to end: analytics reads from a streaming replica (DATABASE_READ_URL).
#
#   - a private primary and a streaming replica of it (pg_basebackup -R -X stream over the primary's unix
#     socket; own port and socket directory), the demo data loaded through the primary;
#   - `salesops serve` A with DATABASE_READ_URL = the replica, `salesops serve` B without it: the four
#     analytics endpoints give the same JSON on both, "as_of" aside;
#   - read-your-writes: a deal created (through B, then through A) is counted at once by A's
#     /analytics/summary (A waits up to 1 s for the replica to replay the primary's WAL position);
#   - A really reads the replica (it holds client connections to the database on the replica), and its other
#     routes still work;
#   - replica stopped: A's analytics answer 200 with the same figures (fallback to the primary), /readyz 200.
#
# Usage: tests/e2e/replica.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
# KEEP_TMP=1 keeps the temporary directory (server and PostgreSQL logs) for a look afterwards.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
BIN=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")
unset DATABASE_READ_URL

TMP=$(mktemp -d /tmp/salesops-replica.XXXXXX)
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$TMP"
REPLICA_DIR="$TMP/replica"
REPLICA_SOCK="$TMP/replsock"
REPLICA_PORT=""
REPLICA_STARTED=0
SERVE_PIDS=()
# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local pid
    for pid in "${SERVE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVE_PIDS[@]}"; do
        stop_pid "$pid" salesops # waits up to 10 s, then SIGKILL
    done
    if [ "$REPLICA_STARTED" = 1 ] && [ -f "$REPLICA_DIR/postmaster.pid" ]; then
        _pg_as "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            _pg_as "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    pg_stop >/dev/null 2>&1 || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP"; else rm -rf -- "$TMP"; fi
}
trap cleanup EXIT

passed=0 failed=0
check() { # name, expected, actual
    if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1: expected $2, got $3"; fi
}

# ------------------------------------------------------------------------------------------ the primary
pg_start "$TMP/pgdata" --no-fsync >/dev/null
pg_create_db e2e >/dev/null
PRIMARY_URL=$(pg_url e2e)
# initdb --auth=trust allows replication connections over the local socket; make sure of it
if ! grep -Eq '^[[:space:]]*local[[:space:]]+replication[[:space:]]+all[[:space:]]+trust' "$PG_DATADIR/pg_hba.conf"; then
    printf 'local replication all trust\n' | _pg_as tee -a "$PG_DATADIR/pg_hba.conf" >/dev/null
    _pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" reload >/dev/null
fi

# ------------------------------------------------------------------------------------------ the replica
t0=$(date +%s%N)
if ! _pg_as "$PG_BIN/pg_basebackup" -h "$PG_SOCKDIR" -p "$PG_PORT" -U postgres -D "$REPLICA_DIR" -R -X stream \
        -c fast >"$TMP/basebackup.log" 2>&1; then
    cat "$TMP/basebackup.log" >&2
    die "pg_basebackup failed"
fi
rm -f -- "$REPLICA_DIR/server.log" # the primary's log, copied along
_pg_own_dir "$REPLICA_SOCK"
for attempt in 1 2 3 4 5; do
    REPLICA_PORT=$(free_port)
    # max_connections must not be below the primary's (300) on a hot standby
    if _pg_as "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -l "$TMP/replica.log" -w -t 60 \
            -o "-p $REPLICA_PORT -k $REPLICA_SOCK -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
            start >/dev/null 2>&1; then
        REPLICA_STARTED=1
        break
    fi
    if [ "$attempt" -ge 5 ] || ! grep -q -i -e 'address already in use' -e 'could not bind' "$TMP/replica.log"; then
        tail -n 30 "$TMP/replica.log" >&2
        die "the replica did not start"
    fi
done
REPLICA_URL="postgresql://postgres@/e2e?host=$REPLICA_SOCK&port=$REPLICA_PORT"
rq() { # rq DB SQL: a query on the replica, unaligned; the error instead when it fails
    "$PG_BIN/psql" -X -q -tA "postgresql://postgres@/$1?host=$REPLICA_SOCK&port=$REPLICA_PORT" -c "$2" 2>&1 || true
}
q() { # q SQL: a query on the primary's e2e database
    pg_psql e2e -tA -c "$1" 2>&1 || true
}
in_recovery=""
for _ in $(seq 1 60); do
    in_recovery=$(rq postgres "SELECT pg_is_in_recovery()")
    [ "$in_recovery" != t ] || break
    sleep 0.25
done
check "replica up and in recovery" t "$in_recovery"
streaming=""
for _ in $(seq 1 40); do
    streaming=$(pg_psql postgres -tA -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>&1 || true)
    [ "$streaming" != 1 ] || break
    sleep 0.25
done
check "primary: one streaming standby in pg_stat_replication" 1 "$streaming"
log "replica ready in $((($(date +%s%N) - t0) / 1000000)) ms (port $REPLICA_PORT, socket $REPLICA_SOCK)"

# --------------------------------------------------------------------------------------- data and servers
export DATABASE_URL=$PRIMARY_URL
"$BIN" migrate 2>/dev/null
# the account in UTC so that "today" below is the account's today whatever the hour
mapfile -t acct < <("$BIN" account create --name "E2E replica" --timezone UTC | account_fields)
account=${acct[0]} key=${acct[1]}
"$BIN" demo --account "$account"

from=$(TZ=UTC date -d '-30 days' +%F) to=$(TZ=UTC date +%F)
bases=() # [0] A: reads analytics from the replica; [1] B: primary only
for n in 0 1; do
    port=$(free_port)
    if [ "$n" = 0 ]; then
        DATABASE_READ_URL=$REPLICA_URL SALESOPS_LISTEN=127.0.0.1:$port SALESOPS_THREADS=2 SALESOPS_MIGRATE_ON_START=false \
            "$BIN" serve >"$TMP/serve$n.out" 2>"$TMP/serve$n.err" &
    else
        SALESOPS_LISTEN=127.0.0.1:$port SALESOPS_THREADS=2 SALESOPS_MIGRATE_ON_START=false \
            "$BIN" serve >"$TMP/serve$n.out" 2>"$TMP/serve$n.err" &
    fi
    SERVE_PIDS+=($!)
    bases+=("http://127.0.0.1:$port")
done
names=("A (DATABASE_READ_URL)" "B (primary only)")
for n in 0 1; do
    for _ in $(seq 1 100); do curl -sf -o /dev/null "${bases[n]}/healthz" && break; sleep 0.1; done
    check "server ${names[n]} answers /healthz" 200 "$(curl -s -o /dev/null -w '%{http_code}' "${bases[n]}/healthz" || true)"
done

# api INSTANCE METHOD PATH [BODY]: prints the status code; the reply body is in $TMP/body (and $TMP/body.INSTANCE)
api() {
    local args=(-s -o "$TMP/body" -w '%{http_code}' --max-time 10 -X "$2" -H "Authorization: Bearer $key")
    [ $# -lt 4 ] || args+=(-H 'Content-Type: application/json' --data-binary "$4")
    curl "${args[@]}" "${bases[$1]}$3" || true # curl prints 000 when there is no answer
    cp -- "$TMP/body" "$TMP/body.$1" 2>/dev/null || true
}
# jq_body EXPR [FILE]: a Python expression over a reply body `b` (json), printed
jq_body() {
    python3 -c 'import json, sys
b = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "${2:-$TMP/body}" "$1" 2>/dev/null \
        || echo "(no such field in: $(head -c 300 "${2:-$TMP/body}"))"
}
# same_but_as_of FILE1 FILE2: "same" when the two JSON bodies are equal once every "as_of" key is removed
# (compared as re-serialized in their own key order); else the first difference
same_but_as_of() {
    python3 - "$1" "$2" <<'PY'
import json, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k != "as_of"}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
try:
    a, b = (json.dumps(strip(json.load(open(p))), ensure_ascii=False) for p in sys.argv[1:3])
except ValueError as e:
    sys.exit(print(f"unparsable reply: {e}"))
if a == b:
    print("same")
else:
    i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    print(f"differ at {i}: A ...{a[max(0, i - 60):i + 60]}... B ...{b[max(0, i - 60):i + 60]}...")
PY
}

routes=(
    "/api/v1/analytics/managers?from=$from&to=$to"
    "/api/v1/analytics/summary?from=$from&to=$to"
    "/api/v1/analytics/funnel?pipeline_id=1&from=$from&to=$to"
    "/api/v1/analytics/checklist?weeks=4"
)
# compare_all LABEL: each analytics route on A and on B, 200 and the same JSON but for as_of
compare_all() {
    local r short
    for r in "${routes[@]}"; do
        short=${r%%\?*}
        check "$1: A GET ${short#/api/v1} 200" 200 "$(api 0 GET "$r")"
        check "$1: B GET ${short#/api/v1} 200" 200 "$(api 1 GET "$r")"
        check "$1: ${short#/api/v1} the same on A and B but for as_of" same "$(same_but_as_of "$TMP/body.0" "$TMP/body.1")"
    done
}

# ------------------------------------------------------------------------------------------------ checks
check "B: the demo is in the summary (created > 0)" yes \
    "$([ "$(api 1 GET "/api/v1/analytics/summary?from=$from&to=$to")" = 200 ] &&
        [ "$(jq_body 'b["created"]')" -gt 0 ] 2>/dev/null && echo yes || echo "no: $(head -c 200 "$TMP/body")")"
compare_all "replica up"

summary="/api/v1/analytics/summary?from=$from&to=$to"
api 1 GET "$summary" >/dev/null
created0=$(jq_body 'b["created"]')
[[ $created0 =~ ^[0-9]+$ ]] || created0=0
for n in 1 0; do
    w=$([ "$n" = 1 ] && echo B || echo A)
    check "deal created through $w" 201 "$(api "$n" POST /api/v1/deals \
        "{\"name\":\"Replica e2e deal via $w\",\"price\":12345,\"pipeline_id\":1,\"manager_id\":1}")"
    check "read-your-writes: A's summary counts the deal created through $w at once" \
        "200 $((created0 + 1))" "$(api 0 GET "$summary") $(jq_body 'b["created"]')"
    created0=$((created0 + 1))
done
check "B's summary agrees" "200 $created0" "$(api 1 GET "$summary") $(jq_body 'b["created"]')"
compare_all "after the writes"

check "A really reads the replica: its client connections to e2e on the replica (>= 1)" yes \
    "$(c=$(rq postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
        AND datname = 'e2e' AND pid <> pg_backend_pid()"); [ "$c" -ge 1 ] 2>/dev/null && echo yes || echo "no ($c)")"
check "A: GET /deals 200" 200 "$(api 0 GET /api/v1/deals)"
check "A: GET /account 200" 200 "$(api 0 GET /api/v1/account)"
check "A: GET /analytics/targets 200" 200 "$(api 0 GET /api/v1/analytics/targets)"
check "A: /readyz 200 with the replica up" 200 "$(api 0 GET /readyz)"

# -------------------------------------------------------------------------------------- replica stopped
_pg_as "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 || true
check "replica stopped" no "$([ -f "$REPLICA_DIR/postmaster.pid" ] && echo yes || echo no)"
compare_all "replica down (fallback)"
check "replica down: A's summary still counts both deals" "200 $created0" \
    "$(api 0 GET "$summary") $(jq_body 'b["created"]')"
check "replica down: A: GET /deals 200" 200 "$(api 0 GET /api/v1/deals)"
check "replica down: A: /readyz 200" 200 "$(api 0 GET /readyz)"
for n in 0 1; do
    check "server ${names[n]} still running at the end" 0 "$(kill -0 "${SERVE_PIDS[n]}" 2>/dev/null; echo $?)"
done
if [ "$failed" -gt 0 ]; then
    for n in 0 1; do
        echo "--- server ${names[n]} stderr, warnings and errors (last 20):"
        grep -E '"level":"(warn|error)"' "$TMP/serve$n.err" | tail -n 20 || true
    done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
