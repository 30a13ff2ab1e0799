/* Events: strict parsing, and the one apply for every door (POST /events, amoCRM webhooks, import). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "salesops/timeutil.h"
#include "salesops/events.h"
#include "salesops/validate.h"

#define EXT_MAX        128
#define NAME_MAX_CHARS 255
#define TEXT_MAX_CHARS 10000
#define PRICE_MAX      1000000000000000LL

static const char *const type_names[EV_TYPE_COUNT + 1] = {"manager.upserted",
                                                          "deal.created",
                                                          "deal.updated",
                                                          "deal.stage_changed",
                                                          "deal.responsible_changed",
                                                          "deal.deleted",
                                                          "deal.restored",
                                                          "task.created",
                                                          "task.updated",
                                                          "task.completed",
                                                          "task.deleted",
                                                          "call.logged",
                                                          "note.added",
                                                          NULL};

const char *event_type_name(enum event_type type)
{
    return type_names[type];
}

bool event_is_creation(enum event_type type)
{
    return type == EV_MANAGER_UPSERTED || type == EV_DEAL_CREATED || type == EV_TASK_CREATED;
}

/* The data fields of every type, by name; a type lists the ones it takes. */
enum field {
    D_DEAL,
    D_PIPELINE,
    D_STAGE,
    D_LOSS_REASON,
    D_MANAGER,
    D_TASK,
    D_CALL,
    D_NOTE,
    D_NAME,
    D_PRICE,
    D_ROLE,
    D_ACTIVE,
    D_TYPE,
    D_TEXT,
    D_DUE_AT,
    D_RESULT,
    D_DIRECTION,
    D_DURATION,
    D_ANSWERED,
    /* internal: mapped amoCRM events only */
    D_IF_CHANGED,
    D_ACTOR,
    D_DETAILS_PENDING,
    D_COUNT
};
#define INTERNAL_FIRST D_IF_CHANGED

static const char *const roles[] = {"manager", "head", "admin", NULL};
static const char *const task_types[] = {"call", "meeting", "follow_up", "other", NULL};
static const char *const directions[] = {"in", "out", NULL};

static const struct field_spec fields[D_COUNT] = {
    [D_DEAL] = {"deal", F_STRING, 0, 1, EXT_MAX, NULL},
    [D_PIPELINE] = {"pipeline", F_STRING, 0, 1, EXT_MAX, NULL},
    [D_STAGE] = {"stage", F_STRING, 0, 1, EXT_MAX, NULL},
    [D_LOSS_REASON] = {"loss_reason", F_STRING, F_NULLABLE, 1, EXT_MAX, NULL},
    [D_MANAGER] = {"manager", F_STRING, F_NULLABLE, 1, EXT_MAX, NULL},
    [D_TASK] = {"task", F_STRING, 0, 1, EXT_MAX, NULL},
    [D_CALL] = {"call", F_STRING, 0, 1, EXT_MAX, NULL},
    [D_NOTE] = {"note", F_STRING, 0, 1, EXT_MAX, NULL},
    [D_NAME] = {"name", F_STRING, 0, 1, NAME_MAX_CHARS, NULL},
    [D_PRICE] = {"price", F_INT, 0, 0, PRICE_MAX, NULL},
    [D_ROLE] = {"role", F_ENUM, 0, 0, 0, roles},
    [D_ACTIVE] = {"active", F_BOOL, 0, 0, 0, NULL},
    [D_TYPE] = {"type", F_ENUM, 0, 0, 0, task_types},
    [D_TEXT] = {"text", F_STRING, F_NULLABLE, 0, TEXT_MAX_CHARS, NULL},
    [D_DUE_AT] = {"due_at", F_TIME, 0, 0, 0, NULL},
    [D_RESULT] = {"result", F_STRING, F_NULLABLE, 0, TEXT_MAX_CHARS, NULL},
    [D_DIRECTION] = {"direction", F_ENUM, 0, 0, 0, directions},
    [D_DURATION] = {"duration_s", F_INT, 0, 0, 86400, NULL},
    [D_ANSWERED] = {"answered", F_BOOL, 0, 0, 0, NULL},
    [D_IF_CHANGED] = {"if_changed", F_BOOL, 0, 0, 0, NULL},
    [D_ACTOR] = {"actor", F_STRING, 0, 1, EXT_MAX, NULL},
    [D_DETAILS_PENDING] = {"details_pending", F_BOOL, 0, 0, 0, NULL},
};

