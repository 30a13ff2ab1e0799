#!/usr/bin/env bash
# GET /api/v1/deals/{id} on 100,000 deals, beside the HTTP layer's ceiling and the database's, in one run:
#
#   static   wrk against bench/static_server.c (libmicrohttpd set up like the service, one fixed deal body)
#   service  wrk against `salesops serve` with bench/deal_get.lua (random deal of the account, Bearer key)
#   pgbench  pgbench -M prepared with bench/deal_get.sql (the service's SELECT of one deal, random id)
#
# all three at the same concurrency, interleaved, RUNS times; then each run's rates, the medians and the
# ratios service/static and service/pgbench. Everything runs on a fresh private PostgreSQL (fsync off) in a
# temporary directory; the service, the static server and PostgreSQL are stopped on exit.
#
#   bench/run_deal_get.sh [--runs N] [--threads N] [--connections N] [--duration SECONDS]
#                         [--server-threads N] [--deals N] [--warmup SECONDS] [--quiet-wait SECONDS]
#                         [--perf] [--no-build]
#
#   --runs            runs of the three benchmarks (default 5)
#   --threads         wrk threads = pgbench jobs (default 2)
#   --connections     wrk connections = pgbench clients (default 64)
#   --duration        seconds of each benchmark (default 10)
#   --server-threads  thread pool of the service and of the static server (default SALESOPS_THREADS, else the
#                     service's default: 4 per core, at least 4)
#   --deals           deals in the account (default 100000)
#   --warmup          seconds of wrk against each server before the first run (default 3)
#   --quiet-wait      before each benchmark, wait up to this many seconds for the machine to be idle
#                     (under 10% busy) so that a build or test beside us does not spoil the run (default 120);
#                     a run in which other processes still took over 10% of the CPU is repeated (3 times at most)
#   --perf            after the runs, one more service run and one more static run under `perf record`
#                     (the machine by process and symbol, the server with call graphs); reports in results
#   --no-build        use build-bench/salesops as it is (for a series of runs while the sources change)
#
# Raw outputs and the summary go to bench/results/deal_get-<date>/ (git-ignored). As root, missing Debian
# packages (wrk, postgresql-contrib, the build dependencies, linux-perf for --perf) are installed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

RUNS=5
WRK_THREADS=2
CONNECTIONS=64
DURATION=10
SERVER_THREADS=${SALESOPS_THREADS:-0}
DEALS=100000
WARMUP=3
QUIET_WAIT=120
RETRIES=3
PERF=0
BUILD=1

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift ;;
        --threads) WRK_THREADS=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --server-threads) SERVER_THREADS=$2; shift ;;
        --deals) DEALS=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --quiet-wait) QUIET_WAIT=$2; shift ;;
        --perf) PERF=1 ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'run_deal_get: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for v in RUNS WRK_THREADS CONNECTIONS DURATION DEALS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, got '${!v}'"
done
[[ $SERVER_THREADS =~ ^[0-9]+$ ]] || die "--server-threads must be a number, got '$SERVER_THREADS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a number, got '$WARMUP'"
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "--quiet-wait must be a number, got '$QUIET_WAIT'"
[ "$CONNECTIONS" -ge "$WRK_THREADS" ] || die "--connections must be at least --threads"
if [ "$SERVER_THREADS" = 0 ]; then
    # the service's own default (src/core/config.c): 4 per core, at least 4
    cores=$(nproc)
    SERVER_THREADS=$((cores > 1 ? cores * 4 : 4))
fi

# ------------------------------------------------------------------------------------------ packages
need=(wrk postgresql postgresql-contrib meson ninja-build pkg-config gcc libc6-dev libmicrohttpd-dev
    libjansson-dev libpq-dev libssl-dev python3 curl)
if [ "$PERF" = 1 ]; then
    need+=(linux-perf)
fi
need_packages "${need[@]}"

# --------------------------------------------------------------------------------------------- state
TMP=""
SERVE_PID=""
STATIC_PID=""
PG_STARTED=0
# stop_pid PID NAME comes from scripts/lib.sh

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$SERVE_PID" salesops
    stop_pid "$STATIC_PID" static_server
    if [ "${PG_STARTED:-0}" = 1 ]; then
        pg_stop
    fi
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        rm -rf -- "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

