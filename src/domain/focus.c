/* Focus mode: a manager steps out of distribution to work a snapshot of his best deals, and comes back by
 * himself when the queue is done or the time is up. */
#include <string.h>
#include "internal.h"
#include "salesops/log.h"

static void log_ended(const struct so_focus_end *ended, int count)
{
    for (int i = 0; i < count; i++)
        log_event_steal(LOG_INFO, "focus session ended",
                        json_pack("{s:I, s:I, s:I, s:s}", "account", (json_int_t)ended[i].account_id, "session",
                                  (json_int_t)ended[i].session_id, "manager", (json_int_t)ended[i].manager_id,
                                  "reason", ended[i].reason));
}

/* The filter's pipeline exists and its stages are open stages of it. */
static enum so_err check_filter(struct db *db, struct arena *a, int64_t account_id,
                                const struct so_focus_filter *f, struct so_error *err)
{
    struct so_pipeline pl;
    enum db_rc rc = store_pipeline_get(db, a, account_id, f->pipeline_id, &pl);
    if (rc == DB_NONE)
        return so_field_error(err, "pipeline_id", "no pipeline %lld in this account", (long long)f->pipeline_id);
    if (rc != DB_OK) return domain_db_error(rc, err);
    enum so_err e = SO_OK;
    for (int i = 0; i < f->stage_count; i++) {
        const struct so_stage *s = NULL;
        for (int k = 0; k < pl.stage_count && s == NULL; k++)
            if (pl.stages[k].id == f->stage_ids[i]) s = &pl.stages[k];
        if (s == NULL)
            e = so_field_error(err, "stage_ids", "stage %lld is not a stage of pipeline %lld",
                               (long long)f->stage_ids[i], (long long)f->pipeline_id);
        else if (s->kind != STAGE_OPEN)
            e = so_field_error(err, "stage_ids", "stage %lld is a %s stage: only open stages have a queue",
                               (long long)s->id, so_stage_kind_name(s->kind));
    }
    return e;
}

