/* salesops: serve | migrate | account create | demo | key-check | routes | --help | --version */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "salesops/api.h"
#include "salesops/auth.h"
#include "salesops/config.h"
#include "salesops/domain.h"
#include "salesops/http.h"
#include "salesops/import.h"
#include "salesops/log.h"
#include "salesops/sched.h"
#include "salesops/store.h"
#include "salesops/timeutil.h"
#include "salesops/validate.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "salesops %s: sales-process automation beside the CRM\n\n"
        "Usage:\n"
        "  salesops serve                       serve the HTTP API (migrates first unless disabled)\n"
        "  salesops migrate                     apply pending database migrations\n"
        "  salesops account create --name NAME [--timezone TZ]\n"
        "                                       create an account; prints its admin key and webhook token\n"
        "  salesops demo --account ID           load the demo data into an account\n"
        "  salesops key-check --key KEY         exit 0 if KEY is a valid API key\n"
        "  salesops routes                      print the route table (METHOD PATH)\n"
        "  salesops --help | --version\n\n",
        SALESOPS_VERSION);
    config_print_help(out);
}

/* The value of --name in argv (from index start), or NULL. */
static const char *flag_value(int argc, char **argv, int start, const char *name)
{
    size_t n = strlen(name);
    for (int i = start; i < argc; i++) {
        if (strcmp(argv[i], name) == 0 && i + 1 < argc) return argv[i + 1];
        if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    }
    return NULL;
}

static struct db *open_db(const struct so_config *cfg, int wait_seconds)
{
    char err[512];
    for (int i = 0;; i++) {
        struct db *db = db_open(cfg->database_url, err, sizeof err);
        if (db != NULL) return db;
        if (i >= wait_seconds) {
            char *nl = strchr(err, '\n');
            if (nl) *nl = '\0';
            log_msg(LOG_ERROR, "cannot connect to the database: %s", err);
            return NULL;
        }
        sleep(1);
    }
}

static int run_migrate(struct db *db)
{
    char err[512] = "";
    int applied = 0;
    if (store_migrate(db, &applied, err, sizeof err) != DB_OK) {
        log_msg(LOG_ERROR, "migration failed: %s", err);
        return 1;
    }
    log_event_steal(LOG_INFO, "migrations current",
                    json_pack("{s:i, s:i}", "applied", applied, "total", store_migration_count()));
    return 0;
}

static int cmd_serve(const struct so_config *cfg)
{
    if (cfg->migrate_on_start) {
        struct db *db = open_db(cfg, 30);
        if (db == NULL) return 1;
        int rc = run_migrate(db);
        db_close(db);
        if (rc != 0) return rc;
    }
    db_set_statement_timeout(cfg->statement_timeout_ms);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the worker threads inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    char err[256];
    struct so_server *srv = server_start(cfg, so_api_routes, so_api_route_count, err, sizeof err);
    if (srv == NULL) {
        log_msg(LOG_ERROR, "%s", err);
        return 1;
    }
    struct so_sched *sched = sched_start(cfg, cfg->sched_threads, err, sizeof err);
    if (sched == NULL) {
        log_msg(LOG_ERROR, "%s", err);
        server_stop(srv);
        return 1;
    }
    log_event_steal(LOG_INFO, "serving",
                    json_pack("{s:s, s:i, s:i}", "host", cfg->listen_host, "port", server_port(srv),
                              "threads", cfg->threads));
    int sig = 0;
    sigwait(&set, &sig);
    log_msg(LOG_INFO, "signal %d: shutting down", sig);
    server_begin_shutdown(srv); /* /readyz turns 503 first */
    if (!server_drain(srv, cfg->shutdown_grace_s)) {
        /* MHD would wait for the handlers still running: end now; their transactions roll back */
        log_msg(LOG_WARN, "requests still in flight after %d s: exiting without them", cfg->shutdown_grace_s);
        fflush(NULL);
        _exit(0);
    }
    server_stop(srv);
    sched_stop(sched); /* each scheduler thread ends its transaction: nothing stays leased */
    log_msg(LOG_INFO, "stopped");
    return 0;
}

static int cmd_account_create(const struct so_config *cfg, int argc, char **argv)
{
    const char *name = flag_value(argc, argv, 3, "--name");
    const char *tz = flag_value(argc, argv, 3, "--timezone");
    if (name == NULL || !validate_text(name, strlen(name), 1, 255)) {
        fprintf(stderr, "account create: --name NAME is required (1 to 255 characters)\n");
        return 2;
    }
    struct db *db = open_db(cfg, 0);
    if (db == NULL) return 1;
    struct account_created out;
    struct so_error err = {0};
    enum so_err e = domain_account_create(db, name, tz ? tz : "Europe/Moscow", so_now(), &out, &err);
    db_close(db);
    if (e != SO_OK) {
        fprintf(stderr, "account create: %s\n", err.detail);
        so_error_clear(&err);
        return 1;
    }
    printf("{\"account_id\":%lld,\"api_key\":\"%s\",\"webhook_token\":\"%s\"}\n", (long long)out.account_id,
           out.api_key, out.webhook_token);
    return 0;
}

