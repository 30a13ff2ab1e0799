#!/usr/bin/env bash
# End to end: graceful shutdown of `salesops serve` on SIGTERM.
#
#   (a) default grace (SALESOPS_SHUTDOWN_GRACE_S=10): two large POST /api/v1/events batches of deal.created
#       events run in parallel; SIGTERM comes while both are in flight. Both complete with 200 (every event
#       accepted) and all their events are in the database (inbox rows applied, deals made); /readyz asked on
#       a keep-alive connection opened before the signal answers 503 shutting_down with Connection: close (or
#       the connection is closed); new TCP connections are refused within 1 s of the signal; the process
#       exits with status 0 within the grace; the log has "shutting down" and "stopped".
#   (b) SALESOPS_SHUTDOWN_GRACE_S=1 and a batch that takes several seconds: the process still exits (status
#       0) within 3 s of the signal.
#
# The batches are sized from a calibration batch: 10,000 events (the most a request may carry) take from
# about 2 s on an idle machine to a minute on a loaded one, longer than the 10 s grace; each batch here is
# sized to take about 3 s, (b)'s about 6 s, capped at 10,000 events (at least 0.5 s is checked).
#
# Usage: tests/e2e/shutdown.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
# KEEP_TMP=1 keeps the temporary directory (server logs) for a look afterwards.
set -euo pipefail
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-shutdown
SERVE_PID=""
# shellcheck disable=SC2317  # called by e2e_cleanup
e2e_cleanup_hook() {
    if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
        kill -KILL "$SERVE_PID" 2>/dev/null || true # a server still here failed its shutdown already
        wait "$SERVE_PID" 2>/dev/null || true
    fi
}
e2e_database e2e
mapfile -t acct < <("$BIN" account create --name "E2E shutdown" | account_fields)
account=${acct[0]} key=${acct[1]}

# start_server LOG [VAR=VALUE...]: starts `salesops serve` on a free port; sets SERVE_PID and port
start_server() {
    local log=$1
    shift
    port=$(free_port)
    env "$@" SALESOPS_LISTEN="127.0.0.1:$port" SALESOPS_THREADS=4 SALESOPS_MIGRATE_ON_START=false \
        "$BIN" serve >"$log" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
}

# The probe: sends PARALLEL batches of COUNT deal.created events (ids PREFIX-<batch>-<i>), sends SIGTERM to
# PID once all are in flight for 0.5 s, then probes /readyz on a keep-alive connection opened before, tries
# new connections, waits for the batches and for the process to end (a zombie: this shell reaps it later).
# Prints CHECK lines, and "exit_after <seconds>" (or "exit_after none").
probe() { # port key pid count parallel prefix grace
    python3 - "$@" <<'PY'
import http.client, json, os, signal, socket, sys, threading, time
port, key, pid, count, parallel, prefix, grace = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])

def check(name, want, got):
    print(f"CHECK\t{name}\t{want}\t{got}", flush=True)

def batch(b):
    return json.dumps([{"id": f"{prefix}-{b}-{i}", "type": "deal.created", "at": "2026-11-02T09:00:00Z",
                        "data": {"deal": f"{prefix}-{b}-{i}", "name": f"Shutdown deal {b}-{i}", "price": 1000 + i,
                                 "pipeline": "sd-pipeline", "stage": "sd-stage", "manager": f"sd-m{i % 20}"}}
                       for i in range(count)])

bodies = [batch(b) for b in range(parallel)]
results = [None] * parallel  # (status, body, started, ended)

def send(b):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.monotonic()
    try:
        c.request("POST", "/api/v1/events", bodies[b], {"Authorization": "Bearer " + key,
                                                         "Content-Type": "application/json"})
        r = c.getresponse()
        results[b] = (r.status, r.read(), started, time.monotonic(), r.getheader("Connection"))
    except (OSError, http.client.HTTPException) as e:
        results[b] = (f"no answer ({type(e).__name__})", b"", started, time.monotonic(), None)
    finally:
        c.close()

# the keep-alive connection, opened (and used once) before the signal
keep = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
keep.request("GET", "/readyz")
r = keep.getresponse()
r.read()
check(f"{prefix}: /readyz 200 on the keep-alive connection before the signal", 200, r.status)

threads = [threading.Thread(target=send, args=(b,)) for b in range(parallel)]
for t in threads:
    t.start()
time.sleep(0.5)
in_flight = sum(1 for x in results if x is None)
# new connections, tried from the moment of the signal on (in a thread of their own: the /readyz below may
# wait behind a busy worker thread)
conn_probe = {"refused_after": None, "accepted": 0, "errors": {}}

