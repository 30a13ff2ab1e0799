/* Rejection control's tables: the rule, the judged losses and the reviews, and the stats over them. */
#include <stdlib.h>
#include <string.h>
#include "db_internal.h"

DB_STMT(stmt_rule_get,
        "SELECT enabled, any_reason, loss_reason_ids::text, reviewer_id, due_hours, target_return_share::float8,"
        " sample_share::float8, " EPOCH("enabled_since") ", " EPOCH("updated_at")
        " FROM rejection_rules WHERE account_id = $1");
DB_STMT(stmt_rule_put,
        "INSERT INTO rejection_rules (account_id, enabled, any_reason, loss_reason_ids, reviewer_id, due_hours,"
        " target_return_share, sample_share, enabled_since, updated_at)"
        " VALUES ($1, $2, $3, $4::int8[], $5, $6, $7::numeric, $8::numeric,"
        "  CASE WHEN $2 THEN to_timestamp($9) END, to_timestamp($9))"
        " ON CONFLICT (account_id) DO UPDATE SET enabled = EXCLUDED.enabled, any_reason = EXCLUDED.any_reason,"
        " loss_reason_ids = EXCLUDED.loss_reason_ids, reviewer_id = EXCLUDED.reviewer_id,"
        " due_hours = EXCLUDED.due_hours, target_return_share = EXCLUDED.target_return_share,"
        " sample_share = EXCLUDED.sample_share,"
        " enabled_since = CASE WHEN EXCLUDED.enabled AND NOT rejection_rules.enabled THEN EXCLUDED.updated_at"
        "  ELSE rejection_rules.enabled_since END, updated_at = EXCLUDED.updated_at");
DB_STMT(stmt_judge, "SELECT salesops_rejection_judge($1, $2, to_timestamp($3))");
/* the deals of the import (import_events is its staging table), every move into lost judged once */
DB_STMT(stmt_judge_import,
        "SELECT count(*) FILTER (WHERE salesops_rejection_judge($1, h.deal_id, h.at, h.id) > 0) FROM deal_history h"
        " JOIN deals d ON d.account_id = h.account_id AND d.id = h.deal_id"
        " WHERE h.account_id = $1 AND h.status = 'lost' AND d.external_id IN"
        " (SELECT DISTINCT data ->> 'deal' FROM import_events WHERE data ? 'deal')");
#define LOSS_COLUMNS "deal_id, " EPOCH("lost_at") ", ordinal, lost_by_manager_id, loss_reason_id, from_stage_id"
DB_STMT(stmt_loss_get,
        "SELECT " LOSS_COLUMNS " FROM rejection_losses WHERE account_id = $1 AND deal_id = $2"
        " AND lost_at = to_timestamp($3) AND ordinal = $4");
DB_STMT(stmt_sweep_claim,
        "SELECT account_id, " LOSS_COLUMNS " FROM rejection_losses l WHERE qualifies AND sampled"
        " AND NOT EXISTS (SELECT 1 FROM rejection_reviews v WHERE v.account_id = l.account_id"
        "  AND v.deal_id = l.deal_id AND v.lost_at = l.lost_at AND v.ordinal = l.ordinal)"
        " LIMIT $1 FOR UPDATE SKIP LOCKED");
DB_STMT(stmt_review_insert,
        "INSERT INTO rejection_reviews (account_id, deal_id, lost_at, lost_by_manager_id, loss_reason_id,"
        " from_stage_id, created_at, ordinal) VALUES ($1, $2, to_timestamp($3), $4, $5, $6, to_timestamp($7), $8)"
        " ON CONFLICT (account_id, deal_id, lost_at, ordinal) DO NOTHING RETURNING id");
DB_STMT(stmt_review_set_task, "UPDATE rejection_reviews SET task_id = $3 WHERE account_id = $1 AND id = $2");
#define REVIEW_COLUMNS                                                                                       \
    "v.id, v.deal_id, v.task_id, v.lost_by_manager_id, v.loss_reason_id, v.from_stage_id, " EPOCH(            \
        "v.lost_at") ", v.state, " EPOCH("v.decided_at") ", v.note, v.returned_to_id, v.follow_up_task_id, " \
                     EPOCH("v.created_at")
