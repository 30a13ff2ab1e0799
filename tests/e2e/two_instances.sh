#!/usr/bin/env bash
# End to end: lead distribution and focus mode with two `salesops serve` processes on one database.
#
#   - 4 rotation managers (weights 1, 1, 2, 3) and 2 managers in focus; 2,000 deals created without a
#     manager by 16 concurrent keep-alive clients, half against each instance: every reply is 201 with
#     distribution.assigned true; every deal has exactly one new_deal assignment row naming its manager;
#     no deal went to a manager in focus; the shares are exactly 1:1:2:3 (within 1 lead: the weighted
#     round robin's cursor is shared by the instances);
#   - both focus sessions time out (ends_by moved to now + 2 s in the database, no requests): the schedulers
#     end each exactly once (ended_at, end_reason timeout, one "focus session ended" log line per session
#     across both instances); then the two managers get leads again.
#
# Usage: tests/e2e/two_instances.sh BINARY    (prints "N passed, M failed"; exit 1 on any failure)
# KEEP_TMP=1 keeps the temporary directory (server logs, load results) for a look afterwards.
set -euo pipefail
# shellcheck source=tests/e2e/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
e2e_init "$1" salesops-two

LEADS=2000
CLIENTS=16
LATE_LEADS=14
ROTATION_WEIGHTS=(1 1 2 3)
FOCUS_MANAGERS=2
FOCUS_DEALS=3 # open deals of each focus manager (his focus queue)

# ------------------------------------------------------------------------------- database and servers
e2e_database e2e
mapfile -t acct < <("$BIN" account create --name "E2E two instances" | account_fields)
account=${acct[0]} key=${acct[1]}

# instances 0 and 1 (logs in $TMP/serve0.err and serve1.err); `api 0 ...` asks instance 0
SERVE_ENV=(SALESOPS_THREADS=4 SALESOPS_MIGRATE_ON_START=false)
for n in 0 1; do
    start_serve "$n"
done
for n in 0 1; do
    check "instance $((n + 1)) answers /healthz" 200 "$(wait_healthy "$n")"
done

# ------------------------------------------------------------------------------------------------ set-up
check "pipeline created" 201 "$(api 0 POST /api/v1/pipelines '{"name":"E2E leads","stages":[
    {"name":"New","kind":"open"},{"name":"In work","kind":"open"},{"name":"Won","kind":"won"},
    {"name":"Lost","kind":"lost"}]}')"
pipeline=$(num "$(jq_body 'b["id"]')")
open_stages=$(jq_body '[s["id"] for s in sorted(b["stages"], key=lambda s: s["position"]) if s["kind"] == "open"]')

rotation=() focus=()
for i in "${!ROTATION_WEIGHTS[@]}"; do
    w=${ROTATION_WEIGHTS[i]}
    check "rotation manager $((i + 1)) (weight $w) created" 201 "$(api $((i % 2)) POST /api/v1/managers \
        "{\"name\":\"Rotation $((i + 1))\",\"role\":\"manager\",\"weight\":$w}")"
    rotation+=("$(num "$(jq_body 'b["id"]')")")
done
for i in $(seq 1 "$FOCUS_MANAGERS"); do
    check "focus manager $i created" 201 "$(api $((i % 2)) POST /api/v1/managers \
        "{\"name\":\"Focus $i\",\"role\":\"manager\",\"weight\":1}")"
    focus+=("$(num "$(jq_body 'b["id"]')")")
done

