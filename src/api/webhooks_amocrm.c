/* POST /webhooks/amocrm/{webhook_token}: amoCRM's account webhooks. The body is stored before the answer
 * and applied in the background (amoCRM wants an answer within 2 seconds). Only account[subdomain] is
 * decoded here. The store is done by the receipt writers (src/store/receipt.c), with the bodies that arrive
 * together; the connection waits suspended meanwhile. */
#include <string.h>
#include <strings.h>
#include "common.h"
#include "handlers.h"
#include "salesops/amocrm.h"
#include "salesops/crypto.h"
#include "salesops/validate.h"

struct webhook_wait {
    struct so_receipt item;
    uint8_t token_hash[SO_SHA256_LEN], body_hash[SO_SHA256_LEN];
    char sent[128];
    bool is_form, has_sent;
};

/* The inbox keeps bodies as text. A body that is not UTF-8 is kept with every byte outside ASCII, and NUL,
 * percent-encoded: the same form (percent-decoding gives the same bytes back), so its decoding fails in the
 * inbox as the raw body's would. */
static const char *as_text(struct so_req *req, size_t *len)
{
    *len = req->raw_len;
    if (utf8_valid(req->raw_body, req->raw_len)) return req->raw_body;
    char *out = arena_alloc(req->arena, req->raw_len * 3 + 1);
    if (out == NULL) return NULL;
    static const char hex[] = "0123456789ABCDEF"; /* percent-encoding: upper case */
    size_t n = 0;
    for (size_t i = 0; i < req->raw_len; i++) {
        unsigned char c = (unsigned char)req->raw_body[i];
        if (c != 0 && c < 0x80) {
            out[n++] = (char)c;
            continue;
        }
        out[n++] = '%';
        out[n++] = hex[c >> 4];
        out[n++] = hex[c & 15];
    }
    out[n] = '\0';
    *len = n;
    return out;
}

static void receipt_done(void *ctx)
{
    so_req_resume(ctx);
}

static void receipt_hand_over(struct so_req *req)
{
    struct webhook_wait *w = req->defer_ctx;
    receipt_submit(&w->item);
}

/* The answer, once the token is checked and the body stored (or not). */
static void receipt_answer(struct so_req *req)
{
    struct webhook_wait *w = req->defer_ctx;
    const struct so_webhook_receipt *got = &w->item.out;
    if (w->item.link.rc != DB_OK) {
        reply_db(req, w->item.link.rc, "inbox", 0);
        return;
    }
    if (got->account_id == 0) {
        reply_error(req, ERR_UNAUTHORIZED, "unknown webhook token");
        return;
    }
    if (!w->is_form) {
        reply_error(req, ERR_UNSUPPORTED_MEDIA_TYPE, "amoCRM webhooks are application/x-www-form-urlencoded");
        return;
    }
    if (got->subdomain[0] != '\0' && w->has_sent && strcmp(w->sent, got->subdomain) != 0) {
        reply_error(req, ERR_FORBIDDEN, "the body is from another amoCRM account");
        return;
    }
    if (got->inbox_id == 0) {
        reply_json_steal(req, 200, json_pack("{s:s}", "status", "duplicate"));
        return;
    }
    reply_json_steal(req, 200,
                     json_pack("{s:s, s:I}", "status", "accepted", "inbox_id", (json_int_t)got->inbox_id));
}

void handle_webhook_amocrm(struct so_req *req)
{
    struct webhook_wait *w = arena_alloc(req->arena, sizeof *w);
    if (w == NULL) {
        reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    *w = (struct webhook_wait){0};
    size_t body_len;
    const char *body = as_text(req, &body_len);
    if (body == NULL) {
        reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    const char *token = req->params[0];
    so_sha256(token, strlen(token), w->token_hash);
    static const char form[] = "application/x-www-form-urlencoded";
    const char *ct = req->content_type;
    w->is_form = ct != NULL && strncasecmp(ct, form, sizeof form - 1) == 0 &&
                 (ct[sizeof form - 1] == '\0' || ct[sizeof form - 1] == ';');
    w->has_sent = w->is_form &&
                  amo_form_lookup(body, body_len, "account[subdomain]", w->sent, sizeof w->sent) == 1;
    so_sha256(req->raw_body, req->raw_len, w->body_hash);
    /* one statement: the token is checked and the body stored together (a body that is not a form is not) */
    w->item = (struct so_receipt){.token_hash = w->token_hash,
                                  .body_hash = w->body_hash,
                                  .store = w->is_form,
                                  .sent = w->has_sent ? w->sent : NULL,
                                  .body = body,
                                  .body_len = body_len,
                                  .link = {.done = receipt_done, .ctx = req}};
    so_req_defer(req, w, receipt_hand_over, receipt_answer);
}
