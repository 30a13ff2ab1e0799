#!/usr/bin/env bash
# End to end: hostile clients against one `salesops serve` with SALESOPS_CONNECTION_TIMEOUT_S=2 and
# SALESOPS_PER_IP_CONNECTIONS=40. Nothing a client sends may crash the server or stop it serving others.
#
#   (a) slowloris: 40 connections from 127.0.0.1 each send a partial request line and headers, one byte every
#       0.5 s. While they hang: GET /healthz from 127.0.0.2 answers 200 promptly; a 41st connection from
#       127.0.0.1 is refused or closed without being served; within ~4 s the server has closed the 40 slow
#       connections (the 2 s timeout counts for slow connections too, not only silent ones); then 127.0.0.1
#       is served again. Also: a connection that sends nothing is closed after ~2 s.
#   (b) request heads over the 16 KiB per-connection limit (one 100 KiB header, 10,000 small headers, a
#       100 KiB URL): each gets a 4xx (400/413/414/431) or a closed connection; GET /healthz 200 after each.
#   (c) hostile JSON bodies to POST /api/v1/deals with an admin key (depth 10,000, invalid UTF-8, \u0000, a raw
#       NUL, 1e400, 99999999999999999999999, duplicate keys): each a 400 malformed_request or 422
#       validation_failed as application/problem+json; GET /healthz 200 after each.
#   The outcomes of (b) and (c) are counted and printed.
#
# Usage: tests/e2e/hostile.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
# KEEP_TMP=1 keeps the temporary directory (server log) for a look afterwards.
set -euo pipefail
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-hostile
e2e_database e2e
mapfile -t acct < <("$BIN" account create --name "E2E hostile" | account_fields)
key=${acct[1]}
port=$(free_port)
SALESOPS_LISTEN=127.0.0.1:$port SALESOPS_THREADS=4 SALESOPS_CONNECTION_TIMEOUT_S=2 \
    SALESOPS_PER_IP_CONNECTIONS=40 "$BIN" serve >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
SERVE_PIDS+=("$SERVE_PID") # e2e_cleanup stops it
server=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -sf -o /dev/null "$server/healthz" && break; sleep 0.1; done
check "the server answers /healthz" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$server/healthz" || true)"

# a pipeline, so that a valid deal can be made (the control of part c)
pipeline=$(curl -s --max-time 10 -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    "$server/api/v1/pipelines" -d '{"name":"E2E hostile","stages":[{"name":"New","kind":"open"},
    {"name":"Won","kind":"won"},{"name":"Lost","kind":"lost"}]}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])' 2>/dev/null || echo 0)

