#!/usr/bin/env bash
# Chaos: PostgreSQL restarted twice under sustained load of amoCRM webhook bodies and POST /events batches
# (one `salesops serve`, fsync on). Not part of scripts/test.sh: it runs for about two minutes.
#
#   - the load: WEBHOOK_CLIENTS clients posting webhook bodies (WEBHOOK_RATE a second in all) and
#     EVENTS_CLIENTS clients posting /events batches of DEALS deals, 2 events each (EVENTS_RATE a second), on
#     keep-alive connections, for DURATION seconds; every request has unique external ids and its outcome
#     (status, or timeout after CLIENT_TIMEOUT s) is recorded (tests/chaos/chaos.py);
#   - at 15 s `pg_ctl restart -m fast` as the postgres user; at 30 s `pg_ctl stop -m fast`, 5 s down, then
#     `pg_ctl start` (a longer outage);
#   - pg_isready every 20 ms gives the moments the database stopped and accepted connections again;
#   - checks: every answer is 2xx or 503 (no 500, no timeout, none slower than the client timeout), requests
#     in each outage are answered 503, the first 2xx comes less than 5 s after the database accepts
#     connections again (the recovery time) and every answer from 5 s after that on is 2xx; the server
#     process is the same one throughout; every acknowledged request is applied exactly once (webhook: one
#     stored body, applied, its lead created once with its update; events: each event id once in the inbox,
#     applied, its deal created once with its stage change), nothing applied twice or never sent, an
#     unacknowledged request applied whole or not at all; then every unacknowledged request is sent again
#     (same body, same ids) until answered 2xx, and every request sent is applied exactly once.
#
# Usage: tests/chaos/db_restart_under_load.sh [BINARY]   (default build/salesops; prints a summary and
# "N passed, M failed"; exit 1 on any failure). Settings: see tests/chaos/lib/common.sh; OUTAGE_S (default 5).
NAME=db_restart
DURATION=${DURATION:-50}
# shellcheck source=tests/chaos/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
OUTAGE_S=${OUTAGE_S:-5}
[ "$DURATION" -ge 45 ] || die "DURATION must be at least 45 (outages at 15 s and 30 s)"

chaos_db
log "PostgreSQL $PG_PORT, data $PG_DATADIR; account $ACCOUNT"
port=$(free_port)
serve_start api "$port"
pid=${SERVE_PID[api]}
log "salesops serve pid $pid on port $port"

# pg_isready every 20 ms: "time up|down" on each change
python3 "$CHAOS" pgwatch --pg-isready "$PG_BIN/pg_isready" --host "$PG_SOCKDIR" --port "$PG_PORT" \
    --out "$TMP/pgwatch.txt" --stop-file "$TMP/pgwatch.stop" --interval 0.02 &
EXTRA_PIDS+=($!)

load_start "127.0.0.1:$port"
log "load running for $DURATION s"

sleep_until_load 15
echo "restart $(now)" >>"$TMP/windows.txt"
log "pg_ctl restart -m fast"
_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" -m fast -w -t 60 restart -l "$TMP/pg-restart.log" >/dev/null 2>&1 \
    || die "pg_ctl restart failed"

sleep_until_load 30
echo "stop-${OUTAGE_S}s-start $(now)" >>"$TMP/windows.txt"
log "pg_ctl stop -m fast; ${OUTAGE_S} s down; pg_ctl start"
_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" -m fast -w -t 60 stop >/dev/null 2>&1 || die "pg_ctl stop failed"
sleep "$OUTAGE_S"
_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" -l "$PG_DATADIR/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_SOCKDIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null 2>&1 \
    || die "pg_ctl start failed"

load_wait
touch "$TMP/pgwatch.stop"

check "the server process survived both outages (pid $pid)" 0 "$(kill -0 "$pid" 2>/dev/null; echo $?)"
check "no other salesops process was started" 1 "$SERVE_STARTS"
run_checks outages --windows "$TMP/windows.txt" --watch "$TMP/pgwatch.txt" --expect-503 --allow 503 \
    --timeout "$CLIENT_TIMEOUT" --max-recovery 5 --figures "$TMP/outages.json" "$TMP/load.jsonl"
verify_and_resend "127.0.0.1:$port"
check "the server process is still the same at the end" 0 "$(kill -0 "$pid" 2>/dev/null; echo $?)"
if [ "$failed" -gt 0 ]; then
    echo "--- salesops stderr, warnings and errors (last 20):"
    grep -E '"level":"(warn|error)"' "$TMP"/api.*.err | tail -n 20 || true
fi
summary "PostgreSQL restarted under load" "$TMP/outages.json"
finish