sessions=()
for i in "${!focus[@]}"; do
    m=${focus[i]}
    made=0 nodist=0
    for d in $(seq 1 "$FOCUS_DEALS"); do
        if [ "$(api 0 POST /api/v1/deals "{\"name\":\"Focus $m deal $d\",\"price\":$((d * 1000)),
                \"pipeline_id\":$pipeline,\"manager_id\":$m}")" = 201 ]; then
            made=$((made + 1))
            [ "$(jq_body '"distribution" in b')" != false ] || nodist=$((nodist + 1))
        fi
    done
    check "focus manager $m: $FOCUS_DEALS deals of his own created" "$FOCUS_DEALS" "$made"
    check "focus manager $m: deals created with manager_id carry no distribution field" "$FOCUS_DEALS" "$nodist"
    check "focus manager $m: focus filter saved" 200 "$(api 1 PUT "/api/v1/managers/$m/focus-filter" \
        "{\"pipeline_id\":$pipeline,\"stage_ids\":$open_stages,\"max_minutes\":120}")"
    check "focus manager $m: focus started" 201 "$(api $((i % 2)) POST "/api/v1/managers/$m/focus")"
    sessions+=("$(num "$(jq_body 'b["id"]')")")
    check "focus manager $m: his queue has his $FOCUS_DEALS deals" "$FOCUS_DEALS" "$(jq_body 'b["total"]')"
done

# every rotation manager eligible, both focus managers not (in_focus), as the two instances see it
ours=$(IFS=,; printf '[%s]' "${rotation[*]},${focus[*]}")
for n in 0 1; do
    check "instance $((n + 1)): GET /distribution" 200 "$(api "$n" GET /api/v1/distribution)"
    check "instance $((n + 1)): rotation managers eligible, focus managers in focus" \
        "$(for m in "${rotation[@]}"; do printf '%s:True:None ' "$m"; done
           for m in "${focus[@]}"; do printf '%s:False:in_focus ' "$m"; done)" \
        "$(jq_body "''.join('%s:%s:%s ' % (x['manager_id'], x['eligible'], x['reason'])
                            for x in b['managers'] if x['manager_id'] in $ours)")"
done

# ---------------------------------------------------------------------------------------------- the load
# load PREFIX COUNT CLIENTS OUTFILE: COUNT deals "PREFIX <i>" created without a manager by CLIENTS threads,
# each on one keep-alive connection, even-numbered threads against instance 1, odd against instance 2, all
# starting together. OUTFILE gets one line per request: i instance status deal_id manager_id assigned reason.
# A summary goes to stderr.
load() {
    python3 - "$1" "$2" "$3" "$4" "$key" "$pipeline" "${base[0]#http://}" "${base[1]#http://}" <<'PY'
import http.client, json, sys, threading, time
prefix, count, clients, out, key, pipeline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
    sys.argv[5], int(sys.argv[6])
hosts = sys.argv[7:9]
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json", "Accept": "application/json"}
barrier = threading.Barrier(clients)
results, errors, lock = [], [], threading.Lock()

def connect(inst):
    host, port = hosts[inst].rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=60)

def worker(c):
    inst = c % 2
    conn = connect(inst)
    mine = []
    barrier.wait()
    for i in range(c, count, clients):
        body = json.dumps({"name": f"{prefix} {i}", "price": 1000 + i, "pipeline_id": pipeline})
        row = [i, inst + 1, "exc", "-", "-", "-", "-"]
        try:
            conn.request("POST", "/api/v1/deals", body, headers)
            r = conn.getresponse()
            data = r.read()
            row[2] = r.status
            if r.will_close:
                conn.close()
                conn = connect(inst)
            obj = json.loads(data)
            if r.status == 201:
                dist = obj.get("distribution") or {}
                row[3:7] = [obj.get("id"), obj.get("manager_id"), dist.get("assigned"), dist.get("reason")]
            else:
                with lock:
                    errors.append(f"{prefix} {i} -> instance {inst + 1}: {r.status} {data[:300]!r}")
        except Exception as e:  # noqa: BLE001 - any failure is a failed request, reported below
            with lock:
                errors.append(f"{prefix} {i} -> instance {inst + 1}: {e!r}")
            conn.close()
            conn = connect(inst)
        mine.append(row)
    conn.close()
    with lock:
        results.extend(mine)

t0 = time.monotonic()
threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - t0
with open(out, "w") as f:
    for row in sorted(results):
        f.write(" ".join("null" if v is None else str(v) for v in row) + "\n")
ok = sum(1 for r in results if r[2] == 201 and r[5] is True)
print(f"load {prefix!r}: {len(results)} requests by {clients} clients in {elapsed:.2f} s "
      f"({len(results) / max(elapsed, 1e-9):.0f}/s), {ok} answered 201 and assigned", file=sys.stderr)
for e in errors[:10]:
    print("  " + e, file=sys.stderr)
PY
}

load "e2e lead" "$LEADS" "$CLIENTS" "$TMP/leads.txt"
check "all $LEADS requests answered" "$LEADS" "$(wc -l <"$TMP/leads.txt")"
check "every reply 201" "$LEADS" "$(awk '$3 == 201' "$TMP/leads.txt" | wc -l)"
check "every reply distribution.assigned true" "$LEADS" "$(awk '$6 == "True"' "$TMP/leads.txt" | wc -l)"
check "half the requests went to each instance" "$((LEADS / 2)) $((LEADS / 2))" \
    "$(awk '$2 == 1' "$TMP/leads.txt" | wc -l) $(awk '$2 == 2' "$TMP/leads.txt" | wc -l)"