#define REVIEW_FROM                                                                                          \
    " FROM rejection_reviews v JOIN deals d ON d.account_id = v.account_id AND d.id = v.deal_id"             \
    " AND d.deleted_at IS NULL"
DB_STMT(stmt_review_get, "SELECT " REVIEW_COLUMNS REVIEW_FROM " WHERE v.account_id = $1 AND v.id = $2");
DB_STMT(stmt_review_get_locked,
        "SELECT " REVIEW_COLUMNS REVIEW_FROM " WHERE v.account_id = $1 AND v.id = $2 FOR UPDATE OF v");
/* lost_at in the period [from 00:00, to + 1 00:00) of the account's zone */
#define IN_PERIOD(col, from, to)                                                                             \
    " AND (" from "::date IS NULL OR " col " >= (" from "::date::timestamp AT TIME ZONE"                      \
    " (SELECT timezone FROM accounts WHERE id = v.account_id)))"                                             \
    " AND (" to "::date IS NULL OR " col " < ((" to "::date + 1)::timestamp AT TIME ZONE"                    \
    " (SELECT timezone FROM accounts WHERE id = v.account_id)))"
DB_STMT(stmt_review_list,
        "SELECT " REVIEW_COLUMNS REVIEW_FROM " WHERE v.account_id = $1 AND v.id > $2"
        " AND ($4::text IS NULL OR v.state = $4) AND ($5::int8 IS NULL OR v.lost_by_manager_id = $5)"
        IN_PERIOD("v.lost_at", "$6", "$7") " ORDER BY v.id LIMIT $3");
DB_STMT(stmt_review_decide,
        "UPDATE rejection_reviews SET state = $3, decided_at = to_timestamp($4), note = $5,"
        " returned_to_id = $6, follow_up_task_id = $7 WHERE account_id = $1 AND id = $2 AND state = 'pending'"
        " RETURNING id");
/* The reviews of the period, each with the price at which its deal was won after a return (recovered): the
 * first win after the decision with no loss in between. */
/* The reviews of the period, each with the price at which its deal was won after a return (recovered): the
 * first win after the decision, and after the reviewed move into lost, with no move into lost in between. */
#define STATS_REVIEWS                                                                                        \
    "WITH r AS (SELECT v.lost_by_manager_id, v.state, v.lost_at, v.decided_at, CASE WHEN v.state = "          \
    "'returned' THEN (SELECT h.price FROM salesops_loss_moves(v.account_id, v.deal_id, 'infinity') l0"       \
    " JOIN deal_history h ON h.account_id = v.account_id AND h.deal_id = v.deal_id AND h.status = 'won'"    \
    " AND h.at >= v.decided_at AND (h.at, h.id) > (l0.at, l0.id)"                                          \
    " WHERE l0.at = v.lost_at AND l0.ordinal = v.ordinal AND NOT EXISTS (SELECT 1"                           \
    " FROM salesops_loss_moves(v.account_id, v.deal_id, h.at) l WHERE (l.at, l.id) > (l0.at, l0.id)"        \
    " AND (l.at, l.id) < (h.at, h.id)) ORDER BY h.at, h.id LIMIT 1) END AS won_price"                       \
    REVIEW_FROM " WHERE v.account_id = $1" IN_PERIOD("v.lost_at", "$2", "$3") ")"
DB_STMT(stmt_rejection_stats,
        STATS_REVIEWS
        " SELECT count(*), count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state <> 'pending'),"
        " count(*) FILTER (WHERE state = 'returned'), count(won_price), coalesce(sum(won_price), 0),"
        " round(count(*) FILTER (WHERE state = 'returned')::numeric"
        "  / nullif(count(*) FILTER (WHERE state <> 'pending'), 0), 4)::text,"
        " floor(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - lost_at))"
        "  FILTER (WHERE decided_at IS NOT NULL) + 0.5)::int8::text FROM r");
DB_STMT(stmt_rejection_by_manager,
        STATS_REVIEWS " SELECT lost_by_manager_id, count(*), count(*) FILTER (WHERE state = 'returned'),"
                      " count(won_price) FROM r GROUP BY lost_by_manager_id ORDER BY lost_by_manager_id NULLS LAST");