/* Per type: the fields it takes (R: required, O: optional); internal fields are added for mapped events. */
#define R 2
#define O 1
static const unsigned char takes[EV_TYPE_COUNT][D_COUNT] = {
    [EV_MANAGER_UPSERTED] = {[D_MANAGER] = R, [D_NAME] = R, [D_ROLE] = O, [D_ACTIVE] = O},
    [EV_DEAL_CREATED] = {[D_DEAL] = R,
                         [D_NAME] = R,
                         [D_PRICE] = R,
                         [D_PIPELINE] = R,
                         [D_STAGE] = O,
                         [D_MANAGER] = O,
                         [D_ACTOR] = O},
    [EV_DEAL_UPDATED] = {[D_DEAL] = R, [D_NAME] = O, [D_PRICE] = O, [D_ACTOR] = O, [D_IF_CHANGED] = O},
    [EV_DEAL_STAGE_CHANGED] =
        {[D_DEAL] = R, [D_PIPELINE] = O, [D_STAGE] = R, [D_LOSS_REASON] = O, [D_ACTOR] = O},
    [EV_DEAL_RESPONSIBLE_CHANGED] = {[D_DEAL] = R, [D_MANAGER] = R, [D_ACTOR] = O},
    [EV_DEAL_DELETED] = {[D_DEAL] = R, [D_ACTOR] = O},
    [EV_DEAL_RESTORED] = {[D_DEAL] = R, [D_ACTOR] = O},
    [EV_TASK_CREATED] = {[D_TASK] = R,
                         [D_DEAL] = R,
                         [D_MANAGER] = O,
                         [D_TYPE] = R,
                         [D_TEXT] = O,
                         [D_DUE_AT] = R,
                         [D_ACTOR] = O},
    [EV_TASK_UPDATED] = {[D_TASK] = R, [D_MANAGER] = O, [D_DUE_AT] = O, [D_TEXT] = O, [D_ACTOR] = O},
    [EV_TASK_COMPLETED] = {[D_TASK] = R, [D_RESULT] = O, [D_ACTOR] = O},
    [EV_TASK_DELETED] = {[D_TASK] = R, [D_ACTOR] = O},
    [EV_CALL_LOGGED] = {[D_CALL] = R,
                        [D_MANAGER] = R,
                        [D_DEAL] = O,
                        [D_DIRECTION] = R,
                        [D_DURATION] = R,
                        [D_ANSWERED] = R,
                        [D_DETAILS_PENDING] = O},
    [EV_NOTE_ADDED] = {[D_NOTE] = R, [D_DEAL] = R, [D_TEXT] = R, [D_MANAGER] = O, [D_ACTOR] = O},
};
/* An amoCRM lead update may carry stage, pipeline and responsible (applied only when they differ). */
static bool takes_field(enum event_type type, int f, bool internal)
{
    if (takes[type][f]) return f < INTERNAL_FIRST || internal;
    return internal && type == EV_DEAL_UPDATED && (f == D_STAGE || f == D_PIPELINE || f == D_MANAGER);
}

static enum so_err data_error(struct so_error *err, struct so_error *inner)
{
    /* name the fields as data.<name> */
    json_t *e;
    size_t i;
    json_array_foreach(inner->errors, i, e)
    {
        char field[96];
        snprintf(field, sizeof field, "data.%s", json_string_value(json_object_get(e, "field")));
        so_field_error(err, field, "%s", json_string_value(json_object_get(e, "message")));
    }
    so_error_clear(inner);
    return ERR_VALIDATION;
}

enum so_err event_parse(json_t *ev, bool internal, struct so_event *out, struct so_error *err)
{
    enum { ID, TYPE, AT, DATA };
    static const struct field_spec top[] = {
        [ID] = {"id", F_STRING, F_REQUIRED, 1, EVENT_ID_MAX_CHARS, NULL},
        [TYPE] = {"type", F_ENUM, F_REQUIRED, 0, 0, type_names},
        [AT] = {"at", F_TIME, F_REQUIRED, 0, 0, NULL},
        [DATA] = {"data", F_JSON, F_REQUIRED, 0, 0, NULL},
    };
    memset(out, 0, sizeof *out);
    if (!json_is_object(ev)) return so_field_error(err, "(event)", "must be a JSON object");
    struct field_value v[4];
    if (validate_fields(ev, top, 4, v, err) != SO_OK) return ERR_VALIDATION;
    out->id = v[ID].s;
    out->type = (enum event_type)v[TYPE].i;
    out->at = v[AT].i;
    if (!json_is_object(v[DATA].j)) return so_field_error(err, "data", "must be a JSON object");
    /* the spec of this type: its fields, required or not */
    struct field_spec spec[D_COUNT];
    int index[D_COUNT], n = 0;
    for (int f = 0; f < D_COUNT; f++) {
        if (!takes_field(out->type, f, internal)) continue;
        spec[n] = fields[f];
        /* a required field is never null (deal.created's optional manager may be: unassigned) */
        spec[n].flags = takes[out->type][f] == R ? F_REQUIRED : (spec[n].flags & F_NULLABLE);
        index[f] = n++;
    }
    struct field_value dv[D_COUNT];
    struct so_error inner = {0};
    if (validate_fields(v[DATA].j, spec, (size_t)n, dv, &inner) != SO_OK) return data_error(err, &inner);
#define GIVEN(f) (takes_field(out->type, f, internal) && dv[index[f]].present && !dv[index[f]].is_null)
#define STR(f)   (GIVEN(f) ? dv[index[f]].s : NULL)
    out->deal = STR(D_DEAL);
    out->pipeline = STR(D_PIPELINE);
    out->stage = STR(D_STAGE);
    out->loss_reason = STR(D_LOSS_REASON);
    out->manager = STR(D_MANAGER);
    out->has_manager = takes_field(out->type, D_MANAGER, internal) && dv[index[D_MANAGER]].present;
    out->task = STR(D_TASK);
    out->call = STR(D_CALL);
    out->note = STR(D_NOTE);
    out->name = STR(D_NAME);
    out->has_name = GIVEN(D_NAME);
    out->role = STR(D_ROLE);
    out->task_type = STR(D_TYPE);
    out->text = STR(D_TEXT);
    out->has_text = takes_field(out->type, D_TEXT, internal) && dv[index[D_TEXT]].present;
    out->result = STR(D_RESULT);
    out->direction = STR(D_DIRECTION);
    out->actor = STR(D_ACTOR);
    out->has_price = GIVEN(D_PRICE);
    out->price = out->has_price ? dv[index[D_PRICE]].i : 0;
    out->has_due = GIVEN(D_DUE_AT);
    out->due_at = out->has_due ? dv[index[D_DUE_AT]].i : 0;
    out->has_active = GIVEN(D_ACTIVE);
    out->active = out->has_active && dv[index[D_ACTIVE]].b;
    out->duration_s = GIVEN(D_DURATION) ? dv[index[D_DURATION]].i : 0;
    out->answered = GIVEN(D_ANSWERED) && dv[index[D_ANSWERED]].b;
    out->if_changed = GIVEN(D_IF_CHANGED) && dv[index[D_IF_CHANGED]].b;
    out->details_pending = GIVEN(D_DETAILS_PENDING) && dv[index[D_DETAILS_PENDING]].b;
    out->from_amocrm = internal;
#undef STR
#undef GIVEN
    return SO_OK;
}

