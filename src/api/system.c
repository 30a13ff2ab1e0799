/* Keyless routes: liveness, readiness, and the OpenAPI document. */
#include "common.h"
#include "handlers.h"
#include "salesops/embedded.h"

void handle_healthz(struct so_req *req)
{
    reply_json_steal(req, 200, json_pack("{s:s}", "status", "ok"));
}

void handle_readyz(struct so_req *req)
{
    if (req->shutting_down) {
        reply_error(req, ERR_SHUTTING_DOWN, "the service is shutting down");
        return;
    }
    struct db *db = db_thread(req->cfg->database_url);
    if (db == NULL) {
        reply_error(req, ERR_DB_UNAVAILABLE, "the database is unreachable");
        return;
    }
    enum db_rc rc = store_migrations_current(db);
    if (rc == DB_UNAVAILABLE && (db = db_thread(req->cfg->database_url)) != NULL)
        rc = store_migrations_current(db); /* this thread's connection predated an outage: one fresh try */
    if (rc == DB_OK)
        reply_json_steal(req, 200, json_pack("{s:s}", "status", "ready"));
    else if (rc == DB_NONE)
        reply_error(req, ERR_DB_UNAVAILABLE, "the database schema is not current: run `salesops migrate`");
    else
        reply_error(req, ERR_DB_UNAVAILABLE, "the database is unreachable");
}

void handle_openapi(struct so_req *req)
{
    reply_text(req, 200, "application/yaml; charset=utf-8", so_openapi[0].text, so_openapi[0].length);
}
