#!/usr/bin/env bash
# End to end: rejection control survives a crash and several instances.
#
#   - crash: the rule reviews every loss ("any", a head as reviewer); 300 open deals come in by POST /events;
#     300 amoCRM webhooks (one per lead, status 143 in an amoCRM pipeline) move them to lost; `serve` is
#     killed with SIGKILL while the applier is working, then restarted; once the inbox is applied, every lost
#     deal has exactly one judged loss, exactly one review and that review exactly one rejection_control task
#     (for the head, due at the loss + 24 h);
#   - the sweep with two instances: 200 more deals are lost while the rule is off (judged, not qualifying);
#     with the server stopped their losses are marked as qualifying and sampled in the database (as if the
#     server had died between judging and reviewing); two `serve` processes started together make exactly
#     one review and one task per loss, between them.
#
# Usage: tests/e2e/rejection_crash.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
# KEEP_TMP=1 keeps the temporary directory (server logs) for a look afterwards.
set -euo pipefail
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-rejection

CRASH_DEALS=300
SWEEP_DEALS=200
CRASH_BASE=70000000 # the deals' (amoCRM lead) ids: 70000000..70000300, and 71000001..71000200
SWEEP_BASE=71000000
AMO_PIPELINE=6109999 # a new amoCRM pipeline: its placeholder gets amoCRM's 142/143 as won/lost

# ------------------------------------------------------------------------------------------ database
e2e_database e2e
mapfile -t acct < <("$BIN" account create --name "E2E rejection" | account_fields)
account=${acct[0]} key=${acct[1]} token=${acct[2]}
SERVE_ENV=(SALESOPS_THREADS=4 SALESOPS_MIGRATE_ON_START=false)

# events N FILE: posts the JSON array in FILE to /events; prints "status accepted duplicates rejected"
events() {
    curl -s -o "$TMP/body" -w '%{http_code}' --max-time 60 -X POST -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' --data-binary "@$2" "${base[$1]}/api/v1/events" >"$TMP/code" || true
    printf '%s %s\n' "$(cat "$TMP/code")" "$(jq_body '"%d %d %d" % (b["accepted"], b["duplicates"], len(b["rejected"]))')"
}
# make_events FILE BASE FIRST COUNT [lost]: deal.created for the deals BASE+FIRST.. (amoCRM lead ids are
# numbers; manager m1, pipeline ep, stage st1, 60 s ago), and with "lost" a deal.stage_changed into lost now
make_events() {
    python3 - "$@" <<'PY'
import json, sys, time
out, base, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lost = len(sys.argv) > 5 and sys.argv[5] == "lost"
now = int(time.time())
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
ev = []
for i in range(first, first + count):
    deal = str(base + i)
    ev.append({"id": f"c-{deal}", "type": "deal.created", "at": iso(now - 60),
               "data": {"deal": deal, "name": f"Deal {deal}", "price": 1000 + i,
                        "pipeline": "ep", "stage": "st1", "manager": "m1"}})
    if lost:
        ev.append({"id": f"l-{deal}", "type": "deal.stage_changed", "at": iso(now),
                   "data": {"deal": deal, "stage": "lost"}})
json.dump(ev, open(out, "w"))
PY
}
# lost_body LEAD UNIX: an amoCRM leads[status] body moving LEAD to 143 in $AMO_PIPELINE at UNIX
lost_body() {
    printf 'leads%%5Bstatus%%5D%%5B0%%5D%%5Bid%%5D=%s&leads%%5Bstatus%%5D%%5B0%%5D%%5Bstatus_id%%5D=143' "$1"
    printf '&leads%%5Bstatus%%5D%%5B0%%5D%%5Bpipeline_id%%5D=%s' "$AMO_PIPELINE"
    printf '&leads%%5Bstatus%%5D%%5B0%%5D%%5Bupdated_at%%5D=%s&account%%5Bsubdomain%%5D=acme' "$2"
}
inbox_left() { # rows of the account not applied yet
    q "SELECT count(*) FROM inbox WHERE account_id = $account AND state IN ('pending', 'waiting')"
}
wait_inbox_applied() { # wait_inbox_applied SECONDS: prints the rows left
    local left _
    for _ in $(seq 1 $(($1 * 10))); do
        left=$(inbox_left)
        [ "$left" != 0 ] || break
        sleep 0.1
    done
    inbox_left
}

