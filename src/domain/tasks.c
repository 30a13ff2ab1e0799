/* Tasks and calls. A task keeps a history of its responsible and due time, for the "as of" rules. */
#include <string.h>
#include "internal.h"

static enum so_err load_task(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                             bool lock, struct so_task *out, struct so_error *err)
{
    enum db_rc rc = store_task_get(db, a, auth->account_id, task_id, lock, out);
    if (rc == DB_OK && auth->role == ROLE_MANAGER && out->manager_id != auth->manager_id) rc = DB_NONE;
    if (rc == DB_NONE) return so_fail(err, ERR_NOT_FOUND, "no task %lld", (long long)task_id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_task_visible(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                                struct so_task *out, struct so_error *err)
{
    return load_task(db, a, auth, task_id, false, out, err);
}

/* A deal named in a body: it must exist and, for a manager key, be his own (else 422). */
static enum so_err body_deal(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                             struct so_deal *out, struct so_error *err)
{
    enum db_rc rc = store_deal_get(db, a, auth->account_id, deal_id, false, out);
    if (rc == DB_OK && auth->role == ROLE_MANAGER && out->manager_id != auth->manager_id) rc = DB_NONE;
    if (rc == DB_NONE)
        return so_field_error(err, "deal_id", "no deal %lld available to this key", (long long)deal_id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum task_cmd { TASK_CREATE, TASK_PATCH, TASK_COMPLETE, TASK_DELETE, CALL_CREATE };

struct task_ctx {
    enum task_cmd cmd;
    struct arena *a;
    const struct so_auth *auth;
    int64_t task_id;
    int64_t now;
    const struct task_create *create;
    const struct task_patch *patch;
    const char *result;
    const struct so_call *call;
    struct so_task *out;
    struct so_call *call_out;
    struct so_error *err;
};

static enum so_err run_create(struct db *db, struct task_ctx *c)
{
    const struct task_create *in = c->create;
    struct so_deal deal;
    enum so_err e = body_deal(db, c->a, c->auth, in->deal_id, &deal, c->err);
    if (e != SO_OK) return e;
    int64_t manager_id = in->manager_id ? in->manager_id : deal.manager_id;
    if (manager_id == 0 && c->auth->role == ROLE_MANAGER) manager_id = c->auth->manager_id;
    if (manager_id != 0 &&
        (e = domain_check_manager(db, c->a, c->auth, "manager_id", manager_id, c->err)) != SO_OK)
        return e;
    struct so_task t = {.deal_id = deal.id,
                        .manager_id = manager_id,
                        .type = in->type,
                        .text = in->text ? in->text : "",
                        .due_at = in->due_at,
                        .created_at = c->now};
    enum db_rc rc = store_task_insert(db, c->auth->account_id, &t, &t.id);
    if (rc == DB_OK)
        rc = store_task_history_insert(db, c->auth->account_id, t.id, t.created_at, true, true, t.manager_id,
                                       t.due_at);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    *c->out = t;
    return domain_outbox_task_add(db, c->a, c->auth->account_id, &t, c->err);
}

static enum so_err run_patch(struct db *db, struct task_ctx *c, struct so_task *t)
{
    const struct task_patch *in = c->patch;
    enum so_err e;
    if (t->deleted_at) return so_fail(c->err, ERR_CONFLICT, "task %lld is deleted", (long long)t->id);
    if (in->set_manager &&
        (e = domain_check_manager(db, c->a, c->auth, "manager_id", in->manager_id, c->err)) != SO_OK)
        return e;
    if (in->set_type && strcmp(t->type, "rejection_control") == 0 && strcmp(in->type, t->type) != 0)
        return so_field_error(c->err, "type", "a rejection_control task keeps its type");
    bool history =
        (in->set_manager && in->manager_id != t->manager_id) || (in->set_due && in->due_at != t->due_at);
    if (in->set_manager) t->manager_id = in->manager_id;
    if (in->set_type) t->type = in->type;
    if (in->set_text) t->text = in->text;
    if (in->set_due) t->due_at = in->due_at;
    enum db_rc rc = store_task_update(db, c->auth->account_id, t, c->now);
    if (rc == DB_OK && history)
        rc = store_task_history_insert(db, c->auth->account_id, t->id, c->now, false, true, t->manager_id,
                                       t->due_at);
    if (rc == DB_OK && history) rc = store_task_rebuild(db, c->auth->account_id, t->id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, c->err);
}

static enum so_err run_finish(struct db *db, struct task_ctx *c, struct so_task *t)
{
    if (strcmp(t->type, "rejection_control") == 0)
        return so_fail(c->err, ERR_CONFLICT,
                       "a rejection_control task is completed only by a review decision");
    if (t->deleted_at)
        return c->cmd == TASK_DELETE
                   ? SO_OK
                   : so_fail(c->err, ERR_CONFLICT, "task %lld is deleted", (long long)t->id);
    if (c->cmd == TASK_COMPLETE) {
        if (t->completed_at)
            return so_fail(c->err, ERR_CONFLICT, "task %lld is already done", (long long)t->id);
        t->completed_at = c->now;
        t->result = c->result;
    } else {
        t->deleted_at = c->now;
    }
    enum db_rc rc = store_task_update(db, c->auth->account_id, t, c->now);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    if (c->cmd != TASK_COMPLETE) return SO_OK;
    enum so_err e = domain_focus_activity(db, c->a, c->auth->account_id, t->deal_id, domain_rest_actor(c->auth),
                                          c->now, c->err);
    return e == SO_OK ? domain_outbox_task_complete(db, c->a, c->auth->account_id, t, c->err) : e;
}

static enum so_err run_call(struct db *db, struct task_ctx *c)
{
    const struct so_call *in = c->call;
    enum so_err e = domain_check_manager(db, c->a, c->auth, "manager_id", in->manager_id, c->err);
    if (e != SO_OK) return e;
    struct so_deal deal;
    if (in->deal_id != 0 && (e = body_deal(db, c->a, c->auth, in->deal_id, &deal, c->err)) != SO_OK) return e;
    struct so_call call = *in;
    call.created_at = c->now;
    enum db_rc rc = store_call_insert(db, c->auth->account_id, &call, &call.id);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    *c->call_out = call;
    if (call.deal_id == 0) return SO_OK;
    return domain_focus_activity(db, c->a, c->auth->account_id, call.deal_id, domain_rest_actor(c->auth), c->now,
                                 c->err);
}

static enum db_rc task_tx(struct db *db, void *p)
{
    struct task_ctx *c = p;
    so_error_clear(c->err);
    enum so_err e;
    if (c->cmd == TASK_CREATE) {
        e = run_create(db, c);
    } else if (c->cmd == CALL_CREATE) {
        e = run_call(db, c);
    } else {
        e = load_task(db, c->a, c->auth, c->task_id, true, c->out, c->err);
        if (e == SO_OK) e = c->cmd == TASK_PATCH ? run_patch(db, c, c->out) : run_finish(db, c, c->out);
    }
    return domain_tx_outcome(e, c->err);
}

static enum so_err run(struct db *db, struct task_ctx *c)
{
    enum db_rc rc = db_tx(db, task_tx, c);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, c->err);
}

enum so_err domain_task_create(struct db *db, struct arena *a, const struct so_auth *auth,
                               const struct task_create *in, int64_t now, struct so_task *out,
                               struct so_error *err)
{
    struct task_ctx c = {
        .cmd = TASK_CREATE, .a = a, .auth = auth, .now = now, .create = in, .out = out, .err = err};
    return run(db, &c);
}

enum so_err domain_task_patch(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                              const struct task_patch *in, int64_t now, struct so_task *out,
                              struct so_error *err)
{
    struct task_ctx c = {.cmd = TASK_PATCH,
                         .a = a,
                         .auth = auth,
                         .task_id = task_id,
                         .now = now,
                         .patch = in,
                         .out = out,
                         .err = err};
    return run(db, &c);
}

enum so_err domain_task_complete(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                                 const char *result, int64_t now, struct so_task *out, struct so_error *err)
{
    struct task_ctx c = {.cmd = TASK_COMPLETE,
                         .a = a,
                         .auth = auth,
                         .task_id = task_id,
                         .now = now,
                         .result = result,
                         .out = out,
                         .err = err};
    return run(db, &c);
}

enum so_err domain_task_delete(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                               int64_t now, struct so_error *err)
{
    struct so_task t;
    struct task_ctx c = {
        .cmd = TASK_DELETE, .a = a, .auth = auth, .task_id = task_id, .now = now, .out = &t, .err = err};
    return run(db, &c);
}

enum so_err domain_call_create(struct db *db, struct arena *a, const struct so_auth *auth,
                               const struct so_call *in, int64_t now, struct so_call *out,
                               struct so_error *err)
{
    struct task_ctx c = {
        .cmd = CALL_CREATE, .a = a, .auth = auth, .now = now, .call = in, .call_out = out, .err = err};
    return run(db, &c);
}
