#!/usr/bin/env bash
# Data races: the concurrent tests under ThreadSanitizer.
#
#   scripts/tsan.sh [TEST...]     TEST as named in tests/meson.build; default: every test of the suite "db"
#                                 (db_* and http_*): each starts the server's thread pool (4 threads) and
#                                 the scheduler's threads in-process. The most concurrent ones are
#                                 http_distribution http_focus http_webhooks http_events http_connector db_import
#
# Steps:
#   1. builds build-tsan/ (meson, buildtype debug, -Db_sanitize=thread, PIE) with the compiler meson picks
#      (CC=clang scripts/tsan.sh for clang; a build dir keeps the compiler it was set up with);
#   2. Criterion 2.4 cannot run under TSan (its sandbox maps a shared arena at a random fixed address inside
#      TSan's shadow memory: "Could not initialize inheritable arena" or a SEGV at start, Criterion issue
#      #274), so each test binary is linked again from its TSan-built objects with scripts/tsan_runner.c
#      in place of libcriterion: same tests, same fixtures, one forked process per test, one at a time
#      (build-tsan/tsan-runner/test_TEST);
#   3. starts a fresh private PostgreSQL (as scripts/test.sh does) and runs those binaries against it;
#   4. runs the end-to-end scripts named in TSAN_E2E (default: two_instances, and shutdown when it exists)
#      against build-tsan/salesops: two `salesops serve` processes with 4 threads and a scheduler each under
#      16 concurrent clients, and a SIGTERM while requests are in flight.
# Everything runs with
#   TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 suppressions=scripts/tsan.supp log_path=..."
# so every process writes its reports to build-tsan/tsan-logs/TARGET/tsan.<pid>. The script reports per
# target the tests' result and the "WARNING: ThreadSanitizer" reports (by kind, and each distinct report once
# with its stacks), and closes with "N passed, M failed" over the targets. A target passes when its tests
# passed and TSan reported nothing. The table of this run's targets is also written to
# build-tsan/tsan-logs/summary.txt; the logs of targets not run this time are left as they were.
#
# Environment:
#   TSAN_E2E="two_instances shutdown"   e2e scripts (tests/e2e/NAME.sh) to run; "" for none
#   TSAN_RUNNER_TIMEOUT=S               seconds one test may take (default 900)
#   TSAN_EXTRA_OPTIONS="..."            appended to TSAN_OPTIONS
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

unset DATABASE_URL DATABASE_READ_URL

BUILD=build-tsan
RUNNER_DIR="$BUILD/tsan-runner"
LOGROOT="$BUILD/tsan-logs"
SUPP="$ROOT/scripts/tsan.supp"
DEPS=(libmicrohttpd jansson libpq libcrypto libcurl)
if [ -n "${TSAN_E2E+set}" ]; then
    # shellcheck disable=SC2206 # a list of words
    E2E=(${TSAN_E2E})
else
    E2E=(two_instances)
    [ ! -f tests/e2e/shutdown.sh ] || E2E+=(shutdown)
fi

TMP=""
# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    pg_stop >/dev/null 2>&1 || true
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        rm -rf -- "$TMP"
    fi
    TMP=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

tsan_options() { # tsan_options LOGDIR
    printf 'halt_on_error=0 second_deadlock_stack=1 suppressions=%s log_path=%s/tsan %s' \
        "$SUPP" "$1" "${TSAN_EXTRA_OPTIONS:-}"
}

# ---------------------------------------------------------------------------------------------- build
log "building $BUILD/ (buildtype=debug, b_sanitize=thread, PIE)"
build "$BUILD" -Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false -Db_pie=true -Dtests=true \
    || die "the build of $BUILD/ failed"
# the compiler meson uses for C in this build dir (the first word of the c_COMPILER rule)
CC_TSAN=$(awk '/^rule c_COMPILER$/ {getline; print $3; exit}' "$BUILD/build.ninja")
[ -n "$CC_TSAN" ] || die "cannot read the C compiler from $BUILD/build.ninja"
log "compiler: $CC_TSAN ($("$CC_TSAN" --version | head -n 1))"

