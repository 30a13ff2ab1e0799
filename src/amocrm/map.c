/* amoCRM webhook bodies to salesops events (amocrm_map.h). The rules are API.md "amoCRM", the fields those of
 * the amoCRM FORMAT.md. Whatever cannot be mapped is counted and skipped: one bad lead must not lose the rest
 * of the body, and a body is never retried into a different result. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "salesops/amocrm_map.h"
#include "salesops/timeutil.h"

#define ID_LEN   24 /* INT64_MAX has 19 digits */
#define TIME_LEN 32
/* The last second RFC 3339 can write (9999-12-31T23:59:59Z): larger "unix times" are not times. */
#define MAX_UNIX INT64_C(253402300799)

enum field { FIELD_ABSENT, FIELD_OK, FIELD_BAD };

struct mapper {
    json_t *events;
    const char *prefix;
    int64_t received_at;
    struct amo_map_stats stats;
    bool oom;
};

enum lead_action {
    LEAD_ADD,
    LEAD_STATUS,
    LEAD_RESPONSIBLE,
    LEAD_UPDATE,
    LEAD_DELETE,
    LEAD_RESTORE,
    LEAD_NOTE
};
/* The limits of the event format (src/domain/events.c): mapped events must pass its parser. */
#define NAME_MAX 255
#define TEXT_MAX 10000
#define PRICE_MAX 1000000000000000LL
#define DURATION_MAX 86400

static const char *const lead_actions[] = {
    [LEAD_ADD] = "add",       [LEAD_STATUS] = "status", [LEAD_RESPONSIBLE] = "responsible",
    [LEAD_UPDATE] = "update", [LEAD_DELETE] = "delete", [LEAD_RESTORE] = "restore",
    [LEAD_NOTE] = "note",
};

enum task_action { TASK_ADD, TASK_UPDATE, TASK_DELETE };
static const char *const task_actions[] = {
    [TASK_ADD] = "add", [TASK_UPDATE] = "update", [TASK_DELETE] = "delete"};

/* Entities amoCRM sends that salesops does not use (companies also come under contacts). */
static const char *const unused_entities[] = {"contacts", "companies", "unsorted", "talk",
                                              "message",  "catalogs",  "customers"};

static int find_name(const char *const *names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) return (int)i;
    return -1;
}
#define FIND(names, name) find_name(names, sizeof names / sizeof names[0], name)

/* Decimal digits only (no sign, spaces or fraction), at most max. */
static bool parse_digits(const char *s, int64_t max, int64_t *out)
{
    int64_t n = 0;
    if (s == NULL || *s == '\0') return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        int digit = *s - '0';
        if (n > (max - digit) / 10) return false;
        n = n * 10 + digit;
    }
    *out = n;
    return true;
}

/* An amoCRM id: a positive decimal integer, written back without leading zeros; "" and "0" mean none. */
static enum field id_field(json_t *entity, const char *key, char out[ID_LEN])
{
    json_t *value = json_object_get(entity, key);
    int64_t n;
    if (value == NULL) return FIELD_ABSENT;
    if (!json_is_string(value)) return FIELD_BAD;
    if (json_string_value(value)[0] == '\0') return FIELD_ABSENT;
    if (!parse_digits(json_string_value(value), INT64_MAX, &n)) return FIELD_BAD;
    if (n == 0) return FIELD_ABSENT;
    snprintf(out, ID_LEN, "%" PRId64, n);
    return FIELD_OK;
}

/* Unix seconds. Anything else ("2022-09-01 22:20:00", in the account's unknown zone; 0) reads as absent. */
static bool unix_field(json_t *entity, const char *key, int64_t *out)
{
    int64_t t;
    /* the first day of 1970 is no real time of a CRM: read as absent (events need a later one) */
    if (!parse_digits(json_string_value(json_object_get(entity, key)), MAX_UNIX, &t) || t < 86400) return false;
    *out = t;
    return true;
}

