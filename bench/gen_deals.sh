#!/usr/bin/env bash
# Generates the benchmark data set: one account with one pipeline, a few managers and loss reasons made the
# way a user would make them (the CLI and the REST API), then N deals with their creation history rows (and
# creation changes, where the schema has deal_changes) in one set-based SQL statement, then VACUUM (ANALYZE).
#
#   bench/gen_deals.sh --bin SALESOPS --url http://127.0.0.1:PORT [--deals N] [--managers N]
#
# Needs DATABASE_URL (the database the running service at --url uses) and psql (PSQL overrides the program).
# Prints what the benchmark needs as shell assignments on stdout:
#   ACCOUNT_ID=.. API_KEY=.. WEBHOOK_TOKEN=.. PIPELINE_ID=.. MANAGER_IDS=1,2,.. MIN_ID=.. MAX_ID=.. DEALS=..
# The deals of the account have the ids MIN_ID..MAX_ID without gaps (checked).
set -euo pipefail

BIN=""
URL=""
DEALS=100000
MANAGERS=5

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

while [ $# -gt 0 ]; do
    case $1 in
        --bin) BIN=$2; shift ;;
        --url) URL=$2; shift ;;
        --deals) DEALS=$2; shift ;;
        --managers) MANAGERS=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'gen_deals: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

say() {
    printf '[%s] gen_deals: %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

{ [ -n "$BIN" ] && [ -x "$BIN" ]; } || { say "--bin must name the salesops binary"; exit 2; }
[ -n "$URL" ] || { say "--url is required"; exit 2; }
[ -n "${DATABASE_URL:-}" ] || { say "DATABASE_URL is not set"; exit 2; }
[[ $DEALS =~ ^[1-9][0-9]*$ ]] || { say "--deals must be a positive number"; exit 2; }
[[ $MANAGERS =~ ^[1-9][0-9]*$ ]] || { say "--managers must be a positive number"; exit 2; }
PSQL=${PSQL:-psql}

# json_field FIELD: prints .FIELD of the JSON object on stdin (python3: jq is not needed).
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# api METHOD PATH BODY: the response body; fails on any status but 200/201.
api() {
    local out status
    out=$(curl -sS -X "$1" -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
        --data-binary "$3" -w '\n%{http_code}' "$URL$2") || return 1
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$status" != 200 ] && [ "$status" != 201 ]; then
        say "$1 $2 answered $status: $out"
        return 1
    fi
    printf '%s\n' "$out"
}

say "creating the account"
created=$("$BIN" account create --name Bench --timezone Europe/Moscow)
ACCOUNT_ID=$(printf '%s' "$created" | json_field account_id)
API_KEY=$(printf '%s' "$created" | json_field api_key)
WEBHOOK_TOKEN=$(printf '%s' "$created" | json_field webhook_token)

say "creating the pipeline, $MANAGERS managers and 2 loss reasons through the API"
pipeline=$(api POST /api/v1/pipelines '{"name":"Bench sales","external_id":"bench","stages":[
    {"name":"Неразобранное","kind":"open"},{"name":"Взят в работу","kind":"open"},
    {"name":"Квалификация","kind":"open"},{"name":"Выслано КП","kind":"open"},{"name":"Дожим","kind":"open"},
    {"name":"Успешно","kind":"won"},{"name":"Закрыто и не реализовано","kind":"lost"}]}')
