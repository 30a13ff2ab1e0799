/* Declare, then parse once: a handler lists the fields it takes, and one parser checks a JSON body against
 * the list (types, ranges, lengths, enums, required and unknown fields) and reports every bad field. */
#ifndef SALESOPS_VALIDATE_H
#define SALESOPS_VALIDATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "salesops/error.h"

enum field_type {
    F_STRING, /* min..max characters (UTF-8 code points); no NUL */
    F_INT,    /* integer in min..max */
    F_BOOL,
    F_TIME, /* RFC 3339 string -> epoch seconds in .i */
    F_ENUM, /* string, one of .choices -> index in .i, text in .s */
    F_ID,   /* positive integer */
    F_JSON, /* any JSON value; the handler checks it further */
};

#define F_REQUIRED 1u
#define F_NULLABLE 2u

struct field_spec {
    const char *name;
    enum field_type type;
    unsigned flags;
    int64_t min, max;
    const char *const *choices; /* NULL-terminated, for F_ENUM */
};

struct field_value {
    bool present;
    bool is_null;
    const char *s; /* borrowed from the JSON body */
    int64_t i;
    bool b;
    json_t *j; /* borrowed */
};

/* Returns SO_OK or ERR_VALIDATION (with one entry per bad field). body may be NULL (treated as {}). */
enum so_err validate_fields(json_t *body, const struct field_spec *spec, size_t count,
                            struct field_value *out, struct so_error *err);
/* For a body read with JSON_DECODE_INT_AS_REAL because a number did not fit 64 bits: turns the reals that
 * fit back into integers, so that only the too-big numbers stay reals (and fail their field's range check).
 */
void json_restore_integers(json_t *v);
/* Whether n bytes are well-formed UTF-8 (shortest forms, no surrogates) without NUL. */
bool utf8_valid(const char *s, size_t n);
/* How many of the n bytes, from the start, are such UTF-8: where a text cut in the middle of a character, or
 * taken from a client, must end to go into JSON. */
size_t utf8_valid_prefix(const char *s, size_t n);
/* Checks one string the same way an F_STRING field is checked. */
bool validate_text(const char *s, size_t bytes, int64_t min_chars, int64_t max_chars);
/* Depth of nesting of a JSON text ([ and { outside strings); stops counting past limit. */
int json_text_depth(const char *text, size_t len, int limit);
/* An id written as decimal digits, 1..2^53-1 (exact in every JSON reader). */
bool parse_positive_id(const char *s, int64_t *out);

#endif
