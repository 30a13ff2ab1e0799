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

bool log_enabled(enum log_level level)
{
    return level >= min_level;
}

/* now as 2026-01-01T00:00:00.123Z */
static void stamp_now(char *stamp, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[32];
    so_format_time(ts.tv_sec, when, sizeof when);
    snprintf(stamp, len, "%.19s.%03ldZ", when, ts.tv_nsec / 1000000);
}

char *log_json_escape(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[7];
        size_t n;
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\', esc[1] = (char)ch, n = 2;
        } else if (ch < 0x20 || ch >= 0x7f) { /* bytes over 0x7f too: the line stays valid UTF-8 whatever came */
            memcpy(esc, "\\u00", 4), esc[4] = hex[ch >> 4], esc[5] = hex[ch & 15], n = 6;
        } else {
            esc[0] = (char)ch, n = 1;
        }
        if (o + n >= cap) break;
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

void log_line(enum log_level level, const char *msg, const char *fields)
{
    if (level < min_level) return;
    char stamp[40], m[256];
    stamp_now(stamp, sizeof stamp);
    /* one fprintf: stderr is unbuffered, so the line goes out in one write and lines never interleave */
    fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"%s%s}\n", stamp, level_names[level],
            log_json_escape(m, sizeof m, msg), fields[0] ? "," : "", fields);
}

void log_event_steal(enum log_level level, const char *msg, json_t *fields)
{
    if (level < min_level) {
        json_decref(fields);
        return;
    }
    char stamp[40];
    stamp_now(stamp, sizeof stamp);
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
