/* Rejection control: every move into lost is judged once by the rule then in force; each loss that qualifies
 * (and is sampled in) gets a review, which is also a rejection_control task for the reviewer; the head of
 * sales confirms the loss or returns the deal to a manager with advice. */
#include <string.h>
#include "internal.h"
#include "salesops/log.h"
#include "salesops/timeutil.h"

#define HOUR_S          3600
#define FOLLOW_UP_DUE_S (24 * HOUR_S)

/* A task of the account for a deal, with its history and its write-back to amoCRM. */
static enum so_err add_task(struct db *db, struct arena *a, int64_t account_id, struct so_task *t,
                            struct so_error *err)
{
    enum db_rc rc = store_task_insert(db, account_id, t, &t->id);
    if (rc == DB_OK)
        rc = store_task_history_insert(db, account_id, t->id, t->created_at, true, true, t->manager_id, t->due_at);
    if (rc != DB_OK) return domain_db_error(rc, err);
    return domain_outbox_task_add(db, a, account_id, t, err);
}

/* The review of a judged loss, and its task for the reviewer (nothing when the review exists already). */
static enum so_err create_review(struct db *db, struct arena *a, int64_t account_id, const struct so_loss *loss,
                                 int64_t now, bool *made, struct so_error *err)
{
    *made = false;
    struct so_rejection_rule rule;
    enum db_rc rc = store_rejection_rule_get(db, a, account_id, &rule);
    int64_t id;
    if (rc == DB_OK) rc = store_review_insert(db, account_id, loss, now, &id);
    if (rc == DB_NONE) return SO_OK;
    struct so_deal deal;
    if (rc == DB_OK) rc = store_deal_get_any(db, a, account_id, loss->deal_id, &deal);
    if (rc != DB_OK) return domain_db_error(rc, err);
    struct so_task t = {.deal_id = loss->deal_id,
                        .manager_id = rule.reviewer_id,
                        .type = "rejection_control",
                        .text = arena_printf(a, "Контроль отказа: проверить сделку «%s»", deal.name),
                        .due_at = loss->lost_at + (int64_t)rule.due_hours * HOUR_S,
                        .created_at = now};
    if (t.text == NULL) return so_fail(err, ERR_INTERNAL, "out of memory");
    enum so_err e = add_task(db, a, account_id, &t, err);
    if (e != SO_OK) return e;
    rc = store_review_set_task(db, account_id, id, t.id);
    *made = rc == DB_OK;
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_rejection_after_loss(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                        int64_t lost_at, int64_t now, struct so_error *err)
{
    int ordinal;
    enum db_rc rc = store_rejection_judge(db, account_id, deal_id, lost_at, &ordinal);
    if (rc != DB_OK) return domain_db_error(rc, err);
    if (ordinal == 0) return SO_OK;
    struct so_loss loss;
    if ((rc = store_rejection_loss_get(db, account_id, deal_id, lost_at, ordinal, &loss)) != DB_OK)
        return domain_db_error(rc, err);
    bool made;
    return create_review(db, a, account_id, &loss, now, &made, err);
}

struct sweep_ctx {
    struct arena *a;
    int found;
    struct so_error err;
};

static enum db_rc sweep_tx(struct db *db, void *p)
{
    struct sweep_ctx *c = p;
    so_error_clear(&c->err);
    int64_t *accounts;
    struct so_loss *losses;
    enum db_rc rc = store_rejection_sweep_claim(db, c->a, 1, &accounts, &losses, &c->found);
    if (rc != DB_OK || c->found == 0) return rc;
    bool made;
    enum so_err e = create_review(db, c->a, accounts[0], &losses[0], so_now(), &made, &c->err);
    if (e == SO_OK && made)
        log_event_steal(LOG_INFO, "rejection review made by the sweep",
                        json_pack("{s:I, s:I}", "account", (json_int_t)accounts[0], "deal",
                                  (json_int_t)losses[0].deal_id));
    return domain_tx_outcome(e, &c->err);
}

int domain_rejection_sweep(struct db *db, struct arena *a, int max)
{
    int done = 0;
    for (int i = 0; i < max; i++) {
        struct sweep_ctx c = {.a = a};
        enum db_rc rc = db_tx(db, sweep_tx, &c);
        so_error_clear(&c.err);
        if (rc != DB_OK || c.found == 0) break;
        done++;
    }
    return done;
}

enum so_err domain_rejection_rule_put(struct db *db, struct arena *a, int64_t account_id,
                                      const struct so_rejection_rule *r, int64_t now, struct so_error *err)
{
    enum so_err e = SO_OK;
    enum db_rc rc;
    if (r->reviewer_id != 0) {
        struct so_manager m;
        rc = store_manager_get(db, a, account_id, r->reviewer_id, &m);
        if (rc == DB_NONE)
            e = so_field_error(err, "reviewer_id", "no manager %lld in this account", (long long)r->reviewer_id);
        else if (rc != DB_OK)
            return domain_db_error(rc, err);
        else if (strcmp(m.role, "head") != 0)
            e = so_field_error(err, "reviewer_id", "the reviewer must be a head of sales (manager %lld is %s)",
                               (long long)r->reviewer_id, m.role);
    } else if (r->enabled) {
        e = so_field_error(err, "reviewer_id", "rejection control needs a reviewer who is a head of sales");
    }
    for (int i = 0; i < r->loss_reason_count; i++) {
        struct so_loss_reason lr;
        rc = store_loss_reason_get(db, a, account_id, r->loss_reason_ids[i], &lr);
        if (rc == DB_NONE)
            e = so_field_error(err, "loss_reason_ids", "no loss reason %lld in this account",
                               (long long)r->loss_reason_ids[i]);
        else if (rc != DB_OK)
            return domain_db_error(rc, err);
    }
    if (e != SO_OK) return e;
    rc = store_rejection_rule_put(db, account_id, r, now);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

/* ---- decisions ---- */

struct decide_ctx {
    struct arena *a;
    const struct so_auth *auth;
    int64_t review_id;
    const struct review_decision *in;
    int64_t now;
    struct so_review *out;
    struct so_error *err;
};

/* The open stage a returned deal goes to: the given one (an open stage of its pipeline), else the stage it was
 * lost from, else its pipeline's first open stage. */
static enum so_err return_stage(struct db *db, struct decide_ctx *c, const struct so_deal *d, int64_t lost_from,
                                int64_t *stage_id)
{
    struct so_stage s;
    enum db_rc rc;
    if (c->in->stage_id != 0) {
        rc = store_stage_get(db, c->a, c->auth->account_id, c->in->stage_id, &s);
        if (rc == DB_NONE || (rc == DB_OK && (s.pipeline_id != d->pipeline_id || s.kind != STAGE_OPEN)))
            return so_field_error(c->err, "stage_id", "stage %lld is not an open stage of the deal's pipeline",
                                  (long long)c->in->stage_id);
        if (rc != DB_OK) return domain_db_error(rc, c->err);
        *stage_id = s.id;
        return SO_OK;
    }
    rc = lost_from ? store_stage_get(db, c->a, c->auth->account_id, lost_from, &s) : DB_NONE;
    if (rc == DB_OK && s.pipeline_id == d->pipeline_id && s.kind == STAGE_OPEN) {
        *stage_id = s.id;
        return SO_OK;
    }
    if (rc != DB_OK && rc != DB_NONE) return domain_db_error(rc, c->err);
    rc = store_stage_first(db, c->a, c->auth->account_id, d->pipeline_id, STAGE_OPEN, &s);
    if (rc == DB_NONE) return so_fail(c->err, ERR_CONFLICT, "the deal's pipeline has no open stage");
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    *stage_id = s.id;
    return SO_OK;
}

/* return: reopen the deal for the manager, the note on the deal, a follow-up task for him. */
static enum so_err run_return(struct db *db, struct decide_ctx *c, struct so_review *v, int64_t reviewer)
{
    int64_t account_id = c->auth->account_id;
    struct so_deal d;
    enum db_rc rc = store_deal_get(db, c->a, account_id, v->deal_id, true, &d);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    if (d.status != DEAL_LOST)
        return so_fail(c->err, ERR_DEAL_NOT_LOST, "deal %lld is %s now: only a lost deal can be returned",
                       (long long)d.id, so_deal_status_name(d.status));
    int64_t manager_id = c->in->manager_id ? c->in->manager_id : v->lost_by_manager_id;
    struct so_manager m;
    if (c->in->manager_id != 0 && (rc = store_manager_get(db, c->a, account_id, c->in->manager_id, &m)) != DB_OK)
        return rc == DB_NONE ? so_field_error(c->err, "manager_id", "no manager %lld in this account",
                                              (long long)c->in->manager_id)
                             : domain_db_error(rc, c->err);
    int64_t stage_id = 0;
    enum so_err e = return_stage(db, c, &d, v->from_stage_id, &stage_id);
    if (e != SO_OK) return e;
    struct deal_change chg = {.deal_id = d.id,
                              .at = c->now,
                              .set_stage = true,
                              .stage_id = stage_id,
                              .set_manager = manager_id != 0,
                              .manager_id = manager_id};
    struct so_deal after;
    if ((e = domain_deal_apply(db, c->a, account_id, &chg, &after, c->err)) != SO_OK ||
        (e = domain_outbox_deal(db, c->a, account_id, &d, &after, c->err)) != SO_OK)
        return e;
    struct so_note n = {.deal_id = d.id, .text = c->in->note, .manager_id = reviewer, .created_at = c->now};
    if ((rc = store_note_insert(db, account_id, &n, &n.id)) != DB_OK) return domain_db_error(rc, c->err);
    if ((e = domain_outbox_note_add(db, c->a, account_id, &n, c->err)) != SO_OK) return e;
    struct so_task t = {.deal_id = d.id,
                        .manager_id = after.manager_id,
                        .type = "follow_up",
                        .text = c->in->note,
                        .due_at = c->in->follow_up_due_at ? c->in->follow_up_due_at : c->now + FOLLOW_UP_DUE_S,
                        .created_at = c->now};
    if ((e = add_task(db, c->a, account_id, &t, c->err)) != SO_OK) return e;
    v->returned_to_id = after.manager_id;
    v->follow_up_task_id = t.id;
    return SO_OK;
}

static enum db_rc decide_tx(struct db *db, void *p)
{
    struct decide_ctx *c = p;
    so_error_clear(c->err);
    int64_t account_id = c->auth->account_id;
    struct so_review v;
    enum db_rc rc = store_review_get(db, c->a, account_id, c->review_id, true, &v);
    if (rc == DB_NONE)
        return domain_tx_outcome(so_fail(c->err, ERR_NOT_FOUND, "no review %lld", (long long)c->review_id), c->err);
    if (rc != DB_OK) return rc;
    if (strcmp(v.state, "pending") != 0)
        return domain_tx_outcome(
            so_fail(c->err, ERR_ALREADY_DECIDED, "review %lld is %s already", (long long)v.id, v.state), c->err);
    bool returning = strcmp(c->in->decision, "return") == 0;
    if (returning && (c->in->note == NULL || c->in->note[0] == '\0'))
        return domain_tx_outcome(so_field_error(c->err, "note", "a return needs a note: advice for the manager"),
                                 c->err);
    struct so_rejection_rule rule;
    if ((rc = store_rejection_rule_get(db, c->a, account_id, &rule)) != DB_OK) return rc;
    int64_t decider = c->auth->manager_id ? c->auth->manager_id : rule.reviewer_id;
    enum so_err e = returning ? run_return(db, c, &v, decider) : SO_OK;
    struct so_task task;
    if (e == SO_OK && v.task_id != 0 && (rc = store_task_get(db, c->a, account_id, v.task_id, true, &task)) == DB_OK &&
        task.completed_at == 0 && task.deleted_at == 0) {
        task.completed_at = c->now;
        task.result = returning ? "returned" : "confirmed";
        rc = store_task_update(db, account_id, &task, c->now);
        e = rc == DB_OK ? domain_outbox_task_complete(db, c->a, account_id, &task, c->err) : domain_db_error(rc, c->err);
    } else if (e == SO_OK && v.task_id != 0 && rc != DB_OK && rc != DB_NONE) {
        e = domain_db_error(rc, c->err);
    }
    if (e != SO_OK) return domain_tx_outcome(e, c->err);
    v.state = returning ? "returned" : "confirmed";
    v.decided_at = c->now;
    v.note = c->in->note;
    if ((rc = store_review_decide(db, account_id, &v)) != DB_OK) return rc;
    rc = store_review_get(db, c->a, account_id, v.id, false, c->out);
    return rc;
}

enum so_err domain_review_decide(struct db *db, struct arena *a, const struct so_auth *auth, int64_t review_id,
                                 const struct review_decision *in, int64_t now, struct so_review *out,
                                 struct so_error *err)
{
    struct decide_ctx c = {a, auth, review_id, in, now, out, err};
    enum db_rc rc = db_tx(db, decide_tx, &c);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}