# ------------------------------------------------------------------------------------- (a) slowloris
echo "--- (a) slowloris: 40 slow connections from 127.0.0.1, limit 40 per IP, timeout 2 s"
run_checks < <(python3 - "$port" <<'PY'
import select, socket, sys, threading, time
port = int(sys.argv[1])
SLOW = 40

def check(name, want, got):
    print(f"CHECK\t{name}\t{want}\t{got}", flush=True)

def get_healthz(src, timeout=3.0):
    """GET /healthz from source address src on a fresh connection: the status, or what went wrong."""
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if not data:
            return "closed"
        return data.split(b" ", 2)[1].decode()
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return f"error:{e.errno}"
    finally:
        s.close()

# the 40 slow connections
socks = []
for i in range(SLOW):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    socks.append(s)
t0 = time.monotonic()
closed_at = [None] * SLOW  # seconds after t0 at which the server closed each connection
answered = [None] * SLOW   # what the server sent before closing, if anything
head = b"GET /healthz HTTP/1.1\r\nHost: e2e\r\nX-Slow: "
pos = [0] * SLOW
stop = threading.Event()

def trickle():
    while not stop.is_set():
        for i, s in enumerate(socks):
            if closed_at[i] is not None:
                continue
            try:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    data = s.recv(4096)
                    if not data:
                        closed_at[i] = time.monotonic() - t0
                        continue
                    answered[i] = (answered[i] or b"") + data
                byte = head[pos[i]:pos[i] + 1] or b"a"
                s.send(byte)
                pos[i] += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed_at[i] = time.monotonic() - t0
        stop.wait(0.5)

thread = threading.Thread(target=trickle, daemon=True)
thread.start()
time.sleep(1.0)  # they are all sending by now, 2 bytes in
open_now = sum(1 for c in closed_at if c is None)
print(f"    {open_now} of {SLOW} slow connections open after 1 s")

t = time.monotonic()
status = get_healthz("127.0.0.2", timeout=3)
took = time.monotonic() - t
print(f"    GET /healthz from 127.0.0.2 while the slow connections hang: {status} in {took * 1000:.0f} ms")
check("slowloris: /healthz from 127.0.0.2 answered 200 while 127.0.0.1 is at its limit", 200, status)
check("slowloris: ... promptly (under 1 s)", "yes", "yes" if took < 1.0 else f"no ({took:.2f} s)")

still_open = sum(1 for c in closed_at if c is None)
extra = get_healthz("127.0.0.1", timeout=1.5)
print(f"    41st connection from 127.0.0.1 (with {still_open} slow ones open): {extra}")
check("slowloris: a 41st connection from 127.0.0.1 is refused or closed unserved",
      "refused/closed/reset", "refused/closed/reset" if extra in ("refused", "closed", "reset") else extra)

# the server has to close them: the 2 s timeout must not be reset by each trickled byte
deadline = t0 + 6.0
while time.monotonic() < deadline and any(c is None for c in closed_at):
    time.sleep(0.1)
stop.set()
thread.join()
closed = [c for c in closed_at if c is not None]
print(f"    slow connections closed by the server within 6 s: {len(closed)} of {SLOW}"
      + (f", after {min(closed):.1f} to {max(closed):.1f} s" if closed else "")
      + f"; bytes sent on each by then: {min(pos)} to {max(pos)}")
late = [c for c in closed if c > 4.5]
check("slowloris: the server closed all 40 slow connections", SLOW, len(closed))
check("slowloris: ... within ~4 s of their start (timeout 2 s)", 0, len(late) + (SLOW - len(closed)))
replies = {a.split(b"\r\n", 1)[0].decode(errors="replace") for a in answered if a}
if replies:
    print(f"    what the server said before closing: {sorted(replies)}")
for s in socks:
    s.close()
time.sleep(0.2)
check("slowloris: 127.0.0.1 is served again once the slow connections are gone", 200, get_healthz("127.0.0.1"))

# a connection that sends nothing is closed after the timeout
s = socket.socket()
s.settimeout(6)
s.connect(("127.0.0.1", port))
t = time.monotonic()
try:
    what = "closed" if s.recv(4096) == b"" else "data"
except ConnectionResetError:
    what = "closed"
except socket.timeout:
    what = "open"
took = time.monotonic() - t
s.close()
print(f"    a silent connection: {what} after {took:.1f} s")
check("a silent connection is closed within 1.5 to 4 s", "closed in 1.5-4 s",
      "closed in 1.5-4 s" if what == "closed" and 1.5 <= took <= 4 else f"{what} after {took:.1f} s")
PY
)
check "slowloris: the server is still running" 0 "$(alive "$SERVE_PID")"

# ------------------------------------------------------------------------ (b) oversized request heads
echo "--- (b) request heads over the 16 KiB connection memory limit (and one of 8 KiB, served)"
run_checks < <(python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
outcomes = {}

def check(name, want, got):
    print(f"CHECK\t{name}\t{want}\t{got}", flush=True)

def raw(request, timeout=8.0):
    """Sends request bytes on a fresh connection; the status code, 'closed', 'reset' or 'timeout'."""
    s = socket.socket()
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    data = b""
    try:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its reply (if any) is still readable
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                break
    except ConnectionResetError:
        if not data:
            return "reset"
    except socket.timeout:
        if not data:
            return "timeout"
    finally:
        s.close()
    if not data:
        return "closed"
    return data.split(b" ", 2)[1].decode(errors="replace")

def healthz():
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
        return s.recv(4096).split(b" ", 2)[1].decode()
    except (OSError, IndexError) as e:
        return f"no answer ({e!r})"
    finally:
        s.close()

cases = [
    ("one 100 KiB header",
     b"GET /healthz HTTP/1.1\r\nHost: e2e\r\nX-Big: " + b"a" * (100 * 1024) + b"\r\n\r\n"),
    ("10,000 small headers",
     b"GET /healthz HTTP/1.1\r\nHost: e2e\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10000)) + b"\r\n"),
    ("a 100 KiB URL",
     b"GET /healthz?q=" + b"a" * (100 * 1024) + b" HTTP/1.1\r\nHost: e2e\r\n\r\n"),
    ("a 100 KiB request line (path)",
     b"GET /" + b"a" * (100 * 1024) + b" HTTP/1.1\r\nHost: e2e\r\n\r\n"),
]
clean = {"400", "413", "414", "431", "closed", "reset"}
for name, request in cases:
    t = time.monotonic()
    got = raw(request)
    took = time.monotonic() - t
    outcomes[got] = outcomes.get(got, 0) + 1
    print(f"    {name} ({len(request)} bytes): {got} in {took * 1000:.0f} ms")
    check(f"{name}: a 4xx (400/413/414/431) or a closed connection", "clean", "clean" if got in clean else got)
    check(f"{name}: GET /healthz 200 afterwards", 200, healthz())
print("    outcomes: " + ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())))
# a large head that is still reasonable (long cookies, tracing headers) is served
got = raw(b"GET /healthz HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\nX-Trace: " + b"t" * (8 * 1024) + b"\r\n\r\n")
check("a request with an 8 KiB header: 200", "200", got)
PY
)
check "oversized heads: the server is still running" 0 "$(alive "$SERVE_PID")"

