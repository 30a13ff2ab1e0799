#include <string.h>
#include "common.h"
#include "salesops/buf.h"
#include "handlers.h"

#define PRICE_MAX 1000000000000000LL

static const char *const statuses[] = {"open", "won", "lost", NULL};

static void reply_deal(struct so_req *req, int status, const struct so_deal *d)
{
    reply_json_steal(req, status, render_deal(d));
}

void handle_deal_create(struct so_req *req)
{
    enum { NAME, PRICE, PIPELINE_ID, STAGE_ID, MANAGER_ID, EXTERNAL_ID };
    static const struct field_spec spec[] = {
        [NAME] = {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
        [PRICE] = {"price", F_INT, F_REQUIRED, 0, PRICE_MAX, NULL},
        [PIPELINE_ID] = {"pipeline_id", F_ID, F_REQUIRED, 0, 0, NULL},
        [STAGE_ID] = {"stage_id", F_ID, F_NULLABLE, 0, 0, NULL},
        [MANAGER_ID] = {"manager_id", F_ID, F_NULLABLE, 0, 0, NULL},
        [EXTERNAL_ID] = {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct deal_create in = {.name = v[NAME].s,
                             .price = v[PRICE].i,
                             .pipeline_id = v[PIPELINE_ID].i,
                             .stage_id = v[STAGE_ID].is_null ? 0 : v[STAGE_ID].i,
                             .manager_id = v[MANAGER_ID].is_null ? 0 : v[MANAGER_ID].i,
                             .external_id = v[EXTERNAL_ID].s};
    struct so_deal d;
    struct dist_outcome dist = {0};
    if (domain_deal_create(req->db, req->arena, &req->auth, &in, req->now, &d, &dist, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    json_t *body = render_deal(&d);
    if (dist.attempted)
        json_object_set_new(body, "distribution",
                            json_pack("{s:b, s:o}", "assigned", dist.assigned, "reason",
                                      json_str_or_null(dist.assigned ? NULL : "no_eligible_manager")));
    reply_json_steal(req, 201, body);
}

void handle_deal_list(struct so_req *req)
{
    struct so_deal_filter f = {.status = -1};
    struct so_page page;
    const char *status = NULL;
    if (!query_page(req, &page) || !query_id(req, "manager_id", &f.manager_id) ||
        !query_id(req, "pipeline_id", &f.pipeline_id) || !query_id(req, "stage_id", &f.stage_id) ||
        !query_enum(req, "status", statuses, &status) || !query_time(req, "updated_since", &f.updated_since))
        return;
    if (status != NULL) f.status = status[0] == 'o' ? DEAL_OPEN : status[0] == 'w' ? DEAL_WON : DEAL_LOST;
    if (!scope_to_own(req, &f.manager_id, &page)) return;
    struct so_deal *items;
    int count;
    enum db_rc rc = store_deal_list(req->db, req->arena, req->auth.account_id, &f, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "deals", 0);
    else
        reply_items_text(req, items, count, sizeof *items, write_deal, &page);
}

/* The hottest read. The lookup is handed to the deal readers (store_deal_read_stats), which read the deals
 * asked for together in one statement, while this connection is suspended and its worker thread serves others. */
static void deal_read_done(void *ctx)
{
    so_req_resume(ctx);
}

static void deal_read_hand_over(struct so_req *req)
{
    deal_read_submit(req->defer_ctx);
}

static void deal_read_answer(struct so_req *req)
{
    struct so_deal_read *r = req->defer_ctx;
    if (domain_deal_seen(&req->auth, r->id, r->link.rc, &r->out, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    struct so_buf b = {0};
    write_deal(&b, &r->out); /* JSON text straight from the row, no objects */
    reply_buf(req, &b);
}

void handle_deal_get(struct so_req *req)
{
    int64_t id;
    if (!path_id(req, 0, KIND_DEAL, &id)) return;
    struct so_deal_read *r = arena_alloc(req->arena, sizeof *r);
    if (r == NULL) {
        reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    *r = (struct so_deal_read){
        .link = {.done = deal_read_done, .ctx = req}, .account_id = req->auth.account_id, .id = id, .arena = req->arena};
    so_req_defer(req, r, deal_read_hand_over, deal_read_answer);
}

void handle_deal_patch(struct so_req *req)
{
    enum { STAGE_ID, MANAGER_ID, NAME, PRICE };
    static const struct field_spec spec[] = {
        [STAGE_ID] = {"stage_id", F_ID, 0, 0, 0, NULL},
        [MANAGER_ID] = {"manager_id", F_ID, 0, 0, 0, NULL},
        [NAME] = {"name", F_STRING, 0, 1, NAME_MAX_CHARS, NULL},
        [PRICE] = {"price", F_INT, 0, 0, PRICE_MAX, NULL},
    };
    int64_t id;
    if (!path_id(req, 0, KIND_DEAL, &id)) return;
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct deal_patch in = {.set_stage = v[STAGE_ID].present,
                            .stage_id = v[STAGE_ID].i,
                            .set_manager = v[MANAGER_ID].present,
                            .manager_id = v[MANAGER_ID].i,
                            .set_name = v[NAME].present,
                            .name = v[NAME].s,
                            .set_price = v[PRICE].present,
                            .price = v[PRICE].i};
    struct so_deal d;
    if (domain_deal_patch(req->db, req->arena, &req->auth, id, &in, req->now, &d, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_deal(req, 200, &d);
}

void handle_deal_close(struct so_req *req)
{
    enum { OUTCOME, LOSS_REASON_ID };
    static const char *const outcomes[] = {"won", "lost", NULL};
    static const struct field_spec spec[] = {
        [OUTCOME] = {"outcome", F_ENUM, F_REQUIRED, 0, 0, outcomes},
        [LOSS_REASON_ID] = {"loss_reason_id", F_ID, F_NULLABLE, 0, 0, NULL},
    };
    int64_t id;
    if (!path_id(req, 0, KIND_DEAL, &id)) return;
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct so_deal d;
    if (domain_deal_close(req->db, req->arena, &req->auth, id, v[OUTCOME].i == 0 ? DEAL_WON : DEAL_LOST,
                          v[LOSS_REASON_ID].is_null ? 0 : v[LOSS_REASON_ID].i, req->now, &d,
                          &req->err) != SO_OK)
        reply_err(req);
    else
        reply_deal(req, 200, &d);
}

void handle_deal_reopen(struct so_req *req)
{
    enum { STAGE_ID, MANAGER_ID };
    static const struct field_spec spec[] = {
        [STAGE_ID] = {"stage_id", F_ID, F_REQUIRED, 0, 0, NULL},
        [MANAGER_ID] = {"manager_id", F_ID, 0, 0, 0, NULL},
    };
    int64_t id;
    if (!path_id(req, 0, KIND_DEAL, &id)) return;
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct so_deal d;
    if (domain_deal_reopen(req->db, req->arena, &req->auth, id, v[STAGE_ID].i, v[MANAGER_ID].i, req->now, &d,
                           &req->err) != SO_OK)
        reply_err(req);
    else
        reply_deal(req, 200, &d);
}

void handle_deal_history(struct so_req *req)
{
    int64_t id;
    struct so_deal d;
    struct so_page page;
    if (!path_id(req, 0, KIND_DEAL, &id) || !query_page(req, &page)) return;
    if (domain_deal_visible(req->db, req->arena, &req->auth, id, &d, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    struct so_history_row *rows;
    int count;
    enum db_rc rc = store_history_list(req->db, req->arena, req->auth.account_id, id, &page, &rows, &count);
    if (rc != DB_OK) {
        reply_db(req, rc, "history", id);
        return;
    }
    json_t *items = json_array();
    int shown = count > page.limit ? page.limit : count;
    for (int i = 0; i < shown; i++)
        json_array_append_new(items, render_history_row(&rows[i]));
    reply_page(req, items, count, &page, shown ? rows[shown - 1].id : 0, shown ? rows[shown - 1].at : 0);
}

void handle_note_create(struct so_req *req)
{
    enum { TEXT, MANAGER_ID };
    static const struct field_spec spec[] = {
        [TEXT] = {"text", F_STRING, F_REQUIRED, 1, TEXT_MAX_CHARS, NULL},
        [MANAGER_ID] = {"manager_id", F_ID, F_NULLABLE, 0, 0, NULL},
    };
    int64_t id;
    if (!path_id(req, 0, KIND_DEAL, &id)) return;
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct so_note n;
    if (domain_note_add(req->db, req->arena, &req->auth, id, v[TEXT].s,
                        v[MANAGER_ID].is_null ? 0 : v[MANAGER_ID].i, req->now, &n, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, 201, render_note(&n));
}

static json_t *render_note_item(const void *p)
{
    return render_note(p);
}

void handle_note_list(struct so_req *req)
{
    int64_t id;
    struct so_deal d;
    struct so_page page;
    if (!path_id(req, 0, KIND_DEAL, &id) || !query_page(req, &page)) return;
    if (domain_deal_visible(req->db, req->arena, &req->auth, id, &d, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    struct so_note *items;
    int count;
    enum db_rc rc = store_note_list(req->db, req->arena, req->auth.account_id, id, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "notes", id);
    else
        reply_items(req, items, count, sizeof *items, render_note_item, &page);
}