def try_connect():
    while time.monotonic() - t_sig < 3:
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
            conn_probe["accepted"] += 1
        except ConnectionRefusedError:
            conn_probe["refused_after"] = time.monotonic() - t_sig
            return
        except OSError as e:
            kind = type(e).__name__ if type(e) is not OSError else f"errno {e.errno}"
            conn_probe["errors"][kind] = conn_probe["errors"].get(kind, 0) + 1
        finally:
            s.close()
        time.sleep(0.05)

os.kill(pid, signal.SIGTERM)
t_sig = time.monotonic()
connector = threading.Thread(target=try_connect)
connector.start()
print(f"    SIGTERM sent with {in_flight} of {parallel} batches of {count} events in flight", flush=True)
check(f"{prefix}: all {parallel} batches in flight at the signal", parallel, in_flight)

# /readyz on the keep-alive connection right after the signal
time.sleep(0.05)
t_ready = time.monotonic()
try:
    keep.request("GET", "/readyz")
    r = keep.getresponse()
    body = r.read()
    try:
        code = json.loads(body).get("code")
    except ValueError:
        code = None
    conn_hdr = (r.getheader("Connection") or "").lower()
    readyz = f"{r.status} {code}, Connection: {conn_hdr or '(none)'}"
    readyz_ok = r.status == 503 and code == "shutting_down" and conn_hdr == "close"
except (OSError, http.client.HTTPException) as e:
    readyz = f"connection closed ({type(e).__name__})"
    readyz_ok = True
keep.close()
print(f"    /readyz on the keep-alive connection after the signal: {readyz}, "
      f"after {(time.monotonic() - t_ready) * 1000:.0f} ms", flush=True)
check(f"{prefix}: keep-alive /readyz after the signal is 503 shutting_down with Connection: close, or closed",
      "yes", "yes" if readyz_ok else readyz)

connector.join()
refused_after = conn_probe["refused_after"]
print(f"    new connections: {conn_probe['accepted']} accepted after the signal"
      + "".join(f", {n} x {k}" for k, n in sorted(conn_probe["errors"].items())) + ", then "
      + (f"refused at {refused_after * 1000:.0f} ms" if refused_after is not None else "never refused in 3 s"),
      flush=True)
check(f"{prefix}: new TCP connections refused within 1 s of the signal", "yes",
      "yes" if refused_after is not None and refused_after <= 1 else
      ("never in 3 s" if refused_after is None else f"after {refused_after:.2f} s"))

for t in threads:
    t.join(timeout=max(1, grace + 20 - (time.monotonic() - t_sig)))

def exited():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):  # gone between open and read
        return True

exit_after = None
while time.monotonic() - t_sig < grace + 20:
    if exited():
        exit_after = time.monotonic() - t_sig
        break
    time.sleep(0.02)
for b, res in enumerate(results):
    if res is None:
        print(f"    batch {b}: still no answer", flush=True)
        continue
    status, body, started, ended, conn_hdr = res
    print(f"    batch {b}: {status} after {ended - started:.2f} s ({ended - t_sig:+.2f} s from the signal), "
          f"Connection: {conn_hdr}; {body[:80].decode(errors='replace')}", flush=True)
for b, res in enumerate(results):
    status, body, started, ended, _ = res if res is not None else ("no answer", b"", 0, 0, None)
    try:
        accepted_n = json.loads(body).get("accepted")
    except ValueError:
        accepted_n = None
    print(f"RESULT\t{b}\t{status}\t{accepted_n}\t{ended - started:.3f}\t{ended - t_sig:.3f}", flush=True)
print(f"exit_after {'none' if exit_after is None else f'{exit_after:.3f}'}", flush=True)
PY
}

