#!/usr/bin/env bash
# The whole test suite; exits non-zero on any failure.
#
# Stages: build (build/ with -Dwerror=true, build-asan/ with ASan+UBSan), unit+db+http tests (meson test on
# build-asan/ against a fresh private PostgreSQL), OpenAPI lint (redocly), route check
# (scripts/check_openapi_routes.py, when present), deploy check (scripts/check_deploy.sh: compose, nginx, systemd
# and DEPLOY.md against the binary, then nginx in front of two instances), e2e (tests/e2e/*.sh, the dashboard's
# browser test among them), fuzz (short) (scripts/fuzz.sh 12: the libFuzzer harnesses
# of tests/fuzz/, 12 s each), contract smoke (build/salesops serve on a fresh database;
# ../shared/acceptance/contract_smoke.py runs against it whenever the shared/ folder is beside the project;
# SALESOPS_CONTRACT_SMOKE=1 makes a missing script a failure, =0 skips it).
# The last line is "N passed, M failed" over those stages.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# The suite must never touch a real database from the caller's environment.
unset DATABASE_URL DATABASE_READ_URL

PASSED=0
FAILED=0
FAILED_NAMES=()
TMP=""
SMOKE_PID=""
PG_STARTED=0

banner() {
    printf '\n==> %s\n' "$*"
}

stage_pass() {
    PASSED=$((PASSED + 1))
    printf '==> %s: passed\n' "$1"
}

stage_fail() {
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$1")
    printf '==> %s: FAILED%s\n' "$1" "${2:+ ($2)}"
}

stop_smoke_server() {
    local rc=0
    if [ -z "$SMOKE_PID" ]; then
        return 0
    fi
    if kill -0 "$SMOKE_PID" 2>/dev/null; then
        kill -TERM "$SMOKE_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SMOKE_PID" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$SMOKE_PID" 2>/dev/null; then
            log "salesops serve did not stop in 10 s after TERM; killing it"
            kill -KILL "$SMOKE_PID" 2>/dev/null || true
        fi
    fi
    wait "$SMOKE_PID" 2>/dev/null || rc=$?
    SMOKE_PID=""
    return "$rc"
}

cleanup() {
    stop_smoke_server >/dev/null 2>&1 || true
    pg_stop >/dev/null 2>&1 || true
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        rm -rf -- "$TMP"
    fi
    TMP=""
}

finish() {
    cleanup
    trap - EXIT
    echo
    if [ "$FAILED" -gt 0 ]; then
        printf '==> failed stages: %s\n' "${FAILED_NAMES[*]}"
    else
        printf '==> all stages passed\n'
    fi
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    if [ "$FAILED" -gt 0 ]; then
        exit 1
    fi
    exit 0
}

trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# ---------------------------------------------------------------------------------------------- deps
banner "dependencies (scripts/deps.sh --test)"
if ! bash "$ROOT/scripts/deps.sh" --test; then
    stage_fail "dependencies"
    finish
fi

# --------------------------------------------------------------------------------------------- build
BUILD_OK=0
banner "build: build/ (debugoptimized, werror) and build-asan/ (address,undefined)"
if build build -Dbuildtype=debugoptimized -Dwerror=true \
        && build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
    BUILD_OK=1
    stage_pass "build"
else
    stage_fail "build"
fi

# ------------------------------------------------------------------------------------------ layers
banner "layer rules (scripts/check_layers.sh)"
if bash scripts/check_layers.sh; then
    stage_pass "layers"
else
    stage_fail "layers"
fi

# -------------------------------------------------------------------------------------- PostgreSQL
PG_OK=0
if [ "$BUILD_OK" = 1 ]; then
    banner "PostgreSQL: fresh private cluster"
    TMP=$(mktemp -d /tmp/salesops-test.XXXXXX)
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$TMP"
    fi
    if pg_start "$TMP/pgdata" --no-fsync; then
        PG_OK=1
        export SALESOPS_TEST_DATABASE_URL="$PG_ADMIN_URL"
        log "SALESOPS_TEST_DATABASE_URL=$SALESOPS_TEST_DATABASE_URL"
    else
        log "could not start PostgreSQL; the database stages fail"
    fi
fi

# ------------------------------------------------------------------------------------ unit/db/http
banner "unit + db + http tests (meson test -C build-asan)"
if [ "$BUILD_OK" != 1 ]; then
    stage_fail "tests" "not run: build failed"