# ------------------------------------------------------------------------------------------ set-up
start_serve 1
check "serve answers /healthz" 200 "$(wait_healthy 1)"
check "head of sales created" 201 "$(api 1 POST /api/v1/managers '{"name":"Head of sales","role":"head"}')"
head=$(num "$(jq_body 'b["id"]')")
check "rule enabled for any reason, the head reviews" 200 "$(api 1 PUT /api/v1/rejection-control/settings \
    "{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":$head}")"

make_events "$TMP/open.json" "$CRASH_BASE" 0 $((CRASH_DEALS + 1))
check "$((CRASH_DEALS + 1)) open deals created by POST /events" "200 $((CRASH_DEALS + 1)) 0 0" "$(events 1 "$TMP/open.json")"
crash_deals="FROM deals d WHERE d.account_id = $account AND d.external_id LIKE '7000%'"
check "they are open" "$((CRASH_DEALS + 1))" "$(q "SELECT count(*) $crash_deals AND d.status = 'open'")"

# the first loss alone: its webhook makes the amoCRM pipeline (143 is its lost stage)
lost_body "$CRASH_BASE" "$(date +%s)" >"$TMP/warm.form"
check "the first webhook is accepted" 200 "$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 10 \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$TMP/warm.form" \
    "${base[1]}/api/v1/webhooks/amocrm/$token" || true)"
check "the first webhook is applied" 0 "$(wait_inbox_applied 10)"
check "the first deal is lost in the amoCRM pipeline" "lost $AMO_PIPELINE" "$(q "SELECT d.status || ' ' || p.external_id
    FROM deals d JOIN pipelines p ON p.account_id = d.account_id AND p.id = d.pipeline_id
    WHERE d.account_id = $account AND d.external_id = '$CRASH_BASE'")"
check "the first deal has its review" 1 "$(q "SELECT count(*) FROM rejection_reviews v JOIN deals d
    ON d.account_id = v.account_id AND d.id = v.deal_id WHERE v.account_id = $account AND d.external_id = '$CRASH_BASE'")"

# ---------------------------------------------------------------------------------------------- crash
# the 300 bodies, posted by one keep-alive client; the server is killed once the applier has started on them
python3 - "$TMP/post.txt" "${base[1]#http://}" "$token" "$CRASH_DEALS" "$AMO_PIPELINE" "$CRASH_BASE" <<'PY' &
import http.client, sys, time
out, host, token, count, pipeline, first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], \
    int(sys.argv[6])
