/* What salesops changes on objects linked to amoCRM is queued for the connector to write back, so managers
 * see it where they work. Nothing is queued for accounts without an integration; a write for an object
 * without an amoCRM id is kept as `skipped` (and logged), not dead-lettered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "salesops/log.h"

static bool connected(struct db *db, struct arena *a, int64_t account_id, enum so_err *e,
                      struct so_error *err)
{
    struct so_integration integ;
    enum db_rc rc = store_integration_get(db, a, account_id, &integ);
    *e = rc == DB_OK || rc == DB_NONE ? SO_OK : domain_db_error(rc, err);
    return rc == DB_OK;
}

static enum so_err queue(struct db *db, int64_t account_id, const char *kind, int64_t object_id,
                         json_t *payload, const char *missing, struct so_error *err)
{
    char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(payload);
    char why[160] = "";
    if (missing != NULL) {
        snprintf(why, sizeof why, "not written to amoCRM: %s has no amoCRM id", missing);
        log_event_steal(LOG_INFO, "amoCRM write skipped",
                        json_pack("{s:I, s:s, s:I, s:s}", "account_id", (json_int_t)account_id, "kind", kind,
                                  "object_id", (json_int_t)object_id, "why", why));
    }
    enum db_rc rc =
        store_outbox_insert(db, account_id, kind, object_id, text ? text : "{}", missing ? why : NULL);
    free(text);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

static const char *manager_ext(struct db *db, struct arena *a, int64_t account_id, int64_t manager_id)
{
    struct so_manager m;
    if (manager_id == 0 || store_manager_get(db, a, account_id, manager_id, &m) != DB_OK) return NULL;
    return m.external_id;
}

enum so_err domain_outbox_deal(struct db *db, struct arena *a, int64_t account_id,
                               const struct so_deal *before, const struct so_deal *after,
                               struct so_error *err)
{
    enum so_err e;
    if (!connected(db, a, account_id, &e, err)) return e;
    if (after->manager_id != before->manager_id && after->manager_id != 0) {
        const char *user = manager_ext(db, a, account_id, after->manager_id);
        e = queue(db, account_id, "lead_responsible", after->id,
                  json_pack("{s:s?, s:s?}", "lead_id", after->external_id, "responsible_user_id", user),
                  after->external_id == NULL ? "the deal"
                  : user == NULL             ? "the manager"
                                             : NULL,
                  err);
        if (e != SO_OK) return e;
    }
    if (after->stage_id != before->stage_id) {
        struct so_stage stage;
        struct so_pipeline pipeline;
        enum db_rc rc = store_stage_get(db, a, account_id, after->stage_id, &stage);
        if (rc == DB_OK) rc = store_pipeline_get(db, a, account_id, after->pipeline_id, &pipeline);
        if (rc != DB_OK) return domain_db_error(rc, err);
        e = queue(db, account_id, "lead_status", after->id,
                  json_pack("{s:s?, s:s?, s:s?}", "lead_id", after->external_id, "status_id",
                            stage.external_id, "pipeline_id", pipeline.external_id),
                  after->external_id == NULL     ? "the deal"
                  : stage.external_id == NULL    ? "the stage"
                  : pipeline.external_id == NULL ? "the pipeline"
                                                 : NULL,
                  err);
    }
    return e;
}

enum so_err domain_outbox_task_add(struct db *db, struct arena *a, int64_t account_id,
                                   const struct so_task *task, struct so_error *err)
{
    enum so_err e;
    if (!connected(db, a, account_id, &e, err)) return e;
    struct so_deal deal;
    enum db_rc rc = store_deal_get(db, a, account_id, task->deal_id, false, &deal);
    if (rc != DB_OK) return domain_db_error(rc, err);
    const char *user = manager_ext(db, a, account_id, task->manager_id);
    /* amoCRM task types: 1 call, 2 meeting; the rest are follow-ups */
    int type = strcmp(task->type, "meeting") == 0 ? 2 : 1;
    return queue(db, account_id, "task_add", task->id,
                 json_pack("{s:s?, s:s?, s:i, s:s, s:I}", "lead_id", deal.external_id, "responsible_user_id",
                           user, "task_type_id", type, "text", task->text ? task->text : "", "complete_till",
                           (json_int_t)task->due_at),
                 deal.external_id == NULL ? "the deal" : NULL, err);
}

enum so_err domain_outbox_task_complete(struct db *db, struct arena *a, int64_t account_id,
                                        const struct so_task *task, struct so_error *err)
{
    enum so_err e;
    if (!connected(db, a, account_id, &e, err)) return e;
    return queue(
        db, account_id, "task_complete", task->id,
        json_pack("{s:s?, s:s}", "task_id", task->external_id, "result", task->result ? task->result : ""),
        task->external_id == NULL ? "the task" : NULL, err);
}

enum so_err domain_outbox_note_add(struct db *db, struct arena *a, int64_t account_id,
                                   const struct so_note *note, struct so_error *err)
{
    enum so_err e;
    if (!connected(db, a, account_id, &e, err)) return e;
    struct so_deal deal;
    enum db_rc rc = store_deal_get(db, a, account_id, note->deal_id, false, &deal);
    if (rc != DB_OK) return domain_db_error(rc, err);
    return queue(db, account_id, "note_add", note->id,
                 json_pack("{s:s?, s:s}", "lead_id", deal.external_id, "text", note->text),
                 deal.external_id == NULL ? "the deal" : NULL, err);
}

enum so_err domain_amocrm_loss_read(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                    const char *lead_id, int64_t lost_at, bool *pending, struct so_error *err)
{
    enum so_err e;
    *pending = false;
    if (!connected(db, a, account_id, &e, err)) return e;
    enum db_rc rc = store_loss_read_insert(db, account_id, deal_id, lead_id, lost_at);
    *pending = rc == DB_OK;
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_amocrm_call_read(struct db *db, struct arena *a, int64_t account_id, int64_t call_id,
                                    const char *lead_id, const char *note_id, struct so_error *err)
{
    enum so_err e;
    if (!connected(db, a, account_id, &e, err)) return e;
    enum db_rc rc = store_call_read_insert(db, account_id, call_id, lead_id, note_id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}