static void fill_rule(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_rejection_rule *x = item;
    x->enabled = db_bool(r, row, 0);
    x->any_reason = db_bool(r, row, 1);
    x->loss_reason_count = db_parse_id_array(a, PQgetvalue(r, row, 2), &x->loss_reason_ids);
    x->reviewer_id = db_i64(r, row, 3);
    x->due_hours = db_int(r, row, 4);
    x->target_return_share = strtod(PQgetvalue(r, row, 5), NULL);
    x->sample_share = strtod(PQgetvalue(r, row, 6), NULL);
    x->enabled_since = db_i64(r, row, 7);
    x->updated_at = db_i64(r, row, 8);
}

enum db_rc store_rejection_rule_get(struct db *db, struct arena *a, int64_t account_id,
                                    struct so_rejection_rule *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    enum db_rc rc = db_one(db, a, &stmt_rule_get, &p, fill_rule, out);
    if (rc == DB_NONE) {
        *out = (struct so_rejection_rule){.due_hours = 24, .target_return_share = 0.1, .sample_share = 1};
        return DB_OK;
    }
    return rc;
}

enum db_rc store_rejection_rule_put(struct db *db, int64_t account_id, const struct so_rejection_rule *r,
                                    int64_t now)
{
    struct arena a = {0};
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_bool(&p, r->enabled);
    dbp_bool(&p, r->any_reason);
    dbp_str(&p, db_id_array(&a, r->loss_reason_ids, r->loss_reason_count));
    dbp_id(&p, r->reviewer_id);
    dbp_int(&p, r->due_hours);
    dbp_fixed4(&p, r->target_return_share);
    dbp_fixed4(&p, r->sample_share);
    dbp_int(&p, now);
    enum db_rc rc = db_run(db, &stmt_rule_put, &p);
    arena_release(&a);
    return rc;
}

enum db_rc store_rejection_judge(struct db *db, int64_t account_id, int64_t deal_id, int64_t lost_at,
                                 int *ordinal)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_int(&p, lost_at);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_judge, &p, &r);
    if (rc != DB_OK) return rc;
    *ordinal = db_int(r, 0, 0);
    PQclear(r);
    return DB_OK;
}

enum db_rc store_rejection_judge_import(struct db *db, int64_t account_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    return db_run(db, &stmt_judge_import, &p);
}

static void fill_loss_at(const PGresult *r, int row, int col, struct so_loss *l)
{
    l->deal_id = db_i64(r, row, col);
    l->lost_at = db_i64(r, row, col + 1);
    l->ordinal = db_int(r, row, col + 2);
    l->lost_by_manager_id = db_i64(r, row, col + 3);
    l->loss_reason_id = db_i64(r, row, col + 4);
    l->from_stage_id = db_i64(r, row, col + 5);
}

static void fill_loss(struct arena *a, const PGresult *r, int row, void *item)
{
    (void)a;
    fill_loss_at(r, row, 0, item);
}

enum db_rc store_rejection_loss_get(struct db *db, int64_t account_id, int64_t deal_id, int64_t lost_at,
                                    int ordinal, struct so_loss *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_int(&p, lost_at);
    dbp_int(&p, ordinal);
    return db_one(db, NULL, &stmt_loss_get, &p, fill_loss, out);
}

enum db_rc store_rejection_sweep_claim(struct db *db, struct arena *a, int max, int64_t **account_ids,
                                       struct so_loss **losses, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, max);
    PGresult *r;
    *count = 0;
    enum db_rc rc = db_exec(db, &stmt_sweep_claim, &p, &r);
    if (rc == DB_NONE) return DB_OK;
    if (rc != DB_OK) return rc;
    int n = PQntuples(r);
    *account_ids = arena_alloc(a, sizeof **account_ids * (size_t)n);
    *losses = arena_alloc(a, sizeof **losses * (size_t)n);
    if (*account_ids == NULL || *losses == NULL) {
        PQclear(r);
        return DB_ERROR;
    }
    for (int i = 0; i < n; i++) {
        (*account_ids)[i] = db_i64(r, i, 0);
        fill_loss_at(r, i, 1, &(*losses)[i]);
    }
    *count = n;
    PQclear(r);
    return DB_OK;
}

