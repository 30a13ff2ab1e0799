#!/usr/bin/env bash
# Builds salesops and runs it with a demo account, in the foreground (Ctrl-C stops it).
#
# Without DATABASE_URL it starts a private PostgreSQL with its data in .salesops/pgdata (stopped again on
# exit) and uses database `salesops` there. The demo account's admin key is kept in .salesops/demo-admin.key
# and its webhook token in .salesops/demo-webhook.token; a second run reuses both.
# SALESOPS_LISTEN (default 127.0.0.1:8080) sets the listen address.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

STATE_DIR=.salesops
KEY_FILE="$STATE_DIR/demo-admin.key"
TOKEN_FILE="$STATE_DIR/demo-webhook.token"
BIN=build/salesops
SERVE_PID=""
PG_STARTED=0

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
        log "stopping salesops (pid $SERVE_PID)"
        kill -TERM "$SERVE_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVE_PID" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$SERVE_PID" 2>/dev/null; then
            log "salesops did not stop in 10 s; killing it"
            kill -KILL "$SERVE_PID" 2>/dev/null || true
        fi
        wait "$SERVE_PID" 2>/dev/null || true
    fi
    if [ "${PG_STARTED:-0}" = 1 ]; then
        log "stopping the private PostgreSQL"
        pg_stop
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$ROOT/scripts/deps.sh"

log "building build/"
build build -Dbuildtype=debugoptimized || die "build failed"

mkdir -p "$STATE_DIR"

if [ -z "${DATABASE_URL:-}" ]; then
    datadir=$(pg_project_datadir "$ROOT") || die "no place for the private PostgreSQL"
    pg_start "$datadir" || die "could not start the private PostgreSQL"
    pg_create_db salesops || die "could not create database salesops"
    DATABASE_URL=$(pg_url salesops)
    export DATABASE_URL
    log "DATABASE_URL=$DATABASE_URL"
fi

log "migrating"
"$BIN" migrate || die "salesops migrate failed"

have_key=0
if [ -s "$KEY_FILE" ] && "$BIN" key-check --key "$(cat "$KEY_FILE")" >/dev/null 2>&1; then
    have_key=1
fi

if [ "$have_key" = 0 ]; then
    log "creating the demo account"
    created=$("$BIN" account create --name "Демо: Отдел продаж" --timezone Europe/Moscow) \
        || die "salesops account create failed"
    parsed=$(printf '%s\n' "$created" | account_fields) || die "could not read the output of salesops account create: $created"
    {
        read -r account_id || true
        read -r api_key || true
        read -r webhook_token || true
    } <<<"$parsed"
    if [ -z "$account_id" ] || [ -z "$api_key" ]; then
        die "salesops account create printed no account id or key"
    fi

    log "loading demo data into account $account_id"
    "$BIN" demo --account "$account_id" || die "salesops demo failed"

    (
        umask 077
        printf '%s' "$api_key" >"$KEY_FILE.tmp"
        printf '%s' "$webhook_token" >"$TOKEN_FILE.tmp"
    )
    chmod 600 "$KEY_FILE.tmp" "$TOKEN_FILE.tmp"
    mv -f "$KEY_FILE.tmp" "$KEY_FILE"
    mv -f "$TOKEN_FILE.tmp" "$TOKEN_FILE"
else
    log "reusing the demo account from $KEY_FILE"
fi

listen=${SALESOPS_LISTEN:-127.0.0.1:8080}
host=${listen%:*}
port=${listen##*:}
case $host in
    "" | 0.0.0.0 | "*" | "[::]" | ::) host=127.0.0.1 ;;
esac

echo
echo "salesops on http://$host:$port  (admin key: $KEY_FILE, webhook token: $TOKEN_FILE; Ctrl-C stops)"
echo "  curl -H \"Authorization: Bearer \$(cat $KEY_FILE)\" http://$host:$port/api/v1/account"
echo

"$BIN" serve &
SERVE_PID=$!
rc=0
wait "$SERVE_PID" || rc=$?
SERVE_PID=""
exit "$rc"
