#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/timeutil.h"
#include "salesops/validate.h"

#define MAX_SAFE_ID 9007199254740991LL /* 2^53 - 1: exact in every JSON reader */

static int64_t utf8_chars(const char *s, size_t bytes)
{
    int64_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

size_t utf8_valid_prefix(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned cp;
        if (c < 0x80) {
            if (c == 0) return i;
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + len > n) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

bool utf8_valid(const char *text, size_t n)
{
    return utf8_valid_prefix(text, n) == n;
}

bool validate_text(const char *s, size_t bytes, int64_t min_chars, int64_t max_chars)
{
    if (memchr(s, '\0', bytes) != NULL) return false;
    int64_t n = utf8_chars(s, bytes);
    return n >= min_chars && n <= max_chars;
}

bool parse_positive_id(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || strlen(s) > 16) return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > MAX_SAFE_ID) return false;
    *out = v;
    return true;
}

int json_text_depth(const char *text, size_t len, int limit)
{
    int depth = 0, max = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max && (max = depth) > limit) return max;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

static const char *type_word(enum field_type t)
{
    switch (t) {
    case F_STRING:
        return "a string";
    case F_INT:
        return "an integer";
    case F_BOOL:
        return "a boolean";
    case F_TIME:
        return "an RFC 3339 time string";
    case F_ENUM:
        return "a string";
    case F_ID:
        return "a positive integer id";
    case F_JSON:
        return "a JSON value";
    }
    return "a value";
}

/* An integer; or a real beyond int64 (what json_restore_integers() leaves of a number too big for 64 bits),
 * which counts as a whole number out of range. */
static bool whole_number(json_t *v, int64_t *out, bool *in_range)
{
    *in_range = true;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_real(v) || (json_real_value(v) < 9.2e18 && json_real_value(v) > -9.2e18)) return false;
    *in_range = false;
    *out = 0;
    return true;
}

void json_restore_integers(json_t *v)
{
    size_t i;
    const char *key;
    json_t *item;
    if (json_is_array(v)) {
        json_array_foreach(v, i, item)
        {
            if (json_is_real(item) && json_real_value(item) < 9.2e18 && json_real_value(item) > -9.2e18)
                json_array_set_new(v, i, json_integer((json_int_t)json_real_value(item)));
            else
                json_restore_integers(item);
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, item)
        {
            if (json_is_real(item) && json_real_value(item) < 9.2e18 && json_real_value(item) > -9.2e18)
                json_object_set_new(v, key, json_integer((json_int_t)json_real_value(item)));
            else
                json_restore_integers(item);
        }
    }
}

static void check_field(const struct field_spec *f, json_t *v, struct field_value *out, struct so_error *err)
{
    bool in_range;
    switch (f->type) {
    case F_STRING:
        if (!json_is_string(v)) break;
        out->s = json_string_value(v);
        if (!validate_text(out->s, json_string_length(v), f->min, f->max)) {
            if (memchr(out->s, '\0', json_string_length(v)) != NULL)
                so_field_error(err, f->name, "must not contain NUL characters");
            else
                so_field_error(err, f->name, "must be %lld to %lld characters long", (long long)f->min,
                               (long long)f->max);
        }
        return;
    case F_INT:
        if (!whole_number(v, &out->i, &in_range)) break;
        if (!in_range || out->i < f->min || out->i > f->max)
            so_field_error(err, f->name, "must be from %lld to %lld", (long long)f->min, (long long)f->max);
        return;
    case F_ID:
        if (!whole_number(v, &out->i, &in_range)) break;
        if (!in_range || out->i < 1 || out->i > MAX_SAFE_ID)
            so_field_error(err, f->name, "must be a positive integer id");
        return;
    case F_BOOL:
        if (!json_is_boolean(v)) break;
        out->b = json_is_true(v);
        return;
    case F_TIME:
        if (!json_is_string(v)) break;
        out->s = json_string_value(v);
        if (!so_parse_time(out->s, &out->i) || out->i < 86400 || out->i > 253402300799LL)
            so_field_error(err, f->name, "must be an RFC 3339 time such as 2026-01-31T09:00:00Z");
        return;
    case F_ENUM:
        if (!json_is_string(v)) break;
        out->s = json_string_value(v);
        for (int k = 0; f->choices[k] != NULL; k++)
            if (strcmp(f->choices[k], out->s) == 0) {
                out->i = k;
                return;
            }
        {
            char list[360] = "";
            for (int k = 0; f->choices[k] != NULL; k++) {
                strncat(list, k ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, f->choices[k], sizeof list - strlen(list) - 1);
            }
            so_field_error(err, f->name, "must be one of: %s", list);
        }
        return;
    case F_JSON:
        out->j = v;
        return;
    }
    so_field_error(err, f->name, "must be %s", type_word(f->type));
}

enum so_err validate_fields(json_t *body, const struct field_spec *spec, size_t count,
                            struct field_value *out, struct so_error *err)
{
    memset(out, 0, sizeof *out * count);
    if (body != NULL && !json_is_object(body)) return so_field_error(err, "(body)", "must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        size_t i = 0;
        while (i < count && strcmp(spec[i].name, key) != 0)
            i++;
        if (i == count) {
            so_field_error(err, key, "unknown field");
            continue;
        }
        out[i].present = true;
        out[i].j = v;
        if (json_is_null(v)) {
            out[i].is_null = true;
            if (!(spec[i].flags & F_NULLABLE)) so_field_error(err, key, "must not be null");
            continue;
        }
        check_field(&spec[i], v, &out[i], err);
    }
    for (size_t i = 0; i < count; i++)
        if ((spec[i].flags & F_REQUIRED) && !out[i].present) so_field_error(err, spec[i].name, "is required");
    return err->code == ERR_VALIDATION ? ERR_VALIDATION : SO_OK;
}