elif [ "$PG_OK" != 1 ]; then
    stage_fail "tests" "not run: PostgreSQL did not start"
else
    test_out="$TMP/meson-test.out"
    test_rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        meson test -C build-asan --print-errorlogs --num-processes 2 2>&1 | tee "$test_out" || test_rc=$?
    testlog=build-asan/meson-logs/testlog.txt
    if [ -f "$testlog" ] && grep -q 'Synthesis:' "$testlog"; then
        echo
        echo "Criterion summaries (from $testlog):"
        grep -h 'Synthesis:' "$testlog" | sed 's/^/  /'
    fi
    # Criterion reports a test as passed even when LeakSanitizer printed a leak in its worker: read the logs.
    sanitizer_reports=$(grep -c -E 'LeakSanitizer|AddressSanitizer|runtime error:' "$testlog" 2>/dev/null || true)
    if [ "$test_rc" -ne 0 ]; then
        stage_fail "tests" "meson test exited $test_rc"
    elif [ "${sanitizer_reports:-0}" -gt 0 ]; then
        grep -n -E -A12 'LeakSanitizer|AddressSanitizer|runtime error:' "$testlog" | head -80
        stage_fail "tests" "$sanitizer_reports sanitizer report(s) in $testlog"
    elif grep -q 'No tests defined' "$test_out"; then
        stage_fail "tests" "no tests defined"
    elif secrets=$(grep -c -E 'sok_[A-Za-z0-9_-]{16,}|whk_[A-Za-z0-9_-]{16,}|fake-amo-token' "$testlog") \
        && [ "$secrets" -gt 0 ]; then
        # the servers of the run log at info: an API key, a webhook token or the amoCRM token must never show
        grep -n -o -E '.{0,80}(sok_|whk_|fake-amo-token).{0,20}' "$testlog" | head -5
        stage_fail "tests" "$secrets log line(s) with a secret in $testlog"
    else
        stage_pass "tests"
    fi
fi

# ----------------------------------------------------------------------------------- OpenAPI lint
TOOLS_DIR=.salesops/tools
REDOCLY="$TOOLS_DIR/node_modules/.bin/redocly"
# Pinned inside 1.x: the newest 1.x (1.34.21) names a @redocly/respect-core the registry does not have.
REDOCLY_PKG="@redocly/cli@1.34.20"

redocly_ok() {
    local version
    [ -x "$REDOCLY" ] || return 1
    version=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$TOOLS_DIR/node_modules/@redocly/cli/package.json" 2>/dev/null) || return 1
    [ "${version%%.*}" = 1 ]
}

banner "OpenAPI lint (redocly lint openapi.yaml)"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
if [ ! -f openapi.yaml ]; then
    stage_fail "openapi lint" "openapi.yaml is missing"
else
    lint_ready=1
    if ! redocly_ok; then
        log "installing $REDOCLY_PKG into $TOOLS_DIR"
        mkdir -p "$TOOLS_DIR"
        if ! npm install --prefix "$TOOLS_DIR" --no-save --no-audit --no-fund --loglevel=error \
                "$REDOCLY_PKG" || ! redocly_ok; then
            lint_ready=0
        fi
    fi
    if [ "$lint_ready" != 1 ]; then
        stage_fail "openapi lint" "could not install @redocly/cli"
    elif "$REDOCLY" lint openapi.yaml; then
        stage_pass "openapi lint"
    else
        stage_fail "openapi lint"
    fi
fi

# ---------------------------------------------------------------------------------- route check
banner "route check (scripts/check_openapi_routes.py)"
if [ ! -f scripts/check_openapi_routes.py ]; then
    echo "==> route check: skipped, scripts/check_openapi_routes.py is not there yet (not counted)"
elif [ "$BUILD_OK" != 1 ]; then
    stage_fail "route check" "not run: build failed"
elif python3 scripts/check_openapi_routes.py build/salesops openapi.yaml; then
    stage_pass "route check"
else
    stage_fail "route check"
fi

# ------------------------------------------------------------------------------------------ deploy
banner "deployment files (scripts/check_deploy.sh)"
if [ "$BUILD_OK" != 1 ]; then
    stage_fail "deploy check" "not run: build failed"
elif bash scripts/check_deploy.sh build/salesops; then
    stage_pass "deploy check"
else
    stage_fail "deploy check"
fi

