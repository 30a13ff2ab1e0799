/* One JSON object per line on stderr. Context (request id, account, manager) comes from the caller. */
#ifndef SALESOPS_LOG_H
#define SALESOPS_LOG_H
#include <jansson.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
int log_parse_level(const char *name, enum log_level *out);
/* Writes {"ts","level","msg", ...fields}; fields (may be NULL) is stolen. */
void log_event_steal(enum log_level level, const char *msg, json_t *fields);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
