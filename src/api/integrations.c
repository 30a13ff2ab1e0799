/* PUT/GET /integrations/amocrm: connect an account to amoCRM. The token is stored, never echoed or logged. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "common.h"
#include "handlers.h"

#define MAX_POOL_USERS 1000

static void reply_integration(struct so_req *req)
{
    struct so_integration integ;
    enum db_rc rc = store_integration_get(req->db, req->arena, req->auth.account_id, &integ);
    if (rc == DB_NONE) {
        reply_json_steal(req, 200,
                         json_pack("{s:n, s:n, s:[], s:b, s:n, s:n, s:{s:i, s:i}}", "subdomain", "base_url",
                                   "pool_user_ids", "connected", 0, "last_sync_at", "sync_error", "outbox",
                                   "pending", 0, "dead", 0));
        return;
    }
    int64_t pending = 0, dead = 0;
    if (rc == DB_OK) rc = store_outbox_counts(req->db, req->auth.account_id, &pending, &dead);
    if (rc != DB_OK) {
        reply_db(req, rc, "integration", 0);
        return;
    }
    json_t *pool = json_array();
    for (int i = 0; i < integ.pool_count; i++)
        json_array_append_new(pool, json_integer(integ.pool_user_ids[i]));
    reply_json_steal(req, 200,
                     json_pack("{s:s, s:s, s:o, s:b, s:o, s:o, s:{s:I, s:I}}", "subdomain", integ.subdomain,
                               "base_url", integ.base_url, "pool_user_ids", pool, "connected", 1,
                               "last_sync_at", json_time(integ.last_sync_at), "sync_error",
                               json_str_or_null(integ.sync_error), "outbox", "pending", (json_int_t)pending,
                               "dead", (json_int_t)dead));
}

void handle_integration_get(struct so_req *req)
{
    reply_integration(req);
}

static bool subdomain_ok(const char *s)
{
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-') return false;
    return true;
}

/* Whether the basic check already reported this field. */
static bool field_failed(const struct so_error *err, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(err->errors, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0) return true;
    }
    return false;
}

void handle_integration_put(struct so_req *req)
{
    enum { SUBDOMAIN, BASE_URL, ACCESS_TOKEN, POOL_USER_IDS };
    static const struct field_spec spec[] = {
        [SUBDOMAIN] = {"subdomain", F_STRING, F_REQUIRED, 1, 63, NULL},
        [BASE_URL] = {"base_url", F_STRING, F_NULLABLE, 8, 300, NULL},
        [ACCESS_TOKEN] = {"access_token", F_STRING, F_REQUIRED, 1, 4000, NULL},
        [POOL_USER_IDS] = {"pool_user_ids", F_JSON, 0, 0, 0, NULL},
    };
    /* every bad field is reported at once: the basic checks, then the ones on their contents */
    struct field_value v[COUNT_OF(spec)];
    validate_fields(req->body, spec, COUNT_OF(spec), v, &req->err);
    if (v[SUBDOMAIN].s != NULL && !field_failed(&req->err, "subdomain") && !subdomain_ok(v[SUBDOMAIN].s))
        so_field_error(&req->err, "subdomain", "must be lowercase letters, digits and '-'");
    const char *base = v[BASE_URL].s;
    if (base && !field_failed(&req->err, "base_url") && strncmp(base, "https://", 8) != 0 &&
        strncmp(base, "http://", 7) != 0)
        so_field_error(&req->err, "base_url", "must be an http(s) URL");
    int64_t pool[MAX_POOL_USERS];
    int n = 0;
    json_t *ids = v[POOL_USER_IDS].j;
    if (field_failed(&req->err, "pool_user_ids"))
        ids = NULL;
    else if (ids != NULL && (!json_is_array(ids) || json_array_size(ids) > MAX_POOL_USERS)) {
        so_field_error(&req->err, "pool_user_ids", "must be an array of at most %d amoCRM user ids",
                       MAX_POOL_USERS);
    } else if (ids != NULL) {
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id)
        {
            if (!json_is_integer(id) || json_integer_value(id) < 1) {
                so_field_error(&req->err, "pool_user_ids", "item %zu must be a positive integer", i);
                break;
            }
            pool[n++] = json_integer_value(id);
        }
    }
    if (req->err.code == ERR_VALIDATION) {
        reply_err(req);
        return;
    }
    char url[320];
    if (base == NULL) {
        snprintf(url, sizeof url, "https://%s.amocrm.ru", v[SUBDOMAIN].s);
        base = url;
    }
    enum db_rc rc = store_integration_put(req->db, req->auth.account_id, v[SUBDOMAIN].s, base,
                                          v[ACCESS_TOKEN].s, pool, n);
    if (rc != DB_OK) {
        reply_db(req, rc, "integration", 0);
        return;
    }
    db_notify(req->db, STORE_INBOX_CHANNEL); /* the connector syncs at once */
    reply_integration(req);
}
