# shellcheck shell=bash
# Helpers shared by scripts/run.sh and scripts/test.sh. Source it, do not run it.
#
#   log MSG...                 print a timestamped line on stderr
#   die MSG...                 log and exit 1
#   free_port                  print a free TCP port on 127.0.0.1
#   pg_bindir                  print the newest PostgreSQL bin dir
#   pg_project_datadir ROOT    print the data dir for the project's own cluster
#                              (ROOT/.salesops/pgdata, or /var/tmp/salesops-<hash>/pgdata when the
#                              postgres user cannot enter ROOT)
#   pg_start DIR [--no-fsync]  initdb DIR if empty, start it (or reuse it if already running) and export
#                              PG_BIN PG_DATADIR PG_SOCKDIR PG_PORT PG_ADMIN_URL PG_STARTED (1 when this
#                              shell started it)
#   pg_stop                    stop the cluster that pg_start started in this shell (safe to call twice;
#                              a cluster that was already running is left alone)
#   pg_url DB                  print the unix-socket URL of database DB in the started cluster
#   pg_psql DB ARGS...         run psql against database DB
#   pg_create_db NAME          create database NAME unless it exists
#   account_fields             read the output of `salesops account create` on stdin and print
#                              account_id, api_key and webhook_token, one a line
#   build DIR [-Dopt=val ...]  meson setup DIR (or reconfigure if the options differ), then ninja -C DIR
#
# For the benchmark scripts (bench/run, bench/run_*.sh): packages, the release build, CPU accounting from /proc
# and stopping what they started.
#   need_packages PKG...       install the Debian packages that are missing (as root; otherwise die naming them)
#   release_build DIR OUT      with BUILD=1 (the default) build DIR release without tests, log in OUT/build.log
#                              (die with its tail on failure); with BUILD=0 use DIR/salesops as it is
#   busy_ticks, all_ticks      non-idle and all clock ticks of all CPUs since boot
#   ctxt                       context switches since boot, all CPUs
#   ticks_of [--children] PID...  user + system ticks of the processes (with --children: of the children
#                              they have reaped)
#   postgres_ticks             ticks of the cluster pg_start started: postmaster, live and reaped children
#   wait_quiet                 wait (up to QUIET_WAIT seconds, default 120) until the machine is under 10%
#                              busy over a second; prints that busy share
#   stop_pid PID NAME          TERM, up to 10 s, then KILL; reaps it (nothing when PID is empty or gone)
#
# The functions return non-zero on failure instead of relying on `set -e` (they are often called inside
# `if`, where errexit does not apply).

SALESOPS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
export SALESOPS_ROOT

log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

_is_root() {
    [ "$(id -u)" -eq 0 ]
}

