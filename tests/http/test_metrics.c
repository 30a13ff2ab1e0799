/* GET /metrics (Prometheus text, keyless) and the web page's static files. Each test runs in its own process
 * with its own in-process server, so request counters start at zero; figures are compared between two
 * scrapes of the same test, and the queue gauges by rows this suite alone creates. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(metrics, .init = setup, .fini = th_server_stop);

/* One scrape, parsed: every sample line "name{labels} value", checked against the text format. */
#define MAX_SAMPLES 4096
struct scrape {
    int count;
    char *key[MAX_SAMPLES]; /* "name{labels}" as printed */
    double value[MAX_SAMPLES];
};

static bool family_declared(const char *text, const char *name)
{
    /* a histogram's samples belong to the family without _bucket/_sum/_count */
    char family[160];
    snprintf(family, sizeof family, "%s", name);
    const char *suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t fl = strlen(family), sl = strlen(suffixes[i]);
        char probe[200];
        snprintf(probe, sizeof probe, "# TYPE %.*s histogram\n", (int)(fl - sl), family);
        if (fl > sl && strcmp(family + fl - sl, suffixes[i]) == 0 && strstr(text, probe) != NULL) return true;
    }
    char probe[200];
    snprintf(probe, sizeof probe, "# TYPE %s ", family);
    return strstr(text, probe) != NULL;
}

static void scrape(struct scrape *s)
{
    struct th_resp r = th_request("GET", "/metrics", NULL, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    s->count = 0;
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            cr_assert(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0, "bad comment: %s", line);
            continue;
        }
        char *space = strrchr(line, ' ');
        cr_assert(space != NULL, "no value: %s", line);
        *space = '\0';
        char *end;
        double v = strtod(space + 1, &end);
        cr_assert(*end == '\0' && end != space + 1, "bad value in: %s %s", line, space + 1);
        size_t n = strcspn(line, "{");
        cr_assert(n > 0 && (isalpha((unsigned char)line[0]) || line[0] == '_'), "bad name: %s", line);
        for (size_t i = 0; i < n; i++)
            cr_assert(isalnum((unsigned char)line[i]) || line[i] == '_' || line[i] == ':', "bad name: %s", line);
        if (line[n] == '{') cr_assert(line[strlen(line) - 1] == '}', "unclosed labels: %s", line);
        cr_assert(s->count < MAX_SAMPLES);
        s->key[s->count] = strdup(line);
        s->value[s->count] = v;
        s->count++;
    }
    th_resp_free(&r);
    /* every family has its TYPE line (checked on a second scrape's text, which strtok_r has not cut) */
    struct th_resp t = th_request("GET", "/metrics", NULL, NULL, NULL, NULL);
    for (int i = 0; i < s->count; i++) {
        char name[160];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(s->key[i], "{"), s->key[i]);
        cr_assert(family_declared(t.body, name), "no # TYPE line for %s", name);
    }
    th_resp_free(&t);
}

static void scrape_free(struct scrape *s)
{
    for (int i = 0; i < s->count; i++)
        free(s->key[i]);
    s->count = 0;
}

/* A sample's value; 0 when it is absent (counters are printed once they are non-zero). */
static double sample(const struct scrape *s, const char *key)
{
    for (int i = 0; i < s->count; i++)
        if (strcmp(s->key[i], key) == 0) return s->value[i];
    return 0;
}

static bool has(const struct scrape *s, const char *key)
{
    for (int i = 0; i < s->count; i++)
        if (strcmp(s->key[i], key) == 0) return true;
    return false;
}

#define PIPELINES_LABELS "method=\"GET\",route=\"/api/v1/pipelines\""
#define DEAL_LABELS      "method=\"GET\",route=\"/api/v1/deals/{id}\""

