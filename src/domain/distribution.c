/* Lead distribution over the store: the choice under the account's lock (so every instance agrees), the
 * assignment log, the write-back to amoCRM, and the deals that wait for an eligible manager. */
#include <string.h>
#include "internal.h"
#include "salesops/distribution.h"
#include "salesops/log.h"

enum so_err domain_dist_load(struct db *db, struct arena *a, int64_t account_id, const char *kind, int64_t now,
                             struct dist_state *st, struct so_error *err)
{
    memset(st, 0, sizeof *st);
    enum db_rc rc = store_dist_settings_get(db, a, account_id, now, &st->settings);
    if (rc == DB_OK) rc = store_dist_candidates(db, a, account_id, kind, &st->c, &st->n);
    if (rc != DB_OK) return domain_db_error(rc, err);
    working_hours_from_text(st->settings.working_hours, &st->hours);
    st->eligible = arena_alloc(a, sizeof *st->eligible * ((size_t)st->n + 1));
    st->reasons = arena_alloc(a, sizeof *st->reasons * ((size_t)st->n + 1));
    if (st->eligible == NULL || st->reasons == NULL) return so_fail(err, ERR_INTERNAL, "out of memory");
    bool off = !working_hours_contains(&st->hours, st->settings.local_dow, st->settings.local_minute);
    for (int i = 0; i < st->n; i++) {
        st->reasons[i] = dist_ineligible_reason(&st->c[i], off);
        st->eligible[i] = st->reasons[i] == NULL;
        if (st->eligible[i]) st->eligible_count++;
    }
    return SO_OK;
}

enum so_err domain_dist_choose(struct db *db, struct arena *a, int64_t account_id, const char *kind,
                               int64_t now, int64_t *manager_id, const char **strategy, struct so_error *err)
{
    *manager_id = 0;
    enum db_rc rc = store_dist_lock(db, account_id, kind);
    if (rc != DB_OK) return domain_db_error(rc, err);
    struct dist_state st;
    enum so_err e = domain_dist_load(db, a, account_id, kind, now, &st, err);
    if (e != SO_OK) return e;
    *strategy = st.settings.strategy;
    int pick = dist_pick(st.c, st.eligible, st.n, strcmp(st.settings.strategy, "weighted") == 0);
    if (pick < 0) return SO_OK;
    rc = store_dist_cursor_save(db, account_id, kind, st.c, st.eligible, st.n);
    if (rc != DB_OK) return domain_db_error(rc, err);
    *manager_id = st.c[pick].manager_id;
    return SO_OK;
}

