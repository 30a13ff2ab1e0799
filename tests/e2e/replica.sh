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
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-replica
unset DATABASE_READ_URL

REPLICA_DIR="$TMP/replica"
REPLICA_SOCK="$TMP/replsock"
REPLICA_PORT=""
REPLICA_STARTED=0
# shellcheck disable=SC2317  # invoked by e2e_cleanup, after the servers stop and before the primary does
e2e_cleanup_hook() {
    if [ "$REPLICA_STARTED" = 1 ] && [ -f "$REPLICA_DIR/postmaster.pid" ]; then
        _pg_as "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            _pg_as "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
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
# the compared figures need a fixed as_of (lateness of open tasks grows with it): periods that have ended
past=$(TZ=UTC date -d yesterday +%F) last_sunday=$(TZ=UTC date -d 'last sunday' +%F)
# server 0, A: reads analytics from the replica; server 1, B: primary only
SERVE_ENV=(SALESOPS_THREADS=2 SALESOPS_MIGRATE_ON_START=false)
start_serve 0 DATABASE_READ_URL="$REPLICA_URL"
start_serve 1
names=("A (DATABASE_READ_URL)" "B (primary only)")
for n in 0 1; do
    check "server ${names[n]} answers /healthz" 200 "$(wait_healthy "$n")"
done
API_MAX_TIME=10 # api N ...: the reply body is in $TMP/body and $TMP/body.N

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
    "/api/v1/analytics/managers?from=$from&to=$past"
    "/api/v1/analytics/summary?from=$from&to=$past"
    "/api/v1/analytics/funnel?pipeline_id=1&from=$from&to=$past"
    "/api/v1/analytics/checklist?weeks=4&end=$last_sunday"
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
    check "server ${names[n]} still running at the end" 0 "$(alive "${SERVE_PIDS[n]}")"
done
e2e_finish