static int64_t event_time(json_t *entity, int64_t received_at)
{
    static const char *const keys[] = {"updated_at", "last_modified", "created_at"};
    int64_t t;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (unix_field(entity, keys[i], &t)) return t;
    return received_at;
}

/* A string cut to at most max_chars characters (UTF-8 code points), at a character boundary: the limits of
 * the event format (names 255, texts 10,000), so that a long amoCRM text is kept, shortened, not dropped. */
static json_t *text_value(const char *s, size_t max_chars)
{
    size_t chars = 0, i = 0;
    for (; s[i] != '\0'; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars++ == max_chars) break;
    return json_stringn(s, i);
}

static void set_new(struct mapper *m, json_t *object, const char *key, json_t *value)
{
    if (json_object_set_new(object, key, value) != 0) m->oom = true;
}

static void set_time(struct mapper *m, json_t *object, const char *key, int64_t t)
{
    char text[TIME_LEN];
    so_format_time(t, text, sizeof text);
    set_new(m, object, key, json_string(text));
}

/* entity[key] as data[as]; false when it is not an id, or missing and required. */
static bool copy_id(struct mapper *m, json_t *entity, const char *key, bool required, json_t *data,
                    const char *as)
{
    char id[ID_LEN];
    enum field f = id_field(entity, key, id);
    if (f == FIELD_OK) set_new(m, data, as, json_string(id));
    return f == FIELD_OK || (f == FIELD_ABSENT && !required);
}

/* entity[key] as data[as], or fallback when absent (nothing when fallback is NULL). */
static bool copy_text(struct mapper *m, json_t *entity, const char *key, const char *fallback, json_t *data,
                      const char *as)
{
    json_t *value = json_object_get(entity, key);
    if (value != NULL && !json_is_string(value)) return false;
    const char *text = value != NULL ? json_string_value(value) : fallback;
    if (text != NULL) set_new(m, data, as, text_value(text, TEXT_MAX));
    return true;
}

/* A lead's name. deal.created needs one: a lead saved without a name is "#<id>". An empty name in an update
 * is left out rather than blanking the deal's. */
static bool copy_name(struct mapper *m, json_t *lead, bool creating, json_t *data)
{
    json_t *value = json_object_get(lead, "name");
    if (value != NULL && !json_is_string(value)) return false;
    const char *name = json_string_value(value);
    if (name != NULL && *name != '\0')
        set_new(m, data, "name", text_value(name, NAME_MAX));
    else if (creating)
        set_new(m, data, "name", json_sprintf("#%s", json_string_value(json_object_get(data, "deal"))));
    return true;
}

/* A whole amount; "" is 0. Absent: 0 when required (deal.created), else left out. */
static bool copy_price(struct mapper *m, json_t *entity, bool required, json_t *data)
{
    json_t *value = json_object_get(entity, "price");
    int64_t price = 0;
    if (value == NULL && !required) return true;
    if (value != NULL) {
        const char *text = json_string_value(value);
        if (text == NULL || (*text != '\0' && !parse_digits(text, PRICE_MAX, &price))) return false;
    }
    set_new(m, data, "price", json_integer((json_int_t)price));
    return true;
}

/* Appends {id, type, at, data}; takes data. */
static void emit(struct mapper *m, const char *type, int64_t at, json_t *data)
{
    json_t *event = json_object();
    set_new(m, event, "id", json_sprintf("%s:%zu", m->prefix, json_array_size(m->events)));
    set_new(m, event, "type", json_string(type));
    set_time(m, event, "at", at);
    set_new(m, event, "data", data);
    if (json_array_append_new(m->events, event) != 0) m->oom = true;
}

static void skip(struct mapper *m, json_t *data, json_t *more)
{
    json_decref(data);
    json_decref(more);
    m->stats.unknown++;
}