/* ---- apply ---- */

struct apply_ctx {
    struct db *db;
    struct arena *a;
    int64_t account_id;
    const struct so_event *ev;
    struct event_cache *cache; /* may be NULL */
    struct event_result *result;
    struct so_error *err;
};

enum { CACHED_MANAGER, CACHED_POOL_USER, CACHED_PIPELINE, CACHED_STAGE, CACHED_FIRST_OPEN_STAGE, CACHED_LOSS_REASON };

void event_cache_clear(struct event_cache *cache)
{
    if (cache) {
        cache->count = cache->next = 0;
        cache->none_waiting = false;
        cache->held = NULL;
        cache->held_count = 0;
        cache->absent = NULL;
        cache->absent_count = 0;
    }
}

static int by_ext(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int absent_by_ext(const void *key, const void *entry)
{
    return strcmp(key, ((const struct absent_deal *)entry)->ext);
}

enum so_err event_cache_deals_absent(struct db *db, struct arena *a, int64_t account_id, struct event_cache *cache,
                                     const char **exts, int n, struct so_error *err)
{
    if (cache == NULL || !cache->optimistic || n == 0) return SO_OK;
    qsort(exts, (size_t)n, sizeof *exts, by_ext);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || strcmp(exts[i], exts[m - 1]) != 0) exts[m++] = exts[i];
    bool *absent = arena_alloc(a, sizeof *absent * (size_t)m);
    struct absent_deal *list = arena_alloc(a, sizeof *list * (size_t)m);
    if (absent == NULL || list == NULL) return so_fail(err, ERR_INTERNAL, "out of memory");
    enum db_rc rc = store_deals_absent(db, account_id, exts, m, absent);
    if (rc != DB_OK) return domain_db_error(rc, err);
    int k = 0;
    for (int i = 0; i < m; i++)
        if (absent[i]) list[k++] = (struct absent_deal){exts[i], false}; /* still sorted */
    cache->absent = list;
    cache->absent_count = k;
    return SO_OK;
}

/* The entry of a deal the transaction began without, or NULL. */
static struct absent_deal *absent_entry(const struct event_cache *cache, const char *ext)
{
    if (cache == NULL || !cache->optimistic || cache->absent_count == 0) return NULL;
    return bsearch(ext, cache->absent, (size_t)cache->absent_count, sizeof *cache->absent, absent_by_ext);
}

/* Deal creations held at most, before they are inserted anyway. */
#define HELD_MAX 64

enum so_err event_cache_flush(struct db *db, struct event_cache *cache, struct so_error *err)
{
    if (cache == NULL || cache->held_count == 0) return SO_OK;
    int n = cache->held_count;
    cache->held_count = 0;
    enum db_rc rc = store_deals_insert(db, cache->held_account, cache->held, n, NULL);
    if (rc == DB_OK) return SO_OK;
    if (rc == DB_RETRY || rc == DB_UNAVAILABLE) return domain_db_error(rc, err);
    /* which creation failed is not known here: each is applied again in a savepoint of its own */
    cache->optimistic = false;
    err->retry = true;
    return so_fail(err, ERR_CONFLICT, "held deal creations failed; the batch is applied again, event by event");
}

static bool held(const struct event_cache *cache, const char *ext)
{
    for (int i = 0; cache != NULL && i < cache->held_count; i++)
        if (cache->held[i].external_id && strcmp(cache->held[i].external_id, ext) == 0) return true;
    return false;
}

/* A plain creation (not distributed, not lost, nothing waiting to wake) is held, to be inserted with the others
 * of the transaction in one statement: a statement per deal costs PostgreSQL several times as much. */
static enum so_err hold_creation(struct apply_ctx *c, const struct deal_change *chg, const struct so_stage *stage)
{
    struct event_cache *cache = c->cache;
    if (cache->held_count == HELD_MAX) {
        enum so_err e = event_cache_flush(c->db, cache, c->err);
        if (e != SO_OK) return e;
    }
    if (cache->held == NULL && (cache->held = arena_alloc(c->a, sizeof *cache->held * HELD_MAX)) == NULL)
        return so_fail(c->err, ERR_INTERNAL, "out of memory");
    struct so_deal d = domain_deal_new(chg, stage);
    d.external_id = arena_strdup(c->a, d.external_id);
    d.name = arena_strdup(c->a, d.name);
    if ((chg->external_id && d.external_id == NULL) || (chg->name && d.name == NULL))
        return so_fail(c->err, ERR_INTERNAL, "out of memory");
    cache->held_account = c->account_id;
    cache->held[cache->held_count++] = d;
    return SO_OK;
}

