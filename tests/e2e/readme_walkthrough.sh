#!/usr/bin/env bash
# End to end: the README's curl walkthrough, run as printed against a server with the demo account.
# Usage: tests/e2e/readme_walkthrough.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
set -euo pipefail
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-readme

e2e_database readme
created=$("$BIN" account create --name "Демо: Отдел продаж")
account_id=$(printf '%s' "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["account_id"])')
"$BIN" demo --account "$account_id"
mkdir -p "$TMP/project/.salesops"
printf '%s' "$created" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["api_key"])' \
    >"$TMP/project/.salesops/demo-admin.key"
printf '%s' "$created" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["webhook_token"])' \
    >"$TMP/project/.salesops/demo-webhook.token"
start_serve 1
wait_healthy 1 >/dev/null
port=${base[1]##*:}

# The first sh block under "## Walkthrough", with the port of this server.
python3 - "$E2E_ROOT/README.md" "$port" >"$TMP/walkthrough.sh" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
print("set -euo pipefail")
for heading in ("## Walkthrough", "## CRM data in", "## Lead distribution and focus mode", "## Rejection control", "## Analytics"):
    section = text[text.index(heading):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    print(block.replace("127.0.0.1:8080", "127.0.0.1:" + sys.argv[2]))
PY
expect() { # name, pattern
    if grep -q -- "$2" "$TMP/out"; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1 (no '$2' in the output)"; fi
}
if (cd "$TMP/project" && bash "$TMP/walkthrough.sh") >"$TMP/out" 2>&1; then
    passed=$((passed + 1)); echo "ok   the walkthrough runs to the end"
else
    failed=$((failed + 1)); echo "FAIL the walkthrough stopped:"; tail -n 20 "$TMP/out"
fi
expect "account shown" '"timezone":"Europe/Moscow"'
expect "demo managers listed" 'Иванова Анна'
expect "pipeline with the case's stages" 'Выслано КП'
expect "the new deal was lost" '"status":"lost"'
expect "its history shows the loss" '"status": "lost"'
expect "the task was completed" '"state":"done"'
expect "the manager key sees only his deals" '\[2\]$'
expect "a bad price is a validation error" '"code":"validation_failed"'
expect "three events accepted" '"accepted":3,"duplicates":0,"rejected":\[\]'
expect "the late event landed in its place" '"2026-11-03T12:00:00Z"\]'
expect "the webhook body was accepted" '"status":"accepted"'
expect "nothing failed in the inbox" '{"items":\[\],"next_cursor":null}'
expect "the heaviest weight gets the first lead" '"manager_id":2,"distribution":{"assigned":true,"reason":null}'
expect "the head of sales is never eligible" '\[4,false,"not_a_manager"\]'
expect "a call has its own cursor" '{"manager_id":2,"kind":"call","assignment_id":2}'
expect "a manager in focus is out of distribution" '"eligible":false,"reason":"in_focus"'
expect "a marked item is done" '{"state":"active","done":1,"total":'
expect "a stopped session has ended" '{"state":"ended","end_reason":"stopped"}'
expect "rejection control is on in the demo" '"enabled":true,"loss_reason_ids":\[1,3\]'
expect "a review returned to its manager" '{"state":"returned","returned_to_manager_id":[0-9]*,"follow_up_task_id":[0-9]*}'
expect "the team's KPIs" '{"deals_created":2[0-9],"won":[0-9]*,"conversion":'
expect "the account's summary" '{"created":2[0-9],"won":'
expect "the worst stages of the funnel" '\[{"stage_id":[0-9]*,"name":"[^"]*","lost":[1-9]'
expect "the demo's targets" '"deals_without_tasks":{"target":3'
expect "findings in plain words" 'чем неделей ранее'
expect "the return counts in the stats" '"decided":1,"returned":1,"return_share":1,"target_return_share":0.1}'
if grep -q '"code":"internal_error"\|"code":"not_found"\|"code":"unauthorized"' "$TMP/out"; then
    failed=$((failed + 1)); echo "FAIL an unexpected error in the output"; grep '"code"' "$TMP/out" | head -5
else
    passed=$((passed + 1)); echo "ok   no unexpected errors"
fi
e2e_finish
