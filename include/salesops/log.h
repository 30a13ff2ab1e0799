/* One JSON object per line on stderr. Context (request id, account, manager) comes from the caller. */
#ifndef SALESOPS_LOG_H
#define SALESOPS_LOG_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
int log_parse_level(const char *name, enum log_level *out);
/* Writes {"ts","level","msg", ...fields}; fields (may be NULL) is stolen. */
void log_event_steal(enum log_level level, const char *msg, json_t *fields);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether a line at level would be written. */
bool log_enabled(enum log_level level);
/* Writes {"ts","level","msg",FIELDS}: fields is the members already rendered as JSON ("a":1,"b":"x"), for hot
 * paths that build a line without allocating (the access log). */
void log_line(enum log_level level, const char *msg, const char *fields);
/* s as the inside of a JSON string into out (truncated to fit, always terminated); returns out. Control
 * characters and bytes over 0x7f are written as \u00XX, so the result is ASCII whatever s holds. */
char *log_json_escape(char *out, size_t cap, const char *s);

#endif