static const struct event_cache_entry *cache_get(const struct apply_ctx *c, int kind, int64_t scope,
                                                 const char *ext)
{
    if (c->cache == NULL) return NULL;
    for (int i = 0; i < c->cache->count; i++) {
        const struct event_cache_entry *x = &c->cache->e[i];
        if (x->kind == kind && x->scope == scope && strcmp(x->ext, ext) == 0) return x;
    }
    return NULL;
}

static void cache_put(struct apply_ctx *c, int kind, int64_t scope, const char *ext, int64_t id,
                      const struct so_stage *stage)
{
    struct event_cache *cache = c->cache;
    if (cache == NULL || strlen(ext) >= sizeof cache->e[0].ext) return;
    struct event_cache_entry *x = &cache->e[cache->next];
    cache->next = (cache->next + 1) % EVENT_CACHE_SIZE;
    if (cache->count < EVENT_CACHE_SIZE) cache->count++;
    x->kind = kind;
    x->scope = scope;
    strcpy(x->ext, ext);
    x->id = id;
    if (stage) x->stage = *stage;
}

/* An id by external id, from the cache or the database (DB_NONE: none such). */
static enum db_rc id_by_external(struct apply_ctx *c, int cached, enum so_kind kind, const char *ext, int64_t *id)
{
    const struct event_cache_entry *hit = cache_get(c, cached, 0, ext);
    if (hit) {
        *id = hit->id;
        return DB_OK;
    }
    enum db_rc rc = store_id_by_external(c->db, c->account_id, kind, ext, id);
    if (rc == DB_OK) cache_put(c, cached, 0, ext, *id, NULL);
    return rc;
}

static enum db_rc manager_id(struct apply_ctx *c, const char *ext, int64_t *id)
{
    return id_by_external(c, CACHED_MANAGER, KIND_MANAGER, ext, id);
}

/* Whether a manager's new deals are distributed (a pool user), through the transaction's cache (no event
 * changes it). */
static enum so_err manager_pool_user(struct apply_ctx *c, int64_t manager_id, bool *pool_user)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)manager_id);
    const struct event_cache_entry *hit = cache_get(c, CACHED_POOL_USER, 0, key);
    if (hit) {
        *pool_user = hit->id != 0;
        return SO_OK;
    }
    struct so_manager m;
    enum db_rc rc = store_manager_get(c->db, c->a, c->account_id, manager_id, &m);
    if (rc != DB_OK) return domain_db_error(rc, c->err);
    *pool_user = m.pool_user;
    cache_put(c, CACHED_POOL_USER, 0, key, m.pool_user, NULL);
    return SO_OK;
}

static enum so_err db_fail(struct apply_ctx *c, enum db_rc rc)
{
    return domain_db_error(rc, c->err);
}

/* A catalog object (manager, pipeline, loss reason) by external id, as id_by_external. Not found: takes the
 * account's catalog lock and looks again, since a concurrent batch may have just created it; DB_NONE then
 * means create it now, under the lock. */
static enum db_rc catalog_id(struct apply_ctx *c, int cached, enum so_kind kind, const char *ext, int64_t *id)
{
    enum db_rc rc = id_by_external(c, cached, kind, ext, id);
    if (rc == DB_NONE && (rc = store_lock_catalog(c->db, c->account_id)) == DB_OK)
        rc = id_by_external(c, cached, kind, ext, id);
    return rc;
}

static enum so_err wait_for(struct apply_ctx *c, const char *kind, const char *ext)
{
    c->result->outcome = EVENT_WAITING;
    c->result->waits_kind = kind;
    c->result->waits_for = ext;
    return SO_OK;
}

/* A manager by external id; an unknown one becomes a placeholder (active, out of distribution). */
static enum so_err ensure_manager(struct apply_ctx *c, const char *ext, int64_t *id)
{
    enum db_rc rc = catalog_id(c, CACHED_MANAGER, KIND_MANAGER, ext, id);
    if (rc != DB_NONE) return rc == DB_OK ? SO_OK : db_fail(c, rc);
    struct so_manager m = {
        .external_id = ext, .name = ext, .role = "manager", .active = true, .weight = 1, .needs_setup = true};
    rc = store_manager_insert(c->db, c->account_id, &m, c->ev->at, id);
    if (rc == DB_OK) cache_put(c, CACHED_MANAGER, 0, ext, *id, NULL);
    return rc == DB_OK ? SO_OK : db_fail(c, rc);
}

static enum so_err ensure_loss_reason(struct apply_ctx *c, const char *ext, int64_t *id)
{
    enum db_rc rc = catalog_id(c, CACHED_LOSS_REASON, KIND_LOSS_REASON, ext, id);
    if (rc == DB_NONE) rc = store_loss_reason_insert(c->db, c->account_id, ext, ext, true, c->ev->at, id);
    return rc == DB_OK ? SO_OK : db_fail(c, rc);
}

/* A pipeline by external id; an unknown one becomes a placeholder with a won and a lost stage (named by
 * amoCRM's 142 and 143 when it came from amoCRM). */
