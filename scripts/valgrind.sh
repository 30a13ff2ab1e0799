#!/usr/bin/env bash
# Memory safety: every unit and db/http test binary of tests/meson.build under valgrind memcheck.
#
#   scripts/valgrind.sh [TEST...]     TEST as named in tests/meson.build (unit_time, http_deals, ...);
#                                     default: every test of the suites "unit" and "db"
#
# Steps: installs valgrind when it is missing (apt-get, as root); builds build-valgrind/ (meson, buildtype
# debug, no sanitizers: valgrind and ASan do not mix); starts a fresh private PostgreSQL (as scripts/test.sh
# does) and points SALESOPS_TEST_DATABASE_URL at it; runs each test binary as
#
#   valgrind --leak-check=full --error-exitcode=99 --errors-for-leak-kinds=definite --track-origins=yes
#            --trace-children=yes --child-silent-after-fork=yes --suppressions=scripts/valgrind.supp
#            --log-file=build-valgrind/valgrind-logs/TEST/vg.%p.log  build-valgrind/tests/test_TEST
#
# Criterion runs every test in a worker process that it forks and re-executes from its own binary, so the
# code under test runs in those workers: --trace-children=yes puts each worker under memcheck too, and each
# process writes its own log (vg.<pid>-<n>.log: the Criterion runner's and one per test, a ParameterizedTest
# one per parameter). Criterion notices valgrind and runs one worker at a time by itself. A worker with a
# memory error or a definite leak exits 99, but Criterion 2.4 still counts its test as passed: the verdict
# comes from the logs, never from Criterion's exit status alone.
#
# Per binary the script reports: the Criterion synthesis, memory errors (invalid reads/writes, uses of
# uninitialised values, bad frees... summed over its processes), definite leaks (bytes/blocks) and the
# verdict; then the first report of each kind with its stack, and a closing "N passed, M failed" line over the
# binaries. A binary passes when Criterion passed every test, no process of it had a memory error or a
# definite leak, and there is a log for every test. The table of the binaries of this run is also written to
# build-valgrind/valgrind-logs/summary.txt; the logs of binaries not run this time are left as they were.
#
# Environment:
#   VALGRIND_JOBS=N       test binaries run at once (default 2; each one runs its tests one at a time)
#   VALGRIND_TIMEOUT=S    seconds a binary may take under valgrind (default 3600)
#   VALGRIND_EXTRA="..."  more valgrind options (e.g. --gen-suppressions=all)
# Memcheck is 20-50x slower than a native run: the whole suite took about 40 minutes on 2 shared cores,
# http_bad_input (some 300 processes) 16-28 of them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# never a real database from the caller's environment
unset DATABASE_URL DATABASE_READ_URL

BUILD=build-valgrind
LOGROOT="$BUILD/valgrind-logs"
JOBS=${VALGRIND_JOBS:-2}
TIMEOUT=${VALGRIND_TIMEOUT:-3600}
SUPP="$ROOT/scripts/valgrind.supp"
# shellcheck disable=SC2206 # a list of words
EXTRA=(${VALGRIND_EXTRA:-})
VG_OPTS=(--leak-check=full --error-exitcode=99 --errors-for-leak-kinds=definite --track-origins=yes
    --trace-children=yes --child-silent-after-fork=yes --num-callers=30 --suppressions="$SUPP" "${EXTRA[@]}")

TMP=""
# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local pid
    for pid in $(jobs -pr); do
        kill -TERM "$pid" 2>/dev/null || true
    done
    pg_stop >/dev/null 2>&1 || true
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        rm -rf -- "$TMP"
    fi
    TMP=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# ------------------------------------------------------------------------------------------- valgrind
if ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        die "valgrind is not installed: apt-get install -y valgrind (as root)"
    fi
    log "installing valgrind (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null || die "apt-get install valgrind failed"
fi
log "$(valgrind --version), $(nproc) CPUs"

# ---------------------------------------------------------------------------------------------- build
log "building $BUILD/ (buildtype=debug, no sanitizers)"
if ! build "$BUILD" -Dbuildtype=debug -Db_sanitize=none -Dtests=true; then
    die "the build of $BUILD/ failed"
fi

