/* Webhook receipt keeps to the appliers (flow control, src/store/receipt.c): when the oldest due body has waited
 * longer than SALESOPS_WEBHOOK_PACE_LAG_MS, each receipt batch waits before it is stored, 20 ms for each second
 * beyond, rising by at most 2 ms every 100 ms and never over 250 ms; once the appliers catch up the wait goes
 * back to 0. With the setting at 0 the receipt never waits. Its own database: the lag it makes would pace the
 * receipts of the webhook suite's other tests. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static struct th_account acct;
static PGconn *held;

static void stop(void)
{
    th_server_stop();
}

TestSuite(receipt_pace, .fini = stop);

static void start(const char *lag_ms)
{
    setenv("SALESOPS_WEBHOOK_PACE_LAG_MS", lag_ms, 1);
    th_server_start(TEST_SUITE);
    th_account_new(&acct);
}

/* A leads[add] body for the lead (each one a new body: no duplicates). */
static void lead_body(char *out, size_t len, int lead)
{
    th_lead_add_body(out, len, lead, 6102001, 8810001, 1662012000);
}

/* Posts a new body and returns how long the answer took (s); asserts the 200 within amoCRM's 2 s. */
static double post_lead(int lead)
{
    char body[1024];
    lead_body(body, sizeof body, lead);
    return th_post_webhook_ok(acct.webhook_token, body);
}

/* salesops_webhook_receipt_pace_ms from GET /metrics. */
static long pace_now(void)
{
    struct th_resp r = th_get(NULL, "/metrics");
    cr_assert_eq(r.status, 200);
    const char *line = strstr(r.body, "\nsalesops_webhook_receipt_pace_ms ");
    cr_assert(line != NULL, "no salesops_webhook_receipt_pace_ms in /metrics");
    long ms = strtol(line + strlen("\nsalesops_webhook_receipt_pace_ms "), NULL, 10);
    th_resp_free(&r);
    return ms;
}

/* Holds the account's ingest lock, so that its appliers stop at it, and stores a body that has been due for
 * 11 s (as if the appliers were that far behind). */
static void appliers_11_s_behind(int lead)
{
    held = th_hold_ingest(acct.id);
    char body[1024];
    lead_body(body, sizeof body, lead);
    th_sql_int("INSERT INTO inbox (account_id, source, body, body_hash, state, next_attempt_at, received_at)"
               " VALUES (%lld, 'amocrm', '%s', sha256('%s'), 'pending', now() - interval '11 seconds',"
               " now() - interval '11 seconds')",
               (long long)acct.id, body, body);
}

/* Posts a body every 20 ms until the pace is at least min_ms and at most max_ms, or timeout_s has passed;
 * returns the last pace seen. */
static long post_until_pace(int *lead, long min_ms, long max_ms, double timeout_s)
{
    double end = th_mono_now() + timeout_s;
    long ms = pace_now();
    while ((ms < min_ms || ms > max_ms) && th_mono_now() < end) {
        post_lead((*lead)++);
        th_sleep_ms(20);
        ms = pace_now();
    }
    return ms;
}

/* One test: a second one beside it in the same database would make lag for this one's server. */
Test(receipt_pace, the_receipt_waits_while_the_appliers_are_behind_and_no_more_once_they_catch_up_unless_off,
     .timeout = 90)
{
    start("1000");
    int lead = 41000000;
    cr_assert_eq(pace_now(), 0);
    post_lead(lead++);
    cr_assert_eq(pace_now(), 0, "the appliers keep up: no wait");
    double behind = th_mono_now();
    appliers_11_s_behind(lead++);
    /* 10 s beyond the lag of 1 s: 200 ms, approached by 2 ms every 100 ms, so 12 ms takes 6 samples */
    long ms = post_until_pace(&lead, 12, 250, 10);
    double rise = th_mono_now() - behind;
    cr_assert(ms >= 12 && ms <= 40, "the wait grows by at most 2 ms every 100 ms: %ld ms", ms);
    cr_assert_geq(rise, 0.45, "the wait reached %ld ms %.2f s after the appliers fell behind", ms, rise);
    long top = post_until_pace(&lead, 60, 250, 10);
    cr_assert(top >= 60 && top <= 250, "the wait keeps growing while the appliers stay behind: %ld ms", top);
    /* an answer waits at least that long (the batch waits before it is stored) */
    double took = post_lead(lead++);
    cr_assert_geq(took * 1000, (double)top - 4, "answered in %.1f ms while the pace was %ld ms", took * 1000, top);
    /* the appliers catch up: the wait goes back to 0 */
    th_release_ingest(held);
    cr_assert_eq(post_until_pace(&lead, 0, 0, 20), 0, "the wait did not go back to 0");
    took = post_lead(lead++);
    cr_assert_lt(took, 0.2, "answered in %.3f s with no wait", took);
    th_wait_applied(acct.admin_key, 20000);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld", (long long)acct.id),
                 lead - 41000000, "every body received was applied");

    /* the same with the setting at 0: the receipt never waits */
    th_server_stop();
    start("0");
    lead = 42000000;
    appliers_11_s_behind(lead++);
    double end = th_mono_now() + 1.5;
    while (th_mono_now() < end) {
        post_lead(lead++);
        th_sleep_ms(20);
    }
    cr_assert_eq(pace_now(), 0);
    th_release_ingest(held);
    th_wait_applied(acct.admin_key, 20000);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld", (long long)acct.id),
                 lead - 42000000, "every body received was applied");
}
