#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include "salesops/log.h"
#include "salesops/timeutil.h"

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    min_level = level;
}

int log_parse_level(const char *name, enum log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_event_steal(enum log_level level, const char *msg, json_t *fields)
{
    if (level < min_level) {
        json_decref(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[32], stamp[40];
    so_format_time(ts.tv_sec, when, sizeof when);
    /* 2026-01-01T00:00:00Z -> 2026-01-01T00:00:00.123Z */
    snprintf(stamp, sizeof stamp, "%.19s.%03ldZ", when, ts.tv_nsec / 1000000);
    json_t *line = json_pack("{s:s, s:s, s:s}", "ts", stamp, "level", level_names[level], "msg", msg);
    if (line == NULL) {
        json_decref(fields);
        return;
    }
    if (fields != NULL) json_object_update(line, fields);
    json_decref(fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(line);
    if (text != NULL) {
        fprintf(stderr, "%s\n", text);
        free(text);
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_event_steal(level, msg, NULL);
}