static enum so_err ensure_pipeline(struct apply_ctx *c, const char *ext, int64_t *id)
{
    enum db_rc rc = catalog_id(c, CACHED_PIPELINE, KIND_PIPELINE, ext, id);
    if (rc != DB_NONE) return rc == DB_OK ? SO_OK : db_fail(c, rc);
    bool amo = c->ev->from_amocrm;
    rc = store_pipeline_insert(c->db, c->account_id, ext, ext, true, amo ? "amocrm" : NULL, c->ev->at, id);
    struct so_stage won = {.pipeline_id = *id,
                           .external_id = amo ? "142" : NULL,
                           .name = "Успешно реализовано",
                           .kind = STAGE_WON,
                           .position = 1};
    struct so_stage lost = {.pipeline_id = *id,
                            .external_id = amo ? "143" : NULL,
                            .name = "Закрыто и не реализовано",
                            .kind = STAGE_LOST,
                            .position = 2};
    int64_t sid;
    if (rc == DB_OK) rc = store_stage_insert(c->db, c->account_id, &won, &sid);
    if (rc == DB_OK) rc = store_stage_insert(c->db, c->account_id, &lost, &sid);
    if (rc == DB_OK) cache_put(c, CACHED_PIPELINE, 0, ext, *id, NULL);
    return rc == DB_OK ? SO_OK : db_fail(c, rc);
}

/* A stage of the pipeline: "won" and "lost" (and "142", "143" in pipelines from amoCRM) name its won and lost
 * stage; an unknown one becomes a placeholder open stage after the last open one. */
static enum so_err find_or_add_stage(struct apply_ctx *c, int64_t pipeline_id, const char *ext,
                                     struct so_stage *out)
{
    enum stage_kind kind = STAGE_OPEN;
    if (strcmp(ext, "won") == 0)
        kind = STAGE_WON;
    else if (strcmp(ext, "lost") == 0)
        kind = STAGE_LOST;
    else if (strcmp(ext, "142") == 0 || strcmp(ext, "143") == 0) {
        char crm[16];
        enum db_rc rc = store_pipeline_crm(c->db, c->account_id, pipeline_id, crm, sizeof crm);
        if (rc != DB_OK) return db_fail(c, rc);
        if (strcmp(crm, "amocrm") == 0) kind = ext[2] == '2' ? STAGE_WON : STAGE_LOST;
    }
    enum db_rc rc;
    if (kind != STAGE_OPEN) {
        rc = store_stage_first(c->db, c->a, c->account_id, pipeline_id, kind, out);
        return rc == DB_OK ? SO_OK : db_fail(c, rc);
    }
    rc = store_stage_by_external(c->db, c->a, c->account_id, pipeline_id, ext, out);
    if (rc == DB_NONE && (rc = store_lock_catalog(c->db, c->account_id)) == DB_OK)
        rc = store_stage_by_external(c->db, c->a, c->account_id, pipeline_id, ext, out);
    if (rc != DB_NONE) return rc == DB_OK ? SO_OK : db_fail(c, rc);
    int64_t id;
    rc = store_stage_append_open(c->db, c->account_id, pipeline_id, ext, ext, true, &id);
    if (rc == DB_OK) rc = store_stage_get(c->db, c->a, c->account_id, id, out);
    return rc == DB_OK ? SO_OK : db_fail(c, rc);
}

/* The same, through the transaction's cache. */
static enum so_err ensure_stage(struct apply_ctx *c, int64_t pipeline_id, const char *ext,
                                struct so_stage *out)
{
    const struct event_cache_entry *hit = cache_get(c, CACHED_STAGE, pipeline_id, ext);
    if (hit) {
        *out = hit->stage;
        return SO_OK;
    }
    enum so_err e = find_or_add_stage(c, pipeline_id, ext, out);
    if (e == SO_OK) cache_put(c, CACHED_STAGE, pipeline_id, ext, out->id, out);
    return e;
}

/* The pipeline's first open stage (a placeholder pipeline without one gets one), through the transaction's
 * cache: where a deal created without a stage starts. */
static enum so_err first_open_stage(struct apply_ctx *c, int64_t pipeline_id, struct so_stage *out)
{
    const struct event_cache_entry *hit = cache_get(c, CACHED_FIRST_OPEN_STAGE, pipeline_id, "");
    if (hit) {
        *out = hit->stage;
        return SO_OK;
    }
    enum so_err e = SO_OK;
    enum db_rc rc = store_stage_first(c->db, c->a, c->account_id, pipeline_id, STAGE_OPEN, out);
    if (rc == DB_NONE)
        e = ensure_stage(c, pipeline_id, "new", out);
    else if (rc != DB_OK)
        e = db_fail(c, rc);
    if (e == SO_OK) cache_put(c, CACHED_FIRST_OPEN_STAGE, pipeline_id, "", out->id, out);
    return e;
}

/* The deal the event is about (deleted ones too); *found false when it does not exist yet. */
static enum so_err find_deal(struct apply_ctx *c, const char *ext, struct so_deal *deal, bool *found)
{
    const struct absent_deal *none = absent_entry(c->cache, ext);
    if (none != NULL && !none->gone) { /* known not to exist: no statement */
        *found = false;
        return SO_OK;
    }
    enum so_err e = held(c->cache, ext) ? event_cache_flush(c->db, c->cache, c->err) : SO_OK;
    if (e != SO_OK) return e;
    enum db_rc rc = store_deal_get_any_by_external(c->db, c->a, c->account_id, ext, deal);
    *found = rc == DB_OK;
    return rc == DB_OK || rc == DB_NONE ? SO_OK : db_fail(c, rc);
}

