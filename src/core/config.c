/* Configuration as a table (name, env var, type, default, help), in the manner of pgbouncer's, but built into
 * one struct passed by the caller instead of globals. --help is generated from the table. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "salesops/config.h"

enum opt_type { OPT_STRING, OPT_INT, OPT_COUNT, OPT_BATCH, OPT_BOOL, OPT_SIZE, OPT_LISTEN };

struct opt {
    const char *flag;
    const char *env;
    enum opt_type type;
    const char *def;
    size_t offset;
    size_t size;
    const char *help;
};

#define FIELD(f) offsetof(struct so_config, f), sizeof(((struct so_config *)0)->f)

static const struct opt options[] = {
    {"--database-url", "DATABASE_URL", OPT_STRING, "postgresql:///salesops", FIELD(database_url),
     "PostgreSQL connection string (primary)"},
    {"--database-read-url", "DATABASE_READ_URL", OPT_STRING, "", FIELD(database_read_url),
     "optional streaming replica for analytics reads"},
    {"--listen", "SALESOPS_LISTEN", OPT_LISTEN, "127.0.0.1:8080", FIELD(listen_host),
     "address:port to serve HTTP on (port 0: any free port)"},
    {"--threads", "SALESOPS_THREADS", OPT_INT, "0", FIELD(threads),
     "HTTP worker threads, each with its own database connection (0: 4 per core, at least 4)"},
    {"--reuse-port", "SALESOPS_REUSE_PORT", OPT_BOOL, "false", FIELD(reuse_port),
     "listen with SO_REUSEPORT, so that several instances on one host share a port (the kernel spreads "
     "connections)"},
    {"--sched-threads", "SALESOPS_SCHED_THREADS", OPT_INT, "2", FIELD(sched_threads),
     "scheduler threads (webhook applier, connector, sweeps), each with its own database connection"},
    {"--apply-batch", "SALESOPS_APPLY_BATCH", OPT_BATCH, "100", FIELD(apply_batch),
     "webhook bodies of one account an applier applies in one transaction (1 to 1000)"},
    {"--webhook-pace-lag-ms", "SALESOPS_WEBHOOK_PACE_LAG_MS", OPT_COUNT, "1000", FIELD(webhook_pace_lag_ms),
     "when the appliers are this many ms behind, webhook receipt slows to their pace (0: never)"},
    {"--migrate-on-start", "SALESOPS_MIGRATE_ON_START", OPT_BOOL, "true", FIELD(migrate_on_start),
     "apply pending migrations when `serve` starts"},
    {"--log-level", "SALESOPS_LOG_LEVEL", OPT_STRING, "info", FIELD(log_level), "debug, info, warn or error"},
    {"--max-body-bytes", "SALESOPS_MAX_BODY_BYTES", OPT_SIZE, "1048576", FIELD(max_body_bytes),
     "largest JSON request body (413 beyond)"},
    {"--max-events-body-bytes", "SALESOPS_MAX_EVENTS_BODY_BYTES", OPT_SIZE, "16777216",
     FIELD(max_events_body_bytes), "largest POST /events body (413 beyond)"},
    {"--statement-timeout-ms", "SALESOPS_STATEMENT_TIMEOUT_MS", OPT_COUNT, "30000", FIELD(statement_timeout_ms),
     "longest SQL statement of `serve` before PostgreSQL cancels it (0: none)"},
    {"--connection-timeout-s", "SALESOPS_CONNECTION_TIMEOUT_S", OPT_INT, "15", FIELD(connection_timeout_s),
     "idle or slow HTTP connections are closed after this many seconds"},
    {"--per-ip-connections", "SALESOPS_PER_IP_CONNECTIONS", OPT_COUNT, "256", FIELD(per_ip_connections),
     "most concurrent HTTP connections from one IP address (0: no limit)"},
    {"--shutdown-grace-s", "SALESOPS_SHUTDOWN_GRACE_S", OPT_INT, "10", FIELD(shutdown_grace_s),
     "on SIGTERM, how long in-flight requests may take to finish"},
    {"--rate-limit", "SALESOPS_RATE_LIMIT", OPT_COUNT, "0", FIELD(rate_limit_per_s),
     "requests per second per API key, then 429 with Retry-After (0: off)"},
    {"--rate-limit-burst", "SALESOPS_RATE_LIMIT_BURST", OPT_COUNT, "0", FIELD(rate_limit_burst),
     "requests a key may make at once before the rate applies (0: twice the rate)"},
};
#define OPTION_COUNT (sizeof options / sizeof options[0])

static int set_option(struct so_config *cfg, const struct opt *o, const char *value, char *err, size_t errlen)
{
    char *dst = (char *)cfg + o->offset;
    char *end = NULL;
    switch (o->type) {
    case OPT_STRING:
        if (strlen(value) >= o->size) {
            snprintf(err, errlen, "%s: value too long", o->env);
            return -1;
        }
        strcpy(dst, value);
        return 0;
    case OPT_INT:
    case OPT_COUNT:
    case OPT_BATCH: {
        long min = o->type == OPT_BATCH ? 1 : 0;
        long max = o->type == OPT_INT ? 1024 : o->type == OPT_BATCH ? 1000 : 100000000;
        long v = strtol(value, &end, 10);
        if (*value == '\0' || *end != '\0' || v < min || v > max) {
            snprintf(err, errlen, "%s: expected a whole number from %ld to %ld, got '%s'", o->env, min, max,
                     value);
            return -1;
        }
        *(int *)dst = (int)v;
        return 0;
    }
    case OPT_SIZE: {
        unsigned long long v = strtoull(value, &end, 10);
        if (*value == '\0' || *end != '\0' || v < 1024 || v > (1ull << 31)) {
            snprintf(err, errlen, "%s: expected a byte count from 1024 to 2147483648, got '%s'", o->env,
                     value);
            return -1;
        }
        *(size_t *)dst = (size_t)v;
        return 0;
    }
    case OPT_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0)
            *(bool *)dst = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 || strcmp(value, "no") == 0)
            *(bool *)dst = false;
        else {
            snprintf(err, errlen, "%s: expected true or false, got '%s'", o->env, value);
            return -1;
        }
        return 0;
    case OPT_LISTEN: {
        const char *colon = strrchr(value, ':');
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (colon == NULL || colon == value || *end != '\0' || port < 0 || port > 65535 ||
            (size_t)(colon - value) >= sizeof cfg->listen_host) {
            snprintf(err, errlen, "%s: expected HOST:PORT, got '%s'", o->env, value);
            return -1;
        }
        memcpy(cfg->listen_host, value, (size_t)(colon - value));
        cfg->listen_host[colon - value] = '\0';
        cfg->listen_port = (int)port;
        return 0;
    }
    }
    return -1;
}

int config_load(struct so_config *cfg, int *argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const char *env = getenv(options[i].env);
        if (set_option(cfg, &options[i], options[i].def, err, errlen) != 0) return -1;
        if (env != NULL && *env != '\0' && set_option(cfg, &options[i], env, err, errlen) != 0) return -1;
    }
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const struct opt *match = NULL;
        const char *value = NULL;
        for (size_t k = 0; k < OPTION_COUNT && match == NULL; k++) {
            size_t n = strlen(options[k].flag);
            if (strncmp(argv[i], options[k].flag, n) != 0) continue;
            if (argv[i][n] == '=') {
                match = &options[k];
                value = argv[i] + n + 1;
            } else if (argv[i][n] == '\0') {
                match = &options[k];
                if (i + 1 >= *argc) {
                    snprintf(err, errlen, "%s needs a value", options[k].flag);
                    return -1;
                }
                value = argv[++i];
            }
        }
        if (match == NULL) {
            argv[out++] = argv[i];
            continue;
        }
        if (set_option(cfg, match, value, err, errlen) != 0) return -1;
    }
    *argc = out;
    argv[out] = NULL;
    if (cfg->threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = cores > 1 ? (int)(cores * 4) : 4;
    }
    return 0;
}

void config_print_help(FILE *out)
{
    fprintf(out, "Configuration (flag, environment variable, default):\n");
    for (size_t i = 0; i < OPTION_COUNT; i++)
        fprintf(out, "  %-26s %-31s %s\n      %s\n", options[i].flag, options[i].env,
                options[i].def[0] ? options[i].def : "(none)", options[i].help);
}