# ------------------------------------------------------------------------------------- calibration
start_server "$TMP/serve-a.log" SALESOPS_CONNECTION_TIMEOUT_S=15
server=http://127.0.0.1:$port
check "(a) the server answers /healthz" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$server/healthz" || true)"
rate=$(python3 - "$port" "$key" <<'PY'
import http.client, json, sys, time
port, key, n = int(sys.argv[1]), sys.argv[2], 400
body = json.dumps([{"id": f"cal-{i}", "type": "deal.created", "at": "2026-11-01T09:00:00Z",
                    "data": {"deal": f"cal-{i}", "name": f"Calibration {i}", "price": 1, "pipeline": "sd-pipeline",
                             "stage": "sd-stage", "manager": f"sd-m{i % 20}"}} for i in range(n)])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
t = time.monotonic()
c.request("POST", "/api/v1/events", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
r = c.getresponse()
r.read()
took = time.monotonic() - t
print(int(n / took) if r.status == 200 else 0)
PY
) || rate=0
check "calibration: 400 events applied" yes "$([ "$rate" -gt 0 ] && echo yes || echo no)"
[ "$rate" -gt 0 ] || rate=1000
clamp() { local v=$1; [ "$v" -ge "$2" ] || v=$2; [ "$v" -le "$3" ] || v=$3; echo "$v"; }
count_a=$(clamp $((rate * 3 / 2)) 500 10000) # two in parallel: about 3 s each
count_b=$(clamp $((rate * 6)) 1000 10000)    # alone: about 6 s
log "about $rate events/s here (10,000 events: ~$((10000 / rate)) s); (a): 2 x $count_a events, (b): $count_b events"

# ------------------------------------------------------------------- (a) SIGTERM with batches in flight
echo "--- (a) SIGTERM with 2 batches of $count_a events in flight, grace 10 s"
probe "$port" "$key" "$SERVE_PID" "$count_a" 2 sda 10 >"$TMP/probe-a.out"
run_checks < <(grep -v -E '^(RESULT|exit_after)' "$TMP/probe-a.out")
while IFS=$'\t' read -r _ b status accepted took _; do
    check "(a) batch $b completed with 200" 200 "$status"
    check "(a) batch $b: all $count_a events accepted" "$count_a" "$accepted"
    check "(a) batch $b took over 0.5 s" yes "$(python3 -c "print('yes' if $took > 0.5 else 'no ($took s)')")"
done < <(grep '^RESULT' "$TMP/probe-a.out")
exit_after=$(sed -n 's/^exit_after //p' "$TMP/probe-a.out")
check "(a) the process exits within the 10 s grace" yes \
    "$(python3 -c "print('yes' if '$exit_after' != 'none' and float('$exit_after') <= 10 else 'no (exit after: $exit_after s)')")"
rc=none
if ! kill -0 "$SERVE_PID" 2>/dev/null || [ "$exit_after" != none ]; then
    rc=0
    wait "$SERVE_PID" || rc=$?
    SERVE_PID=""
fi
check "(a) exit status 0" 0 "$rc"
check "(a) the log has \"shutting down\"" yes "$(grep -q 'shutting down' "$TMP/serve-a.log" && echo yes || echo no)"
check "(a) the log has \"stopped\"" yes "$(grep -q '"stopped"' "$TMP/serve-a.log" && echo yes || echo no)"
check "(a) every event of both batches is in the inbox, applied" "$((2 * count_a))" \
    "$(q "SELECT count(*) FROM inbox WHERE account_id = $account AND event_id LIKE 'sda-%' AND state = 'applied'")"
check "(a) every deal of both batches was made" "$((2 * count_a))" \
    "$(q "SELECT count(*) FROM deals WHERE account_id = $account AND external_id LIKE 'sda-%'")"
check "(a) no request answered 5xx (but /readyz's 503 shutting_down)" 0 \
    "$(grep '"status":5[0-9][0-9]' "$TMP/serve-a.log" | grep -c -v '"path":"/readyz"' || true)"

# ------------------------------------------------------------ (b) grace 1 s, a request that takes longer
start_server "$TMP/serve-b.log" SALESOPS_SHUTDOWN_GRACE_S=1
echo "--- (b) SIGTERM with a batch of $count_b events in flight, grace 1 s"
probe "$port" "$key" "$SERVE_PID" "$count_b" 1 sdb 1 >"$TMP/probe-b.out"
run_checks < <(grep -v -E '^(RESULT|exit_after)' "$TMP/probe-b.out")
exit_after=$(sed -n 's/^exit_after //p' "$TMP/probe-b.out")
check "(b) grace 1 s: the process exits within 3 s of the signal" yes \
    "$(python3 -c "print('yes' if '$exit_after' != 'none' and float('$exit_after') <= 3 else 'no (exit after: $exit_after s)')")"
rc=none
if ! kill -0 "$SERVE_PID" 2>/dev/null || [ "$exit_after" != none ]; then
    rc=0
    wait "$SERVE_PID" || rc=$?
    SERVE_PID=""
fi
check "(b) exit status 0" 0 "$rc"
grep -h -E 'still in flight|stopped' "$TMP/serve-b.log" | sed 's/^/    log: /' || true
echo "    (b) events of the cut batch in the database: $(q "SELECT count(*) FROM inbox
    WHERE account_id = $account AND event_id LIKE 'sdb-%'") of $count_b"

e2e_finish
