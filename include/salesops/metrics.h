/* Request metrics in Prometheus text format (the HTTP layer's part of /metrics). */
#ifndef SALESOPS_METRICS_H
#define SALESOPS_METRICS_H
#include <stddef.h>
#include "salesops/buf.h"
#include "salesops/http.h"

struct so_metrics;
/* Slots for each route of the table, and one for requests that matched none. */
struct so_metrics *metrics_new(const struct so_route *routes, size_t count);
void metrics_free(struct so_metrics *m);
/* Counts one reply: route NULL when none matched. */
void metrics_observe(struct so_metrics *m, const struct so_route *route, int status, double seconds);
/* salesops_http_requests_total and salesops_http_request_duration_seconds. */
void metrics_render(const struct so_metrics *m, struct so_buf *out);
/* Resident memory now and at its peak, and threads, from /proc/self/status. */
void metrics_render_process(struct so_buf *out);

#endif