# ------------------------------------------------------------------------------------------- e2e
# Scripts that drive the real binary as a user would, each on a PostgreSQL of its own.
for e2e in tests/e2e/*.sh; do
    name="e2e $(basename "$e2e" .sh)"
    banner "$name"
    if [ "$BUILD_OK" != 1 ]; then
        stage_fail "$name" "not run: build failed"
    elif bash "$e2e" build/salesops; then
        stage_pass "$name"
    else
        stage_fail "$name"
    fi
done

# -------------------------------------------------------------------------------------------- fuzz
# The libFuzzer harnesses of tests/fuzz/ (clang, ASan+UBSan), 12 s each: about a minute with the build.
banner "fuzz (short): scripts/fuzz.sh 12"
if SALESOPS_FUZZ_STRICT=1 bash scripts/fuzz.sh 12; then
    stage_pass "fuzz (short)"
else
    stage_fail "fuzz (short)" "see the report above; logs in build-fuzz/logs/"
fi

# ---------------------------------------------------------------------------------- contract smoke
smoke() {
    local url port base created parsed account_id key token up=0 script
    pg_create_db smoke || return 1
    url=$(pg_url smoke)
    log "salesops migrate (database smoke)"
    DATABASE_URL=$url build/salesops migrate || { log "salesops migrate failed"; return 1; }

    port=$(free_port) || return 1
    base="http://127.0.0.1:$port"
    log "starting build/salesops serve on 127.0.0.1:$port (log: $TMP/smoke-serve.log)"
    DATABASE_URL=$url SALESOPS_LISTEN="127.0.0.1:$port" build/salesops serve >"$TMP/smoke-serve.log" 2>&1 &
    SMOKE_PID=$!
    for _ in $(seq 1 120); do
        if ! kill -0 "$SMOKE_PID" 2>/dev/null; then
            break
        fi
        if curl -s -o /dev/null --max-time 2 "$base/"; then
            up=1
            break
        fi
        sleep 0.25
    done
    if [ "$up" != 1 ]; then
        log "salesops serve did not come up on $base; its log:"
        tail -n 50 "$TMP/smoke-serve.log" >&2 || true
        return 1
    fi

    created=$(DATABASE_URL=$url build/salesops account create --name Smoke) \
        || { log "salesops account create failed"; return 1; }
    parsed=$(printf '%s\n' "$created" | account_fields) \
        || { log "could not read the output of salesops account create: $created"; return 1; }
    {
        read -r account_id || true
        read -r key || true
        read -r token || true
    } <<<"$parsed"
    if [ -z "$key" ]; then
        log "salesops account create printed no api_key"
        return 1
    fi
    log "smoke account $account_id created"

    script="$ROOT/../shared/acceptance/contract_smoke.py"
    if [ "${SALESOPS_CONTRACT_SMOKE:-}" = 1 ] && [ ! -f "$script" ]; then
        log "SALESOPS_CONTRACT_SMOKE=1 but ../shared/acceptance/contract_smoke.py is missing" \
            "(expected the shared/ folder beside the project: $(dirname "$ROOT")/shared)"
        return 1
    fi
    if [ "${SALESOPS_CONTRACT_SMOKE:-}" != 0 ] && [ -f "$script" ]; then
        python3 "$script" "$base" "$key" "$token" || {
            log "contract smoke failed; server log tail:"
            tail -n 30 "$TMP/smoke-serve.log" >&2 || true
            return 1
        }
    else
        log "contract_smoke.py not run (SALESOPS_CONTRACT_SMOKE=0, or no shared/ folder beside the project)"
    fi

    if ! kill -0 "$SMOKE_PID" 2>/dev/null; then
        log "salesops serve died during the smoke; its log:"
        tail -n 50 "$TMP/smoke-serve.log" >&2 || true
        return 1
    fi
    local rc=0
    stop_smoke_server || rc=$?
    log "salesops serve stopped (exit status $rc)"
    return 0
}

banner "contract smoke (build/salesops serve on a fresh database)"
if [ "$BUILD_OK" != 1 ]; then
    stage_fail "smoke" "not run: build failed"
elif [ "$PG_OK" != 1 ]; then
    stage_fail "smoke" "not run: PostgreSQL did not start"
elif smoke; then
    stage_pass "smoke"
else
    stop_smoke_server >/dev/null 2>&1 || true
    stage_fail "smoke"
fi

finish
