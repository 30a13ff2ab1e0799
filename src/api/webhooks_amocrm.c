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
    static const char form[] = "application/x-www-form-urlencoded";
    const char *ct = req->content_type;
    bool is_form = ct != NULL && strncasecmp(ct, form, sizeof form - 1) == 0 &&
                   (ct[sizeof form - 1] == '\0' || ct[sizeof form - 1] == ';');
    char sent[128];
    bool has_sent = is_form && amo_form_lookup(req->raw_body, req->raw_len, "account[subdomain]", sent,
                                               sizeof sent) == 1;
    uint8_t body_hash[SO_SHA256_LEN];
    so_sha256(req->raw_body, req->raw_len, body_hash);
    struct so_webhook_receipt got;
    /* one round trip: the token is checked and the body stored together (a body that is not a form is not) */
    enum db_rc rc = store_inbox_receive_webhook(req->db, token_hash, is_form, has_sent ? sent : NULL, req->raw_body,
                                                body_hash, &got);
    if (rc != DB_OK) {
        reply_db(req, rc, "inbox", 0);
        return;
    }
    if (got.account_id == 0) {
        reply_error(req, ERR_UNAUTHORIZED, "unknown webhook token");
        return;
    }
    if (!is_form) {
        reply_error(req, ERR_UNSUPPORTED_MEDIA_TYPE, "amoCRM webhooks are application/x-www-form-urlencoded");
        return;
    }
    if (got.subdomain[0] != '\0' && has_sent && strcmp(sent, got.subdomain) != 0) {
        reply_error(req, ERR_FORBIDDEN, "the body is from another amoCRM account");
        return;
    }
    if (got.inbox_id == 0) {
        reply_json_steal(req, 200, json_pack("{s:s}", "status", "duplicate"));
        return;
    }
    reply_json_steal(req, 200,
                     json_pack("{s:s, s:I}", "status", "accepted", "inbox_id", (json_int_t)got.inbox_id));
}