for n in 0 1; do
    check "instance $((n + 1)) still running after the load" 0 "$(alive "${SERVE_PIDS[n]}")"
done

# ------------------------------------------------------------------------------------- database checks
lead_deals="FROM deals d WHERE d.account_id = $account AND d.name LIKE 'e2e lead %' AND d.deleted_at IS NULL"
check "the database has the $LEADS deals" "$LEADS" "$(q "SELECT count(*) $lead_deals")"
check "every deal has exactly one new_deal assignment row" "$LEADS" "$(q "SELECT count(*) $lead_deals AND
    (SELECT count(*) FROM assignments a WHERE a.account_id = d.account_id AND a.deal_id = d.id
       AND a.reason = 'new_deal') = 1")"
check "no other assignment rows for these deals" "$LEADS" "$(q "SELECT count(*) FROM assignments a
    WHERE a.account_id = $account AND a.deal_id IN (SELECT d.id $lead_deals)")"
check "the assignments are of kind lead" 0 "$(q "SELECT count(*) FROM assignments a
    WHERE a.account_id = $account AND a.deal_id IN (SELECT d.id $lead_deals) AND a.kind <> 'lead'")"
check "each assignment names the deal's manager" 0 "$(q "SELECT count(*) $lead_deals AND EXISTS (
    SELECT 1 FROM assignments a WHERE a.account_id = d.account_id AND a.deal_id = d.id
       AND a.manager_id IS DISTINCT FROM d.manager_id)")"
# the replies' deal id and manager against the database
awk '$3 == 201 { print $4 "," $5 }' "$TMP/leads.txt" >"$TMP/replies.csv"
check "each reply's manager_id is the deal's stored manager" 0 "$(pg_psql e2e -tA <<SQL
CREATE TEMP TABLE replies (deal_id int8, manager_id int8);
\\copy replies FROM '$TMP/replies.csv' WITH (FORMAT csv, NULL 'null')
SELECT count(*) FROM replies r LEFT JOIN deals d ON d.account_id = $account AND d.id = r.deal_id
WHERE d.id IS NULL OR d.manager_id IS DISTINCT FROM r.manager_id;
SQL
)"
focus_list=$(IFS=,; printf '%s' "${focus[*]}")
check "no deal went to a manager in focus" 0 "$(q "SELECT count(*) $lead_deals AND d.manager_id IN ($focus_list)")"
check "no deal is left without a manager" 0 "$(q "SELECT count(*) $lead_deals AND d.manager_id IS NULL")"

# shares: manager i gets LEADS * w_i / sum(w), give or take one lead
sum_w=0
for w in "${ROTATION_WEIGHTS[@]}"; do sum_w=$((sum_w + w)); done
counts=$(q "SELECT d.manager_id || '=' || count(*) $lead_deals GROUP BY d.manager_id ORDER BY d.manager_id")
log "leads per manager: $(printf '%s' "$counts" | tr '\n' ' ')"
for i in "${!rotation[@]}"; do
    m=${rotation[i]} w=${ROTATION_WEIGHTS[i]}
    got=$(printf '%s\n' "$counts" | sed -n "s/^$m=//p")
    got=${got:-0}
    # |got - LEADS*w/sum_w| <= 1  <=>  |got*sum_w - LEADS*w| <= sum_w
    diff=$((got * sum_w - LEADS * w))
    within=no
    [ "${diff#-}" -gt "$sum_w" ] || within=yes
    check "rotation manager $m (weight $w): $got leads, within 1 of $LEADS*$w/$sum_w" yes "$within"
done

# the REST listing of the assignments agrees with the table (paged, 500 a page, both instances)
rest=$(python3 - "${base[0]}" "${base[1]}" "$key" "$TMP/rest.csv" <<'PY'
import json, sys, urllib.error, urllib.request
bases, key, csv = sys.argv[1:3], sys.argv[3], sys.argv[4]
items, cursor, page = [], None, 0
while True:
    url = f"{bases[page % 2]}/api/v1/distribution/assignments?kind=lead&limit=500"
    if cursor:
        url += "&cursor=" + cursor
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + key})
    try:
        body = json.load(urllib.request.urlopen(req, timeout=30))
    except urllib.error.HTTPError as e:
        sys.exit(print(f"GET {url}: {e.code} {e.read()[:200]!r}"))
    items += body["items"]
    cursor, page = body.get("next_cursor"), page + 1
    if not cursor or page > 100:
        break