static enum so_err log_assignment(struct db *db, int64_t account_id, const char *kind, int64_t deal_id,
                                  int64_t manager_id, const char *reason, const char *strategy, int64_t at,
                                  int64_t *id, struct so_error *err)
{
    struct so_assignment as = {.kind = kind,
                               .deal_id = deal_id,
                               .manager_id = manager_id,
                               .reason = reason,
                               .strategy = strategy,
                               .at = at};
    int64_t ignored;
    enum db_rc rc = store_assignment_insert(db, account_id, &as, id ? id : &ignored);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

void domain_dist_wants_known(int64_t manager_id, bool pool_user, struct dist_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->original_manager_id = manager_id;
    if (manager_id != 0 && !pool_user) return;
    out->reason = manager_id != 0 ? "pool_user" : "new_deal";
    out->attempted = true;
}

enum so_err domain_dist_wants(struct db *db, struct arena *a, int64_t account_id, int64_t manager_id,
                              struct dist_outcome *out, struct so_error *err)
{
    struct so_manager m = {0};
    if (manager_id != 0) {
        enum db_rc rc = store_manager_get(db, a, account_id, manager_id, &m);
        if (rc != DB_OK) return domain_db_error(rc, err);
    }
    domain_dist_wants_known(manager_id, m.pool_user, out);
    return SO_OK;
}

/* The choice is made after the deal is stored, so that the account's lead lock is held only for the choice
 * itself and a few small writes until the commit, not for the whole creation. */
enum so_err domain_dist_after_create(struct db *db, struct arena *a, int64_t account_id, struct so_deal *deal,
                                     struct dist_outcome *o, int64_t now, struct so_error *err)
{
    if (!o->attempted) return SO_OK;
    enum so_err e = domain_dist_choose(db, a, account_id, "lead", now, &o->manager_id, &o->strategy, err);
    if (e != SO_OK) return e;
    o->assigned = o->manager_id != 0;
    enum db_rc rc;
    if (!o->assigned) {
        rc = store_dist_wait(db, account_id, deal->id, o->reason, deal->created_at);
        return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
    }
    if ((rc = store_deal_assign_new(db, account_id, deal->id, o->manager_id)) != DB_OK)
        return domain_db_error(rc, err);
    struct so_deal before = *deal;
    deal->manager_id = o->manager_id;
    e = log_assignment(db, account_id, "lead", deal->id, o->manager_id, o->reason, o->strategy, now, NULL, err);
    return e == SO_OK ? domain_outbox_deal(db, a, account_id, &before, deal, err) : e;
}

struct next_ctx {
    struct arena *a;
    int64_t account_id;
    const char *kind;
    int64_t now;
    int64_t manager_id, assignment_id;
    struct so_error *err;
};

static enum db_rc next_tx(struct db *db, void *p)
{
    struct next_ctx *c = p;
    so_error_clear(c->err);
    const char *strategy;
    enum so_err e = domain_dist_choose(db, c->a, c->account_id, c->kind, c->now, &c->manager_id, &strategy, c->err);
    if (e == SO_OK && c->manager_id == 0)
        e = so_fail(c->err, ERR_NO_ELIGIBLE_MANAGER, "no manager is eligible for a %s now: see GET /distribution",
                    c->kind);
    if (e == SO_OK)
        e = log_assignment(db, c->account_id, c->kind, 0, c->manager_id, "next", strategy, c->now,
                           &c->assignment_id, c->err);
    return domain_tx_outcome(e, c->err);
}

enum so_err domain_dist_next(struct db *db, struct arena *a, int64_t account_id, const char *kind, int64_t now,
                             int64_t *manager_id, int64_t *assignment_id, struct so_error *err)
{
    struct next_ctx c = {a, account_id, kind, now, 0, 0, err};
    enum db_rc rc = db_tx(db, next_tx, &c);
    if (rc != DB_OK) return domain_db_error(rc, err);
    *manager_id = c.manager_id;
    *assignment_id = c.assignment_id;
    return SO_OK;
}

/* ---- deals that waited ---- */

/* Assigns one waiting deal now, or drops it from the queue when it no longer needs a manager. *assigned
 * false with SO_OK and nobody chosen means nobody is eligible (the caller stops). */
static enum so_err assign_waiting(struct db *db, struct arena *a, int64_t account_id,
                                  const struct so_dist_waiting *w, int64_t now, bool *stop,
                                  struct so_error *err)
{
    struct so_deal d;
    enum db_rc rc = store_deal_get(db, a, account_id, w->deal_id, true, &d);
    if (rc != DB_OK && rc != DB_NONE) return domain_db_error(rc, err);
    bool needs = rc == DB_OK && d.manager_id == 0;
    if (rc == DB_OK && d.manager_id != 0) {
        struct so_manager m;
        rc = store_manager_get(db, a, account_id, d.manager_id, &m);
        if (rc != DB_OK) return domain_db_error(rc, err);
        needs = m.pool_user;
    }
    if (needs) {
        int64_t manager_id;
        const char *strategy;
        enum so_err e = domain_dist_choose(db, a, account_id, "lead", now, &manager_id, &strategy, err);
        if (e != SO_OK) return e;
        if (manager_id == 0) {
            *stop = true;
            return SO_OK;
        }
        struct deal_change chg = {.deal_id = d.id, .at = now, .set_manager = true, .manager_id = manager_id};
        struct so_deal after;
        if ((e = domain_deal_apply(db, a, account_id, &chg, &after, err)) != SO_OK) return e;
        if ((e = log_assignment(db, account_id, "lead", d.id, manager_id, "awaited", strategy, now, NULL, err)) !=
            SO_OK)
            return e;
        rc = store_deal_set_creator(db, account_id, d.id, manager_id);
        if (rc != DB_OK) return domain_db_error(rc, err);
        if ((e = domain_outbox_deal(db, a, account_id, &d, &after, err)) != SO_OK) return e;
    }
    rc = store_dist_waiting_done(db, account_id, w->deal_id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

struct waiting_ctx {
    struct arena *a;
    int64_t account_id;
    int64_t now;
    int assigned;
    struct so_error *err;
};

static enum db_rc waiting_tx(struct db *db, void *p)
{
    struct waiting_ctx *c = p;
    so_error_clear(c->err);
    c->assigned = 0;
    /* the order of locks is the applier's: ingest, then distribution, then rows */
    enum db_rc rc = store_lock_account_ingest(db, c->account_id);
    if (rc == DB_OK) rc = store_dist_lock(db, c->account_id, "lead");
    if (rc != DB_OK) return rc;
    struct so_dist_waiting *w;
    int n;
    rc = store_dist_waiting_list(db, c->a, c->account_id, 100, &w, &n);
    if (rc != DB_OK) return rc;
    bool stop = false;
    for (int i = 0; i < n && !stop; i++) {
        enum so_err e = assign_waiting(db, c->a, c->account_id, &w[i], c->now, &stop, c->err);
        if (e != SO_OK) return domain_tx_outcome(e, c->err);
        if (!stop) c->assigned++;
    }
    return DB_OK;
}

int domain_dist_assign_waiting(struct db *db, struct arena *a, int64_t account_id, int64_t now)
{
    struct so_error err = {0};
    struct dist_state st;
    /* most passes find nobody eligible (at night, say): a look without locks first */
    if (domain_dist_load(db, a, account_id, "lead", now, &st, &err) != SO_OK || st.eligible_count == 0) {
        so_error_clear(&err);
        return 0;
    }
    struct waiting_ctx c = {a, account_id, now, 0, &err};
    enum db_rc rc = db_tx(db, waiting_tx, &c);
    if (rc != DB_OK && rc != DB_UNAVAILABLE)
        log_event_steal(LOG_WARN, "waiting deals not assigned",
                        json_pack("{s:I, s:s}", "account_id", (json_int_t)account_id, "error", err.detail));
    so_error_clear(&err);
    return rc == DB_OK ? c.assigned : 0;
}

enum so_err domain_managers_eligibility(struct db *db, struct arena *a, int64_t account_id, int64_t now,
                                        struct so_manager *managers, int count, struct so_error *err)
{
    if (count == 0) return SO_OK;
    struct so_dist_settings s;
    enum db_rc rc = store_dist_settings_get(db, a, account_id, now, &s);
    if (rc != DB_OK) return domain_db_error(rc, err);
    struct working_hours wh;
    working_hours_from_text(s.working_hours, &wh);
    bool off = !working_hours_contains(&wh, s.local_dow, s.local_minute);
    for (int i = 0; i < count; i++) {
        struct so_manager *m = &managers[i];
        struct dist_candidate c = {.manager_id = m->id,
                                   .role = m->role,
                                   .active = m->active,
                                   .enabled = m->distribution_enabled,
                                   .pool_user = m->pool_user,
                                   .in_focus = m->in_focus,
                                   .weight = m->weight};
        m->ineligible_reason = dist_ineligible_reason(&c, off);
        m->eligible = m->ineligible_reason == NULL;
    }
    return SO_OK;
}

enum so_err domain_dist_settings_put(struct db *db, int64_t account_id, const struct so_dist_settings *s,
                                     int64_t now, struct so_error *err)
{
    enum db_rc rc = store_dist_settings_put(db, account_id, s, now);
    if (rc == DB_OK) rc = db_notify(db, STORE_INBOX_CHANNEL); /* someone may be eligible now */
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}
