#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ with clang (ASan + UBSan) and runs each one in turn.
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS]      default 300
#
# build-fuzz/ holds a clang build of libsalesops.a (address,undefined, with fuzzer coverage) and the harness
# binaries in build-fuzz/fuzz/. Each harness runs with -max_len=65536 -timeout=10 over a copy of its seed
# corpus (tests/fuzz/corpus/<harness>/) in a temporary directory, so nothing new is written into the repo.
# A crash, leak, UB report or timeout leaves its input in build-fuzz/artifacts/<harness>/ and its log in
# build-fuzz/logs/<harness>.log; the script prints both and how to reproduce, and exits 1.
#
# Environment: SALESOPS_FUZZ_STRICT=1 makes the harnesses also check the documented contracts of the code
# under test (see the head of each tests/fuzz/*.c); FUZZ_HARNESSES="fuzz_form fuzz_body" runs a subset.
# Needs clang and its sanitizer/fuzzer runtimes (Debian 12: clang libclang-rt-14-dev).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

SECONDS_PER=${1:-300}
case $SECONDS_PER in
    '' | *[!0-9]*)
        echo "usage: scripts/fuzz.sh [SECONDS_PER_HARNESS]" >&2
        exit 2
        ;;
esac
if [ "$SECONDS_PER" -lt 1 ]; then
    echo "fuzz.sh: SECONDS_PER_HARNESS must be at least 1" >&2
    exit 2
fi

# shellcheck disable=SC2206 # a list of words
HARNESSES=(${FUZZ_HARNESSES:-fuzz_form fuzz_events fuzz_body fuzz_router fuzz_dates})
BUILD=build-fuzz
BIN="$BUILD/fuzz"
ARTIFACTS="$BUILD/artifacts"
LOGS="$BUILD/logs"
CC_FUZZ=clang
DEPS=(libmicrohttpd jansson libpq libcrypto libcurl)
# The options of the library build; a build-fuzz/ set up otherwise is set up again.
# shellcheck disable=SC2054 # the commas are inside single options
SETUP_OPTS=(-Db_sanitize=address,undefined -Db_lundef=false -Dtests=false -Dwerror=false
    -Dbuildtype=debugoptimized -Dc_args=-fsanitize=fuzzer-no-link)
# shellcheck disable=SC2054
HARNESS_FLAGS=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)

WORK=""
cleanup() {
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        rm -rf -- "$WORK"
    fi
    WORK=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# ---------------------------------------------------------------------------------------------- build
command -v "$CC_FUZZ" >/dev/null 2>&1 || die "clang not found (Debian 12: apt-get install clang libclang-rt-14-dev)"
for tool in meson ninja pkg-config; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/deps.sh)"
done
mkdir -p "$BUILD"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/salesops-fuzz.XXXXXX")

# A clang that cannot link a fuzzer says so here, not in the middle of the harness builds.
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)'\
' { (void)d; (void)n; return 0; }\n' >"$WORK/probe.c"
if ! "$CC_FUZZ" "${HARNESS_FLAGS[@]}" "$WORK/probe.c" -o "$WORK/probe" 2>"$WORK/probe.err"; then
    cat "$WORK/probe.err" >&2
    die "$CC_FUZZ cannot build a libFuzzer binary with ASan/UBSan (Debian 12: apt-get install clang libclang-rt-14-dev)"
fi

setup_stamp="$CC_FUZZ $("$CC_FUZZ" --version | head -n 1) ${SETUP_OPTS[*]}"
if [ ! -f "$BUILD/build.ninja" ] || [ "$(cat "$BUILD/.fuzz-setup" 2>/dev/null)" != "$setup_stamp" ]; then
    log "setting up $BUILD/ (CC=$CC_FUZZ ${SETUP_OPTS[*]})"
    rm -rf -- "$BUILD"
    mkdir -p "$BUILD"
    CC=$CC_FUZZ meson setup "${SETUP_OPTS[@]}" "$BUILD" "$ROOT" >"$WORK/setup.log" 2>&1 || {
        tail -n 40 "$WORK/setup.log" >&2
        die "meson setup $BUILD failed"
    }
    printf '%s\n' "$setup_stamp" >"$BUILD/.fuzz-setup"
fi
log "building $BUILD/libsalesops.a"
ninja -C "$BUILD" libsalesops.a >"$WORK/ninja.log" 2>&1 || {
    tail -n 60 "$WORK/ninja.log" >&2
    die "ninja -C $BUILD libsalesops.a failed"
}

# shellcheck disable=SC2207 # pkg-config output is a list of flags
DEP_CFLAGS=($(pkg-config --cflags "${DEPS[@]}"))
# shellcheck disable=SC2207
DEP_LIBS=($(pkg-config --libs "${DEPS[@]}"))
mkdir -p "$BIN" "$ARTIFACTS" "$LOGS"
for h in "${HARNESSES[@]}"; do
    [ -f "tests/fuzz/$h.c" ] || die "no harness tests/fuzz/$h.c"
    log "building $BIN/$h"
    "$CC_FUZZ" "${HARNESS_FLAGS[@]}" -Iinclude "${DEP_CFLAGS[@]}" "tests/fuzz/$h.c" "$BUILD/libsalesops.a" \
        "${DEP_LIBS[@]}" -lpthread -o "$BIN/$h" || die "building $h failed"
done

# ------------------------------------------------------------------------------------------------ run
SYMBOLIZER=""
for s in llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "$s" >/dev/null 2>&1; then
        SYMBOLIZER=$(command -v "$s")
        break
    fi
done
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:symbolize=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}"
unset LSAN_OPTIONS

failed=()
for h in "${HARNESSES[@]}"; do
    corpus="$WORK/corpus-$h"
    mkdir -p "$corpus" "$ARTIFACTS/$h"
    if [ -d "tests/fuzz/corpus/$h" ]; then
        cp -R "tests/fuzz/corpus/$h/." "$corpus/"
    fi
    seeds=$(find "$corpus" -type f | wc -l)
    log "$h: fuzzing for ${SECONDS_PER} s from $seeds seed(s)"
    logfile="$LOGS/$h.log"
    start=$(date +%s)
    rc=0
    "$BIN/$h" -max_len=65536 -timeout=10 -max_total_time="$SECONDS_PER" -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/$h/" "$corpus" >"$logfile" 2>&1 || rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$logfile" | tail -n 1 || true)
    if [ "$rc" -eq 0 ]; then
        log "$h: ok in ${took} s, ${execs:-?} runs, ${cov:-no coverage line}"
        continue
    fi
    failed+=("$h")
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logfile" | tail -n 1)
    echo >&2
    log "$h: FAILED (exit status $rc after ${took} s); the report:"
    report=$(grep -E -A30 '^==[0-9]+==ERROR|runtime error:|contract broken|fuzz_[a-z]+: |ERROR: libFuzzer' \
        "$logfile" 2>/dev/null | head -n 60 || true)
    if [ -n "$report" ]; then
        printf '%s\n' "$report" >&2
    else
        tail -n 40 "$logfile" >&2
    fi
    if [ -n "$crash" ]; then
        log "$h: the input is $crash"
        log "$h: reproduce with: $BIN/$h $crash"
    else
        log "$h: no input was written; see $logfile"
    fi
    log "$h: full log: $logfile"
done

if [ "${#failed[@]}" -gt 0 ]; then
    log "fuzz: ${#failed[@]} of ${#HARNESSES[@]} harness(es) failed: ${failed[*]}"
    exit 1
fi
log "fuzz: all ${#HARNESSES[@]} harnesses ran ${SECONDS_PER} s each without a finding"
