#!/usr/bin/env bash
# End to end: per-key rate limiting (SALESOPS_RATE_LIMIT=5, burst default 2 x 5 = 10).
#
#   - 30 quick GET /api/v1/account with one key on one keep-alive connection: the first 10 are 200, the rest
#     429 with code rate_limited as application/problem+json and a Retry-After of at least 1 s (a 200 among
#     the rest only as far as the 5/s refill allows, were the 30 requests to take longer than 0.2 s);
#   - a second key of the same account is not limited at that moment;
#   - after waiting the Retry-After, the first key is served again;
#   - a server without SALESOPS_RATE_LIMIT never answers 429 to the same burst (same key).
#
# Usage: tests/e2e/rate_limit.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
# KEEP_TMP=1 keeps the temporary directory (server logs) for a look afterwards.
set -euo pipefail
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-ratelimit
e2e_database e2e
mapfile -t acct < <("$BIN" account create --name "E2E rate limit" | account_fields)
key=${acct[1]}

# start_server NAME [VAR=VALUE...]: starts `salesops serve` on a free port; prints its port
ports=()
start_server() {
    local name=$1 port
    shift
    port=$(free_port)
    env "$@" SALESOPS_LISTEN="127.0.0.1:$port" SALESOPS_THREADS=4 SALESOPS_MIGRATE_ON_START=false \
        "$BIN" serve >"$TMP/serve-$name.log" 2>&1 &
    SERVE_PIDS+=($!)
    ports+=("$port")
    for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    check "$name: the server answers /healthz" 200 \
        "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/healthz" || true)"
}
start_server limited SALESOPS_RATE_LIMIT=5
start_server unlimited
limited=${ports[0]} unlimited=${ports[1]}

# a second admin key of the same account, made on the server without a limit (so that the first key's bucket
# on the limited server is full when the burst starts)
key2=$(curl -s --max-time 10 -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    "http://127.0.0.1:$unlimited/api/v1/api-keys" -d '{"role":"admin","name":"E2E second key"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])' 2>/dev/null || echo none)
check "a second key of the account created" yes "$([ "$key2" != none ] && echo yes || echo no)"

run_checks < <(python3 - "$limited" "$unlimited" "$key" "$key2" <<'PY'
import http.client, json, sys, time
limited, unlimited, key, key2 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
RATE, BURST, N = 5, 10, 30

def check(name, want, got):
    print(f"CHECK\t{name}\t{want}\t{got}", flush=True)

def burst(port, k, n):
    """n quick GET /api/v1/account on one keep-alive connection: [(status, code, type, retry_after)], seconds."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    t0 = time.monotonic()
    for _ in range(n):
        try:
            c.request("GET", "/api/v1/account", headers={"Authorization": "Bearer " + k})
            r = c.getresponse()
            body = r.read()
            try:
                code = json.loads(body).get("code")
            except ValueError:
                code = None
            out.append((r.status, code, (r.getheader("Content-Type") or "").split(";")[0],
                        r.getheader("Retry-After")))
            if r.will_close:
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        except (OSError, http.client.HTTPException) as e:
            out.append((f"no answer ({type(e).__name__})", None, "", None))
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    took = time.monotonic() - t0
    c.close()
    return out, took

def one(port, k):
    res, _ = burst(port, k, 1)
    return res[0]

# the burst on the limited server
t_burst = time.monotonic()
res, took = burst(limited, key, N)
statuses = [r[0] for r in res]
print(f"    {N} requests in {took * 1000:.0f} ms: {' '.join(str(s) for s in statuses)}")
check("limited: the first 10 requests are 200", " ".join(["200"] * BURST), " ".join(str(s) for s in statuses[:BURST]))
check("limited: the 11th request is 429", 429, statuses[BURST])
# tokens come back at RATE a second: over `took` seconds at most int(took * RATE) more requests may pass
allowed = BURST + int(took * RATE)
check(f"limited: no more 200s than the burst and the refill allow ({allowed} in {took:.2f} s)",
      "yes", "yes" if statuses.count(200) <= allowed else f"no ({statuses.count(200)})")
if took < (1 / RATE) * 0.95:
    check("limited: the 20 requests after the burst are all 429 (all 30 within 0.2 s)",
          " ".join(["429"] * (N - BURST)), " ".join(str(s) for s in statuses[BURST:]))
check("limited: every reply is 200 or 429", "yes",
      "yes" if all(s in (200, 429) for s in statuses) else str(sorted(set(map(str, statuses)))))
limited_replies = [r for r in res if r[0] == 429]
check("limited: every 429 has code rate_limited", "yes",
      "yes" if limited_replies and all(r[1] == "rate_limited" for r in limited_replies)
      else str(sorted({str(r[1]) for r in limited_replies})))
check("limited: every 429 is application/problem+json", "yes",
      "yes" if limited_replies and all(r[2] == "application/problem+json" for r in limited_replies)
      else str(sorted({r[2] for r in limited_replies})))

def retry_ok(v):
    try:
        return v is not None and v.strip().isdigit() and int(v) >= 1
    except ValueError:
        return False
check("limited: every 429 has a Retry-After of whole seconds >= 1", "yes",
      "yes" if limited_replies and all(retry_ok(r[3]) for r in limited_replies)
      else str(sorted({str(r[3]) for r in limited_replies})))
retry_after = max([int(r[3]) for r in limited_replies if retry_ok(r[3])] or [1])
print(f"    Retry-After: {sorted({r[3] for r in limited_replies})}")

# the other key of the account, at the same moment
other = one(limited, key2)
check("limited: another key of the same account is served meanwhile", 200, other[0])
again = one(limited, key)
since = time.monotonic() - t_burst
if since < (1 / RATE) * 0.95:  # no token can have come back yet
    check("limited: the first key is still limited right after", 429, again[0])
else:
    print(f"    (the first key right after: {again[0]}, {since:.2f} s after the burst began: not checked)")

# after the Retry-After
time.sleep(retry_after)
after = one(limited, key)
check(f"limited: the first key is served again after waiting the Retry-After ({retry_after} s)", 200, after[0])

# the same burst against the server without a limit
res, took = burst(unlimited, key, N)
statuses = [r[0] for r in res]
print(f"    without a limit: {N} requests in {took * 1000:.0f} ms: {' '.join(str(s) for s in statuses)}")
check("unlimited: no 429 in the same burst", 0, statuses.count(429))
check("unlimited: all 30 are 200", N, statuses.count(200))
res, _ = burst(unlimited, key, N)
check("unlimited: nor in a second burst right after", 0, [r[0] for r in res].count(429))
PY
)

for i in 0 1; do
    check "server $((i + 1)) still running" yes "$(kill -0 "${SERVE_PIDS[i]}" 2>/dev/null && echo yes || echo no)"
done
e2e_finish
