/* POST /webhooks/amocrm/{webhook_token}: amoCRM's account webhooks. The body is stored before the answer
 * and applied in the background (amoCRM wants an answer within 2 seconds). Only account[subdomain] is
 * decoded here. */
#include <string.h>
#include <strings.h>
#include "common.h"
#include "handlers.h"
#include "salesops/amocrm.h"
#include "salesops/crypto.h"

void handle_webhook_amocrm(struct so_req *req)
{
    const char *token = req->params[0];
    uint8_t token_hash[SO_SHA256_LEN];
    so_sha256(token, strlen(token), token_hash);
    int64_t account_id;
    char subdomain[128];
    enum db_rc rc =
        store_account_by_webhook_token(req->db, token_hash, &account_id, subdomain, sizeof subdomain);
    if (rc == DB_NONE) {
        reply_error(req, ERR_UNAUTHORIZED, "unknown webhook token");
        return;
    }
    if (rc != DB_OK) {
        reply_db(req, rc, "account", 0);
        return;
    }
    static const char form[] = "application/x-www-form-urlencoded";
    const char *ct = req->content_type;
    if (ct == NULL || strncasecmp(ct, form, sizeof form - 1) != 0 ||
        (ct[sizeof form - 1] != '\0' && ct[sizeof form - 1] != ';')) {
        reply_error(req, ERR_UNSUPPORTED_MEDIA_TYPE, "amoCRM webhooks are application/x-www-form-urlencoded");
        return;
    }
    if (subdomain[0] != '\0') {
        char sent[128];
        if (amo_form_lookup(req->raw_body, req->raw_len, "account[subdomain]", sent, sizeof sent) == 1 &&
            strcmp(sent, subdomain) != 0) {
            reply_error(req, ERR_FORBIDDEN, "the body is from another amoCRM account");
            return;
        }
    }
    uint8_t body_hash[SO_SHA256_LEN];
    so_sha256(req->raw_body, req->raw_len, body_hash);
    int64_t id = 0;
    rc = store_inbox_store_webhook(req->db, account_id, req->raw_body, body_hash, &id);
    if (rc == DB_NONE) {
        reply_json_steal(req, 200, json_pack("{s:s}", "status", "duplicate"));
        return;
    }
    if (rc != DB_OK) {
        reply_db(req, rc, "inbox", 0);
        return;
    }
    reply_json_steal(req, 200, json_pack("{s:s, s:I}", "status", "accepted", "inbox_id", (json_int_t)id));
}