enum so_err domain_focus_filter_put(struct db *db, struct arena *a, int64_t account_id,
                                    const struct so_focus_filter *f, int64_t now, struct so_error *err)
{
    enum so_err e = check_filter(db, a, account_id, f, err);
    if (e != SO_OK) return e;
    enum db_rc rc = store_focus_filter_put(db, account_id, f, now);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

static enum so_err load_session(struct db *db, struct arena *a, const struct so_auth *auth, int64_t id,
                                bool lock, struct so_focus_session *out, struct so_error *err)
{
    enum db_rc rc = store_focus_session_get(db, a, auth->account_id, id, lock, out);
    if (rc == DB_OK && auth->role == ROLE_MANAGER && out->manager_id != auth->manager_id) rc = DB_NONE;
    if (rc == DB_NONE) return so_fail(err, ERR_NOT_FOUND, "no focus session %lld", (long long)id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_focus_session_visible(struct db *db, struct arena *a, const struct so_auth *auth, int64_t id,
                                         struct so_focus_session *out, struct so_error *err)
{
    return load_session(db, a, auth, id, false, out, err);
}

enum focus_cmd { CMD_START, CMD_DONE, CMD_STOP };

struct focus_ctx {
    enum focus_cmd cmd;
    struct arena *a;
    const struct so_auth *auth;
    int64_t manager_id, session_id, deal_id, now;
    const struct so_focus_filter *body;
    struct so_focus_session *out;
    struct so_error *err;
};

static enum so_err run_start(struct db *db, struct focus_ctx *c)
{
    int64_t account_id = c->auth->account_id;
    enum db_rc rc = store_focus_lock(db, account_id);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    enum so_err e;
    if (c->body != NULL && (e = domain_focus_filter_put(db, c->a, account_id, c->body, c->now, c->err)) != SO_OK)
        return e;
    struct so_focus_filter f;
    rc = store_focus_filter_get(db, c->a, account_id, c->manager_id, &f);
    if (rc == DB_NONE)
        return so_field_error(c->err, "filter", "manager %lld has no focus filter: PUT /managers/%lld/focus-filter "
                                                "first, or send one in the body",
                              (long long)c->manager_id, (long long)c->manager_id);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    int64_t active;
    int in_focus;
    if ((rc = store_focus_state(db, account_id, c->manager_id, &active, &in_focus)) != DB_OK)
        return domain_db_error(rc, c->err);
    if (active != 0)
        return so_fail(c->err, ERR_FOCUS_ACTIVE, "manager %lld is in focus session %lld already",
                       (long long)c->manager_id, (long long)active);
    struct so_dist_settings s;
    if ((rc = store_dist_settings_get(db, c->a, account_id, c->now, &s)) != DB_OK)
        return domain_db_error(rc, c->err);
    if (s.max_in_focus >= 0 && in_focus >= s.max_in_focus)
        return so_fail(c->err, ERR_FOCUS_CAP_REACHED, "%d of at most %d managers are in focus", in_focus,
                       s.max_in_focus);
    int total;
    if ((rc = store_focus_start(db, account_id, &f, c->now, &c->session_id, &total)) != DB_OK)
        return domain_db_error(rc, c->err);
    if (total == 0)
        return so_field_error(c->err, "filter", "the queue is empty: manager %lld has no open deals in the "
                                                "filter's stages",
                              (long long)c->manager_id);
    return SO_OK;
}

static enum so_err run_done(struct db *db, struct focus_ctx *c, const struct so_focus_session *s)
{
    if (s->ended_at != 0)
        return so_fail(c->err, ERR_CONFLICT, "focus session %lld has ended (%s)", (long long)s->id, s->end_reason);
    enum db_rc rc = store_focus_mark_done(db, c->auth->account_id, s->id, c->deal_id, c->now);
    if (rc == DB_NONE)
        return so_fail(c->err, ERR_NOT_FOUND, "deal %lld is not in the queue of focus session %lld",
                       (long long)c->deal_id, (long long)s->id);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    struct so_focus_end *ended;
    int n;
    rc = store_focus_settle(db, c->a, c->auth->account_id, &s->id, 1, c->now, &ended, &n);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    log_ended(ended, n);
    return SO_OK;
}

static enum so_err run_stop(struct db *db, struct focus_ctx *c, const struct so_focus_session *s)
{
    enum db_rc rc = store_focus_end(db, c->auth->account_id, s->id, "stopped", c->now);
    if (rc == DB_NONE)
        return so_fail(c->err, ERR_CONFLICT, "focus session %lld has ended (%s)", (long long)s->id, s->end_reason);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    struct so_focus_end ended = {c->auth->account_id, s->id, s->manager_id, "stopped"};
    log_ended(&ended, 1);
    return SO_OK;
}

static enum db_rc focus_tx(struct db *db, void *p)
{
    struct focus_ctx *c = p;
    so_error_clear(c->err);
    enum so_err e;
    if (c->cmd == CMD_START) {
        e = run_start(db, c);
    } else {
        struct so_focus_session s;
        e = load_session(db, c->a, c->auth, c->session_id, true, &s, c->err);
        if (e == SO_OK) e = c->cmd == CMD_DONE ? run_done(db, c, &s) : run_stop(db, c, &s);
    }
    if (e == SO_OK) e = load_session(db, c->a, c->auth, c->session_id, false, c->out, c->err);
    return domain_tx_outcome(e, c->err);
}

static enum so_err run(struct db *db, struct focus_ctx *c)
{
    enum db_rc rc = db_tx(db, focus_tx, c);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    if (c->cmd != CMD_DONE || c->out->ended_at != 0) db_notify(db, STORE_INBOX_CHANNEL); /* eligibility moved */
    return SO_OK;
}

enum so_err domain_focus_start(struct db *db, struct arena *a, const struct so_auth *auth, int64_t manager_id,
                               const struct so_focus_filter *body, int64_t now, struct so_focus_session *out,
                               struct so_error *err)
{
    struct focus_ctx c = {.cmd = CMD_START,
                          .a = a,
                          .auth = auth,
                          .manager_id = manager_id,
                          .now = now,
                          .body = body,
                          .out = out,
                          .err = err};
    return run(db, &c);
}

enum so_err domain_focus_mark_done(struct db *db, struct arena *a, const struct so_auth *auth,
                                   int64_t session_id, int64_t deal_id, int64_t now,
                                   struct so_focus_session *out, struct so_error *err)
{
    struct focus_ctx c = {.cmd = CMD_DONE,
                          .a = a,
                          .auth = auth,
                          .session_id = session_id,
                          .deal_id = deal_id,
                          .now = now,
                          .out = out,
                          .err = err};
    return run(db, &c);
}

enum so_err domain_focus_stop(struct db *db, struct arena *a, const struct so_auth *auth, int64_t session_id,
                              int64_t now, struct so_focus_session *out, struct so_error *err)
{
    struct focus_ctx c = {
        .cmd = CMD_STOP, .a = a, .auth = auth, .session_id = session_id, .now = now, .out = out, .err = err};
    return run(db, &c);
}

/* Ends the touched sessions whose queue is done. */
static enum so_err settle(struct db *db, struct arena *a, int64_t account_id, const int64_t *sessions, int n,
                          int64_t at, struct so_error *err)
{
    if (n == 0) return SO_OK;
    struct so_focus_end *ended;
    int count;
    enum db_rc rc = store_focus_settle(db, a, account_id, sessions, n, at, &ended, &count);
    if (rc != DB_OK) return domain_db_error(rc, err);
    log_ended(ended, count);
    return SO_OK;
}

enum so_err domain_focus_activity(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                  int64_t actor, int64_t at, struct so_error *err)
{
    int64_t *sessions;
    int n;
    enum db_rc rc = store_focus_activity(db, a, account_id, deal_id, actor, at, &sessions, &n);
    if (rc != DB_OK) return domain_db_error(rc, err);
    return settle(db, a, account_id, sessions, n, at, err);
}

enum so_err domain_focus_deal_left(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                   int64_t at, struct so_error *err)
{
    int64_t *sessions;
    int n;
    enum db_rc rc = store_focus_deal_left(db, a, account_id, deal_id, &sessions, &n);
    if (rc != DB_OK) return domain_db_error(rc, err);
    return settle(db, a, account_id, sessions, n, at, err);
}

int domain_focus_timeouts(struct db *db, struct arena *a)
{
    struct so_focus_end *ended;
    int n;
    if (store_focus_timeouts(db, a, 100, &ended, &n) != DB_OK) return 0;
    log_ended(ended, n);
    if (n > 0) db_notify(db, STORE_INBOX_CHANNEL);
    return n;
}
