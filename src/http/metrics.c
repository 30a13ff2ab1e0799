/* Request metrics for /metrics: counters by route and status, and a latency histogram by route. Lock-free:
 * every slot is an atomic counter, so pool threads record without contention beyond the cache line. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/metrics.h"

static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503};
#define N_STATUS ((int)(sizeof statuses / sizeof statuses[0]) + 1) /* the last slot: any other status */

/* upper bounds in seconds; a +Inf bucket follows */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BOUNDS ((int)(sizeof bounds / sizeof bounds[0]))

struct route_stats {
    atomic_uint_fast64_t by_status[N_STATUS];
    atomic_uint_fast64_t buckets[N_BOUNDS + 1]; /* not cumulative; summed when rendered */
    atomic_uint_fast64_t sum_us;
};

struct so_metrics {
    const struct so_route *routes;
    size_t count;
    struct route_stats stats[]; /* count + 1: the last one for requests that matched no route */
};

struct so_metrics *metrics_new(const struct so_route *routes, size_t count)
{
    struct so_metrics *m = calloc(1, sizeof *m + (count + 1) * sizeof m->stats[0]);
    if (m == NULL) return NULL;
    m->routes = routes;
    m->count = count;
    return m;
}

void metrics_free(struct so_metrics *m)
{
    free(m);
}

void metrics_observe(struct so_metrics *m, const struct so_route *route, int status, double seconds)
{
    if (m == NULL) return;
    size_t i = route != NULL && route >= m->routes && route < m->routes + m->count ? (size_t)(route - m->routes)
                                                                                    : m->count;
    struct route_stats *s = &m->stats[i];
    int k = 0;
    while (k < N_STATUS - 1 && statuses[k] != status)
        k++;
    atomic_fetch_add_explicit(&s->by_status[k], 1, memory_order_relaxed);
    int b = 0;
    while (b < N_BOUNDS && seconds > bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
}

static void labels(const struct so_metrics *m, size_t i, char *out, size_t len)
{
    if (i < m->count)
        snprintf(out, len, "method=\"%s\",route=\"%s\"", m->routes[i].method, m->routes[i].pattern);
    else
        snprintf(out, len, "method=\"*\",route=\"(unmatched)\"");
}

void metrics_render(const struct so_metrics *m, struct so_buf *out)
{
    char lab[256];
    so_buf_printf(out, "# HELP salesops_http_requests_total Requests answered, by route and status.\n"
                       "# TYPE salesops_http_requests_total counter\n");
    for (size_t i = 0; i <= m->count; i++) {
        labels(m, i, lab, sizeof lab);
        for (int k = 0; k < N_STATUS; k++) {
            uint_fast64_t n = atomic_load_explicit(&m->stats[i].by_status[k], memory_order_relaxed);
            if (n == 0) continue;
            if (k < N_STATUS - 1)
                so_buf_printf(out, "salesops_http_requests_total{%s,status=\"%d\"} %llu\n", lab, statuses[k],
                              (unsigned long long)n);
            else
                so_buf_printf(out, "salesops_http_requests_total{%s,status=\"other\"} %llu\n", lab,
                              (unsigned long long)n);
        }
    }
    so_buf_printf(out, "# HELP salesops_http_request_duration_seconds Time from the request's arrival to its "
                       "reply, by route.\n"
                       "# TYPE salesops_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->count; i++) {
        const struct route_stats *s = &m->stats[i];
        uint_fast64_t total = 0;
        for (int b = 0; b <= N_BOUNDS; b++)
            total += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
        if (total == 0) continue;
        labels(m, i, lab, sizeof lab);
        uint_fast64_t cumulative = 0;
        for (int b = 0; b <= N_BOUNDS; b++) {
            cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
            if (b < N_BOUNDS)
                so_buf_printf(out, "salesops_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n", lab,
                              bounds[b], (unsigned long long)cumulative);
            else
                so_buf_printf(out, "salesops_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", lab,
                              (unsigned long long)cumulative);
        }
        so_buf_printf(out, "salesops_http_request_duration_seconds_sum{%s} %.6f\n", lab,
                      (double)atomic_load_explicit(&s->sum_us, memory_order_relaxed) / 1e6);
        so_buf_printf(out, "salesops_http_request_duration_seconds_count{%s} %llu\n", lab,
                      (unsigned long long)cumulative);
    }
}

void metrics_render_process(struct so_buf *out)
{
    long rss_kb = -1, hwm_kb = -1, threads = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f != NULL) {
        char line[256];
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "VmRSS:", 6) == 0) rss_kb = strtol(line + 6, NULL, 10);
            else if (strncmp(line, "VmHWM:", 6) == 0) hwm_kb = strtol(line + 6, NULL, 10);
            else if (strncmp(line, "Threads:", 8) == 0) threads = strtol(line + 8, NULL, 10);
        }
        fclose(f);
    }
    if (rss_kb >= 0)
        so_buf_printf(out, "# HELP salesops_process_resident_memory_bytes Resident memory now.\n"
                           "# TYPE salesops_process_resident_memory_bytes gauge\n"
                           "salesops_process_resident_memory_bytes %ld\n", rss_kb * 1024);
    if (hwm_kb >= 0)
        so_buf_printf(out, "# HELP salesops_process_peak_resident_memory_bytes The most resident memory so far.\n"
                           "# TYPE salesops_process_peak_resident_memory_bytes gauge\n"
                           "salesops_process_peak_resident_memory_bytes %ld\n", hwm_kb * 1024);
    if (threads >= 0)
        so_buf_printf(out, "# HELP salesops_process_threads Threads of the process.\n"
                           "# TYPE salesops_process_threads gauge\n"
                           "salesops_process_threads %ld\n", threads);
}