OUT="bench/results/deal_get-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
log "results in $OUT"

# --------------------------------------------------------------------------------------------- build
BIN=build-bench/salesops
release_build build-bench "$OUT"
STATIC_BIN=build-bench/static_server
# shellcheck disable=SC2046  # pkg-config prints several words on purpose
cc -O2 -Wall -Wextra -Wpedantic -Werror bench/static_server.c $(pkg-config --cflags --libs libmicrohttpd) \
    -o "$STATIC_BIN" || die "could not build the static server"

# ---------------------------------------------------------------------------------------- PostgreSQL
TMP=$(mktemp -d /tmp/salesops-bench.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$TMP"
fi
pg_start "$TMP/pgdata" --no-fsync || die "could not start PostgreSQL"
pg_create_db salesops_bench || die "could not create the database"
DATABASE_URL=$(pg_url salesops_bench)
export DATABASE_URL
PSQL="$PG_BIN/psql"
PGBENCH="$PG_BIN/pgbench"
export PSQL
"$BIN" migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log" >&2; die "salesops migrate failed"; }

# ------------------------------------------------------------------------------------------- servers
wait_http() {
    local url=$1 pid=$2 name=$3
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited (see $OUT)"
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "$name did not answer $url"
}

SERVE_PORT=$(free_port)
SALESOPS_LISTEN="127.0.0.1:$SERVE_PORT" SALESOPS_THREADS=$SERVER_THREADS SALESOPS_LOG_LEVEL=warn \
    SALESOPS_MIGRATE_ON_START=false "$BIN" serve >"$OUT/service.log" 2>&1 &
SERVE_PID=$!
wait_http "http://127.0.0.1:$SERVE_PORT/healthz" "$SERVE_PID" salesops
log "salesops serving on port $SERVE_PORT with $SERVER_THREADS threads (pid $SERVE_PID)"

STATIC_PORT=$(free_port)
"$STATIC_BIN" "$STATIC_PORT" "$SERVER_THREADS" >"$OUT/static_server.log" 2>&1 &
STATIC_PID=$!
wait_http "http://127.0.0.1:$STATIC_PORT/" "$STATIC_PID" static_server
log "static server on port $STATIC_PORT with $SERVER_THREADS threads (pid $STATIC_PID)"

# -------------------------------------------------------------------------------------------- data
gen_start=$(date +%s)
bench/gen_deals.sh --bin "$BIN" --url "http://127.0.0.1:$SERVE_PORT" --deals "$DEALS" >"$TMP/data.env" \
    2> >(tee "$OUT/gen_deals.log" >&2) || die "data generation failed"
# shellcheck disable=SC1091
. "$TMP/data.env"
log "data ready in $(($(date +%s) - gen_start)) s: account $ACCOUNT_ID, deals $MIN_ID..$MAX_ID"
export BENCH_API_KEY=$API_KEY BENCH_MIN_ID=$MIN_ID BENCH_MAX_ID=$MAX_ID

sample=$(curl -fsS -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$SERVE_PORT/api/v1/deals/$MIN_ID") \
    || die "GET /api/v1/deals/$MIN_ID failed"
printf '%s\n' "$sample" >"$OUT/sample_deal.json"
log "sample deal: ${#sample} bytes"

# ------------------------------------------------------------------------------------------ running
# CPU accounting from /proc, in clock ticks: what each part of the benchmark used during a run, and what
# was left for anything else on the machine (a build or a test suite running beside us spoils a run).
# busy_ticks, all_ticks, ctxt, ticks_of, postgres_ticks and wait_quiet (QUIET_WAIT) come from scripts/lib.sh.

# run_measured NAME OUTFILE CMD...: runs CMD (wrk or pgbench) with its output in OUTFILE, then appends a line
# with the CPU ticks used during the run: all busy CPU, the client (CMD), the service, the static server,
# PostgreSQL (busy minus those is someone else's), and the context switches of the whole machine.
run_measured() {
    local name=$1 outfile=$2
    shift 2
    local quiet b0 c0 s0 st0 pg0 b1 c1 s1 st1 pg1 x0 x1
    quiet=$(wait_quiet)
    x0=$(ctxt); b0=$(busy_ticks); c0=$(ticks_of --children $$); s0=$(ticks_of "$SERVE_PID")
    st0=$(ticks_of "$STATIC_PID"); pg0=$(postgres_ticks)
    if ! "$@" >"$outfile" 2>&1; then
        cat "$outfile" >&2
        check_alive "$SERVE_PID" salesops
        check_alive "$STATIC_PID" static_server
        die "$name failed"
    fi
    x1=$(ctxt); b1=$(busy_ticks); c1=$(ticks_of --children $$); s1=$(ticks_of "$SERVE_PID")
    st1=$(ticks_of "$STATIC_PID"); pg1=$(postgres_ticks)
    printf 'cpu: hz=%s before_busy_pct=%s busy=%s client=%s salesops=%s static_server=%s postgres=%s ctxt=%s\n' \
        "$(getconf CLK_TCK)" "$quiet" $((b1 - b0)) $((c1 - c0)) $((s1 - s0)) $((st1 - st0)) $((pg1 - pg0)) \
        $((x1 - x0)) >>"$outfile"
}

WRK_ARGS=(-t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency)
PGB_ARGS=(-M prepared -n -c "$CONNECTIONS" -j "$WRK_THREADS" -T "$DURATION"
    -h "$PG_SOCKDIR" -p "$PG_PORT" -U postgres
    -D "account_id=$ACCOUNT_ID" -D "min_id=$MIN_ID" -D "max_id=$MAX_ID" -f bench/deal_get.sql salesops_bench)

if [ "$WARMUP" -gt 0 ]; then
    log "warm-up: ${WARMUP} s of wrk against each server"
    wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" "http://127.0.0.1:$STATIC_PORT/" >"$OUT/warmup-static.txt"
    wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" -s bench/deal_get.lua \
        "http://127.0.0.1:$SERVE_PORT" >"$OUT/warmup-service.txt"
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "memory: $(awk '/MemTotal/{printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "postgresql: $("$PG_BIN/postgres" --version)"
    echo "libmicrohttpd: $(pkg-config --modversion libmicrohttpd)"
    echo "wrk: $(wrk -v 2>&1 | head -n 1)"
    echo "salesops: $("$BIN" --version)"
    # the commit, and whether the sources differ from it (with a short hash of the difference)
    changes=$(git diff HEAD -- src include migrations meson.build 2>/dev/null | sha256sum | cut -c1-12)
    [ "$(git diff HEAD -- src include migrations meson.build 2>/dev/null | wc -c)" -gt 0 ] || changes=""
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)${changes:+ + uncommitted changes $changes}"
    [ "$BUILD" = 1 ] || echo "binary: not rebuilt (--no-build), built $(date -r "$BIN" '+%Y-%m-%d %H:%M:%S')"
    echo "runs: $RUNS; duration: ${DURATION}s; wrk -t$WRK_THREADS -c$CONNECTIONS; pgbench -c $CONNECTIONS -j $WRK_THREADS"
    echo "server threads: $SERVER_THREADS; deals: $DEALS"
} >"$OUT/env.txt"