if [ $# -gt 0 ]; then
    TESTS=("$@")
else
    mapfile -t TESTS < <(meson introspect --tests "$BUILD" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if set(t.get("suite", [])) & {"salesops:db", "db"}:
        print(t["name"])
')
    [ "${#TESTS[@]}" -gt 0 ] || die "meson introspect --tests $BUILD lists no db test"
fi

mkdir -p "$RUNNER_DIR"
"$CC_TSAN" -std=c11 -g -O1 -fsanitize=thread -fPIE -Wall -Wextra -Werror \
    -c scripts/tsan_runner.c -o "$RUNNER_DIR/tsan_runner.o" || die "cannot compile scripts/tsan_runner.c"
read -ra DEP_LIBS <<<"$(pkg-config --libs "${DEPS[@]}")"
for name in "${TESTS[@]}"; do
    objs=("$BUILD/tests/test_$name.p/"*.o)
    [ -f "${objs[0]}" ] || die "no objects for test $name in $BUILD/tests/test_$name.p/ (a test of tests/meson.build?)"
    "$CC_TSAN" -fsanitize=thread -pie -o "$RUNNER_DIR/test_$name" "${objs[@]}" "$RUNNER_DIR/tsan_runner.o" \
        -Wl,--start-group "$BUILD/tests/libharness.a" "$BUILD/libsalesops.a" "${DEP_LIBS[@]}" -pthread \
        -Wl,--end-group || die "cannot link $RUNNER_DIR/test_$name"
done
log "linked ${#TESTS[@]} test binaries with scripts/tsan_runner.c in $RUNNER_DIR/"

# ----------------------------------------------------------------------------------------- PostgreSQL
TMP=$(mktemp -d /tmp/salesops-tsan.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$TMP"
fi
pg_start "$TMP/pgdata" --no-fsync || die "could not start PostgreSQL"
export SALESOPS_TEST_DATABASE_URL="$PG_ADMIN_URL"
log "SALESOPS_TEST_DATABASE_URL=$SALESOPS_TEST_DATABASE_URL"

# ------------------------------------------------------------------------------------------------ run
mkdir -p "$LOGROOT"
rm -f -- "$LOGROOT/summary.txt"
TARGETS=()
T0=$(date +%s)
for name in "${TESTS[@]}"; do
    dir="$LOGROOT/$name"
    rm -rf -- "$dir"
    mkdir -p "$dir"
    log "$name: running under TSan"
    start=$(date +%s)
    rc=0
    SALESOPS_LOG_LEVEL=warn TSAN_OPTIONS=$(tsan_options "$ROOT/$dir") \
        "$RUNNER_DIR/test_$name" >"$dir/out.txt" 2>&1 || rc=$?
    echo "$rc" >"$dir/rc"
    echo "$(($(date +%s) - start))" >"$dir/seconds"
    log "$name: done in $(cat "$dir/seconds") s ($(tail -n 1 "$dir/out.txt"))"
    TARGETS+=("$name")
done
# The e2e scripts start PostgreSQL clusters of their own.
for e2e in "${E2E[@]}"; do
    script="tests/e2e/$e2e.sh"
    if [ ! -f "$script" ]; then
        log "e2e $e2e: $script not found; skipped"
        continue
    fi
    dir="$LOGROOT/e2e_$e2e"
    rm -rf -- "$dir"
    mkdir -p "$dir"
    log "e2e $e2e: $script $BUILD/salesops"
    start=$(date +%s)
    rc=0
    TSAN_OPTIONS=$(tsan_options "$ROOT/$dir") bash "$script" "$BUILD/salesops" >"$dir/out.txt" 2>&1 || rc=$?
    echo "$rc" >"$dir/rc"
    echo "$(($(date +%s) - start))" >"$dir/seconds"
    log "e2e $e2e: done in $(cat "$dir/seconds") s ($(grep -E '^[0-9]+ passed, [0-9]+ failed' "$dir/out.txt" | tail -n 1))"
    TARGETS+=("e2e_$e2e")
done
log "all targets done in $(($(date +%s) - T0)) s"

# ------------------------------------------------------------------------------------------- report
set +e
python3 - "$LOGROOT" "${TARGETS[@]}" <<'PY'
import glob, os, re, sys

root, targets = sys.argv[1], sys.argv[2:]
rows, seen, passed, failed = [], {}, 0, 0
for name in targets:
    d = os.path.join(root, name)
    kinds = {}
    for path in sorted(glob.glob(os.path.join(d, 'tsan.*'))):
        text = open(path, errors='replace').read()
        for block in re.split(r'\n(?===================\n)', text):
            m = re.search(r'WARNING: ThreadSanitizer: ([^\n(]+)', block)
            if not m:
                continue
            kind = m.group(1).strip()
            kinds[kind] = kinds.get(kind, 0) + 1
            # a report is the same report when its kind and the top two frames of each stack match
            frames = re.findall(r'^\s+#[01] (\S+) (\S+)', block, re.M)
            key = (kind, tuple(f[0] + ' ' + re.sub(r' \(.*', '', f[1]) for f in frames))
            if key not in seen:
                seen[key] = [name, path, block.strip(), 0]
            seen[key][3] += 1
    out_path = os.path.join(d, 'out.txt')
    out = open(out_path, errors='replace').read() if os.path.exists(out_path) else ''
    res = re.findall(r'^(\d+) passed, (\d+) failed', out, re.M)
    tests = '%s passed, %s failed' % res[-1] if res else 'no result line'
    rc = open(os.path.join(d, 'rc')).read().strip()
    secs = open(os.path.join(d, 'seconds')).read().strip()
    warnings = sum(kinds.values())
    ok = rc == '0' and warnings == 0
    passed += ok
    failed += not ok
    rows.append((name, tests, rc, secs, warnings,
                 ', '.join('%s x%d' % kv for kv in sorted(kinds.items())) or '-', 'ok' if ok else 'FAIL'))

hdr = ('target', 'tests', 'exit', 'seconds', 'TSan warnings', 'kinds', 'verdict')
widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
table = '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [hdr] + rows)
print()
print(table)
open(os.path.join(root, 'summary.txt'), 'w').write(table + '\n')
if seen:
    print('\n%d distinct report(s); each once (full logs in %s/<target>/tsan.<pid>):' % (len(seen), root))
    for (kind, _), (name, path, block, n) in seen.items():
        print('\n--- %s: %s, seen %d time(s), first in %s' % (name, kind, n, path))
        print(block)
failing_tests = [r[0] for r in rows if r[2] != '0']
if failing_tests:
    print('\nTargets whose tests failed (see %s/<target>/out.txt): %s' % (root, ' '.join(failing_tests)))
print('\n%d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
PY
exit $?
