/* Times are whole seconds since the epoch (UTC) in memory; 0 means "none". */
#ifndef SALESOPS_TIMEUTIL_H
#define SALESOPS_TIMEUTIL_H
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

int64_t so_now(void);
/* Milliseconds of the monotonic clock: for intervals and deadlines, never for dates. */
int64_t so_monotonic_ms(void);
/* Sleeps ms milliseconds (nothing for 0 or less). */
void so_sleep_ms(long ms);
/* RFC 3339 (with Z or an offset, optional fraction, which is truncated). Returns true on success. */
bool so_parse_time(const char *s, int64_t *out);
/* YYYY-MM-DD into its proleptic day number (days since 1970-01-01). */
bool so_parse_date(const char *s, int64_t *days);
/* A day number as YYYY-MM-DD (buf at least 11 bytes), and its ISO weekday (1 = Monday .. 7 = Sunday). */
void so_format_date(int64_t days, char *buf, size_t len);
int so_iso_weekday(int64_t days);
/* YYYY-MM-DDTHH:MM:SSZ, buf at least 21 bytes. */
void so_format_time(int64_t t, char *buf, size_t len);

#endif