/* The task the event is about (also of a deleted deal); *found false when it does not exist yet. */
static enum so_err find_task(struct apply_ctx *c, const char *ext, struct so_task *task, bool *found)
{
    enum db_rc rc = store_task_get_any_by_external(c->db, c->a, c->account_id, ext, task);
    *found = rc == DB_OK;
    return rc == DB_OK || rc == DB_NONE ? SO_OK : db_fail(c, rc);
}

/* Who acted, for focus mode: the mapped amoCRM actor, else the given manager (of a call or note), else 0 (the
 * deal's responsible). */
static int64_t event_actor(struct apply_ctx *c, int64_t given)
{
    int64_t id;
    if (c->ev->actor && manager_id(c, c->ev->actor, &id) == DB_OK)
        return id;
    return given;
}

static enum so_err apply_manager(struct apply_ctx *c)
{
    const struct so_event *ev = c->ev;
    int64_t id;
    enum db_rc rc = store_lock_catalog(c->db, c->account_id);
    if (rc != DB_OK) return db_fail(c, rc);
    rc = store_id_by_external(c->db, c->account_id, KIND_MANAGER, ev->manager, &id);
    struct so_manager m = {.external_id = ev->manager,
                           .name = ev->name,
                           .role = ev->role ? ev->role : "manager",
                           .active = ev->has_active ? ev->active : true,
                           .weight = 1};
    if (rc == DB_NONE) {
        rc = store_manager_insert(c->db, c->account_id, &m, ev->at, &id);
        return rc == DB_OK ? SO_OK : db_fail(c, rc);
    }
    if (rc == DB_OK) rc = store_manager_get(c->db, c->a, c->account_id, id, &m);
    if (rc != DB_OK) return db_fail(c, rc);
    m.name = ev->name;
    if (ev->role) m.role = ev->role;
    if (ev->has_active) m.active = ev->active;
    return domain_manager_update(c->db, c->account_id, &m, ev->at, c->err);
}

static enum so_err apply_deal_created(struct apply_ctx *c)
{
    const struct so_event *ev = c->ev;
    struct so_deal deal;
    bool found;
    enum so_err e = find_deal(c, ev->deal, &deal, &found);
    if (e != SO_OK) return e;
    if (found) { /* created before, by another event id: nothing to do */
        c->result->outcome = EVENT_IGNORED;
        return SO_OK;
    }
    int64_t pipeline_id, manager_id = 0, loss_reason_id = 0;
    struct so_stage stage;
    if ((e = ensure_pipeline(c, ev->pipeline, &pipeline_id)) != SO_OK) return e;
    e = ev->stage ? ensure_stage(c, pipeline_id, ev->stage, &stage) : first_open_stage(c, pipeline_id, &stage);
    if (e == SO_OK && ev->manager) e = ensure_manager(c, ev->manager, &manager_id);
    if (e != SO_OK) return e;
    struct deal_change chg = {.at = ev->at,
                              .external_id = ev->deal,
                              .set_name = true,
                              .name = ev->name,
                              .set_price = true,
                              .price = ev->price,
                              .set_stage = true,
                              .stage_id = stage.id,
                              .stage = &stage,
                              .set_manager = manager_id != 0,
                              .manager_id = manager_id,
                              .loss_reason_id = loss_reason_id};
    struct dist_outcome dist = {0};
    if (ev->live && stage.kind == STAGE_OPEN) {
        bool pool_user = false;
        if (manager_id != 0 && (e = manager_pool_user(c, manager_id, &pool_user)) != SO_OK) return e;
        domain_dist_wants_known(manager_id, pool_user, &dist);
    }
    struct so_deal created;
    bool lost = stage.kind == STAGE_LOST;
    struct absent_deal *was_absent = absent_entry(c->cache, ev->deal);
    if (was_absent) was_absent->gone = true; /* it exists from here on (held or inserted) */
    if (!dist.attempted && !lost && c->cache && c->cache->optimistic && c->cache->none_waiting)
        return hold_creation(c, &chg, &stage);
    if ((e = event_cache_flush(c->db, c->cache, c->err)) != SO_OK) return e;
    e = domain_deal_apply(c->db, c->a, c->account_id, &chg, dist.attempted || lost ? &created : NULL, c->err);
    if (e == SO_OK && dist.attempted)
        e = domain_dist_after_create(c->db, c->a, c->account_id, &created, &dist, so_now(), c->err);
    if (e == SO_OK && lost) /* created lost: a move into lost too */
        e = domain_rejection_after_loss(c->db, c->a, c->account_id, created.id, ev->at, so_now(), c->err);
    return e;
}

