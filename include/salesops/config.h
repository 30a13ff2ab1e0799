/* Configuration as one table: name, env var, default, help. Built once at start and then read-only. */
#ifndef SALESOPS_CONFIG_H
#define SALESOPS_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct so_config {
    char database_url[1024];
    char database_read_url[1024];
    char listen_host[256];
    int listen_port;
    int threads;
    bool reuse_port;
    int sched_threads;
    int apply_batch; /* webhook bodies an applier takes in one transaction */
    int webhook_pace_lag_ms; /* 0: the receipt never waits for the appliers */
    bool migrate_on_start;
    char log_level[16];
    size_t max_body_bytes;
    size_t max_events_body_bytes;
    int db_timeout_ms;
    int statement_timeout_ms;
    int connection_timeout_s;
    int per_ip_connections;
    int shutdown_grace_s;
    int rate_limit_per_s;
    int rate_limit_burst;
};

/* Defaults, then environment, then --flags from argv (recognised flags are removed from argv).
 * Returns 0, or -1 with a message in err. */
int config_load(struct so_config *cfg, int *argc, char **argv, char *err, size_t errlen);
void config_print_help(FILE *out);

#endif
