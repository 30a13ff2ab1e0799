/* The amoCRM connector's jobs: sync set-up data, read loss reasons, deliver the outbox. HTTP calls are made
 * outside any transaction; every call first takes a slot of the account's 7-a-second budget. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jobs.h"
#include "salesops/amocrm_client.h"
#include "salesops/domain.h"
#include "salesops/log.h"
#include "salesops/timeutil.h"

#define MAX_ATTEMPTS 8
#define OUTBOX_BATCH 10

static void take_slot(struct db *db, int64_t account_id)
{
    int64_t wait_ms = 0;
    if (store_integration_slot(db, account_id, &wait_ms) == DB_OK && wait_ms > 0) {
        so_sleep_ms((long)wait_ms);
    }
}

static void log_call(const char *what, int64_t account_id, const struct amo_result *res)
{
    log_event_steal(LOG_WARN, "amoCRM call failed",
                    json_pack("{s:s, s:I, s:s, s:i, s:s}", "call", what, "account_id", (json_int_t)account_id,
                              "outcome", amo_outcome_name(res->outcome), "status", (int)res->status, "error",
                              res->error));
}

/* ---- sync ---- */

struct sync_data {
    int64_t account_id;
    struct amo_pipeline *pipelines;
    size_t pipeline_count;
    struct amo_loss_reason *reasons;
    size_t reason_count;
    struct amo_user *users;
    size_t user_count;
    const struct so_integration *integration;
};

static int by_sort(const void *x, const void *y)
{
    const struct amo_status *a = x, *b = y;
    return (a->sort > b->sort) - (a->sort < b->sort);
}

static enum db_rc apply_sync(struct db *db, void *p)
{
    struct sync_data *d = p;
    enum db_rc rc = DB_OK;
    char ext[32];
    for (size_t i = 0; i < d->pipeline_count && rc == DB_OK; i++) {
        struct amo_pipeline *pl = &d->pipelines[i];
        int64_t pipeline_id;
        snprintf(ext, sizeof ext, "%lld", (long long)pl->id);
        rc = store_sync_pipeline(db, d->account_id, ext, pl->name, &pipeline_id);
        /* funnel order: open statuses by sort, then won (142), then lost (143) */
        qsort(pl->statuses, pl->status_count, sizeof *pl->statuses, by_sort);
        int position = 0;
        for (int pass = 0; pass < 3 && rc == DB_OK; pass++)
            for (size_t k = 0; k < pl->status_count && rc == DB_OK; k++) {
                const struct amo_status *st = &pl->statuses[k];
                enum stage_kind kind = st->id == 142 ? STAGE_WON : st->id == 143 ? STAGE_LOST : STAGE_OPEN;
                if ((int)kind != pass) continue;
                snprintf(ext, sizeof ext, "%lld", (long long)st->id);
                rc = store_sync_stage(db, d->account_id, pipeline_id, ext, st->name, kind, ++position);
            }
    }
    for (size_t i = 0; i < d->reason_count && rc == DB_OK; i++) {
        snprintf(ext, sizeof ext, "%lld", (long long)d->reasons[i].id);
        rc = store_sync_loss_reason(db, d->account_id, ext, d->reasons[i].name);
    }
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < d->user_count && rc == DB_OK; i++) {
        const struct amo_user *u = &d->users[i];
        snprintf(ext, sizeof ext, "%lld", (long long)u->id);
        rc = store_sync_user(db, d->account_id, ext, u->name, u->email, u->is_active, u->is_admin, now);
    }
    if (rc == DB_OK)
        rc = store_sync_pool_users(db, d->account_id, d->integration->pool_user_ids,
                                   d->integration->pool_count);
    return rc;
}

int job_amocrm_sync(struct db *db)
{
    struct arena a = {0};
    struct so_integration integ;
    if (store_integration_claim_sync(db, &a, &integ) != DB_OK) {
        arena_release(&a);
        return 0;
    }
    struct amo_conn conn = {integ.base_url, integ.access_token, 10000};
    struct amo_result res = {0};
    struct sync_data d = {.account_id = integ.account_id, .integration = &integ};
    take_slot(db, integ.account_id);
    enum amo_outcome out = amo_get_pipelines(&conn, &d.pipelines, &d.pipeline_count, &res);
    if (out == AMO_OK) {
        take_slot(db, integ.account_id);
        out = amo_get_loss_reasons(&conn, &d.reasons, &d.reason_count, &res);
    }
    if (out == AMO_OK) {
        take_slot(db, integ.account_id);
        out = amo_get_users(&conn, &d.users, &d.user_count, &res);
    }
    enum db_rc rc = out == AMO_OK ? db_tx(db, apply_sync, &d) : DB_ERROR;
    if (out != AMO_OK) log_call("sync", integ.account_id, &res);
    char error[300] = "";
    if (out != AMO_OK)
        snprintf(error, sizeof error, "%s: %s", amo_outcome_name(out), res.error);
    else if (rc != DB_OK)
        snprintf(error, sizeof error, "could not store the synced data");
    store_integration_synced(db, integ.account_id, error[0] ? error : NULL);
    amo_pipelines_free(d.pipelines, d.pipeline_count);
    amo_loss_reasons_free(d.reasons, d.reason_count);
    amo_users_free(d.users, d.user_count);
    arena_release(&a);
    return 1;
}