# ---------------------------------------------------------------------------------------------- tests
# name<TAB>binary<TAB>number of tests, of the suites unit and db, in the order of tests/meson.build
mapfile -t ALL < <(meson introspect --tests "$BUILD" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if set(t.get("suite", [])) & {"salesops:unit", "salesops:db", "unit", "db"}:
        print(t["name"] + "\t" + t["cmd"][0])
')
[ "${#ALL[@]}" -gt 0 ] || die "meson introspect --tests $BUILD lists no unit or db test"

declare -A BIN_OF=()
NAMES=()
for row in "${ALL[@]}"; do
    BIN_OF[${row%%$'\t'*}]=${row#*$'\t'}
done
if [ $# -gt 0 ]; then
    for name in "$@"; do
        [ -n "${BIN_OF[$name]:-}" ] || die "no unit or db test named $name (known: ${!BIN_OF[*]})"
        NAMES+=("$name")
    done
else
    for row in "${ALL[@]}"; do
        NAMES+=("${row%%$'\t'*}")
    done
fi

# The longest binaries first, so that the last ones to start are short: by the seconds each took in the last
# run (LOGROOT/NAME/seconds), else by 10 s a test (a ParameterizedTest counts once in --list but runs a
# process per parameter: http_bad_input's 27 entries are some 300 processes).
ORDERED=()
mapfile -t ORDERED < <(for name in "${NAMES[@]}"; do
    if [ -s "$LOGROOT/$name/seconds" ]; then
        weight=$(cat "$LOGROOT/$name/seconds")
    else
        count=$("${BIN_OF[$name]}" --list 2>/dev/null | grep -c -e '├──' -e '└──' || true)
        weight=$((${count:-0} * 10))
    fi
    printf '%s %s\n' "$weight" "$name"
done | sort -k1,1nr -k2 | awk '{print $2}')

# ----------------------------------------------------------------------------------------- PostgreSQL
TMP=$(mktemp -d /tmp/salesops-valgrind.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$TMP"
fi
pg_start "$TMP/pgdata" --no-fsync || die "could not start PostgreSQL"
export SALESOPS_TEST_DATABASE_URL="$PG_ADMIN_URL"
log "SALESOPS_TEST_DATABASE_URL=$SALESOPS_TEST_DATABASE_URL"

# --------------------------------------------------------------------------------------------- run
mkdir -p "$LOGROOT"
rm -f -- "$LOGROOT/summary.txt"

# Valgrind names each log after its process id, and a test binary under memcheck runs hundreds of processes
# one after the other: with pid_max at 32768 on a busy machine an id comes back within one binary's run, and
# the new process would overwrite the old one's log. So every log whose process has finished (its last line
# is the ERROR SUMMARY) is renamed vg.<pid>-<n>.log as soon as it is seen, once a second.
keep_logs() { # keep_logs DIR
    local f base n
    for f in "$1"/vg.*.log; do
        base=${f##*/}
        [[ $base =~ ^vg\.[0-9]+\.log$ ]] || continue
        tail -n 1 -- "$f" 2>/dev/null | grep -q 'ERROR SUMMARY' || continue
        n=1
        while [ -e "$1/${base%.log}-$n.log" ]; do n=$((n + 1)); done
        mv -- "$f" "$1/${base%.log}-$n.log"
    done
}

run_one() {
    local name=$1 dir="$LOGROOT/$1" rc=0 start vpid
    rm -rf -- "$dir"
    mkdir -p "$dir"
    start=$(date +%s)
    SALESOPS_LOG_LEVEL=warn timeout -k 30 "$TIMEOUT" \
        valgrind "${VG_OPTS[@]}" --log-file="$dir/vg.%p.log" "${BIN_OF[$name]}" \
        >"$dir/out.txt" 2>&1 &
    vpid=$!
    while kill -0 "$vpid" 2>/dev/null; do
        keep_logs "$dir"
        sleep 1
    done
    wait "$vpid" || rc=$?
    keep_logs "$dir"
    printf '%s\n' "$rc" >"$dir/rc"
    printf '%s\n' "$(($(date +%s) - start))" >"$dir/seconds"
    log "$name: done in $(cat "$dir/seconds") s (exit status $rc)"
}

log "running ${#ORDERED[@]} test binaries under memcheck, $JOBS at a time: ${ORDERED[*]}"
T0=$(date +%s)
for name in "${ORDERED[@]}"; do
    while [ "$(jobs -pr | wc -l)" -ge "$JOBS" ]; do
        wait -n || true
    done
    log "$name: starting"
    run_one "$name" &
done
wait || true
log "all binaries done in $(($(date +%s) - T0)) s"

# ------------------------------------------------------------------------------------------ report
set +e
python3 - "$LOGROOT" "${ORDERED[@]}" <<'PY'
import glob, os, re, sys

root, names = sys.argv[1], sys.argv[2:]
err_head = re.compile(r'^==\d+== (Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised'
                      r'|Syscall param|Source and destination overlap|Argument .* of function .* has a fishy'
                      r'|.* bytes in .* blocks are definitely lost)')
rows, firsts, passed, failed = [], {}, 0, 0
for name in names:
    d = os.path.join(root, name)
    logs = sorted(glob.glob(os.path.join(d, 'vg.*.log')))
    errors = leak_records = leak_bytes = leak_blocks = 0
    for path in logs:
        lines = open(path, errors='replace').read().splitlines()
        for i, line in enumerate(lines):
            m = re.search(r'ERROR SUMMARY: ([\d,]+) errors', line)
            if m:
                errors += int(m.group(1).replace(',', ''))
            m = re.search(r'definitely lost: ([\d,]+) bytes in ([\d,]+) blocks', line)
            if m:
                leak_bytes += int(m.group(1).replace(',', ''))
                leak_blocks += int(m.group(2).replace(',', ''))
            m = err_head.match(line)
            if m:
                kind = re.sub(r'^==\d+== ', '', line)
                kind = re.sub(r'[\d,]+ (\(.*?\) )?bytes in [\d,]+ blocks', 'N bytes in M blocks', kind)
                kind = re.sub(r'in loss record .*', '', kind).strip()
                if 'definitely lost' in line:
                    leak_records += 1
                key = (name, kind)
                if key not in firsts:
                    block = [line]
                    for nxt in lines[i + 1:i + 40]:
                        if re.match(r'^==\d+== $', nxt):
                            break
                        block.append(nxt)
                    firsts[key] = (path, block)
    mem_errors = errors - leak_records
    out = open(os.path.join(d, 'out.txt'), errors='replace').read() if os.path.exists(os.path.join(d, 'out.txt')) else ''
    synth = re.findall(r'Synthesis: (.*)', out)
    synth = synth[-1].strip() if synth else 'no Criterion synthesis (crashed or timed out?)'
    rc = open(os.path.join(d, 'rc')).read().strip() if os.path.exists(os.path.join(d, 'rc')) else '?'
    secs = open(os.path.join(d, 'seconds')).read().strip() if os.path.exists(os.path.join(d, 'seconds')) else '?'
    # one log for the runner and one per test at least: fewer means logs were lost (or a worker never ran)
    tested = re.search(r'Tested: (\d+)', synth)
    missing = max(0, int(tested.group(1)) + 1 - len(logs)) if tested else 0
    ok = rc == '0' and mem_errors == 0 and leak_bytes == 0 and leak_records == 0 and not missing
    passed += ok
    failed += not ok
    rows.append((name, len(logs), mem_errors, '%d B / %d blocks' % (leak_bytes, leak_blocks), rc, secs, synth,
                 'ok' if ok else 'FAIL' + (' (%d logs missing)' % missing if missing else '')))

hdr = ('binary', 'processes', 'memory errors', 'definite leaks', 'exit', 'seconds', 'Criterion', 'verdict')
widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
table = '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [hdr] + rows)
print()
print(table)
open(os.path.join(root, 'summary.txt'), 'w').write(table + '\n')
if firsts:
    print('\nFirst report of each kind (full logs in %s/<binary>/vg.<pid>.log):' % root)
    for (name, kind), (path, block) in firsts.items():
        print('\n--- %s: %s (%s)' % (name, kind, path))
        print('\n'.join(block))
print('\n%d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
PY
status=$?
exit "$status"
