#!/usr/bin/env bash
# Chaos: `salesops serve` killed with SIGKILL twice under sustained load of amoCRM webhook bodies and
# POST /events batches, and started again on the same port. Not part of scripts/test.sh: about two minutes.
#
#   - the load as in db_restart_under_load.sh (tests/chaos/chaos.py, unique ids per request, every outcome
#     recorded); a client whose connection fails (refused while the service is down, reset at the kill)
#     records conn_error and goes on with its next request;
#   - at 15 s and at 30 s: kill -9, then at once the webhook bodies that are stored (acknowledged) and not yet
#     applied are read from the database (state pending, including any the killed applier had in hand);
#     DOWN_S (2) s later the service is started again on the same port;
#   - checks: every answer is 2xx or a connection error (no 5xx, no timeout); the service answers 2xx less
#     than 5 s after it is started again, and every answer from 5 s after that on is 2xx; the bodies pending
#     at each kill are all applied after it (by the new process's applier); every acknowledged request is
#     applied exactly once, nothing applied twice or never sent, an unacknowledged request (one in flight at
#     the kill) applied whole or not at all; then every unacknowledged request is sent again until answered
#     2xx, and every request sent is applied exactly once.
#
# Usage: tests/chaos/kill9_under_load.sh [BINARY]   (default build/salesops; prints a summary and
# "N passed, M failed"; exit 1 on any failure). Settings: see tests/chaos/lib/common.sh; DOWN_S (default 2).
NAME=kill9
DURATION=${DURATION:-50}
# shellcheck source=tests/chaos/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
DOWN_S=${DOWN_S:-2}
[ "$DURATION" -ge 45 ] || die "DURATION must be at least 45 (kills at 15 s and 30 s)"

chaos_db
log "PostgreSQL $PG_PORT, data $PG_DATADIR; account $ACCOUNT"
port=$(free_port)
serve_start api "$port"
log "salesops serve pid ${SERVE_PID[api]} on port $port"

load_start "127.0.0.1:$port" --pause-after-error 0.05
log "load running for $DURATION s"

claimed=()
for kill_at in 15 30; do
    sleep_until_load "$kill_at"
    pid=${SERVE_PID[api]}
    t_kill=$(now)
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    unset 'SERVE_PID[api]'
    # its backends end when PostgreSQL sees the closed connections, rolling back what its applier had in hand
    backends_gone "application_name = 'salesops'" || true
    # acknowledged and not applied: the stored bodies still pending now
    file="$TMP/pending-at-kill-$kill_at.txt"
    { echo "bodies pending at the kill at ${kill_at} s"; echo "$t_kill"; echo after-kill
      pg_psql chaos -tA -c "SELECT id FROM inbox WHERE account_id = $ACCOUNT AND source = 'amocrm'
          AND state = 'pending' ORDER BY id"; } >"$file"
    claimed+=(--claimed "$file")
    log "kill -9 $pid at ${kill_at} s: $(($(wc -l <"$file") - 3)) acknowledged bodies pending"
    sleep "$DOWN_S"
    t_start=$(now)
    echo "kill-at-${kill_at}s $t_kill $t_start" >>"$TMP/windows.txt"
    serve_start api "$port"
    log "started again: pid ${SERVE_PID[api]}"
    took=$(wait_applied "$file")
    echo "kill-at-${kill_at}s $took" >>"$TMP/applied-after.txt"
    log "the bodies pending at the kill were all applied $took s after it"
done

load_wait
check "the service started last is running" 0 "$(kill -0 "${SERVE_PID[api]}" 2>/dev/null; echo $?)"
run_checks outages --windows "$TMP/windows.txt" --allow conn_error --timeout "$CLIENT_TIMEOUT" \
    --max-recovery 5 --figures "$TMP/outages.json" "$TMP/load.jsonl"
verify_and_resend "127.0.0.1:$port" "${claimed[@]}"
check "the service is still running at the end" 0 "$(kill -0 "${SERVE_PID[api]}" 2>/dev/null; echo $?)"
if [ "$failed" -gt 0 ]; then
    echo "--- salesops stderr, warnings and errors (last 20):"
    grep -h -E '"level":"(warn|error)"' "$TMP"/api.*.err | tail -n 20 || true
fi
summary "salesops killed with SIGKILL under load" "$TMP/outages.json"
finish