Test(metrics, counts_requests_by_route_and_status_with_latency_histograms)
{
    struct scrape before, after;
    scrape(&before);
    for (int i = 0; i < 3; i++) {
        struct th_resp r = th_get(w.acct.admin_key, "/api/v1/pipelines");
        cr_assert_eq(r.status, 200);
        th_resp_free(&r);
    }
    for (int i = 0; i < 2; i++) {
        struct th_resp r = th_get(w.acct.admin_key, "/api/v1/deals/987654");
        cr_assert_eq(r.status, 404);
        th_resp_free(&r);
    }
    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/pipelines/1/nothing-here");
    cr_assert_eq(r.status, 404);
    th_resp_free(&r);
    r = th_request("GET", "/api/v1/pipelines", "not-a-key", NULL, NULL, NULL);
    cr_assert_eq(r.status, 401);
    th_resp_free(&r);
    scrape(&after);

    cr_assert_eq(sample(&after, "salesops_http_requests_total{" PIPELINES_LABELS ",status=\"200\"}") -
                     sample(&before, "salesops_http_requests_total{" PIPELINES_LABELS ",status=\"200\"}"),
                 3);
    cr_assert_eq(sample(&after, "salesops_http_requests_total{" PIPELINES_LABELS ",status=\"401\"}") -
                     sample(&before, "salesops_http_requests_total{" PIPELINES_LABELS ",status=\"401\"}"),
                 1);
    cr_assert_eq(sample(&after, "salesops_http_requests_total{" DEAL_LABELS ",status=\"404\"}") -
                     sample(&before, "salesops_http_requests_total{" DEAL_LABELS ",status=\"404\"}"),
                 2);
    /* the two GETs one after the other: each read by a statement of its own */
    cr_assert_eq(sample(&after, "salesops_deal_reads_total") - sample(&before, "salesops_deal_reads_total"), 2);
    cr_assert_eq(sample(&after, "salesops_deal_read_batches_total") -
                     sample(&before, "salesops_deal_read_batches_total"),
                 2);
    cr_assert_eq(sample(&after, "salesops_http_requests_total{method=\"*\",route=\"(unmatched)\",status=\"404\"}") -
                     sample(&before, "salesops_http_requests_total{method=\"*\",route=\"(unmatched)\",status=\"404\"}"),
                 1);
    /* the first scrape itself is counted by the second */
    cr_assert_eq(sample(&after, "salesops_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}") -
                     sample(&before, "salesops_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}"),
                 2); /* scrape() reads twice */

    /* the histogram of the pipelines route: 4 requests (3 answered 200, 1 answered 401), cumulative buckets */
    double count = sample(&after, "salesops_http_request_duration_seconds_count{" PIPELINES_LABELS "}") -
                   sample(&before, "salesops_http_request_duration_seconds_count{" PIPELINES_LABELS "}");
    cr_assert_eq(count, 4);
    cr_assert_eq(sample(&after, "salesops_http_request_duration_seconds_bucket{" PIPELINES_LABELS ",le=\"+Inf\"}"),
                 sample(&after, "salesops_http_request_duration_seconds_count{" PIPELINES_LABELS "}"));
    const char *les[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "+Inf"};
    double prev = 0;
    for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
        char key[200];
        snprintf(key, sizeof key, "salesops_http_request_duration_seconds_bucket{" PIPELINES_LABELS ",le=\"%s\"}",
                 les[i]);
        cr_assert(has(&after, key), "missing %s", key);
        cr_assert_geq(sample(&after, key), prev, "buckets must not decrease at le=%s", les[i]);
        prev = sample(&after, key);
    }
    double sum = sample(&after, "salesops_http_request_duration_seconds_sum{" PIPELINES_LABELS "}");
    cr_assert(sum > 0 && sum < 60, "sum %f", sum);

    cr_assert_geq(sample(&after, "salesops_http_connections"), 1);
    cr_assert_geq(sample(&after, "salesops_http_requests_in_flight"), 1); /* this scrape */
    cr_assert_gt(sample(&after, "salesops_process_resident_memory_bytes"), 1e6);
    cr_assert_geq(sample(&after, "salesops_process_peak_resident_memory_bytes"),
                  sample(&after, "salesops_process_resident_memory_bytes"));
    cr_assert_geq(sample(&after, "salesops_db_connections_open"), 1);
    cr_assert_geq(sample(&after, "salesops_db_connections_opened_total"), 1);
    cr_assert_eq(sample(&after, "salesops_database_up"), 1);
    scrape_free(&before);
    scrape_free(&after);
}

/* The contract names every family: each one the server declares is listed in the /metrics description of the
 * OpenAPI document it serves. */
Test(metrics, every_family_is_named_in_the_openapi_document)
{
    struct th_resp spec = th_request("GET", "/openapi.yaml", NULL, NULL, NULL, NULL);
    cr_assert_eq(spec.status, 200);
    struct th_resp r = th_request("GET", "/metrics", NULL, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    int families = 0;
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# TYPE ", 7) != 0) continue;
        char name[160], quoted[170];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(line + 7, " "), line + 7);
        snprintf(quoted, sizeof quoted, "`%s", name); /* as the description writes it: `name` or `name{labels}` */
        cr_assert(strstr(spec.body, quoted) != NULL, "openapi.yaml does not name the family %s", name);
        families++;
    }
    cr_assert_geq(families, 20, "families declared: %d", families);
    th_resp_free(&r);
    th_resp_free(&spec);
}