static void map_lead(struct mapper *m, enum lead_action action, json_t *lead)
{
    json_t *data = json_object();
    const char *type = NULL;
    bool ok = json_is_object(lead) && copy_id(m, lead, "id", true, data, "deal");
    switch (action) {
    case LEAD_ADD:
        type = "deal.created";
        ok = ok && copy_name(m, lead, true, data) && copy_price(m, lead, true, data) &&
             copy_id(m, lead, "pipeline_id", true, data, "pipeline") &&
             copy_id(m, lead, "status_id", false, data, "stage") &&
             copy_id(m, lead, "responsible_user_id", false, data, "manager");
        break;
    case LEAD_STATUS:
        /* 142 and 143 stay as they are: every amoCRM pipeline's won and lost stage */
        type = "deal.stage_changed";
        ok = ok && copy_id(m, lead, "pipeline_id", false, data, "pipeline") &&
             copy_id(m, lead, "status_id", true, data, "stage");
        break;
    case LEAD_RESPONSIBLE:
        type = "deal.responsible_changed";
        ok = ok && copy_id(m, lead, "responsible_user_id", true, data, "manager");
        break;
    case LEAD_UPDATE:
        /* amoCRM sends the whole lead on any change: its stage and responsible apply only when they differ
         * from the stored state (and the body is newer), which only the domain can tell */
        type = "deal.updated";
        ok = ok && copy_name(m, lead, false, data) && copy_price(m, lead, false, data) &&
             copy_id(m, lead, "status_id", false, data, "stage") &&
             copy_id(m, lead, "pipeline_id", false, data, "pipeline") &&
             copy_id(m, lead, "responsible_user_id", false, data, "manager");
        if (ok && (json_object_get(data, "stage") || json_object_get(data, "pipeline") ||
                   json_object_get(data, "manager")))
            set_new(m, data, "if_changed", json_true());
        break;
    case LEAD_DELETE:
        type = "deal.deleted";
        break;
    case LEAD_RESTORE:
        type = "deal.restored";
        break;
    case LEAD_NOTE:
        ok = false; /* notes go through map_lead_note */
        break;
    }
    ok = ok && copy_id(m, lead, "modified_user_id", false, data, "actor");
    if (!ok) {
        skip(m, data, NULL);
        return;
    }
    emit(m, type, event_time(lead, m->received_at), data);
}

/* params[duration] and params[call_status] (4: a conversation took place); without them the connector reads
 * the call later. */
static void copy_call_details(struct mapper *m, json_t *note, json_t *data)
{
    json_t *params = json_object_get(note, "params");
    int64_t duration = 0, status = 0;
    bool has_duration =
        parse_digits(json_string_value(json_object_get(params, "duration")), INT32_MAX, &duration);
    bool has_status =
        parse_digits(json_string_value(json_object_get(params, "call_status")), INT32_MAX, &status);
    set_new(m, data, "duration_s", json_integer((json_int_t)(duration > DURATION_MAX ? DURATION_MAX : duration)));
    set_new(m, data, "answered", json_boolean(has_status && status == 4));
    if (!has_duration || !has_status) set_new(m, data, "details_pending", json_true());
}

/* leads[note][N][note][...], or leads[note][N][...] without the inner level. */
static void map_lead_note(struct mapper *m, json_t *item)
{
    json_t *note = json_object_get(item, "note");
    if (!json_is_object(note)) note = item;
    char element_type[ID_LEN];
    enum field et = id_field(note, "element_type", element_type);
    if (json_is_object(note) && et == FIELD_OK && strcmp(element_type, "2") != 0) {
        m->stats.ignored++;
        return;
    }
    const char *note_type = json_string_value(json_object_get(note, "note_type"));
    const char *direction = NULL;
    if (note_type != NULL && (!strcmp(note_type, "10") || !strcmp(note_type, "call_in"))) direction = "in";
    if (note_type != NULL && (!strcmp(note_type, "11") || !strcmp(note_type, "call_out"))) direction = "out";

    json_t *data = json_object();
    const char *type;
    bool ok = json_is_object(note) && et != FIELD_BAD;
    if (direction != NULL) {
        /* its manager (the caller) is the actor: call.logged takes no separate "actor" */
        type = "call.logged";
        ok = ok && copy_id(m, note, "id", true, data, "call") &&
             copy_id(m, note, "created_by", true, data, "manager") &&
             copy_id(m, note, "element_id", false, data, "deal");
        if (ok) {
            set_new(m, data, "direction", json_string(direction));
            copy_call_details(m, note, data);
        }
    } else {
        type = "note.added";
        ok = ok && copy_id(m, note, "id", true, data, "note") &&
             copy_id(m, note, "element_id", true, data, "deal") &&
             copy_text(m, note, "text", "", data, "text") &&
             copy_id(m, note, "created_by", false, data, "manager") &&
             copy_id(m, note, "created_by", false, data, "actor");
    }
    if (!ok) {
        skip(m, data, NULL);
        return;
    }
    int64_t at = m->received_at; /* a call starts at its note's creation */
    unix_field(note, "created_at", &at);
    emit(m, type, at, data);
}

