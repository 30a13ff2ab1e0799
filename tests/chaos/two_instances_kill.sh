#!/usr/bin/env bash
# Chaos: two `salesops serve` instances on one database under sustained load of amoCRM webhook bodies and
# POST /events batches; instance A is killed with SIGKILL while its applier holds claimed webhook bodies.
# Not part of scripts/test.sh: about two minutes.
#
#   - A connects to PostgreSQL over TCP and B over the unix socket, so that the backends of each are told
#     apart (pg_stat_activity.client_addr); half the clients of each kind start on A, half on B; a client
#     whose connection fails goes on with its next request on the other instance (as a load balancer would);
#   - at 20 s: A is stopped (SIGSTOP) and, 0.2 s later, the webhook bodies whose rows are locked by a backend
#     of A that is idle in transaction are read with pgrowlocks, with the locking transaction's xid (the
#     applier claims a body with SELECT ... FOR UPDATE SKIP LOCKED inside its transaction); when A holds
#     none, it goes on (SIGCONT) and this is tried again 0.2 s later (up to 150 times); then A is killed
#     with SIGKILL (while stopped), and the time until B has applied all those bodies is measured;
#   - checks: every answer is 2xx or a connection error (no 5xx, no timeout); answers are 2xx from the kill on
#     (first 2xx within 5 s, and every answer 5 s after the kill is 2xx); B is running throughout and answers
#     everything after the kill; A's backends end (its transaction rolls back); the bodies A had claimed are
#     all applied, each by another transaction than A's (the row's xmin), i.e. by B; every acknowledged request is applied exactly once, nothing applied
#     twice or never sent, an unacknowledged request applied whole or not at all; then every unacknowledged
#     request is sent again until answered 2xx, and every request sent is applied exactly once.
#
# Usage: tests/chaos/two_instances_kill.sh [BINARY]   (default build/salesops; prints a summary and
# "N passed, M failed"; exit 1 on any failure). Settings: see tests/chaos/lib/common.sh.
NAME=two_instances
# shellcheck source=tests/chaos/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
KILL_AT=${KILL_AT:-20}

chaos_db
pg_psql chaos -c "CREATE EXTENSION IF NOT EXISTS pgrowlocks" >/dev/null
log "PostgreSQL $PG_PORT, data $PG_DATADIR; account $ACCOUNT"
port_a=$(free_port)
port_b=$(free_port)
serve_start a "$port_a" DATABASE_URL="$TCP_DATABASE_URL"
serve_start b "$port_b" DATABASE_URL="$DATABASE_URL"
pid_a=${SERVE_PID[a]} pid_b=${SERVE_PID[b]}
log "instance A pid $pid_a port $port_a (TCP to PostgreSQL), instance B pid $pid_b port $port_b (unix socket)"
check "instance A's connections are the TCP ones" yes "$(
    n=$(pg_psql chaos -tA -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'chaos'
        AND application_name = 'salesops' AND client_addr IS NOT NULL")
    [ "$n" -ge 1 ] && echo yes || echo "no ($n)")"

load_start "127.0.0.1:$port_a,127.0.0.1:$port_b" --failover
log "load running for $DURATION s"

sleep_until_load "$KILL_AT"
# the bodies A's applier holds in an open transaction: rows locked by a backend of A (TCP) that sits "idle in
# transaction", waiting for A's next command, which will never come: A is stopped, then killed. (A backend
# still running a statement may be running A's COMMIT: then it is not counted, and tried again.)
claimed_sql="SELECT i.id || ' ' || r.locker FROM pgrowlocks('inbox') r JOIN inbox i ON i.ctid = r.locked_row
    JOIN pg_stat_activity a ON a.pid = ANY (r.pids)
    WHERE i.account_id = $ACCOUNT AND i.source = 'amocrm' AND i.state = 'pending'
      AND a.client_addr IS NOT NULL AND a.state = 'idle in transaction'
    ORDER BY i.id"
rows="" tries=0
while [ "$tries" -lt 150 ]; do
    tries=$((tries + 1))
    kill -STOP "$pid_a"
    sleep 0.2 # what A sent before it stopped is done by now
    rows=$(pg_psql chaos -tA -c "$claimed_sql")
    [ -z "$rows" ] || break
    kill -CONT "$pid_a"
    sleep 0.2
done
t_kill=$(now)
kill -KILL "$pid_a"
wait "$pid_a" 2>/dev/null || true
unset 'SERVE_PID[a]'
echo "kill-A $t_kill $t_kill" >"$TMP/windows.txt"
{ echo "bodies claimed by instance A at its kill"; echo "$t_kill"; echo other-transaction; echo "$rows"; } \
    >"$TMP/claimed.txt"
log "instance A killed (try $tries) holding $(printf '%s' "$rows" | grep -c . || true) claimed webhook bodies"
check "instance A's backends ended (its transaction rolled back)" 0 \
    "$(backends_gone "client_addr IS NOT NULL" && echo 0 || echo 1)"
took=$(wait_applied "$TMP/claimed.txt")
echo "kill-A $took" >"$TMP/applied-after.txt"
log "instance B applied the bodies A had claimed $took s after the kill"

load_wait
check "instance B still running after the kill" 0 "$(kill -0 "$pid_b" 2>/dev/null; echo $?)"
run_checks outages --windows "$TMP/windows.txt" --allow conn_error --timeout "$CLIENT_TIMEOUT" \
    --max-recovery 5 --figures "$TMP/outages.json" "$TMP/load.jsonl"
check "every request answered after the kill was answered by B" 0 "$(python3 - "$TMP/load.jsonl" "$t_kill" <<'PY'
import json, sys
t = float(sys.argv[2])
print(sum(1 for line in open(sys.argv[1]) for r in [json.loads(line)]
          if r["t0"] > t + 0.5 and isinstance(r["outcome"], int) and r["target"] != 1))
PY
)"
verify_and_resend "127.0.0.1:$port_b" --claimed "$TMP/claimed.txt"
check "instance B still running at the end" 0 "$(kill -0 "$pid_b" 2>/dev/null; echo $?)"
if [ "$failed" -gt 0 ]; then
    for n in a b; do
        echo "--- instance $n stderr, warnings and errors (last 10):"
        grep -h -E '"level":"(warn|error)"' "$TMP"/$n.*.err | tail -n 10 || true
    done
fi
summary "two instances, one killed with SIGKILL under load" "$TMP/outages.json"
finish
