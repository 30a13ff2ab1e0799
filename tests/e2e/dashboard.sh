#!/usr/bin/env bash
# End to end: the head of sales' web page (GET /) in a real browser, on a server with the demo account. Debian's
# Chromium, headless, is driven by tests/e2e/lib/dashboard.mjs through playwright-core, which compares what the
# page shows with what the API answers for the same request: sign-in (wrong, manager and admin keys), the
# checklist's cells and verdicts, the findings, the funnel, the managers' focus, a review returned through the
# page (then checked here through the API), the English labels, sign-out, a read-only key and a 401.
# Usage: tests/e2e/dashboard.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
# Needs chromium (scripts/deps.sh --test); installs playwright-core into .salesops/tools/playwright when missing.
# On a failed check the page's screenshot goes to BINARY's folder: browser-screenshots/NAME.png.
set -euo pipefail
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-dashboard

# Pinned: the driver is written against this API. Its own npm prefix, not .salesops/tools itself: an
# `npm install --no-save` there would remove scripts/test.sh's redocly, and redocly's install would remove it.
PLAYWRIGHT_PKG=playwright-core@1.65.1
TOOLS=$E2E_ROOT/.salesops/tools/playwright
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
SHOTS=$(dirname "$BIN")/browser-screenshots

playwright_ok() {
    local version
    version=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$TOOLS/node_modules/playwright-core/package.json" 2>/dev/null) || return 1
    [ "$version" = "${PLAYWRIGHT_PKG##*@}" ]
}

if ! playwright_ok; then
    log "installing $PLAYWRIGHT_PKG into $TOOLS"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-save --no-audit --no-fund --loglevel=error "$PLAYWRIGHT_PKG" >&2 || true
fi
check "playwright-core is installed" yes "$(playwright_ok && echo yes || echo no)"
check "chromium is installed ($CHROMIUM)" yes "$([ -x "$CHROMIUM" ] && echo yes || echo no)"
if [ "$failed" -gt 0 ]; then
    e2e_finish || exit 1
fi

# A check whose failure is explained by a screenshot the browser took earlier (WORK/SHOT.png).
check_shot() { # name, expected, actual, shot
    check "$1" "$2" "$3"
    if [ "$2" != "$3" ] && [ -f "$TMP/work/$4.png" ]; then
        mkdir -p "$SHOTS"
        cp -- "$TMP/work/$4.png" "$SHOTS/$4.png"
        echo "     screenshot: $SHOTS/$4.png"
    fi
}

e2e_database dashboard
created=$("$BIN" account create --name "Демо: Отдел продаж")
account_id=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["account_id"])')
key=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
"$BIN" demo --account "$account_id" >/dev/null
start_serve 1
check "server healthy" 200 "$(wait_healthy 1)"

# The page and its assets come without a key; the HTML carries the CSP the page is written for.
page_head=$(curl -s -D - -o /dev/null "${base[1]}/")
check "GET / serves the page with its Content-Security-Policy" "200 default-src 'self'" \
    "$(printf '%s' "$page_head" | sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p' | tr -d '\r') $(printf '%s' "$page_head" \
        | grep -i '^content-security-policy:' | grep -o "default-src 'self'" || true)"
assets=""
for asset in app.js app.css favicon.svg; do
    assets+="$(curl -s -o /dev/null -w '%{http_code}' "${base[1]}/assets/$asset") "
done
check "the assets are served" "200 200 200 " "$assets"

# Keys for the other roles, and manager 1 in focus (the demo saves her filter) for the managers' section.
check "a read-only key" 201 "$(api 1 POST /api/v1/api-keys '{"role":"readonly","name":"dashboard test"}')"
readonly_key=$(jq_body 'b["key"]')
readonly_key_id=$(jq_body 'b["id"]')
check "a manager key" 201 "$(api 1 POST /api/v1/api-keys '{"role":"manager","manager_id":2,"name":"Петров"}')"
manager_key=$(jq_body 'b["key"]')
check "manager 1 starts her focus session" 201 "$(api 1 POST /api/v1/managers/1/focus)"

mkdir -p "$TMP/work"
driver_rc=0
BASE=${base[1]} ADMIN_KEY=$key READONLY_KEY=$readonly_key READONLY_KEY_ID=$readonly_key_id \
    MANAGER_KEY=$manager_key TOOLS=$TOOLS CHROMIUM=$CHROMIUM SHOTS=$SHOTS WORK=$TMP/work \
    timeout 120 node "$E2E_ROOT/tests/e2e/lib/dashboard.mjs" >"$TMP/driver.out" || driver_rc=$?
check "the browser driver exits cleanly" 0 "$driver_rc"

declare -A value=()
while IFS=$'\x1f' read -r kind name expected actual; do
    case $kind in
        check) check "$name" "$expected" "$actual" ;;
        shot) echo "     screenshot: $name" ;;
        value) value[$name]=$expected ;;
        *) echo "driver: $kind $name $expected $actual" ;;
    esac
done <"$TMP/driver.out"

# The review the page returned, as the API sees it: the deal reopened for its manager, the review returned
# with the note the page sent.
review_id=$(num "${value[return_review_id]:-}")
deal_id=$(num "${value[return_deal_id]:-}")
api 1 GET "/api/v1/deals/$deal_id" >/dev/null
check_shot "the returned deal is open again, with the lost-by manager" \
    "open ${value[return_manager_id]:-?}" "$(jq_body 'b["status"]') $(jq_body 'b["manager_id"]')" after-return
api 1 GET "/api/v1/rejection-control/reviews/$review_id" >/dev/null
check_shot "the review is returned with the page's note" \
    "returned ${value[return_note]:-?}" "$(jq_body 'b["state"]') $(jq_body 'b["note"]')" after-return

e2e_finish
