/* Deals: the one apply for every change of a deal, and the REST commands over it. */
#include <string.h>
#include "internal.h"

static enum deal_status status_of(enum stage_kind kind)
{
    return kind == STAGE_WON ? DEAL_WON : kind == STAGE_LOST ? DEAL_LOST : DEAL_OPEN;
}

static enum so_err fail_db(enum db_rc rc, struct so_error *err)
{
    return domain_db_error(rc, err);
}

struct so_deal domain_deal_new(const struct deal_change *chg, const struct so_stage *stage)
{
    return (struct so_deal){.external_id = chg->external_id,
                            .name = chg->name,
                            .price = chg->price,
                            .pipeline_id = stage->pipeline_id,
                            .stage_id = stage->id,
                            .status = status_of(stage->kind),
                            .manager_id = chg->set_manager ? chg->manager_id : 0,
                            .loss_reason_id = stage->kind == STAGE_LOST ? chg->loss_reason_id : 0,
                            .created_at = chg->at,
                            .closed_at = stage->kind == STAGE_OPEN ? 0 : chg->at,
                            .updated_at = chg->at};
}

/* Every change goes into the deal's change log; its current fields and its history rows are derived from
 * the log (see migrations: salesops_rebuild_deals), so a change dated before others lands in its place. */
enum so_err domain_deal_apply(struct db *db, struct arena *a, int64_t account_id,
                              const struct deal_change *chg, struct so_deal *out, struct so_error *err)
{
    enum db_rc rc;
    struct so_stage stage = {0};
    if (chg->set_stage && chg->stage != NULL && chg->stage->id == chg->stage_id)
        stage = *chg->stage;
    else if (chg->set_stage && (rc = store_stage_get(db, a, account_id, chg->stage_id, &stage)) != DB_OK)
        return rc == DB_NONE ? so_field_error(err, "stage_id", "no stage %lld", (long long)chg->stage_id)
                             : fail_db(rc, err);
    struct so_deal_change_row row = {.deal_id = chg->deal_id,
                                     .at = chg->at,
                                     .stage_id = chg->set_stage ? stage.id : 0,
                                     .loss_reason_id = stage.kind == STAGE_LOST ? chg->loss_reason_id : 0,
                                     .set_manager = chg->set_manager,
                                     .manager_id = chg->manager_id,
                                     .set_price = chg->set_price,
                                     .price = chg->price,
                                     .name = chg->set_name ? chg->name : NULL};
    if (chg->deal_id == 0) {
        /* the deal, its creation change and history row: nothing to rebuild for a new deal */
        struct so_deal d = domain_deal_new(chg, &stage);
        if ((rc = store_deals_insert(db, account_id, &d, 1, &row.deal_id)) != DB_OK) return fail_db(rc, err);
    } else {
        if ((rc = store_deal_lock(db, account_id, chg->deal_id)) != DB_OK)
            return rc == DB_NONE ? so_fail(err, ERR_NOT_FOUND, "no deal %lld", (long long)chg->deal_id)
                                 : fail_db(rc, err);
        int64_t rebuild_from = chg->at;
        if (row.stage_id || row.set_manager || row.set_price || row.name)
            rc = store_deal_change_insert(db, account_id, &row);
        if (rc == DB_OK && chg->set_loss_reason && !chg->set_stage) {
            rc = store_deal_loss_reason_set(db, account_id, row.deal_id, chg->loss_reason_id, &rebuild_from);
            if (rc == DB_NONE) rc = DB_OK; /* the deal's latest move was not a loss: nothing to set */
        }
        if (rc == DB_OK) rc = store_deal_rebuild(db, account_id, row.deal_id, rebuild_from);
        if (rc != DB_OK) return fail_db(rc, err);
    }
    enum so_err e;
    if (chg->deal_id != 0 && chg->set_manager &&
        (e = domain_focus_deal_left(db, a, account_id, row.deal_id, chg->at, err)) != SO_OK)
        return e;
    if (out == NULL) return SO_OK;
    rc = store_deal_get(db, a, account_id, row.deal_id, false, out);
    if (rc == DB_NONE) { /* a deleted deal changes too, but is not shown */
        memset(out, 0, sizeof *out);
        out->id = row.deal_id;
        return SO_OK;
    }
    return rc == DB_OK ? SO_OK : fail_db(rc, err);
}