ids = [i["id"] for i in items]
print(len(items), sum(1 for i in items if i["reason"] == "new_deal"), int(ids == sorted(set(ids))))
with open(csv, "w") as f:
    for i in items:
        f.write(f"{i['deal_id']},{i['manager_id']}\n")
PY
) || true
check "GET /distribution/assignments?kind=lead: count, new_deal count, ids ascending and unique" \
    "$LEADS $LEADS 1" "$rest"
check "GET /distribution/assignments agrees with the deals' managers" 0 "$(pg_psql e2e -tA <<SQL
CREATE TEMP TABLE listed (deal_id int8, manager_id int8);
\\copy listed FROM '$TMP/rest.csv' WITH (FORMAT csv)
SELECT count(*) FROM listed l LEFT JOIN deals d ON d.account_id = $account AND d.id = l.deal_id
WHERE d.id IS NULL OR d.manager_id IS DISTINCT FROM l.manager_id;
SQL
)"

# --------------------------------------------------------------------------------- focus sessions time out
session_list=$(IFS=,; printf '%s' "${sessions[*]}")
check "both focus sessions active in the database" 2 "$(q "SELECT count(*) FROM focus_sessions
    WHERE account_id = $account AND id IN ($session_list) AND ended_at IS NULL")"
check "ends_by moved to now + 2 s" 2 "$(q "WITH u AS (UPDATE focus_sessions
    SET ends_by = now() + interval '2 seconds' WHERE ended_at IS NULL RETURNING 1) SELECT count(*) FROM u")"
ended=0 waited=0
for waited in $(seq 1 24); do # up to 6 s, database only: no HTTP request may wake anything up
    sleep 0.25
    ended=$(q "SELECT count(*) FROM focus_sessions WHERE account_id = $account AND id IN ($session_list)
        AND ended_at IS NOT NULL")
    [ "$ended" != 2 ] || break
done
log "focus sessions ended: $ended after $((waited * 250)) ms (ends_by was 2000 ms ahead)"
check "both sessions ended within 6 s without requests" 2 "$ended"
check "both ended by timeout" "timeout timeout" "$(q "SELECT string_agg(coalesce(end_reason::text, 'null'), ' '
    ORDER BY id) FROM focus_sessions WHERE account_id = $account AND id IN ($session_list)")"
check "ended after ends_by" 2 "$(q "SELECT count(*) FROM focus_sessions
    WHERE account_id = $account AND id IN ($session_list) AND ended_at >= ends_by")"

# one "focus session ended" log line per session across both instances (give a late duplicate a second)
sleep 1
ended_lines() {
    cat "$TMP/serve0.err" "$TMP/serve1.err" | python3 -c 'import json, sys
for line in sys.stdin:
    if "focus session ended" not in line:
        continue
    try:
        o = json.loads(line)
        print(o.get("session"), o.get("account"), o.get("reason"))
    except ValueError:
        print("unparsable:", line.strip()[:200])' | sort
}
check "\"focus session ended\" logged once per session, reason timeout" \
    "$(for s in "${sessions[@]}"; do echo "$s $account timeout"; done | sort)" "$(ended_lines)"

# the two managers are back in the rotation
load "e2e late lead" "$LATE_LEADS" 2 "$TMP/late.txt"
check "late leads: every reply 201 and assigned" "$LATE_LEADS" \
    "$(awk '$3 == 201 && $6 == "True"' "$TMP/late.txt" | wc -l)"
for m in "${focus[@]}"; do
    got=$(awk -v m="$m" '$3 == 201 && $5 == m' "$TMP/late.txt" | wc -l)
    check "manager $m out of focus gets leads again ($got of $LATE_LEADS)" yes "$([ "$got" -ge 1 ] && echo yes || echo no)"
done
check "late leads: one new_deal assignment each" "$LATE_LEADS" "$(q "SELECT count(*) FROM deals d
    WHERE d.account_id = $account AND d.name LIKE 'e2e late lead %' AND (SELECT count(*) FROM assignments a
      WHERE a.account_id = d.account_id AND a.deal_id = d.id AND a.reason = 'new_deal'
        AND a.manager_id = d.manager_id) = 1")"

for n in 0 1; do
    check "instance $((n + 1)) still running at the end" 0 "$(alive "${SERVE_PIDS[n]}")"
done
e2e_finish
