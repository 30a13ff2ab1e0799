/* Objects to JSON, with the field names and order of API.md. */
#include <string.h>
#include "common.h"
#include "salesops/buf.h"

json_t *json_time(int64_t t)
{
    if (t == 0) return json_null();
    char buf[32];
    so_format_time(t, buf, sizeof buf);
    return json_string(buf);
}

json_t *json_id(int64_t id)
{
    return id ? json_integer(id) : json_null();
}

json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *render_account(const struct so_account *a)
{
    return json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)a->id, "name", a->name, "timezone",
                     a->timezone, "created_at", json_time(a->created_at));
}

json_t *render_api_key(const struct so_api_key *k)
{
    return json_pack("{s:I, s:s, s:o, s:s, s:o}", "id", (json_int_t)k->id, "role", so_role_name(k->role),
                     "manager_id", json_id(k->manager_id), "name", k->name, "created_at",
                     json_time(k->created_at));
}

json_t *render_manager(const struct so_manager *m)
{
    return json_pack("{s:I, s:o, s:s, s:o, s:s, s:b, s:b, s:i, s:b, s:b, s:b, s:o}", "id", (json_int_t)m->id,
                     "external_id", json_str_or_null(m->external_id), "name", m->name, "email",
                     json_str_or_null(m->email), "role", m->role, "active", m->active, "distribution_enabled",
                     m->distribution_enabled, "weight", m->weight, "needs_setup", m->needs_setup, "in_focus",
                     m->in_focus, "eligible", m->eligible, "created_at", json_time(m->created_at));
}

json_t *render_stage(const struct so_stage *s)
{
    return json_pack("{s:I, s:o, s:s, s:s, s:i, s:b}", "id", (json_int_t)s->id, "external_id",
                     json_str_or_null(s->external_id), "name", s->name, "kind", so_stage_kind_name(s->kind),
                     "position", s->position, "needs_setup", s->needs_setup);
}

json_t *render_pipeline(const struct so_pipeline *p)
{
    json_t *stages = json_array();
    for (int i = 0; i < p->stage_count; i++)
        json_array_append_new(stages, render_stage(&p->stages[i]));
    return json_pack("{s:I, s:o, s:s, s:b, s:o}", "id", (json_int_t)p->id, "external_id",
                     json_str_or_null(p->external_id), "name", p->name, "needs_setup", p->needs_setup,
                     "stages", stages);
}

json_t *render_loss_reason(const struct so_loss_reason *l)
{
    return json_pack("{s:I, s:o, s:s, s:b, s:o}", "id", (json_int_t)l->id, "external_id",
                     json_str_or_null(l->external_id), "name", l->name, "needs_setup", l->needs_setup,
                     "created_at", json_time(l->created_at));
}

json_t *render_deal(const struct so_deal *d)
{
    return json_pack("{s:I, s:o, s:s, s:I, s:I, s:I, s:s, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)d->id,
                     "external_id", json_str_or_null(d->external_id), "name", d->name, "price",
                     (json_int_t)d->price, "pipeline_id", (json_int_t)d->pipeline_id, "stage_id",
                     (json_int_t)d->stage_id, "status", so_deal_status_name(d->status), "manager_id",
                     json_id(d->manager_id), "loss_reason_id", json_id(d->loss_reason_id), "created_at",
                     json_time(d->created_at), "closed_at", json_time(d->closed_at), "updated_at",
                     json_time(d->updated_at));
}

/* Number fields, JSON text: an id or null for 0, a time or null for 0. */
static void put_id(struct so_buf *b, const char *key, int64_t id)
{
    if (id != 0)
        so_buf_printf(b, ",\"%s\":%lld", key, (long long)id);
    else
        so_buf_printf(b, ",\"%s\":null", key);
}

static void put_time(struct so_buf *b, const char *key, int64_t t)
{
    char when[32];
    if (t != 0) {
        so_format_time(t, when, sizeof when);
        so_buf_printf(b, ",\"%s\":\"%s\"", key, when);
    } else {
        so_buf_printf(b, ",\"%s\":null", key);
    }
}

void write_deal(struct so_buf *b, const void *item)
{
    const struct so_deal *d = item;
    so_buf_printf(b, "{\"id\":%lld,\"external_id\":", (long long)d->id);
    so_buf_json_string(b, d->external_id);
    so_buf_put(b, ",\"name\":", 8);
    so_buf_json_string(b, d->name);
    so_buf_printf(b, ",\"price\":%lld,\"pipeline_id\":%lld,\"stage_id\":%lld,\"status\":\"%s\"", (long long)d->price,
                  (long long)d->pipeline_id, (long long)d->stage_id, so_deal_status_name(d->status));
    put_id(b, "manager_id", d->manager_id);
    put_id(b, "loss_reason_id", d->loss_reason_id);
    put_time(b, "created_at", d->created_at);
    put_time(b, "closed_at", d->closed_at);
    put_time(b, "updated_at", d->updated_at);
    so_buf_put(b, "}", 1);
}