free_port() {
    python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

pg_bindir() {
    local candidates=(/usr/lib/postgresql/*/bin) dir="" p
    if [ -e "${candidates[0]}" ]; then
        dir=$(printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1)
    elif p=$(command -v pg_ctl 2>/dev/null); then
        dir=$(dirname "$p")
    fi
    if [ -z "$dir" ] || [ ! -x "$dir/pg_ctl" ] || [ ! -x "$dir/initdb" ]; then
        log "PostgreSQL server binaries not found (install postgresql: scripts/deps.sh)"
        return 1
    fi
    printf '%s\n' "$dir"
}

# Run a command as the owner of the private clusters: `postgres` when we are root (PostgreSQL refuses to
# run as root), else ourselves. Runs from / so that an unreadable current directory does not matter.
_pg_as() {
    if _is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Create DIR (and parents) owned by the cluster owner, mode 0700.
_pg_own_dir() {
    local dir=$1
    mkdir -p -- "$dir" || return 1
    if _is_root; then
        chown postgres:postgres -- "$dir" || return 1
    fi
    chmod 700 -- "$dir"
}

pg_project_datadir() {
    local root=$1 base hash fallback
    base="$root/.salesops"
    mkdir -p -- "$base" || return 1
    if ! _is_root || runuser -u postgres -- test -x "$base" 2>/dev/null; then
        printf '%s\n' "$base/pgdata"
        return 0
    fi
    hash=$(printf '%s' "$root" | sha256sum | cut -c1-12)
    fallback="/var/tmp/salesops-$hash"
    log "the postgres user cannot enter $base; keeping the cluster in $fallback"
    if [ -e "$fallback" ] && [ "$(stat -c %U -- "$fallback")" != postgres ]; then
        log "$fallback exists and is not owned by postgres; remove it or fix its owner"
        return 1
    fi
    _pg_own_dir "$fallback" || return 1
    printf '%s\n' "$fallback/pgdata"
}

# Read port and socket dir of a running cluster from its postmaster.pid (lines 4 and 5).
_pg_read_pidfile() {
    local pidfile="$1/postmaster.pid" port sock
    port=$(sed -n 4p "$pidfile" 2>/dev/null) || return 1
    sock=$(sed -n 5p "$pidfile" 2>/dev/null) || return 1
    sock=${sock%%,*}
    if [ -z "$port" ] || [ -z "$sock" ]; then
        return 1
    fi
    PG_PORT=$port
    PG_SOCKDIR=$sock
}

_pg_export_urls() {
    PG_ADMIN_URL="postgresql://postgres@/postgres?host=$PG_SOCKDIR&port=$PG_PORT"
    export PG_BIN PG_DATADIR PG_SOCKDIR PG_PORT PG_ADMIN_URL PG_STARTED
}

_pg_wait_ready() {
    local _
    for _ in $(seq 1 120); do
        if "$PG_BIN/pg_isready" -q -h "$PG_SOCKDIR" -p "$PG_PORT" -U postgres -d postgres; then
            return 0
        fi
        sleep 0.5
    done
    log "PostgreSQL did not become ready (socket $PG_SOCKDIR, port $PG_PORT)"
    return 1
}

pg_start() {
    local datadir="" nofsync=0 sock attempt port opts logfile
    while [ $# -gt 0 ]; do
        case $1 in
            --no-fsync) nofsync=1 ;;
            -*) log "pg_start: unknown option $1"; return 2 ;;
            *) datadir=$1 ;;
        esac
        shift
    done
    if [ -z "$datadir" ]; then
        log "usage: pg_start DIR [--no-fsync]"
        return 2
    fi
    case $datadir in /*) ;; *) datadir="$PWD/$datadir" ;; esac

    PG_BIN=$(pg_bindir) || return 1
    PG_DATADIR=$datadir
    PG_STARTED=0
    PG_SOCKDIR_TEMP=0

    _pg_own_dir "$datadir" || { log "cannot create $datadir"; return 1; }

    if [ ! -s "$datadir/PG_VERSION" ]; then
        if [ -n "$(ls -A -- "$datadir")" ]; then
            log "$datadir is neither empty nor a PostgreSQL data directory"
            return 1
        fi
        log "initdb $datadir"
        if ! _pg_as "$PG_BIN/initdb" -D "$datadir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
                --no-instructions >"$datadir.initdb.log" 2>&1; then
            cat -- "$datadir.initdb.log" >&2
            log "initdb failed"
            return 1
        fi
        rm -f -- "$datadir.initdb.log"
    fi

    # Already running (an earlier run.sh still up, or started by hand): reuse it, never stop it.
    if _pg_as "$PG_BIN/pg_ctl" -D "$datadir" status >/dev/null 2>&1 && _pg_read_pidfile "$datadir"; then
        log "PostgreSQL already running in $datadir (port $PG_PORT)"
        _pg_export_urls
        _pg_wait_ready
        return
    fi

    # A private socket dir next to the data dir, unless that path is too long for a unix socket
    # (sun_path is 108 bytes) or has characters that would need quoting.
    sock="$(dirname "$datadir")/pgsock"
    if [ "${#sock}" -gt 80 ] || [[ $sock =~ [^A-Za-z0-9_./-] ]]; then
        sock=$(mktemp -d /tmp/salesops-pgsock.XXXXXX) || return 1
        PG_SOCKDIR_TEMP=1
    fi
    _pg_own_dir "$sock" || return 1
    PG_SOCKDIR=$sock

    logfile="$datadir/server.log"
    for attempt in 1 2 3 4 5; do
        port=$(free_port) || return 1
        opts="-p $port -k $sock -c listen_addresses=127.0.0.1 -c max_connections=300"
        if [ "$nofsync" = 1 ]; then
            opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        fi
        if _pg_as "$PG_BIN/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 -o "$opts" start >/dev/null 2>&1; then
            PG_PORT=$port
            PG_STARTED=1
            _pg_export_urls
            if ! _pg_wait_ready; then
                pg_stop
                return 1
            fi
            log "PostgreSQL started: data $datadir, socket $sock, port $port"
            return 0
        fi
        if grep -q -i -e 'address already in use' -e 'could not bind' -e 'could not create any TCP' \
                "$logfile" 2>/dev/null && [ "$attempt" -lt 5 ]; then
            log "port $port taken, trying another"
            continue
        fi
        break
    done
    tail -n 30 -- "$logfile" >&2 2>/dev/null || true
    log "PostgreSQL failed to start (log: $logfile)"
    if [ "$PG_SOCKDIR_TEMP" = 1 ]; then
        rm -rf -- "$sock"
    fi
    return 1
}

pg_stop() {
    if [ "${PG_STARTED:-0}" != 1 ] || [ -z "${PG_DATADIR:-}" ]; then
        return 0
    fi
    if [ -f "$PG_DATADIR/postmaster.pid" ]; then
        if ! _pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" -m fast -w -t 60 stop >/dev/null 2>&1; then
            log "pg_ctl stop -m fast failed; stopping immediately"
            _pg_as "$PG_BIN/pg_ctl" -D "$PG_DATADIR" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        fi
    fi
    if [ "${PG_SOCKDIR_TEMP:-0}" = 1 ] && [ -n "${PG_SOCKDIR:-}" ]; then
        rm -rf -- "$PG_SOCKDIR"
    fi
    PG_STARTED=0
    return 0
}

pg_url() {
    printf 'postgresql://postgres@/%s?host=%s&port=%s\n' "$1" "$PG_SOCKDIR" "$PG_PORT"
}

pg_psql() {
    local db=$1
    shift
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$(pg_url "$db")" "$@"
}

pg_create_db() {
    local name=$1 exists
    if [[ ! $name =~ ^[a-z_][a-z0-9_]*$ ]]; then
        log "pg_create_db: bad database name '$name'"
        return 1
    fi
    exists=$(pg_psql postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$name'") || return 1
    if [ "$exists" != 1 ]; then
        log "creating database $name"
        pg_psql postgres -c "CREATE DATABASE \"$name\"" || return 1
    fi
}

account_fields() {
    python3 -c '
import json, sys
obj = None
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    try:
        cand = json.loads(line)
    except ValueError:
        continue
    if isinstance(cand, dict) and "api_key" in cand:
        obj = cand
if obj is None:
    sys.exit("no JSON object with api_key in the output of salesops account create")
print(obj.get("account_id", ""))
print(obj["api_key"])
print(obj.get("webhook_token") or "")
'
}

# Succeeds when every -Dkey=value argument already matches the build dir's configured value.
_meson_opts_match() {
    local dir=$1 json
    shift
    json=$(meson introspect --buildoptions "$dir" 2>/dev/null) || return 1
    printf '%s' "$json" | python3 -c '
import json, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
def norm(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)
for arg in sys.argv[1:]:
    if not arg.startswith("-D") or "=" not in arg:
        sys.exit(1)
    key, _, want = arg[2:].partition("=")
    if key not in opts or norm(opts[key]) != want:
        sys.exit(1)
' "$@"
}

build() {
    local dir=$1
    shift
    case $dir in /*) ;; *) dir="$SALESOPS_ROOT/$dir" ;; esac
    if [ -f "$dir/meson-private/coredata.dat" ] && [ ! -f "$dir/build.ninja" ]; then
        log "build dir $dir is half configured; wiping it"
        meson setup --wipe "$@" "$dir" "$SALESOPS_ROOT" || return 1
    elif [ ! -f "$dir/meson-private/coredata.dat" ]; then
        meson setup "$@" "$dir" "$SALESOPS_ROOT" || return 1
    elif ! _meson_opts_match "$dir" "$@"; then
        log "reconfiguring $dir with $*"
        meson setup --reconfigure "$@" "$dir" "$SALESOPS_ROOT" || return 1
    fi
    ninja -C "$dir"
}

# ---------------------------------------------------------------------------- benchmark helpers
busy_ticks() { # all CPUs, non-idle ticks since boot
    awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat
}

all_ticks() {
    awk '/^cpu /{s=0; for (i=2; i<=NF; i++) s+=$i; print s}' /proc/stat
}

ctxt() { # context switches since boot, all CPUs
    awk '/^ctxt /{print $2}' /proc/stat
}

# ticks_of [--children] PID...: user + system ticks of the processes; with --children, of the children they
# have waited for instead (a reaped child's time lands in its parent's cutime/cstime).
ticks_of() {
    local total=0 pid line fields base=11
    if [ "${1:-}" = --children ]; then
        base=13
        shift
    fi
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # after the ")" that ends the command name come fields 3, 4, ...: utime, stime, cutime and cstime
        # are fields 14 to 17
        read -ra fields <<<"${line##*) }"
        total=$((total + fields[base] + fields[base + 1]))
    done
    printf '%s\n' "$total"
}

# PostgreSQL: the postmaster and its live children, plus the children it has reaped (pgbench's backends end
# with their clients).
postgres_ticks() {
    local pm kids
    pm=$(head -n 1 "$PG_DATADIR/postmaster.pid" 2>/dev/null) || { echo 0; return; }
    mapfile -t kids < <(ps -o pid= --ppid "$pm" 2>/dev/null | tr -d ' ')
    echo $(($(ticks_of "$pm" "${kids[@]}") + $(ticks_of --children "$pm")))
}

# wait_quiet: waits (up to QUIET_WAIT seconds, default 120) until the machine is less than 10% busy over a
# second while our servers are idle, so that a run does not share the CPUs with something else. Prints the
# busy share.
wait_quiet() {
    local waited=0 b0 a0 b1 a1 pct
    local QUIET_WAIT=${QUIET_WAIT:-120}
    while :; do
        b0=$(busy_ticks); a0=$(all_ticks)
        sleep 1
        b1=$(busy_ticks); a1=$(all_ticks)
        pct=$(((b1 - b0) * 100 / (a1 - a0 > 0 ? a1 - a0 : 1)))
        if [ "$pct" -lt 10 ] || [ "$waited" -ge "$QUIET_WAIT" ]; then
            [ "$pct" -lt 10 ] || log "warning: the machine is still ${pct}% busy with something else; running anyway"
            echo "$pct"
            return 0
        fi
        [ "$waited" -gt 0 ] || log "the machine is ${pct}% busy with something else; waiting up to ${QUIET_WAIT} s"
        waited=$((waited + 1))
    done
}

# stop_pid PID NAME: SIGTERM, up to 10 s for it to end, then SIGKILL; reaps it. Nothing when PID is empty or
# not running.
stop_pid() {
    local pid=$1 name=$2
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop in 10 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

need_packages() {
    local pkg missing=()
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = installed ] || missing+=("$pkg")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    _is_root || die "missing packages: ${missing[*]} (as root: apt-get install -y ${missing[*]})"
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

release_build() {
    local dir=$1 out=$2
    if [ "${BUILD:-1}" = 1 ]; then
        log "building $dir/ (release, no tests)"
        build "$dir" -Dbuildtype=release -Dtests=false >"$out/build.log" 2>&1 || {
            tail -n 30 "$out/build.log" >&2
            die "build failed (log: $out/build.log)"
        }
    else
        [ -x "$dir/salesops" ] || die "--no-build: there is no $dir/salesops yet"
        log "using $dir/salesops as it is (built $(date -r "$dir/salesops" '+%Y-%m-%d %H:%M:%S'))"
    fi
}
