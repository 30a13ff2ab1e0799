/* Keyless routes: liveness, readiness, the OpenAPI document and the web page (which asks for a key itself). */
#include <string.h>
#include "common.h"
#include "handlers.h"
#include "salesops/buf.h"
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

static const char *asset_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

static bool reply_asset(struct so_req *req, const char *name)
{
    for (const struct so_embedded *f = so_web_assets; f->name != NULL; f++) {
        if (strcmp(f->name, name) != 0) continue;
        reply_text(req, 200, asset_type(name), f->text, f->length);
        return true;
    }
    return false;
}

void handle_page(struct so_req *req)
{
    if (!reply_asset(req, "index.html")) reply_error(req, ERR_NOT_FOUND, "this build has no web page");
}

void handle_asset(struct so_req *req)
{
    /* names are plain file names; "index.html" is served at / only */
    const char *name = req->params[0];
    if (strcmp(name, "index.html") == 0 || !reply_asset(req, name))
        reply_error(req, ERR_NOT_FOUND, "no such asset: %s", name);
}

static void gauge(struct so_buf *b, const char *name, const char *help, double value)
{
    so_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.15g\n", name, help, name, name, value);
}

/* GET /metrics: the HTTP layer's counters, then the database pool, then queue gauges read from the database
 * (salesops_database_up 0 and no queue gauges when it cannot be reached). Totals over all accounts only. */
void handle_metrics(struct so_req *req)
{
    struct so_buf b = {0};
    server_metrics_render(req, &b);
    struct db_pool_stats pool;
    db_pool_stats(&pool);
    gauge(&b, "salesops_db_connections_open", "Database connections of this process open now.", pool.open);
    so_buf_printf(&b,
                  "# HELP salesops_db_connections_opened_total Database connections opened.\n"
                  "# TYPE salesops_db_connections_opened_total counter\n"
                  "salesops_db_connections_opened_total %ld\n"
                  "# HELP salesops_db_connect_failures_total Attempts to connect that failed.\n"
                  "# TYPE salesops_db_connect_failures_total counter\n"
                  "salesops_db_connect_failures_total %ld\n"
                  "# HELP salesops_db_connections_replaced_total Connections dropped after they broke.\n"
                  "# TYPE salesops_db_connections_replaced_total counter\n"
                  "salesops_db_connections_replaced_total %ld\n",
                  pool.opened, pool.failed, pool.replaced);
    struct receipt_stats receipt;
    store_receipt_stats(&receipt);
    so_buf_printf(&b,
                  "# HELP salesops_webhook_receipt_batches_total Statements that stored received webhook bodies.\n"
                  "# TYPE salesops_webhook_receipt_batches_total counter\n"
                  "salesops_webhook_receipt_batches_total %ld\n"
                  "# HELP salesops_webhook_receipt_bodies_total Webhook bodies those statements took.\n"
                  "# TYPE salesops_webhook_receipt_bodies_total counter\n"
                  "salesops_webhook_receipt_bodies_total %ld\n"
                  "# HELP salesops_webhook_receipt_pace_ms The wait of each receipt batch for the appliers, as last set.\n"
                  "# TYPE salesops_webhook_receipt_pace_ms gauge\n"
                  "salesops_webhook_receipt_pace_ms %ld\n",
                  receipt.batches, receipt.bodies, receipt.pace_ms);
    long read_batches, reads;
    store_deal_read_stats(&read_batches, &reads);
    so_buf_printf(&b,
                  "# HELP salesops_deal_read_batches_total Statements that read deals asked for by GET /deals/{id}.\n"
                  "# TYPE salesops_deal_read_batches_total counter\n"
                  "salesops_deal_read_batches_total %ld\n"
                  "# HELP salesops_deal_reads_total Deal reads those statements took.\n"
                  "# TYPE salesops_deal_reads_total counter\n"
                  "salesops_deal_reads_total %ld\n",
                  read_batches, reads);
    struct db *db = db_thread(req->cfg->database_url);
    struct ops_gauges g = {0};
    enum db_rc rc = db ? store_ops_gauges(db, &g) : DB_UNAVAILABLE;
    if (rc == DB_UNAVAILABLE && db != NULL && (db = db_thread(req->cfg->database_url)) != NULL)
        rc = store_ops_gauges(db, &g); /* a connection that predated an outage: one fresh try */
    gauge(&b, "salesops_database_up", "1 when the queue gauges below could be read.", rc == DB_OK);
    if (rc == DB_OK) {
        so_buf_printf(&b, "# HELP salesops_inbox_depth Webhook bodies and events not yet applied, by state.\n"
                          "# TYPE salesops_inbox_depth gauge\n"
                          "salesops_inbox_depth{state=\"pending\"} %lld\n"
                          "salesops_inbox_depth{state=\"waiting\"} %lld\n"
                          "salesops_inbox_depth{state=\"failed\"} %lld\n",
                      (long long)g.inbox_pending, (long long)g.inbox_waiting, (long long)g.inbox_failed);
        gauge(&b, "salesops_inbox_oldest_age_seconds",
              "Age of the oldest body or event still pending or waiting (0: none).", g.inbox_oldest_age_s);
        gauge(&b, "salesops_applier_lag_seconds",
              "Age of the oldest pending body that is due: how far the appliers are behind (0: none).",
              g.applier_lag_s);
        gauge(&b, "salesops_outbox_backlog", "amoCRM writes waiting to be delivered.", (double)g.outbox_pending);
        gauge(&b, "salesops_outbox_oldest_age_seconds", "Age of the oldest undelivered amoCRM write (0: none).",
              g.outbox_oldest_age_s);
        gauge(&b, "salesops_outbox_dead_letters", "amoCRM writes given up after their retries.",
              (double)g.outbox_dead);
        so_buf_printf(&b,
                      "# HELP salesops_jobs Background work in the database, by queue and state.\n"
                      "# TYPE salesops_jobs gauge\n"
                      "salesops_jobs{queue=\"inbox\",state=\"pending\"} %lld\n"
                      "salesops_jobs{queue=\"inbox\",state=\"waiting\"} %lld\n"
                      "salesops_jobs{queue=\"inbox\",state=\"failed\"} %lld\n"
                      "salesops_jobs{queue=\"outbox\",state=\"pending\"} %lld\n"
                      "salesops_jobs{queue=\"outbox\",state=\"dead\"} %lld\n"
                      "salesops_jobs{queue=\"amocrm_loss_reads\",state=\"pending\"} %lld\n"
                      "salesops_jobs{queue=\"amocrm_loss_reads\",state=\"dead\"} %lld\n"
                      "salesops_jobs{queue=\"amocrm_call_reads\",state=\"pending\"} %lld\n"
                      "salesops_jobs{queue=\"amocrm_call_reads\",state=\"dead\"} %lld\n"
                      "salesops_jobs{queue=\"distribution_waiting\",state=\"pending\"} %lld\n"
                      "salesops_jobs{queue=\"rejection_reviews\",state=\"pending\"} %lld\n",
                      (long long)g.inbox_pending, (long long)g.inbox_waiting, (long long)g.inbox_failed,
                      (long long)g.outbox_pending, (long long)g.outbox_dead, (long long)g.loss_reads_pending,
                      (long long)g.loss_reads_dead, (long long)g.call_reads_pending, (long long)g.call_reads_dead,
                      (long long)g.distribution_waiting, (long long)g.reviews_pending);
        gauge(&b, "salesops_focus_sessions_active", "Focus sessions running now.", (double)g.focus_active);
    }
    if (b.failed) {
        so_buf_free(&b);
        reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    so_buf_free(&b);
}