/* modified_by, else the responsible. */
static bool copy_task_actor(struct mapper *m, json_t *task, json_t *data)
{
    char id[ID_LEN];
    enum field f = id_field(task, "modified_by", id);
    if (f == FIELD_OK) set_new(m, data, "actor", json_string(id));
    if (f != FIELD_ABSENT) return f == FIELD_OK;
    return copy_id(m, task, "responsible_user_id", false, data, "actor");
}

static bool copy_due(struct mapper *m, json_t *task, bool required, json_t *data)
{
    int64_t due;
    if (!unix_field(task, "complete_before", &due)) return !required;
    set_time(m, data, "due_at", due);
    return true;
}

static const char *task_type(json_t *task)
{
    const char *id = json_string_value(json_object_get(task, "task_type"));
    if (id != NULL && strcmp(id, "1") == 0) return "call";
    if (id != NULL && strcmp(id, "2") == 0) return "meeting";
    return "other";
}

static bool is_one(json_t *task, const char *key)
{
    const char *value = json_string_value(json_object_get(task, key));
    return value != NULL && strcmp(value, "1") == 0;
}

static void map_task(struct mapper *m, enum task_action action, json_t *task)
{
    char element_type[ID_LEN];
    enum field et = id_field(task, "element_type", element_type);
    if (json_is_object(task) && et == FIELD_OK && strcmp(element_type, "2") != 0) {
        m->stats.ignored++; /* a task on a contact, company or customer */
        return;
    }
    json_t *data = json_object(), *completed = NULL;
    const char *type = NULL;
    bool ok = json_is_object(task) && et != FIELD_BAD && copy_id(m, task, "id", true, data, "task");
    switch (action) {
    case TASK_ADD:
        /* without element_type the element might be a contact: never take its id for a deal's */
        type = "task.created";
        ok = ok && et == FIELD_OK && copy_id(m, task, "element_id", true, data, "deal") &&
             copy_id(m, task, "responsible_user_id", false, data, "manager") &&
             copy_text(m, task, "text", NULL, data, "text") && copy_due(m, task, true, data);
        if (ok) set_new(m, data, "type", json_string(task_type(task)));
        break;
    case TASK_UPDATE:
        type = "task.updated";
        ok = ok && copy_id(m, task, "responsible_user_id", false, data, "manager") &&
             copy_due(m, task, false, data) && copy_text(m, task, "text", NULL, data, "text");
        if (ok && (is_one(task, "status") || is_one(task, "action_close"))) {
            completed = json_object();
            json_t *result = json_object_get(task, "result");
            const char *text = json_string_value(json_object_get(result, "text"));
            copy_id(m, task, "id", true, completed, "task");
            if (text != NULL && *text != '\0') set_new(m, completed, "result", text_value(text, TEXT_MAX));
            ok = copy_task_actor(m, task, completed);
        }
        break;
    case TASK_DELETE: /* carries only the id */
        type = "task.deleted";
        break;
    }
    ok = ok && copy_task_actor(m, task, data);
    if (!ok) {
        skip(m, data, completed);
        return;
    }
    int64_t at = event_time(task, m->received_at);
    emit(m, type, at, data);
    if (completed != NULL) emit(m, "task.completed", at, completed);
}

