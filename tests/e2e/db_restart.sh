#!/usr/bin/env bash
# End to end: PostgreSQL goes away under a running server and comes back. The server must answer
# 503 db_unavailable promptly (never hang, never crash) and recover by itself.
# Usage: tests/e2e/db_restart.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
BIN=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")

TMP=$(mktemp -d /tmp/salesops-e2e.XXXXXX)
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$TMP"
SERVE_PID=""
cleanup() {
    [ -z "$SERVE_PID" ] || { kill -TERM "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null || true; }
    pg_stop >/dev/null 2>&1 || true
    rm -rf -- "$TMP"
}
trap cleanup EXIT

passed=0 failed=0
check() { # name, expected, actual
    if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1: expected $2, got $3"; fi
}

pg_start "$TMP/pgdata" --no-fsync >/dev/null
pg_create_db e2e >/dev/null
export DATABASE_URL; DATABASE_URL=$(pg_url e2e)
"$BIN" migrate 2>/dev/null
key=$("$BIN" account create --name E2E | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
port=$(free_port)
SALESOPS_LISTEN=127.0.0.1:$port SALESOPS_THREADS=2 "$BIN" serve >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
base=http://127.0.0.1:$port
for _ in $(seq 1 50); do curl -sf -o /dev/null "$base/healthz" && break; sleep 0.1; done

status() { curl -s -o "$TMP/body" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $key" "$base$1" || echo timeout; }

check "account readable while the database is up" 200 "$(status /api/v1/account)"
_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" -m fast -w stop >/dev/null
check "database down: 503 on an API call (cached key)" 503 "$(status /api/v1/account)"
check "database down: the reply is db_unavailable" db_unavailable "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$TMP/body")"
check "database down: /readyz 503" 503 "$(status /readyz)"
check "database down: /healthz still 200" 200 "$(status /healthz)"
check "database down: the server is alive" 0 "$(kill -0 "$SERVE_PID"; echo $?)"
# restart reuses the options of the first start (socket directory, port) from postmaster.opts
_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" -l "$TMP/pgdata.log" -w restart >/dev/null 2>&1
ok=000
for _ in $(seq 1 40); do
    ok=$(status /api/v1/account)
    [ "$ok" = 200 ] && break
    sleep 0.25
done
check "database back: the server recovers by itself" 200 "$ok"
check "database back: /readyz 200" 200 "$(status /readyz)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