/* ---- loss reasons of leads lost in amoCRM ---- */

static int backoff_seconds(int attempts, double retry_after)
{
    int s = 1 << (attempts < 10 ? attempts : 10);
    if (retry_after > s) s = (int)retry_after + 1;
    return s > 600 ? 600 : s;
}

struct loss_ctx {
    const struct so_loss_read *read;
    int64_t loss_reason_id; /* amoCRM's */
    const char *name;
    struct so_error err;
};

static enum db_rc apply_loss_reason(struct db *db, void *p)
{
    struct loss_ctx *c = p;
    so_error_clear(&c->err);
    int64_t reason = 0;
    enum db_rc rc = DB_OK;
    if (c->loss_reason_id != 0) {
        char ext[32];
        snprintf(ext, sizeof ext, "%lld", (long long)c->loss_reason_id);
        rc = store_id_by_external(db, c->read->account_id, KIND_LOSS_REASON, ext, &reason);
        if (rc == DB_NONE) {
            rc = store_sync_loss_reason(db, c->read->account_id, ext, c->name[0] ? c->name : ext);
            if (rc == DB_OK)
                rc = store_id_by_external(db, c->read->account_id, KIND_LOSS_REASON, ext, &reason);
        }
    }
    if (rc != DB_OK) return rc;
    struct arena a = {0};
    struct deal_change chg = {.deal_id = c->read->deal_id,
                              .at = c->read->lost_at,
                              .set_loss_reason = true,
                              .loss_reason_id = reason};
    enum so_err e = domain_deal_apply(db, &a, c->read->account_id, &chg, NULL, &c->err);
    if (e == SO_OK) /* the loss waited for its reason to be judged */
        e = domain_rejection_after_loss(db, &a, c->read->account_id, c->read->deal_id, c->read->lost_at, so_now(),
                                        &c->err);
    arena_release(&a);
    if (e == SO_OK) rc = store_loss_read_finish(db, c->read, "done", 0, NULL);
    return e == SO_OK ? rc : e == ERR_DB_UNAVAILABLE ? DB_UNAVAILABLE : DB_ERROR;
}

struct judge_ctx {
    const struct so_loss_read *read;
    struct so_error err;
};

static enum db_rc judge_tx(struct db *db, void *p)
{
    struct judge_ctx *c = p;
    so_error_clear(&c->err);
    struct arena a = {0};
    enum so_err e = domain_rejection_after_loss(db, &a, c->read->account_id, c->read->deal_id, c->read->lost_at,
                                                so_now(), &c->err);
    arena_release(&a);
    return domain_tx_outcome(e, &c->err);
}

/* A loss whose reason could not be read is judged without one (it qualifies only under "any"). */
static void judge_without_reason(struct db *db, const struct so_loss_read *read)
{
    struct judge_ctx c = {.read = read};
    db_tx(db, judge_tx, &c);
    so_error_clear(&c.err);
}

int job_amocrm_loss_reads(struct db *db)
{
    struct arena a = {0};
    struct so_loss_read read;
    struct so_integration integ;
    if (store_loss_read_claim(db, &a, &read) != DB_OK) {
        arena_release(&a);
        return 0;
    }
    if (store_integration_conn(db, &a, read.account_id, &integ) != DB_OK) {
        store_loss_read_finish(db, &read, "dead", 0, "the amoCRM integration is gone");
        judge_without_reason(db, &read);
        arena_release(&a);
        return 1;
    }
    struct amo_conn conn = {integ.base_url, integ.access_token, 10000};
    struct amo_result res = {0};
    char name[256] = "";
    struct loss_ctx c = {.read = &read, .name = name};
    take_slot(db, read.account_id);
    enum amo_outcome out = amo_get_lead_loss_reason(&conn, strtoll(read.lead_id, NULL, 10), &c.loss_reason_id,
                                                    name, sizeof name, &res);
    if (out == AMO_OK) {
        if (db_tx(db, apply_loss_reason, &c) != DB_OK)
            store_loss_read_finish(db, &read, "pending", backoff_seconds(read.attempts, 0), c.err.detail);
    } else {
        log_call("lead loss reason", read.account_id, &res);
        bool again = out == AMO_RETRY && read.attempts + 1 < MAX_ATTEMPTS;
        store_loss_read_finish(db, &read, again ? "pending" : "dead",
                               backoff_seconds(read.attempts, res.retry_after_s), res.error);
        if (!again) judge_without_reason(db, &read);
    }
    so_error_clear(&c.err);
    arena_release(&a);
    return 1;
}

/* ---- duration and status of call notes ---- */