static int cmd_demo(const struct so_config *cfg, int argc, char **argv)
{
    int64_t account_id;
    const char *id = flag_value(argc, argv, 2, "--account");
    if (id == NULL || !parse_positive_id(id, &account_id)) {
        fprintf(stderr, "demo: --account ID is required\n");
        return 2;
    }
    struct db *db = open_db(cfg, 0);
    if (db == NULL) return 1;
    struct so_error err = {0};
    enum so_err e = domain_demo_load(db, account_id, so_now(), &err);
    db_close(db);
    if (e != SO_OK) {
        fprintf(stderr, "demo: %s\n", err.detail);
        so_error_clear(&err);
        return 1;
    }
    return 0;
}

static int cmd_import(const struct so_config *cfg, int argc, char **argv)
{
    int64_t account_id;
    const char *id = flag_value(argc, argv, 2, "--account");
    const char *path = argc > 2 ? argv[argc - 1] : NULL;
    if (id == NULL || !parse_positive_id(id, &account_id) || path == NULL || path == id ||
        strncmp(path, "--", 2) == 0) {
        fprintf(stderr, "import: usage: salesops import --account ID FILE.ndjson (- for standard input)\n");
        return 2;
    }
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL) {
        fprintf(stderr, "import: cannot open %s\n", path);
        return 1;
    }
    struct db *db = open_db(cfg, 0);
    if (db == NULL) {
        if (in != stdin) fclose(in);
        return 1;
    }
    struct import_stats stats;
    struct so_error err = {0};
    enum so_err e = domain_import(db, account_id, in, &stats, &err);
    db_close(db);
    if (in != stdin) fclose(in);
    fprintf(stderr,
            "import: %lld lines, %lld accepted, %lld duplicates, %lld rejected, %lld waiting events applied,"
            " %.1f s, %.0f events/s\n",
            (long long)stats.lines, (long long)stats.accepted, (long long)stats.duplicates,
            (long long)stats.rejected, (long long)stats.woken, stats.seconds,
            stats.seconds > 0 ? (double)stats.valid / stats.seconds : 0.0);
    printf("{\"lines\":%lld,\"accepted\":%lld,\"duplicates\":%lld,\"rejected\":%lld,\"woken\":%lld,"
           "\"seconds\":%.3f}\n",
           (long long)stats.lines, (long long)stats.accepted, (long long)stats.duplicates,
           (long long)stats.rejected, (long long)stats.woken, stats.seconds);
    if (e != SO_OK) {
        fprintf(stderr, "import: %s\n", err.detail);
        so_error_clear(&err);
        return 1;
    }
    return 0;
}

static int cmd_key_check(const struct so_config *cfg, int argc, char **argv)
{
    const char *key = flag_value(argc, argv, 2, "--key");
    if (key == NULL) {
        fprintf(stderr, "key-check: --key KEY is required\n");
        return 2;
    }
    struct db *db = open_db(cfg, 0);
    if (db == NULL) return 1;
    char header[256];
    snprintf(header, sizeof header, "Bearer %s", key);
    struct so_auth auth;
    struct so_error err = {0};
    enum so_err e = auth_resolve(db, header, &auth, &err);
    db_close(db);
    so_error_clear(&err);
    return e == SO_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: the amoCRM connector uses libcurl */
    struct so_config cfg;
    char err[512];
    if (config_load(&cfg, &argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "salesops: %s\n", err);
        return 2;
    }
    enum log_level level;
    if (log_parse_level(cfg.log_level, &level) != 0) {
        fprintf(stderr, "salesops: SALESOPS_LOG_LEVEL must be debug, info, warn or error\n");
        return 2;
    }
    log_set_level(level);
    const char *cmd = argc > 1 ? argv[1] : "--help";
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("salesops %s\n", SALESOPS_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0) return cmd_serve(&cfg);
    if (strcmp(cmd, "migrate") == 0) {
        struct db *db = open_db(&cfg, 30);
        if (db == NULL) return 1;
        int rc = run_migrate(db);
        db_close(db);
        return rc;
    }
    if (strcmp(cmd, "account") == 0 && argc > 2 && strcmp(argv[2], "create") == 0)
        return cmd_account_create(&cfg, argc, argv);
    if (strcmp(cmd, "demo") == 0) return cmd_demo(&cfg, argc, argv);
    if (strcmp(cmd, "import") == 0) return cmd_import(&cfg, argc, argv);
    if (strcmp(cmd, "key-check") == 0) return cmd_key_check(&cfg, argc, argv);
    if (strcmp(cmd, "routes") == 0) {
        for (size_t i = 0; i < so_api_route_count; i++)
            printf("%s %s\n", so_api_routes[i].method, so_api_routes[i].pattern);
        return 0;
    }
    fprintf(stderr, "salesops: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