/* Queue gauges: rows in each state, added by this test (due in an hour, so no job takes them meanwhile). */
Test(metrics, queue_gauges_count_each_state)
{
    struct scrape before, after;
    scrape(&before);
    long long a = (long long)w.acct.id;
    const char *inbox = "INSERT INTO inbox (account_id, source, body, state, received_at, next_attempt_at)"
                        " SELECT %lld, 'amocrm', 'x', '%s', now() - interval '2 hours', now() + interval '1 hour'"
                        " FROM generate_series(1, %d) RETURNING 1";
    th_sql_int(inbox, a, "pending", 3);
    th_sql_int(inbox, a, "waiting", 1);
    th_sql_int(inbox, a, "failed", 2);
    th_sql_int("INSERT INTO outbox (account_id, kind, object_id, payload, state, next_attempt_at, created_at)"
               " SELECT %lld, 'note_add', g, '{}', 'pending', now() + interval '1 hour', now() - interval '3 hours'"
               " FROM generate_series(1, 4) g RETURNING 1", a);
    th_sql_int("INSERT INTO outbox (account_id, kind, object_id, payload, state) VALUES (%lld, 'note_add', 9, '{}',"
               " 'dead') RETURNING 1", a);
    th_sql_int("INSERT INTO focus_sessions (account_id, manager_id, pipeline_id, stage_ids, ord, started_at, ends_by)"
               " VALUES (%lld, %lld, %lld, '{}', 'oldest', now(), now() + interval '1 hour') RETURNING 1",
               a, (long long)w.manager1, (long long)w.pipeline_id);
    scrape(&after);

#define DELTA(key) (sample(&after, key) - sample(&before, key))
    cr_assert_eq(DELTA("salesops_inbox_depth{state=\"pending\"}"), 3);
    cr_assert_eq(DELTA("salesops_inbox_depth{state=\"waiting\"}"), 1);
    cr_assert_eq(DELTA("salesops_inbox_depth{state=\"failed\"}"), 2);
    cr_assert_eq(DELTA("salesops_jobs{queue=\"inbox\",state=\"pending\"}"), 3);
    cr_assert_eq(DELTA("salesops_outbox_backlog"), 4);
    cr_assert_eq(DELTA("salesops_jobs{queue=\"outbox\",state=\"pending\"}"), 4);
    cr_assert_eq(DELTA("salesops_outbox_dead_letters"), 1);
    cr_assert_eq(DELTA("salesops_jobs{queue=\"outbox\",state=\"dead\"}"), 1);
    cr_assert_eq(DELTA("salesops_focus_sessions_active"), 1);
#undef DELTA
    /* the oldest not-yet-applied row is at least as old as ours; ours are not due, so they add no lag */
    cr_assert_geq(sample(&after, "salesops_inbox_oldest_age_seconds"), 7200);
    cr_assert_lt(sample(&after, "salesops_inbox_oldest_age_seconds"), 10 * 86400);
    cr_assert_geq(sample(&after, "salesops_outbox_oldest_age_seconds"), 3 * 3600);
    cr_assert_lt(sample(&after, "salesops_applier_lag_seconds"), 7200);

    /* leave nothing behind for the next run on this database */
    th_sql_int("DELETE FROM inbox WHERE account_id = %lld", a);
    th_sql_int("DELETE FROM outbox WHERE account_id = %lld", a);
    th_sql_int("DELETE FROM focus_sessions WHERE account_id = %lld", a);
    scrape_free(&before);
    scrape_free(&after);
}

Test(metrics, the_page_and_its_assets_are_served_without_a_key)
{
    struct th_resp r = th_request("GET", "/", NULL, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "text/html; charset=utf-8");
    cr_assert(strstr(r.body, "/assets/app.js") != NULL, "%s", r.body);
    th_resp_free(&r);
    r = th_request("GET", "/assets/app.js", NULL, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "text/javascript; charset=utf-8");
    th_resp_free(&r);
    r = th_request("GET", "/assets/app.css", NULL, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "text/css; charset=utf-8");
    th_resp_free(&r);
    const char *missing[] = {"/assets/nothing.js", "/assets/index.html", "/assets/%2e%2e%2fmeson.build"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        r = th_request("GET", missing[i], NULL, NULL, NULL, NULL);
        cr_assert_eq(r.status, 404, "%s: %ld", missing[i], r.status);
        cr_assert_str_eq(th_code(&r), "not_found");
        th_resp_free(&r);
    }
    r = th_request("POST", "/", NULL, "{}", NULL, NULL);
    cr_assert_eq(r.status, 405);
    th_resp_free(&r);
}
