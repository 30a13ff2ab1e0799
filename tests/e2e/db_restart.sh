#!/usr/bin/env bash
# End to end: PostgreSQL goes away under a running server and comes back. The server must answer
# 503 db_unavailable promptly (never hang, never crash) and recover by itself.
# Usage: tests/e2e/db_restart.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
set -euo pipefail
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-e2e

e2e_database e2e
key=$("$BIN" account create --name E2E | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
SERVE_ENV=(SALESOPS_THREADS=2)
start_serve 1
wait_healthy 1 >/dev/null

status() { curl -s -o "$TMP/body" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $key" "${base[1]}$1" || echo timeout; }

check "account readable while the database is up" 200 "$(status /api/v1/account)"
# GET /deals/{id} goes through the deal reader, which holds a connection of its own
check "deal read while the database is up: 404 for a deal that does not exist" 404 "$(status /api/v1/deals/999999)"
_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" -m fast -w stop >/dev/null
check "database down: 503 on an API call (cached key)" 503 "$(status /api/v1/account)"
check "database down: the reply is db_unavailable" db_unavailable "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$TMP/body")"
check "database down: /readyz 503" 503 "$(status /readyz)"
check "database down: /healthz still 200" 200 "$(status /healthz)"
check "database down: 503 on a deal read (the deal reader)" 503 "$(status /api/v1/deals/999999)"
check "database down: the server is alive" 0 "$(alive "${SERVE_PIDS[0]}")"
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
ok=000
for _ in $(seq 1 20); do
    ok=$(status /api/v1/deals/999999)
    [ "$ok" = 404 ] && break
    sleep 0.25
done
check "database back: the deal reader reconnects (404 again)" 404 "$ok"
e2e_finish