/* A deal a manager key does not hold answers 404, as if it did not exist. */
static enum so_err load_visible(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                                bool lock, struct so_deal *out, struct so_error *err)
{
    return domain_deal_seen(auth, deal_id, store_deal_get(db, a, auth->account_id, deal_id, lock, out), out, err);
}

enum so_err domain_deal_seen(const struct so_auth *auth, int64_t deal_id, enum db_rc rc, const struct so_deal *d,
                             struct so_error *err)
{
    if (rc == DB_OK && auth->role == ROLE_MANAGER && d->manager_id != auth->manager_id) rc = DB_NONE;
    if (rc == DB_NONE) return so_fail(err, ERR_NOT_FOUND, "no deal %lld", (long long)deal_id);
    return rc == DB_OK ? SO_OK : fail_db(rc, err);
}

enum so_err domain_deal_visible(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                                struct so_deal *out, struct so_error *err)
{
    return load_visible(db, a, auth, deal_id, false, out, err);
}

/* A manager named in a body: it must exist in the account; a manager key may name only himself. */
enum so_err domain_check_manager(struct db *db, struct arena *a, const struct so_auth *auth,
                                 const char *field, int64_t manager_id, struct so_error *err)
{
    if (auth->role == ROLE_MANAGER && manager_id != auth->manager_id)
        return so_fail(err, ERR_FORBIDDEN, "a manager key cannot give a deal or task to another manager");
    struct so_manager m;
    enum db_rc rc = store_manager_get(db, a, auth->account_id, manager_id, &m);
    if (rc == DB_NONE)
        return so_field_error(err, field, "no manager %lld in this account", (long long)manager_id);
    return rc == DB_OK ? SO_OK : fail_db(rc, err);
}

/* An open stage of the given pipeline. */
static enum so_err check_open_stage(struct db *db, struct arena *a, int64_t account_id, int64_t pipeline_id,
                                    int64_t stage_id, struct so_error *err)
{
    struct so_stage s;
    enum db_rc rc = store_stage_get(db, a, account_id, stage_id, &s);
    if (rc == DB_NONE)
        return so_field_error(err, "stage_id", "no stage %lld in this account", (long long)stage_id);
    if (rc != DB_OK) return fail_db(rc, err);
    if (s.pipeline_id != pipeline_id)
        return so_field_error(err, "stage_id", "stage %lld belongs to another pipeline", (long long)stage_id);
    if (s.kind != STAGE_OPEN)
        return so_field_error(err, "stage_id", "stage %lld is a %s stage: use POST /deals/{id}/close",
                              (long long)stage_id, so_stage_kind_name(s.kind));
    return SO_OK;
}

enum deal_cmd { CMD_CREATE, CMD_PATCH, CMD_CLOSE, CMD_REOPEN, CMD_NOTE };

struct deal_cmd_ctx {
    enum deal_cmd cmd;
    struct arena *a;
    const struct so_auth *auth;
    int64_t deal_id;
    int64_t now;
    const struct deal_create *create;
    const struct deal_patch *patch;
    enum deal_status outcome;
    int64_t stage_id, manager_id, loss_reason_id;
    const char *text;
    struct so_deal *out;
    struct so_note *note;
    struct dist_outcome *dist;
    struct so_error *err;
};