# open stage ids as a PostgreSQL array literal, then the won and the lost stage
read -r PIPELINE_ID OPEN_STAGES WON_STAGE LOST_STAGE < <(printf '%s' "$pipeline" | python3 -c '
import json, sys
p = json.load(sys.stdin)
ids = {"open": [], "won": [], "lost": []}
for s in sorted(p["stages"], key=lambda s: s["position"]):
    ids[s["kind"]].append(s["id"])
print(p["id"], "{" + ",".join(map(str, ids["open"])) + "}", ids["won"][0], ids["lost"][0])
')

manager_ids=()
for i in $(seq 1 "$MANAGERS"); do
    m=$(api POST /api/v1/managers "{\"name\":\"Bench manager $i\",\"email\":\"manager$i@bench.example\",
        \"role\":\"manager\",\"external_id\":\"bench-m$i\"}")
    manager_ids+=("$(printf '%s' "$m" | json_field id)")
done
MANAGER_IDS="{$(IFS=,; printf '%s' "${manager_ids[*]}")}"

reason_ids=()
for name in "Дорого" "Выбрал конкурента"; do
    r=$(api POST /api/v1/loss-reasons "{\"name\":\"$name\"}")
    reason_ids+=("$(printf '%s' "$r" | json_field id)")
done
REASON_IDS="{$(IFS=,; printf '%s' "${reason_ids[*]}")}"

say "inserting $DEALS deals and their creation history rows"
# One statement: the deals (80% open spread over the open stages, 12% won, 8% lost with a reason; created
# over the last year; each with an external id and a manager), and for each deal the history row of its
# creation (the deals are created directly in their current stage and status, as an import would). Where
# the schema has the deal_changes log (deal_history derived from it), each deal's creation change goes
# there too, in the same statement.
"$PSQL" -X -q -v ON_ERROR_STOP=1 -v account="$ACCOUNT_ID" -v pipeline="$PIPELINE_ID" \
    -v open_stages="$OPEN_STAGES" -v won_stage="$WON_STAGE" -v lost_stage="$LOST_STAGE" \
    -v managers="$MANAGER_IDS" -v reasons="$REASON_IDS" -v deals="$DEALS" "$DATABASE_URL" <<'SQL'
SELECT to_regclass('deal_changes') IS NOT NULL AS has_changes \gset
WITH params AS (
    SELECT :'open_stages'::int8[] AS open_stages, :'managers'::int8[] AS managers,
           :'reasons'::int8[] AS reasons, now() AS t0
), src AS (
    SELECT g,
           CASE WHEN g % 100 < 80 THEN 'open' WHEN g % 100 < 92 THEN 'won' ELSE 'lost' END AS status,
           p.t0 - make_interval(days => g % 365, secs => (g::int8 * 7919) % 86400) AS created_at,
           p.*
    FROM generate_series(1, :deals) AS g, params AS p
), ins AS (
    INSERT INTO deals (account_id, external_id, name, price, pipeline_id, stage_id, status, manager_id,
                       creator_manager_id, loss_reason_id, created_at, closed_at, updated_at)
    SELECT :account, 'bench-' || g, 'Bench deal ' || g || ': 40 chairs for the new office',
           (g::int8 * 104729) % 5000000, :pipeline,
           CASE status WHEN 'open' THEN open_stages[1 + g % cardinality(open_stages)]
                       WHEN 'won' THEN :won_stage ELSE :lost_stage END,
           status, managers[1 + g % cardinality(managers)], NULL,
           CASE WHEN status = 'lost' THEN reasons[1 + g % cardinality(reasons)] END,
           created_at,
           CASE WHEN status <> 'open' THEN created_at + interval '3 days' END,
           CASE WHEN status <> 'open' THEN created_at + interval '3 days' ELSE created_at END
    FROM src
    ORDER BY g
    RETURNING account_id, id, name, stage_id, status, created_at, manager_id, loss_reason_id, price
)
\if :has_changes
, changes AS (
    INSERT INTO deal_changes (account_id, deal_id, at, creation, stage_id, loss_reason_id, set_manager,
                              manager_id, price, name)
    SELECT account_id, id, created_at, true, stage_id, loss_reason_id, true, manager_id, price, name FROM ins
)
\endif
INSERT INTO deal_history (account_id, deal_id, from_stage_id, to_stage_id, status, at, manager_id,
                          loss_reason_id, price)
SELECT account_id, id, NULL, stage_id, status, created_at, manager_id, loss_reason_id, price FROM ins;
SQL

say "VACUUM (ANALYZE)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<'SQL'
SELECT to_regclass('deal_changes') IS NOT NULL AS has_changes \gset
VACUUM (ANALYZE) deals;
VACUUM (ANALYZE) deal_history;
\if :has_changes
VACUUM (ANALYZE) deal_changes;
\endif
SQL

read -r MIN_ID MAX_ID COUNT HISTORY CHANGES < <("$PSQL" -X -qAt -F ' ' -v ON_ERROR_STOP=1 "$DATABASE_URL" <<SQL
SELECT CASE WHEN to_regclass('deal_changes') IS NULL THEN 'SELECT -1'
            ELSE 'SELECT count(*) FROM deal_changes WHERE account_id = $ACCOUNT_ID' END AS changes_sql \gset
SELECT min(id), max(id), count(*), (SELECT count(*) FROM deal_history WHERE account_id = $ACCOUNT_ID),
       (:changes_sql)
FROM deals WHERE account_id = $ACCOUNT_ID;
SQL
)
if [ "$COUNT" != "$DEALS" ] || [ $((MAX_ID - MIN_ID + 1)) != "$DEALS" ] || [ "$HISTORY" != "$DEALS" ] \
        || { [ "$CHANGES" != -1 ] && [ "$CHANGES" != "$DEALS" ]; }; then
    say "unexpected data: $COUNT deals with ids $MIN_ID..$MAX_ID, $HISTORY history rows, $CHANGES changes"
    exit 1
fi
say "account $ACCOUNT_ID: $COUNT deals, ids $MIN_ID..$MAX_ID, $HISTORY history rows$([ "$CHANGES" = -1 ] \
    || echo ", $CHANGES creation changes")"

printf 'ACCOUNT_ID=%s\nAPI_KEY=%s\nWEBHOOK_TOKEN=%s\nPIPELINE_ID=%s\nMANAGER_IDS=%s\nMIN_ID=%s\nMAX_ID=%s\nDEALS=%s\n' \
    "$ACCOUNT_ID" "$API_KEY" "$WEBHOOK_TOKEN" "$PIPELINE_ID" "$(IFS=,; printf '%s' "${manager_ids[*]}")" "$MIN_ID" \
    "$MAX_ID" "$COUNT"
