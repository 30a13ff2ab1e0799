# shellcheck shell=bash
# Helpers shared by the end-to-end scripts tests/e2e/*.sh. Source it, do not run it (it lives in lib/ so that
# scripts/test.sh, which runs every tests/e2e/*.sh as a test, does not pick it up). It sources scripts/lib.sh.
#
#   e2e_init BINARY PREFIX     set BIN (BINARY made absolute) and TMP (a new /tmp/PREFIX.XXXXXX the postgres
#                              user may write to), and trap EXIT to e2e_cleanup
#   e2e_cleanup                stop every `salesops serve` in SERVE_PIDS (TERM to all, then up to 10 s each
#                              before SIGKILL), run e2e_cleanup_hook when the script defines one, stop
#                              PostgreSQL, remove TMP (KEEP_TMP=1 keeps it)
#   e2e_database DB            start a private PostgreSQL in TMP/pgdata, create DB, export DATABASE_URL for it
#                              and run BIN migrate
#   check NAME EXPECTED ACTUAL count and print one check: passed when ACTUAL is EXPECTED
#   run_checks                 read a probe's output on stdin: "CHECK<tab>name<tab>expected<tab>actual" lines are
#                              checks (as check), other lines are printed as they are
#   e2e_finish                 print the servers' warnings and errors when a check failed, then "N passed,
#                              M failed"; fails when a check failed (the script's last command)
#   q SQL                      the rows of SQL on the e2e database (E2E_DB, default e2e), unaligned, fields
#                              separated by "|"; the error instead when it fails
#   num VALUE                  VALUE if it is an id, else 0 (so that the SQL of later checks stays valid)
#   start_serve N [VAR=VALUE...]  one `BIN serve` on a free port with the environment SERVE_ENV and VAR=VALUE,
#                              output in TMP/serveN.out and TMP/serveN.err; appends its pid to SERVE_PIDS and
#                              sets base[N] to its URL
#   wait_healthy N             wait up to 10 s for serve N's /healthz; print its status code
#   api N METHOD PATH [BODY]   a request to serve N with the account's key ($key; BODY as JSON), within
#                              API_MAX_TIME seconds (default 30); prints the status code (000: no answer); the
#                              reply body is in TMP/body and TMP/body.N
#   jq_body EXPR [FILE]        a Python expression over a reply body `b` (JSON; default TMP/body), printed
#   alive PID                  0 when the process is running, else 1 (printed, for check)

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)
# shellcheck source=scripts/lib.sh
. "$E2E_ROOT/scripts/lib.sh"

BIN=""
TMP=""
SERVE_PIDS=()
SERVE_ENV=()
base=()
passed=0
failed=0

e2e_init() {
    BIN=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")
    TMP=$(mktemp -d "/tmp/$2.XXXXXX")
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$TMP"
    trap e2e_cleanup EXIT
}

# shellcheck disable=SC2317  # invoked by trap
e2e_cleanup() {
    local pid
    for pid in "${SERVE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVE_PIDS[@]}"; do
        stop_pid "$pid" salesops # waits up to 10 s, then SIGKILL
    done
    if declare -F e2e_cleanup_hook >/dev/null; then
        e2e_cleanup_hook
    fi
    pg_stop >/dev/null 2>&1 || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP"; else rm -rf -- "$TMP"; fi
}

e2e_database() {
    pg_start "$TMP/pgdata" --no-fsync >/dev/null
    pg_create_db "$1" >/dev/null
    export DATABASE_URL
    DATABASE_URL=$(pg_url "$1")
    E2E_DB=$1
    "$BIN" migrate 2>/dev/null
}

check() { # name, expected, actual
    if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1: expected $2, got $3"; fi
}

# run_checks: reads the output of a probe; "CHECK<tab>name<tab>expected<tab>actual" lines are checks, the
# other lines are printed as they are
run_checks() {
    local name want got line
    while IFS= read -r line; do
        if [[ $line == CHECK$'\t'* ]]; then
            IFS=$'\t' read -r _ name want got <<<"$line"
            check "$name" "$want" "$got"
        else
            printf '%s\n' "$line"
        fi
    done
}

e2e_finish() {
    local err
    if [ "$failed" -gt 0 ]; then
        for err in "$TMP"/serve*.err; do
            [ -f "$err" ] || continue
            echo "--- $(basename "$err" .err) stderr, all but info lines (last 20):"
            grep -v '"level":"info"' "$err" | tail -n 20 || true
        done
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

q() {
    pg_psql "${E2E_DB:-e2e}" -tA -c "$1" 2>&1 || true
}

num() {
    if [[ $1 =~ ^[0-9]+$ ]]; then echo "$1"; else echo 0; fi
}

start_serve() {
    local n=$1 port
    shift
    port=$(free_port)
    env SALESOPS_LISTEN="127.0.0.1:$port" "${SERVE_ENV[@]}" "$@" "$BIN" serve \
        >>"$TMP/serve$n.out" 2>>"$TMP/serve$n.err" &
    SERVE_PIDS+=($!)
    base[n]=http://127.0.0.1:$port
}

wait_healthy() {
    local _
    for _ in $(seq 1 100); do curl -sf -o /dev/null "${base[$1]}/healthz" && break; sleep 0.1; done
    curl -s -o /dev/null -w '%{http_code}' "${base[$1]}/healthz" || true
}

api() {
    local args=(-s -o "$TMP/body" -w '%{http_code}' --max-time "${API_MAX_TIME:-30}" -X "$2" -H "Authorization: Bearer $key")
    [ $# -lt 4 ] || args+=(-H 'Content-Type: application/json' --data-binary "$4")
    curl "${args[@]}" "${base[$1]}$3" || true # curl prints 000 when there is no answer
    cp -- "$TMP/body" "$TMP/body.$1" 2>/dev/null || true
}

jq_body() {
    python3 -c 'import json, sys
b = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "${2:-$TMP/body}" "$1" 2>/dev/null \
        || echo "(no such field in: $(head -c 300 "${2:-$TMP/body}"))"
}

alive() {
    kill -0 "$1" 2>/dev/null && echo 0 || echo 1
}