/* Applies a REST change and queues its write-back to amoCRM. */
static enum so_err apply_and_write_back(struct db *db, struct deal_cmd_ctx *c, const struct so_deal *before,
                                        const struct deal_change *chg)
{
    enum so_err e = domain_deal_apply(db, c->a, c->auth->account_id, chg, c->out, c->err);
    if (e == SO_OK && chg->set_stage)
        e = domain_focus_activity(db, c->a, c->auth->account_id, before->id, domain_rest_actor(c->auth), c->now,
                                  c->err);
    if (e != SO_OK) return e;
    return domain_outbox_deal(db, c->a, c->auth->account_id, before, c->out, c->err);
}

static enum so_err run_create(struct db *db, struct deal_cmd_ctx *c)
{
    const struct deal_create *in = c->create;
    const struct so_auth *auth = c->auth;
    struct so_error *err = c->err;
    int64_t manager_id = in->manager_id;
    if (manager_id == 0 && auth->role == ROLE_MANAGER) manager_id = auth->manager_id;
    enum so_err e;
    if (manager_id != 0 && (e = domain_check_manager(db, c->a, auth, "manager_id", manager_id, err)) != SO_OK)
        return e;
    struct so_pipeline pl;
    enum db_rc rc = store_pipeline_get(db, c->a, auth->account_id, in->pipeline_id, &pl);
    if (rc == DB_NONE)
        return so_field_error(err, "pipeline_id", "no pipeline %lld in this account",
                              (long long)in->pipeline_id);
    if (rc != DB_OK) return fail_db(rc, err);
    int64_t stage_id = in->stage_id;
    if (stage_id == 0) {
        for (int i = 0; i < pl.stage_count && stage_id == 0; i++)
            if (pl.stages[i].kind == STAGE_OPEN) stage_id = pl.stages[i].id;
    } else if ((e = check_open_stage(db, c->a, auth->account_id, pl.id, stage_id, err)) != SO_OK) {
        return e;
    }
    struct deal_change chg = {.at = c->now,
                              .external_id = in->external_id,
                              .set_name = true,
                              .name = in->name,
                              .set_price = true,
                              .price = in->price,
                              .set_stage = true,
                              .stage_id = stage_id,
                              .set_manager = manager_id != 0,
                              .manager_id = manager_id};
    /* a manager key's own deal is his without distribution */
    struct dist_outcome dist = {0};
    if (auth->role != ROLE_MANAGER &&
        (e = domain_dist_wants(db, c->a, auth->account_id, manager_id, &dist, err)) != SO_OK)
        return e;
    if ((e = domain_deal_apply(db, c->a, auth->account_id, &chg, c->out, err)) != SO_OK) return e;
    e = domain_dist_after_create(db, c->a, auth->account_id, c->out, &dist, c->now, err);
    if (c->dist != NULL) *c->dist = dist;
    return e;
}

static enum so_err run_patch(struct db *db, struct deal_cmd_ctx *c, const struct so_deal *d)
{
    const struct deal_patch *in = c->patch;
    enum so_err e;
    if (in->set_manager &&
        (e = domain_check_manager(db, c->a, c->auth, "manager_id", in->manager_id, c->err)) != SO_OK)
        return e;
    if (in->set_stage) {
        if (d->status != DEAL_OPEN)
            return so_fail(c->err, ERR_CONFLICT, "deal %lld is %s: reopen it before changing its stage",
                           (long long)d->id, so_deal_status_name(d->status));
        if ((e = check_open_stage(db, c->a, c->auth->account_id, d->pipeline_id, in->stage_id, c->err)) !=
            SO_OK)
            return e;
    }
    struct deal_change chg = {.deal_id = d->id,
                              .at = c->now,
                              .set_name = in->set_name,
                              .name = in->name,
                              .set_price = in->set_price,
                              .price = in->price,
                              .set_stage = in->set_stage && in->stage_id != d->stage_id,
                              .stage_id = in->stage_id,
                              .set_manager = in->set_manager,
                              .manager_id = in->manager_id};
    return apply_and_write_back(db, c, d, &chg);
}