# check_alive PID NAME: dies with the way the server ended (exit status or signal) if it is gone.
check_alive() {
    local pid=$1 name=$2 rc=0
    kill -0 "$pid" 2>/dev/null && return 0
    wait "$pid" 2>/dev/null || rc=$?
    if [ "$rc" -gt 128 ]; then
        die "$name (pid $pid) is gone: killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
    fi
    die "$name (pid $pid) is gone: exit status $rc (see $OUT)"
}

cpu_field() { # cpu_field KEY FILE: a number of the "cpu:" line that run_measured appended
    sed -n "s/^cpu: .* $1=\([0-9]*\).*/\1/p" "$2"
}

# measure NAME RUN CMD...: run_measured into OUT/NAME-RUN.txt; a run in which other processes took more than
# 10% of the busy CPU time is kept as NAME-RUN.disturbed-K.txt and repeated (up to RETRIES times).
measure() {
    local name=$1 run=$2 try=0 busy other
    shift 2
    while :; do
        check_alive "$SERVE_PID" salesops
        check_alive "$STATIC_PID" static_server
        log "run $run/$RUNS: $name"
        run_measured "$name" "$OUT/$name-$run.txt" "$@"
        busy=$(cpu_field busy "$OUT/$name-$run.txt")
        other=$((busy - $(cpu_field client "$OUT/$name-$run.txt") - $(cpu_field salesops "$OUT/$name-$run.txt") \
            - $(cpu_field static_server "$OUT/$name-$run.txt") - $(cpu_field postgres "$OUT/$name-$run.txt")))
        if [ $((other * 10)) -le "$busy" ] || [ "$try" -ge "$RETRIES" ]; then
            [ $((other * 10)) -le "$busy" ] || log "warning: $name run $run shared the CPUs with other processes; kept"
            return 0
        fi
        try=$((try + 1))
        log "$name run $run shared the CPUs with other processes ($((other * 100 / busy))% of the busy time); repeating it"
        mv -f "$OUT/$name-$run.txt" "$OUT/$name-$run.disturbed-$try.txt"
    done
}