json_t *render_history_row(const struct so_history_row *h)
{
    return json_pack("{s:I, s:I, s:o, s:I, s:s, s:o, s:o, s:o, s:I}", "id", (json_int_t)h->id, "deal_id",
                     (json_int_t)h->deal_id, "from_stage_id", json_id(h->from_stage_id), "to_stage_id",
                     (json_int_t)h->to_stage_id, "status", so_deal_status_name(h->status), "at",
                     json_time(h->at), "manager_id", json_id(h->manager_id), "loss_reason_id",
                     json_id(h->loss_reason_id), "price", (json_int_t)h->price);
}

json_t *render_note(const struct so_note *n)
{
    return json_pack("{s:I, s:o, s:I, s:s, s:o, s:o}", "id", (json_int_t)n->id, "external_id",
                     json_str_or_null(n->external_id), "deal_id", (json_int_t)n->deal_id, "text", n->text,
                     "manager_id", json_id(n->manager_id), "created_at", json_time(n->created_at));
}

json_t *render_task(const struct so_task *t, int64_t now)
{
    return json_pack("{s:I, s:o, s:I, s:o, s:s, s:s, s:o, s:s, s:o, s:o, s:o}", "id", (json_int_t)t->id,
                     "external_id", json_str_or_null(t->external_id), "deal_id", (json_int_t)t->deal_id,
                     "manager_id", json_id(t->manager_id), "type", t->type, "text", t->text ? t->text : "",
                     "due_at", json_time(t->due_at), "state", so_task_state(t, now), "completed_at",
                     json_time(t->completed_at), "result", json_str_or_null(t->result), "created_at",
                     json_time(t->created_at));
}

json_t *render_call(const struct so_call *c)
{
    return json_pack("{s:I, s:o, s:I, s:o, s:s, s:o, s:i, s:b, s:o}", "id", (json_int_t)c->id, "external_id",
                     json_str_or_null(c->external_id), "manager_id", (json_int_t)c->manager_id, "deal_id",
                     json_id(c->deal_id), "direction", c->direction, "started_at", json_time(c->started_at),
                     "duration_s", c->duration_s, "answered", c->answered, "created_at",
                     json_time(c->created_at));
}

json_t *json_id_array(const int64_t *ids, int count)
{
    json_t *a = json_array();
    for (int i = 0; i < count; i++)
        json_array_append_new(a, json_integer((json_int_t)ids[i]));
    return a;
}

json_t *render_assignment(const struct so_assignment *x)
{
    return json_pack("{s:I, s:s, s:o, s:I, s:s, s:s, s:o}", "id", (json_int_t)x->id, "kind", x->kind, "deal_id",
                     json_id(x->deal_id), "manager_id", (json_int_t)x->manager_id, "reason", x->reason,
                     "strategy", x->strategy, "at", json_time(x->at));
}

static json_t *limit_json(int limit)
{
    return limit > 0 ? json_integer(limit) : json_null();
}

json_t *render_focus_filter(const struct so_focus_filter *f)
{
    return json_pack("{s:I, s:I, s:o, s:s, s:o, s:i, s:o}", "manager_id", (json_int_t)f->manager_id,
                     "pipeline_id", (json_int_t)f->pipeline_id, "stage_ids",
                     json_id_array(f->stage_ids, f->stage_count), "order", f->order, "limit",
                     limit_json(f->limit), "max_minutes", f->max_minutes, "updated_at", json_time(f->updated_at));
}

json_t *render_focus_session(const struct so_focus_session *s)
{
    json_t *items = json_array();
    for (int i = 0; i < s->item_count; i++)
        json_array_append_new(items, json_pack("{s:I, s:o}", "deal_id", (json_int_t)s->items[i].deal_id,
                                               "done_at", json_time(s->items[i].done_at)));
    return json_pack("{s:I, s:I, s:I, s:o, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:i, s:i}", "id",
                     (json_int_t)s->id, "manager_id", (json_int_t)s->manager_id, "pipeline_id",
                     (json_int_t)s->pipeline_id, "stage_ids", json_id_array(s->stage_ids, s->stage_count),
                     "order", s->order, "limit", limit_json(s->limit), "started_at", json_time(s->started_at),
                     "ends_by", json_time(s->ends_by), "ended_at", json_time(s->ended_at), "state",
                     s->ended_at ? "ended" : "active", "end_reason", json_str_or_null(s->end_reason), "items",
                     items, "done", s->done, "total", s->item_count);
}