static enum so_err run_close(struct db *db, struct deal_cmd_ctx *c, const struct so_deal *d)
{
    if (d->status != DEAL_OPEN)
        return so_fail(c->err, ERR_CONFLICT, "deal %lld is already %s", (long long)d->id,
                       so_deal_status_name(d->status));
    if (c->outcome == DEAL_WON && c->loss_reason_id != 0)
        return so_field_error(c->err, "loss_reason_id", "only a lost deal has a loss reason");
    if (c->loss_reason_id != 0) {
        struct so_loss_reason lr;
        enum db_rc rc = store_loss_reason_get(db, c->a, c->auth->account_id, c->loss_reason_id, &lr);
        if (rc == DB_NONE)
            return so_field_error(c->err, "loss_reason_id", "no loss reason %lld in this account",
                                  (long long)c->loss_reason_id);
        if (rc != DB_OK) return fail_db(rc, c->err);
    }
    struct so_stage s;
    enum db_rc rc = store_stage_first(db, c->a, c->auth->account_id, d->pipeline_id,
                                      c->outcome == DEAL_WON ? STAGE_WON : STAGE_LOST, &s);
    if (rc != DB_OK)
        return rc == DB_NONE ? so_fail(c->err, ERR_CONFLICT, "the deal's pipeline has no %s stage",
                                       so_deal_status_name(c->outcome))
                             : fail_db(rc, c->err);
    struct deal_change chg = {.deal_id = d->id,
                              .at = c->now,
                              .set_stage = true,
                              .stage_id = s.id,
                              .loss_reason_id = c->loss_reason_id};
    enum so_err e = apply_and_write_back(db, c, d, &chg);
    if (e != SO_OK || c->outcome != DEAL_LOST) return e;
    return domain_rejection_after_loss(db, c->a, c->auth->account_id, d->id, c->now, c->now, c->err);
}

static enum so_err run_reopen(struct db *db, struct deal_cmd_ctx *c, const struct so_deal *d)
{
    enum so_err e;
    if (c->manager_id != 0 &&
        (e = domain_check_manager(db, c->a, c->auth, "manager_id", c->manager_id, c->err)) != SO_OK)
        return e;
    if ((e = check_open_stage(db, c->a, c->auth->account_id, d->pipeline_id, c->stage_id, c->err)) != SO_OK)
        return e;
    if (d->status == DEAL_OPEN) return so_fail(c->err, ERR_CONFLICT, "deal %lld is open", (long long)d->id);
    struct deal_change chg = {.deal_id = d->id,
                              .at = c->now,
                              .set_stage = true,
                              .stage_id = c->stage_id,
                              .set_manager = c->manager_id != 0,
                              .manager_id = c->manager_id};
    return apply_and_write_back(db, c, d, &chg);
}

static enum so_err run_note(struct db *db, struct deal_cmd_ctx *c, const struct so_deal *d)
{
    if (c->auth->role == ROLE_MANAGER && c->manager_id != 0 && c->manager_id != c->auth->manager_id)
        return so_fail(c->err, ERR_FORBIDDEN, "a manager key writes notes only in his own name");
    int64_t manager_id = c->auth->role == ROLE_MANAGER ? c->auth->manager_id : c->manager_id;
    if (c->auth->role != ROLE_MANAGER && manager_id != 0) {
        struct so_manager m;
        enum db_rc rc = store_manager_get(db, c->a, c->auth->account_id, manager_id, &m);
        if (rc == DB_NONE)
            return so_field_error(c->err, "manager_id", "no manager %lld in this account",
                                  (long long)manager_id);
        if (rc != DB_OK) return fail_db(rc, c->err);
    }
    struct so_note n = {.deal_id = d->id, .text = c->text, .manager_id = manager_id, .created_at = c->now};
    enum db_rc rc = store_note_insert(db, c->auth->account_id, &n, &n.id);
    if (rc != DB_OK) return fail_db(rc, c->err);
    *c->note = n;
    enum so_err e =
        domain_focus_activity(db, c->a, c->auth->account_id, d->id, domain_rest_actor(c->auth), c->now, c->err);
    return e == SO_OK ? domain_outbox_note_add(db, c->a, c->auth->account_id, &n, c->err) : e;
}