int job_amocrm_call_reads(struct db *db)
{
    struct arena a = {0};
    struct so_call_read read;
    struct so_integration integ;
    if (store_call_read_claim(db, &a, &read) != DB_OK) {
        arena_release(&a);
        return 0;
    }
    if (store_integration_conn(db, &a, read.account_id, &integ) != DB_OK) {
        store_call_read_finish(db, &read, "dead", 0, "the amoCRM integration is gone");
        arena_release(&a);
        return 1;
    }
    struct amo_conn conn = {integ.base_url, integ.access_token, 10000};
    struct amo_result res = {0};
    long duration = 0;
    bool answered = false;
    take_slot(db, read.account_id);
    enum amo_outcome out = amo_get_call_note(&conn, strtoll(read.lead_id, NULL, 10),
                                             strtoll(read.note_id, NULL, 10), &duration, &answered, &res);
    if (out == AMO_OK &&
        store_call_set_details(db, read.account_id, read.call_id, (int)duration, answered) == DB_OK) {
        store_call_read_finish(db, &read, "done", 0, NULL);
    } else {
        if (out != AMO_OK) log_call("call note", read.account_id, &res);
        bool again = (out == AMO_RETRY || out == AMO_OK) && read.attempts + 1 < MAX_ATTEMPTS;
        store_call_read_finish(db, &read, again ? "pending" : "dead",
                               backoff_seconds(read.attempts, res.retry_after_s),
                               out == AMO_OK ? "could not store the call details" : res.error);
    }
    arena_release(&a);
    return 1;
}

/* ---- the outbox ---- */

static int64_t num(json_t *payload, const char *field)
{
    json_t *v = json_object_get(payload, field);
    if (json_is_integer(v)) return json_integer_value(v);
    return json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : 0;
}

static const char *text(json_t *payload, const char *field)
{
    json_t *v = json_object_get(payload, field);
    return json_is_string(v) ? json_string_value(v) : "";
}

static enum amo_outcome deliver(struct db *db, const struct amo_conn *conn, const struct so_outbox_row *row,
                                struct amo_result *res)
{
    json_error_t je;
    json_t *p = json_loads(row->payload, 0, &je);
    enum amo_outcome out = AMO_BAD;
    int64_t new_id = 0;
    char ext[32];
    if (p == NULL) {
        snprintf(res->error, sizeof res->error, "unreadable payload");
    } else if (strcmp(row->kind, "lead_responsible") == 0) {
        out = amo_patch_lead(conn, num(p, "lead_id"), 0, 0, num(p, "responsible_user_id"), res);
    } else if (strcmp(row->kind, "lead_status") == 0) {
        out = amo_patch_lead(conn, num(p, "lead_id"), num(p, "status_id"), num(p, "pipeline_id"), 0, res);
    } else if (strcmp(row->kind, "task_add") == 0) {
        out = amo_add_task(conn, num(p, "lead_id"), num(p, "responsible_user_id"), num(p, "task_type_id"),
                           text(p, "text"), num(p, "complete_till"), &new_id, res);
        snprintf(ext, sizeof ext, "%lld", (long long)new_id);
        if (out == AMO_OK && new_id) store_task_set_external(db, row->account_id, row->object_id, ext);
    } else if (strcmp(row->kind, "task_complete") == 0) {
        out = amo_complete_task(conn, num(p, "task_id"), text(p, "result"), res);
    } else if (strcmp(row->kind, "note_add") == 0) {
        out = amo_add_note(conn, num(p, "lead_id"), text(p, "text"), &new_id, res);
        snprintf(ext, sizeof ext, "%lld", (long long)new_id);
        if (out == AMO_OK && new_id) store_note_set_external(db, row->account_id, row->object_id, ext);
    }
    json_decref(p);
    return out;
}

int job_amocrm_outbox(struct db *db)
{
    struct arena a = {0};
    struct so_outbox_row *rows;
    int count = 0;
    if (store_outbox_claim(db, &a, OUTBOX_BATCH, &rows, &count) != DB_OK) count = 0;
    for (int i = 0; i < count; i++) {
        const struct so_outbox_row *row = &rows[i];
        struct so_integration integ;
        if (store_integration_conn(db, &a, row->account_id, &integ) != DB_OK) {
            store_outbox_finish(db, row->account_id, row->id, "dead", 0, "the amoCRM integration is gone");
            continue;
        }
        struct amo_conn conn = {integ.base_url, integ.access_token, 10000};
        struct amo_result res = {0};
        take_slot(db, row->account_id);
        enum amo_outcome out = deliver(db, &conn, row, &res);
        if (out == AMO_OK) {
            store_outbox_finish(db, row->account_id, row->id, "delivered", 0, NULL);
            continue;
        }
        log_call(row->kind, row->account_id, &res);
        bool again = out == AMO_RETRY && row->attempts + 1 < MAX_ATTEMPTS;
        store_outbox_finish(db, row->account_id, row->id, again ? "pending" : "dead",
                            backoff_seconds(row->attempts, res.retry_after_s), res.error);
    }
    arena_release(&a);
    return count;
}