enum db_rc store_review_insert(struct db *db, int64_t account_id, const struct so_loss *loss, int64_t now,
                               int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, loss->deal_id);
    dbp_int(&p, loss->lost_at);
    dbp_id(&p, loss->lost_by_manager_id);
    dbp_id(&p, loss->loss_reason_id);
    dbp_id(&p, loss->from_stage_id);
    dbp_int(&p, now);
    dbp_int(&p, loss->ordinal);
    return db_returning_id(db, &stmt_review_insert, &p, id);
}

enum db_rc store_review_set_task(struct db *db, int64_t account_id, int64_t review_id, int64_t task_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, review_id);
    dbp_int(&p, task_id);
    return db_run(db, &stmt_review_set_task, &p);
}

static void fill_review(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_review *v = item;
    v->id = db_i64(r, row, 0);
    v->deal_id = db_i64(r, row, 1);
    v->task_id = db_i64(r, row, 2);
    v->lost_by_manager_id = db_i64(r, row, 3);
    v->loss_reason_id = db_i64(r, row, 4);
    v->from_stage_id = db_i64(r, row, 5);
    v->lost_at = db_i64(r, row, 6);
    v->state = db_str(a, r, row, 7);
    v->decided_at = db_i64(r, row, 8);
    v->note = db_str(a, r, row, 9);
    v->returned_to_id = db_i64(r, row, 10);
    v->follow_up_task_id = db_i64(r, row, 11);
    v->created_at = db_i64(r, row, 12);
}

enum db_rc store_review_get(struct db *db, struct arena *a, int64_t account_id, int64_t id, bool for_update,
                            struct so_review *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, for_update ? &stmt_review_get_locked : &stmt_review_get, &p, fill_review, out);
}

enum db_rc store_review_list(struct db *db, struct arena *a, int64_t account_id, const struct so_review_filter *f,
                             const struct so_page *page, struct so_review **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_str(&p, f->state);
    dbp_id(&p, f->manager_id);
    dbp_str(&p, f->from_date);
    dbp_str(&p, f->to_date);
    return db_list(db, a, &stmt_review_list, &p, sizeof **items, fill_review, (void **)items, count);
}

enum db_rc store_review_decide(struct db *db, int64_t account_id, const struct so_review *r)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, r->id);
    dbp_str(&p, r->state);
    dbp_int(&p, r->decided_at);
    dbp_str(&p, r->note);
    dbp_id(&p, r->returned_to_id);
    dbp_id(&p, r->follow_up_task_id);
    return db_run(db, &stmt_review_decide, &p);
}

static void fill_manager_stats(struct arena *a, const PGresult *r, int row, void *item)
{
    (void)a;
    struct so_rejection_manager_stats *m = item;
    m->manager_id = db_i64(r, row, 0);
    m->reviewed = db_i64(r, row, 1);
    m->returned = db_i64(r, row, 2);
    m->recovered = db_i64(r, row, 3);
}

enum db_rc store_rejection_stats(struct db *db, struct arena *a, int64_t account_id, const char *from_date,
                                 const char *to_date, struct so_rejection_stats *out,
                                 struct so_rejection_manager_stats **by_manager, int *manager_count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, from_date);
    dbp_str(&p, to_date);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_rejection_stats, &p, &r);
    if (rc != DB_OK) return rc;
    out->reviews = db_i64(r, 0, 0);
    out->pending = db_i64(r, 0, 1);
    out->decided = db_i64(r, 0, 2);
    out->returned = db_i64(r, 0, 3);
    out->recovered = db_i64(r, 0, 4);
    out->recovered_revenue = db_i64(r, 0, 5);
    out->return_share = db_str(a, r, 0, 6);
    out->median_decision_s = db_str(a, r, 0, 7);
    PQclear(r);
    return db_list(db, a, &stmt_rejection_by_manager, &p, sizeof **by_manager, fill_manager_stats,
                   (void **)by_manager, manager_count);
}