static enum db_rc deal_cmd_tx(struct db *db, void *p)
{
    struct deal_cmd_ctx *c = p;
    so_error_clear(c->err);
    enum so_err e;
    if (c->cmd == CMD_CREATE) {
        e = run_create(db, c);
    } else {
        struct so_deal d;
        e = load_visible(db, c->a, c->auth, c->deal_id, true, &d, c->err);
        if (e == SO_OK) {
            switch (c->cmd) {
            case CMD_PATCH:
                e = run_patch(db, c, &d);
                break;
            case CMD_CLOSE:
                e = run_close(db, c, &d);
                break;
            case CMD_REOPEN:
                e = run_reopen(db, c, &d);
                break;
            case CMD_NOTE:
                e = run_note(db, c, &d);
                break;
            case CMD_CREATE:
                break;
            }
        }
    }
    return domain_tx_outcome(e, c->err);
}

static enum so_err run(struct db *db, struct deal_cmd_ctx *c)
{
    enum db_rc rc = db_tx(db, deal_cmd_tx, c);
    if (rc == DB_OK) return SO_OK;
    return domain_db_error(rc, c->err);
}

enum so_err domain_deal_create(struct db *db, struct arena *a, const struct so_auth *auth,
                               const struct deal_create *in, int64_t now, struct so_deal *out,
                               struct dist_outcome *dist, struct so_error *err)
{
    struct deal_cmd_ctx c = {.cmd = CMD_CREATE,
                             .a = a,
                             .auth = auth,
                             .now = now,
                             .create = in,
                             .out = out,
                             .dist = dist,
                             .err = err};
    return run(db, &c);
}

enum so_err domain_deal_patch(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                              const struct deal_patch *in, int64_t now, struct so_deal *out,
                              struct so_error *err)
{
    struct deal_cmd_ctx c = {.cmd = CMD_PATCH,
                             .a = a,
                             .auth = auth,
                             .deal_id = deal_id,
                             .now = now,
                             .patch = in,
                             .out = out,
                             .err = err};
    return run(db, &c);
}

enum so_err domain_deal_close(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                              enum deal_status outcome, int64_t loss_reason_id, int64_t now,
                              struct so_deal *out, struct so_error *err)
{
    struct deal_cmd_ctx c = {.cmd = CMD_CLOSE,
                             .a = a,
                             .auth = auth,
                             .deal_id = deal_id,
                             .now = now,
                             .outcome = outcome,
                             .loss_reason_id = loss_reason_id,
                             .out = out,
                             .err = err};
    return run(db, &c);
}

enum so_err domain_deal_reopen(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                               int64_t stage_id, int64_t manager_id, int64_t now, struct so_deal *out,
                               struct so_error *err)
{
    struct deal_cmd_ctx c = {.cmd = CMD_REOPEN,
                             .a = a,
                             .auth = auth,
                             .deal_id = deal_id,
                             .now = now,
                             .stage_id = stage_id,
                             .manager_id = manager_id,
                             .out = out,
                             .err = err};
    return run(db, &c);
}

enum so_err domain_note_add(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                            const char *text, int64_t manager_id, int64_t now, struct so_note *out,
                            struct so_error *err)
{
    struct deal_cmd_ctx c = {.cmd = CMD_NOTE,
                             .a = a,
                             .auth = auth,
                             .deal_id = deal_id,
                             .now = now,
                             .manager_id = manager_id,
                             .text = text,
                             .note = out,
                             .err = err};
    return run(db, &c);
}