h, port = host.rsplit(":", 1)
conn = http.client.HTTPConnection(h, int(port), timeout=30)
ok, t0 = 0, time.monotonic()
for i in range(1, count + 1):
    body = (f"leads%5Bstatus%5D%5B0%5D%5Bid%5D={first + i}&leads%5Bstatus%5D%5B0%5D%5Bstatus_id%5D=143"
            f"&leads%5Bstatus%5D%5B0%5D%5Bpipeline_id%5D={pipeline}"
            f"&leads%5Bstatus%5D%5B0%5D%5Bupdated_at%5D={int(time.time())}&account%5Bsubdomain%5D=acme")
    conn.request("POST", f"/api/v1/webhooks/amocrm/{token}", body,
                 {"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    ok += r.status == 200
open(out, "w").write(f"{ok} {time.monotonic() - t0:.3f}\n")
PY
poster=$!
wait "$poster" || true
read -r posted post_s <"$TMP/post.txt" || posted=0
check "the $CRASH_DEALS webhooks are accepted" "$CRASH_DEALS" "$posted"
# kill as soon as the applier has applied some of them (it polls twice a second; 3 s at the latest)
applied_before=0
for _ in $(seq 1 300); do
    applied_before=$(q "SELECT count(*) FROM inbox WHERE account_id = $account AND source = 'amocrm'
        AND state = 'applied'")
    [ "$applied_before" -le 1 ] || break
    sleep 0.01
done
kill -KILL "${SERVE_PIDS[0]}" 2>/dev/null || true
wait "${SERVE_PIDS[0]}" 2>/dev/null || true
SERVE_PIDS=()
left_at_kill=$(inbox_left)
log "posted $posted webhooks in ${post_s:-?} s; killed after $((applied_before - 1)) of them were seen applied, $left_at_kill not applied"
check "the server was killed while the applier was at work (some applied, some left)" yes \
    "$([ "$applied_before" -gt 1 ] && [ "$left_at_kill" -gt 0 ] && echo yes || echo no)"

start_serve 2
check "serve restarted after the crash" 200 "$(wait_healthy 2)"
check "after the restart the inbox is applied" 0 "$(wait_inbox_applied 20)"
sleep 1 # a sweep round or two
check "no inbox row failed" 0 "$(q "SELECT count(*) FROM inbox WHERE account_id = $account AND state = 'failed'")"
all=$((CRASH_DEALS + 1))
check "all $all deals are lost" "$all" "$(q "SELECT count(*) $crash_deals AND d.status = 'lost'")"
check "every lost deal has exactly one judged loss" "$all" "$(q "SELECT count(*) $crash_deals AND (SELECT count(*)
    FROM rejection_losses l WHERE l.account_id = d.account_id AND l.deal_id = d.id) = 1")"
check "every lost deal has exactly one review" "$all" "$(q "SELECT count(*) $crash_deals AND (SELECT count(*)
    FROM rejection_reviews v WHERE v.account_id = d.account_id AND v.deal_id = d.id) = 1")"
check "no deal has two reviews" 0 "$(q "SELECT count(*) FROM (SELECT deal_id FROM rejection_reviews
    WHERE account_id = $account GROUP BY deal_id HAVING count(*) > 1) x")"
check "each review has its rejection_control task for the head, due at the loss + 24 h" "$all" "$(q "SELECT count(*)
    FROM rejection_reviews v JOIN tasks t ON t.account_id = v.account_id AND t.id = v.task_id
    WHERE v.account_id = $account AND t.deal_id = v.deal_id AND t.type = 'rejection_control'
      AND t.manager_id = $head AND t.due_at = v.lost_at + interval '24 hours' AND t.completed_at IS NULL")"
check "each lost deal has exactly one rejection_control task" "$all" "$(q "SELECT count(*) $crash_deals AND
    (SELECT count(*) FROM tasks t WHERE t.account_id = d.account_id AND t.deal_id = d.id
       AND t.type = 'rejection_control') = 1")"
check "reviews, pending, in the API" "$all $all" "$(api 2 GET /api/v1/rejection-control/stats >/dev/null
    jq_body '"%d %d" % (b["reviews"], b["pending"])')"

# ------------------------------------------------------------------------------- sweep, two instances
check "rule switched off (reviewer kept)" 200 "$(api 2 PUT /api/v1/rejection-control/settings \
    "{\"enabled\":false,\"loss_reason_ids\":\"any\",\"reviewer_id\":$head}")"
make_events "$TMP/sweep.json" "$SWEEP_BASE" 1 "$SWEEP_DEALS" lost
check "$SWEEP_DEALS deals created and lost by POST /events" "200 $((SWEEP_DEALS * 2)) 0 0" "$(events 2 "$TMP/sweep.json")"
sweep_deals="FROM deals d WHERE d.account_id = $account AND d.external_id LIKE '7100%'"
check "they are lost" "$SWEEP_DEALS" "$(q "SELECT count(*) $sweep_deals AND d.status = 'lost'")"
check "their losses are judged as not qualifying" "$SWEEP_DEALS" "$(q "SELECT count(*) FROM rejection_losses l
    WHERE l.account_id = $account AND NOT l.qualifies AND l.deal_id IN (SELECT d.id $sweep_deals)")"
check "and have no review" 0 "$(q "SELECT count(*) FROM rejection_reviews v
    WHERE v.account_id = $account AND v.deal_id IN (SELECT d.id $sweep_deals)")"
stop_pid "${SERVE_PIDS[0]}" salesops
SERVE_PIDS=()
check "with the server stopped, the losses are made due a review" "$SWEEP_DEALS" "$(q "WITH u AS (
    UPDATE rejection_losses SET qualifies = true, sampled = true
    WHERE account_id = $account AND deal_id IN (SELECT d.id $sweep_deals) RETURNING 1) SELECT count(*) FROM u")"

start_serve 3
start_serve 4
check "instance 1 answers /healthz" 200 "$(wait_healthy 3)"
check "instance 2 answers /healthz" 200 "$(wait_healthy 4)"
made=0
for _ in $(seq 1 150); do # up to 15 s
    made=$(q "SELECT count(*) FROM rejection_reviews WHERE account_id = $account
        AND deal_id IN (SELECT d.id $sweep_deals)")
    [ "$made" -lt "$SWEEP_DEALS" ] || break
    sleep 0.1
done
log "the sweep made $made reviews"
check "the sweep made the $SWEEP_DEALS reviews within 15 s" "$SWEEP_DEALS" "$made"
sleep 1.5 # time for a duplicate to show up
check "exactly one review per loss" "$SWEEP_DEALS" "$(q "SELECT count(*) $sweep_deals AND (SELECT count(*)
    FROM rejection_reviews v WHERE v.account_id = d.account_id AND v.deal_id = d.id) = 1")"
check "no more reviews than losses" "$SWEEP_DEALS" "$(q "SELECT count(*) FROM rejection_reviews
    WHERE account_id = $account AND deal_id IN (SELECT d.id $sweep_deals)")"
check "each review has exactly one rejection_control task, its own, for the head" "$SWEEP_DEALS" "$(q "SELECT count(*)
    FROM rejection_reviews v JOIN tasks t ON t.account_id = v.account_id AND t.id = v.task_id
    WHERE v.account_id = $account AND v.deal_id IN (SELECT d.id $sweep_deals) AND t.deal_id = v.deal_id
      AND t.type = 'rejection_control' AND t.manager_id = $head AND t.due_at = v.lost_at + interval '24 hours'
      AND (SELECT count(*) FROM tasks x WHERE x.account_id = v.account_id AND x.deal_id = v.deal_id
             AND x.type = 'rejection_control') = 1")"
check "no rejection_control task without a review (whole account)" 0 "$(q "SELECT count(*) FROM tasks t
    WHERE t.account_id = $account AND t.type = 'rejection_control' AND NOT EXISTS (SELECT 1
      FROM rejection_reviews v WHERE v.account_id = t.account_id AND v.task_id = t.id)")"
check "reviews and rejection_control tasks of the account" "$((all + SWEEP_DEALS)) $((all + SWEEP_DEALS))" \
    "$(q "SELECT (SELECT count(*) FROM rejection_reviews WHERE account_id = $account) || ' ' ||
        (SELECT count(*) FROM tasks WHERE account_id = $account AND type = 'rejection_control')")"
check "no loss left due a review" 0 "$(q "SELECT count(*) FROM rejection_losses l WHERE l.account_id = $account
    AND l.qualifies AND l.sampled AND NOT EXISTS (SELECT 1 FROM rejection_reviews v
      WHERE v.account_id = l.account_id AND v.deal_id = l.deal_id AND v.lost_at = l.lost_at)")"
# (the count of "rejection review made by the sweep" log lines is no measure: a loss whose review another
# instance committed meanwhile can still be claimed, logged, and then find the review there)
sweep_lines() { grep -c 'rejection review made by the sweep' "$TMP/serve$1.err" 2>/dev/null || true; }
log "\"rejection review made by the sweep\" lines: instance 1 $(sweep_lines 3), instance 2 $(sweep_lines 4)"
for n in 0 1; do
    check "instance $((n + 1)) still running at the end" 0 "$(alive "${SERVE_PIDS[n]}")"
done
e2e_finish