for run in $(seq 1 "$RUNS"); do
    measure static "$run" wrk "${WRK_ARGS[@]}" "http://127.0.0.1:$STATIC_PORT/"
    measure service "$run" wrk "${WRK_ARGS[@]}" -s bench/deal_get.lua "http://127.0.0.1:$SERVE_PORT"
    measure pgbench "$run" "$PGBENCH" "${PGB_ARGS[@]}"
done

if [ "$PERF" = 1 ]; then
    # One more run per server: the whole machine sampled without call graphs (where the CPU goes, by process
    # and symbol), and at the same time the server process with DWARF call graphs (the release build has no
    # frame pointers) for inclusive costs per function.
    for target in service static; do
        log "perf: one more $target run under perf record"
        if [ "$target" = service ]; then
            args=(-s bench/deal_get.lua "http://127.0.0.1:$SERVE_PORT")
            pid=$SERVE_PID
        else
            args=("http://127.0.0.1:$STATIC_PORT/")
            pid=$STATIC_PID
        fi
        wait_quiet >/dev/null
        perf record -a -F 499 -o "$OUT/perf-$target-all.data" -- sleep "$((DURATION + 1))" \
            >"$OUT/perf-$target-all.log" 2>&1 &
        perf_all=$!
        perf record --call-graph dwarf,8192 -F 199 -p "$pid" -o "$OUT/perf-$target-server.data" \
            -- wrk "${WRK_ARGS[@]}" "${args[@]}" >"$OUT/perf-$target-wrk.txt" 2>"$OUT/perf-$target-server.log" \
            || die "perf record failed (see $OUT/perf-$target-server.log)"
        wait "$perf_all" || die "perf record -a failed (see $OUT/perf-$target-all.log)"
        perf report -i "$OUT/perf-$target-all.data" --stdio --sort comm \
            >"$OUT/perf-$target-by-process.txt" 2>/dev/null || true
        perf report -i "$OUT/perf-$target-all.data" --stdio --sort comm,dso,symbol --percent-limit 0.3 \
            >"$OUT/perf-$target-by-symbol.txt" 2>/dev/null || true
        perf report -i "$OUT/perf-$target-server.data" --stdio --children --sort symbol -g none \
            --percent-limit 0.5 >"$OUT/perf-$target-server.txt" 2>/dev/null || true
    done
    log "perf reports: $OUT/perf-*.txt"
fi

# ------------------------------------------------------------------------------------------- summary
python3 - "$OUT" "$RUNS" >"$OUT/summary.txt" <<'PY'
import re, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
names = ["static", "service", "pgbench"]