/* The entities of one action: an array, in index order. */
static void map_leads(struct mapper *m, enum lead_action action, json_t *items)
{
    size_t i;
    json_t *item;
    if (!json_is_array(items)) {
        m->stats.unknown++;
        return;
    }
    json_array_foreach(items, i, item)
    {
        if (action == LEAD_NOTE)
            map_lead_note(m, item);
        else
            map_lead(m, action, item);
    }
}

static void map_tasks(struct mapper *m, enum task_action action, json_t *items)
{
    size_t i;
    json_t *item;
    if (!json_is_array(items)) {
        m->stats.unknown++;
        return;
    }
    json_array_foreach(items, i, item) map_task(m, action, item);
}

static int count_items(json_t *items)
{
    return json_is_array(items) ? (int)json_array_size(items) : 1;
}

/* One per entity of every action under a top-level key. */
static int count_entities(json_t *part)
{
    const char *key;
    json_t *items;
    int n = 0;
    if (!json_is_object(part)) return count_items(part);
    json_object_foreach(part, key, items) n += count_items(items);
    return n;
}

static bool is_tasks(const char *key)
{
    return strcmp(key, "task") == 0 || strcmp(key, "tasks") == 0;
}

/* Every action but add (mapped first) of every entity, in the body's order. */
static void map_others(struct mapper *m, const char *entity, json_t *actions)
{
    const char *name;
    json_t *items;
    bool leads = strcmp(entity, "leads") == 0;
    if (!json_is_object(actions)) {
        m->stats.unknown += count_items(actions);
        return;
    }
    json_object_foreach(actions, name, items)
    {
        int action = leads ? FIND(lead_actions, name) : FIND(task_actions, name);
        if (action < 0)
            m->stats.unknown += count_items(items);
        else if (leads && action != LEAD_ADD)
            map_leads(m, (enum lead_action)action, items);
        else if (!leads && action != TASK_ADD)
            map_tasks(m, (enum task_action)action, items);
    }
}

json_t *amo_map_webhook(json_t *form, int64_t received_at, const char *id_prefix, struct amo_map_stats *stats,
                        struct so_error *err)
{
    struct mapper m = {.prefix = id_prefix != NULL ? id_prefix : "", .received_at = received_at};
    const char *key;
    json_t *part, *out = NULL;
    if (stats != NULL) *stats = (struct amo_map_stats){0};
    if (!json_is_object(form)) {
        if (err != NULL) so_fail(err, ERR_MALFORMED, "the webhook body is not a set of named fields");
        return NULL;
    }
    m.events = json_array();
    if (m.events == NULL) goto out;

    /* Creations first, leads before tasks: a task on a lead added in the same body must find its deal. */
    json_t *leads_add = json_object_get(json_object_get(form, "leads"), "add");
    if (leads_add != NULL) map_leads(&m, LEAD_ADD, leads_add);
    json_object_foreach(form, key, part)
    {
        json_t *tasks_add = json_object_get(part, "add");
        if (is_tasks(key) && tasks_add != NULL) map_tasks(&m, TASK_ADD, tasks_add);
    }
    json_object_foreach(form, key, part)
    {
        if (strcmp(key, "account") == 0) continue; /* who sent it, not an entity */
        if (strcmp(key, "leads") == 0 || is_tasks(key))
            map_others(&m, key, part);
        else if (FIND(unused_entities, key) >= 0)
            m.stats.ignored += count_entities(part);
        else
            m.stats.unknown += count_entities(part);
    }
    if (!m.oom) {
        m.stats.events = (int)json_array_size(m.events);
        if (stats != NULL) *stats = m.stats;
        out = json_incref(m.events);
    }
out:
    json_decref(m.events);
    if (out == NULL && err != NULL) so_fail(err, ERR_INTERNAL, "out of memory");
    return out;
}