# -------------------------------------------------------------------------------- (c) hostile bodies
echo "--- (c) hostile JSON bodies to POST /api/v1/deals"
run_checks < <(python3 - "$port" "$key" "$pipeline" <<'PY'
import http.client, json, socket, sys
port, key, pipeline = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
outcomes = {}

def check(name, want, got):
    print(f"CHECK\t{name}\t{want}\t{got}", flush=True)

def post(body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("POST", "/api/v1/deals", body, {"Authorization": "Bearer " + key,
                                                  "Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type") or "", r.read()
    except (OSError, http.client.HTTPException) as e:
        return f"no answer ({e!r})", "", b""
    finally:
        c.close()

def healthz():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/healthz")
        return c.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        return f"no answer ({e!r})"
    finally:
        c.close()

p = str(pipeline).encode()
cases = [
    ("depth 10,000 arrays", b'{"name":"deep","price":1,"pipeline_id":' + p + b',"x":' + b"[" * 10000 + b"]" * 10000 + b"}"),
    ("depth 10,000 objects", b'{"name":"deep","price":1,"pipeline_id":' + p + b',"x":' + b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"}"),
    ("invalid UTF-8 in a string", b'{"name":"bad \xff\xfe \xc3\x28","price":1,"pipeline_id":' + p + b"}"),
    ("overlong UTF-8 in a string", b'{"name":"bad \xc0\xaf","price":1,"pipeline_id":' + p + b"}"),
    ("a lone surrogate escape", b'{"name":"bad \\ud800","price":1,"pipeline_id":' + p + b"}"),
    ("a \\u0000 escape", b'{"name":"nul \\u0000 here","price":1,"pipeline_id":' + p + b"}"),
    ("a raw NUL byte in a string", b'{"name":"nul \x00 here","price":1,"pipeline_id":' + p + b"}"),
    ("a raw NUL byte after the JSON", b'{"name":"nul","price":1,"pipeline_id":' + p + b"}\x00"),
    ("price 1e400", b'{"name":"huge","price":1e400,"pipeline_id":' + p + b"}"),
    ("price 99999999999999999999999", b'{"name":"huge","price":99999999999999999999999,"pipeline_id":' + p + b"}"),
    ("pipeline_id 99999999999999999999999", b'{"name":"huge","price":1,"pipeline_id":99999999999999999999999}'),
    ("price -1e400", b'{"name":"huge","price":-1e400,"pipeline_id":' + p + b"}"),
    ("duplicate keys", b'{"name":"a","name":"b","price":1,"pipeline_id":' + p + b"}"),
    ("duplicate pipeline_id", b'{"name":"a","price":1,"pipeline_id":' + p + b',"pipeline_id":' + p + b"}"),
]
status, ctype, body = post(json.dumps({"name": "E2E control deal", "price": 1, "pipeline_id": pipeline}))
check("control: a valid deal is created", 201, status)
for name, body in cases:
    status, ctype, reply = post(body)
    try:
        code = json.loads(reply).get("code")
    except ValueError:
        code = None
    outcome = f"{status} {code}"
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(f"    {name}: {outcome} ({ctype.split(';')[0] or 'no type'})")
    check(f"{name}: 400 malformed_request or 422 validation_failed", "clean",
          "clean" if outcome in ("400 malformed_request", "422 validation_failed") else outcome)
    check(f"{name}: application/problem+json", "application/problem+json", ctype.split(";")[0])
    check(f"{name}: GET /healthz 200 afterwards", 200, healthz())
print("    outcomes: " + ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())))
PY
)
check "hostile bodies: the server is still running" 0 "$(alive "$SERVE_PID")"
check "no deal was made from a hostile body (only the control)" 1 \
    "$(pg_psql e2e -tA -c "SELECT count(*) FROM deals" 2>&1 || true)"
check "the log has no crash or internal error" 0 \
    "$(grep -c -E '"status":5[0-9][0-9]|internal_error|Assertion|Segmentation' "$TMP/serve.log" || true)"

e2e_finish