static enum so_err apply_deal_change(struct apply_ctx *c)
{
    const struct so_event *ev = c->ev;
    struct so_deal deal;
    bool found;
    enum so_err e = find_deal(c, ev->deal, &deal, &found);
    if (e != SO_OK) return e;
    if (!found) return wait_for(c, "deal", ev->deal);
    struct deal_change chg = {.deal_id = deal.id, .at = ev->at};
    struct so_stage stage;
    bool into_lost = false, reason_pending = false;
    switch (ev->type) {
    case EV_DEAL_UPDATED:
        chg.set_name = ev->has_name;
        chg.name = ev->name;
        chg.set_price = ev->has_price;
        chg.price = ev->price;
        /* an amoCRM lead update: stage and responsible only when they differ and the body is newer */
        if (ev->if_changed && ev->at >= deal.updated_at) {
            int64_t pipeline_id = deal.pipeline_id;
            if (ev->pipeline && (e = ensure_pipeline(c, ev->pipeline, &pipeline_id)) != SO_OK) return e;
            if (ev->stage && (e = ensure_stage(c, pipeline_id, ev->stage, &stage)) != SO_OK) return e;
            if (ev->stage && stage.id != deal.stage_id) {
                chg.set_stage = true;
                chg.stage_id = stage.id;
                chg.stage = &stage;
                into_lost = stage.kind == STAGE_LOST;
            }
            int64_t manager_id = 0;
            if (ev->manager && (e = ensure_manager(c, ev->manager, &manager_id)) != SO_OK) return e;
            if (ev->manager && manager_id != deal.manager_id) {
                chg.set_manager = true;
                chg.manager_id = manager_id;
            }
        }
        break;
    case EV_DEAL_STAGE_CHANGED: {
        int64_t pipeline_id = deal.pipeline_id;
        if (ev->pipeline && (e = ensure_pipeline(c, ev->pipeline, &pipeline_id)) != SO_OK) return e;
        if ((e = ensure_stage(c, pipeline_id, ev->stage, &stage)) != SO_OK) return e;
        chg.set_stage = true;
        chg.stage_id = stage.id;
        chg.stage = &stage;
        into_lost = stage.kind == STAGE_LOST;
        if (ev->loss_reason && stage.kind == STAGE_LOST &&
            (e = ensure_loss_reason(c, ev->loss_reason, &chg.loss_reason_id)) != SO_OK)
            return e;
        /* amoCRM's webhooks never carry the loss reason: the connector reads it (with an integration) */
        if (ev->from_amocrm && stage.kind == STAGE_LOST && ev->loss_reason == NULL &&
            stage.id != deal.stage_id) {
            if ((e = domain_amocrm_loss_read(c->db, c->a, c->account_id, deal.id, ev->deal, ev->at,
                                             &reason_pending, c->err)) != SO_OK)
                return e;
        }
        break;
    }
    case EV_DEAL_RESPONSIBLE_CHANGED:
        chg.set_manager = true;
        if ((e = ensure_manager(c, ev->manager, &chg.manager_id)) != SO_OK) return e;
        break;
    case EV_DEAL_DELETED:
    case EV_DEAL_RESTORED: {
        enum db_rc rc =
            store_deal_set_deleted(c->db, c->account_id, deal.id, ev->type == EV_DEAL_DELETED, ev->at);
        if (rc != DB_OK) return db_fail(c, rc);
        return ev->type == EV_DEAL_DELETED ? domain_focus_deal_left(c->db, c->a, c->account_id, deal.id, ev->at, c->err)
                                           : SO_OK;
    }
    default:
        break;
    }
    e = domain_deal_apply(c->db, c->a, c->account_id, &chg, NULL, c->err);
    if (e == SO_OK && chg.set_stage)
        e = domain_focus_activity(c->db, c->a, c->account_id, deal.id, event_actor(c, 0), ev->at, c->err);
    /* a loss is judged now, or (a webhook loss whose reason the connector reads) once its reason is read */
    if (e == SO_OK && into_lost && !reason_pending)
        e = domain_rejection_after_loss(c->db, c->a, c->account_id, deal.id, ev->at, so_now(), c->err);
    return e;
}

static enum so_err apply_task_created(struct apply_ctx *c)
{
    const struct so_event *ev = c->ev;
    struct so_task existing;
    bool found;
    enum so_err e = find_task(c, ev->task, &existing, &found);
    if (e != SO_OK) return e;
    if (found) {
        c->result->outcome = EVENT_IGNORED;
        return SO_OK;
    }
    struct so_deal deal;
    if ((e = find_deal(c, ev->deal, &deal, &found)) != SO_OK) return e;
    if (!found) return wait_for(c, "deal", ev->deal);
    /* the report of a task salesops itself sent to amoCRM moments ago takes that task over */
    int64_t inflight;
    enum db_rc rc = ev->from_amocrm ? store_task_match_inflight(c->db, c->account_id, deal.id, ev->task_type,
                                                                ev->text, &inflight)
                                    : DB_NONE;
    if (rc == DB_OK) rc = store_task_set_external(c->db, c->account_id, inflight, ev->task);
    if (rc != DB_NONE) return rc == DB_OK ? SO_OK : db_fail(c, rc);
    int64_t manager_id = deal.manager_id;
    if (ev->manager && (e = ensure_manager(c, ev->manager, &manager_id)) != SO_OK) return e;
    struct so_task t = {.external_id = ev->task,
                        .deal_id = deal.id,
                        .manager_id = manager_id,
                        .type = ev->task_type,
                        .text = ev->text ? ev->text : "",
                        .due_at = ev->due_at,
                        .created_at = ev->at};
    rc = store_task_insert(c->db, c->account_id, &t, &t.id);
    if (rc == DB_OK)
        rc =
            store_task_history_insert(c->db, c->account_id, t.id, ev->at, true, true, manager_id, ev->due_at);
    if (rc == DB_OK) rc = store_task_rebuild(c->db, c->account_id, t.id);
    return rc == DB_OK ? SO_OK : db_fail(c, rc);
}