def read(name, run):
    text = open(f"{out}/{name}-{run}.txt").read()
    if name == "pgbench":
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
        n = re.search(r"number of transactions actually processed: (\d+)", text)
        failed = re.search(r"number of failed transactions: (\d+)", text)
        bad = int(failed.group(1)) if failed else 0
    else:
        m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
        n = re.search(r"(\d+) requests in", text)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        bad = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    if m is None or n is None:
        sys.exit(f"no rate in {out}/{name}-{run}.txt")
    cpu = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", text.split("cpu: ", 1)[1]))
    return float(m.group(1)), int(n.group(1)), bad, cpu

rates = {n: [] for n in names}
errors = {n: 0 for n in names}
per_req = {n: [] for n in names}
disturbed = {n: 0 for n in names}
print(open(f"{out}/env.txt").read().rstrip())
print()
print(f"{'run':>4} {'static req/s':>13} {'service req/s':>14} {'pgbench tps':>12} {'svc/static':>11}"
      f" {'svc/pgbench':>12}")
for r in range(1, runs + 1):
    row = {}
    for n in names:
        rate, count, bad, c = read(n, r)
        rates[n].append(rate)
        errors[n] += bad
        row[n] = rate
        us = 1e6 / c["hz"] / count  # microseconds of CPU per request for one tick
        server = c["salesops"] if n == "service" else c["static_server"] if n == "static" else 0
        other = c["busy"] - c["client"] - c["salesops"] - c["static_server"] - c["postgres"]
        if other > 0.1 * c["busy"]:
            disturbed[n] += 1
        per_req[n].append({"client": c["client"] * us, "server": server * us, "postgres": c["postgres"] * us,
                           "other": other * us, "all": c["busy"] * us, "ctxt": c["ctxt"] / count,
                           "other_pct": 100.0 * other / max(c["busy"], 1)})
    print(f"{r:>4} {row['static']:>13.0f} {row['service']:>14.0f} {row['pgbench']:>12.0f}"
          f" {row['service'] / row['static']:>10.1%} {row['service'] / row['pgbench']:>11.1%}")
med = {n: statistics.median(rates[n]) for n in names}
print(f"{'med':>4} {med['static']:>13.0f} {med['service']:>14.0f} {med['pgbench']:>12.0f}"
      f" {med['service'] / med['static']:>10.1%} {med['service'] / med['pgbench']:>11.1%}")
print()
both = 1 / (1 / med["static"] + 1 / med["pgbench"])
print(f"median static server:  {med['static']:.0f} requests/s")
print(f"median service:        {med['service']:.0f} requests/s")
print(f"median pgbench:        {med['pgbench']:.0f} selects/s")
print(f"service / static:      {med['service'] / med['static']:.1%}  (aim: >= 70%)")
print(f"service / pgbench:     {med['service'] / med['pgbench']:.1%}")
print(f"service / (1 / (1/static + 1/pgbench) = {both:.0f}): {med['service'] / both:.1%}"
      "  (an HTTP request and a SELECT in series on the same CPUs)")
print("errors (non-2xx, socket errors, failed transactions): "
      + ", ".join(f"{n} {errors[n]}" for n in names))
print("runs disturbed (more than 10% of the busy CPU time used by other processes): "
      + ", ".join(f"{n} {disturbed[n]}" for n in names))
print()
print("Median per request (CPU microseconds; context switches of the whole machine):")
print(f"{'':>8} {'all CPU':>8} {'client':>7} {'server':>7} {'postgres':>9} {'other':>6} {'ctx sw':>7} {'other %':>8}")
for n in names:
    m = {k: statistics.median(x[k] for x in per_req[n]) for k in per_req[n][0]}
    label = {"static": "static", "service": "service", "pgbench": "pgbench"}[n]
    print(f"{label:>8} {m['all']:>8.1f} {m['client']:>7.1f} {m['server']:>7.1f} {m['postgres']:>9.1f}"
          f" {m['other']:>6.1f} {m['ctxt']:>7.2f} {m['other_pct']:>7.1f}%")
print("(client: wrk or pgbench; for pgbench, postgres includes the backends pgbench connects to)")
PY
cat "$OUT/summary.txt"
log "raw outputs and summary in $OUT"