static enum so_err apply_task_change(struct apply_ctx *c)
{
    const struct so_event *ev = c->ev;
    struct so_task t;
    bool found;
    enum so_err e = find_task(c, ev->task, &t, &found);
    if (e != SO_OK) return e;
    if (!found) return wait_for(c, "task", ev->task);
    enum db_rc rc = DB_OK;
    switch (ev->type) {
    case EV_TASK_UPDATED: {
        int64_t manager_id = 0;
        if (ev->manager && (e = ensure_manager(c, ev->manager, &manager_id)) != SO_OK) return e;
        if (ev->has_manager || ev->has_due)
            rc = store_task_history_insert(c->db, c->account_id, t.id, ev->at, false, ev->has_manager,
                                           manager_id, ev->has_due ? ev->due_at : 0);
        if (rc == DB_OK && (ev->has_manager || ev->has_due))
            rc = store_task_rebuild(c->db, c->account_id, t.id);
        if (rc == DB_OK && ev->has_text)
            rc = store_task_set_text(c->db, c->account_id, t.id, ev->text, ev->at);
        break;
    }
    case EV_TASK_COMPLETED:
        rc = store_task_set_completed(c->db, c->account_id, t.id, ev->result, ev->at);
        if (rc == DB_OK)
            return domain_focus_activity(c->db, c->a, c->account_id, t.deal_id, event_actor(c, 0), ev->at,
                                         c->err);
        break;
    case EV_TASK_DELETED:
        rc = store_task_set_deleted(c->db, c->account_id, t.id, ev->at);
        break;
    default:
        break;
    }
    return rc == DB_OK ? SO_OK : db_fail(c, rc);
}

static enum so_err apply_call(struct apply_ctx *c)
{
    const struct so_event *ev = c->ev;
    struct so_call call = {.external_id = ev->call,
                           .direction = ev->direction,
                           .started_at = ev->at,
                           .duration_s = (int)ev->duration_s,
                           .answered = ev->answered,
                           .created_at = ev->at};
    struct so_deal deal;
    bool found = true;
    enum so_err e = SO_OK;
    if (ev->deal && (e = find_deal(c, ev->deal, &deal, &found)) != SO_OK) return e;
    if (!found) return wait_for(c, "deal", ev->deal);
    call.deal_id = ev->deal ? deal.id : 0;
    if ((e = ensure_manager(c, ev->manager, &call.manager_id)) != SO_OK) return e;
    enum db_rc rc = store_call_upsert(c->db, c->account_id, &call, &call.id);
    if (rc != DB_OK) return db_fail(c, rc);
    if (call.deal_id != 0 &&
        (e = domain_focus_activity(c->db, c->a, c->account_id, call.deal_id, event_actor(c, call.manager_id),
                                   ev->at, c->err)) != SO_OK)
        return e;
    /* a call note without its duration and status: the connector reads them */
    if (ev->details_pending && ev->from_amocrm && ev->deal)
        return domain_amocrm_call_read(c->db, c->a, c->account_id, call.id, ev->deal, ev->call, c->err);
    return SO_OK;
}

static enum so_err apply_note(struct apply_ctx *c)
{
    const struct so_event *ev = c->ev;
    struct so_deal deal;
    bool found;
    enum so_err e = find_deal(c, ev->deal, &deal, &found);
    if (e != SO_OK) return e;
    if (!found) return wait_for(c, "deal", ev->deal);
    struct so_note n = {
        .external_id = ev->note, .deal_id = deal.id, .text = ev->text ? ev->text : "", .created_at = ev->at};
    if (ev->manager && (e = ensure_manager(c, ev->manager, &n.manager_id)) != SO_OK) return e;
    /* the report of a note salesops itself sent to amoCRM moments ago takes that note over */
    int64_t inflight;
    enum db_rc rc = ev->from_amocrm
                        ? store_note_match_inflight(c->db, c->account_id, deal.id, n.text, &inflight)
                        : DB_NONE;
    if (rc == DB_OK) rc = store_note_set_external(c->db, c->account_id, inflight, ev->note);
    if (rc != DB_OK && rc != DB_NONE) return db_fail(c, rc);
    rc = store_note_upsert(c->db, c->account_id, &n, &n.id);
    if (rc != DB_OK) return db_fail(c, rc);
    return domain_focus_activity(c->db, c->a, c->account_id, deal.id, event_actor(c, n.manager_id), ev->at, c->err);
}

enum so_err event_apply(struct db *db, struct arena *a, int64_t account_id, const struct so_event *ev,
                        struct event_cache *cache, struct event_result *result, struct so_error *err)
{
    struct apply_ctx c = {db, a, account_id, ev, cache, result, err};
    memset(result, 0, sizeof *result);
    result->outcome = EVENT_APPLIED;
    /* the deals held so far exist for any other kind of event */
    enum so_err e = ev->type == EV_DEAL_CREATED ? SO_OK : event_cache_flush(db, cache, err);
    if (e != SO_OK) return e;
    switch (ev->type) {
    case EV_MANAGER_UPSERTED:
        return apply_manager(&c);
    case EV_DEAL_CREATED:
        return apply_deal_created(&c);
    case EV_DEAL_UPDATED:
    case EV_DEAL_STAGE_CHANGED:
    case EV_DEAL_RESPONSIBLE_CHANGED:
    case EV_DEAL_DELETED:
    case EV_DEAL_RESTORED:
        return apply_deal_change(&c);
    case EV_TASK_CREATED:
        return apply_task_created(&c);
    case EV_TASK_UPDATED:
    case EV_TASK_COMPLETED:
    case EV_TASK_DELETED:
        return apply_task_change(&c);
    case EV_CALL_LOGGED:
        return apply_call(&c);
    case EV_NOTE_ADDED:
        return apply_note(&c);
    case EV_TYPE_COUNT:
        break;
    }
    return so_fail(err, ERR_INTERNAL, "unknown event type");
}
