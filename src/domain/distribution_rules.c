/* Lead distribution's rules as plain C: working hours, eligibility, the smooth weighted round robin. */
#include <stdio.h>
#include <string.h>
#include "salesops/distribution.h"

const char *const wh_day_names[WH_DAYS] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* "HH:MM" at s (exactly five characters); max_hour 24 allows 24:00 only. */
static bool parse_hhmm(const char *s, int max_hour, int *minutes)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':' || s[3] < '0' || s[3] > '5' ||
        s[4] < '0' || s[4] > '9')
        return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > max_hour || (h == 24 && m != 0)) return false;
    *minutes = h * 60 + m;
    return true;
}

static bool parse_range(const char *s, int *start, int *end)
{
    return strlen(s) == 11 && s[5] == '-' && parse_hhmm(s, 23, start) && parse_hhmm(s + 6, 24, end) &&
           *start != *end;
}

enum so_err working_hours_parse(json_t *v, const char *field, struct working_hours *out, struct so_error *err)
{
    memset(out, 0, sizeof *out);
    if (v == NULL || json_is_null(v)) return SO_OK;
    if (!json_is_object(v))
        return so_field_error(err, field, "must be null or an object of days mon..sun, each a list of "
                                          "\"HH:MM-HH:MM\" ranges");
    out->set = true;
    enum so_err e = SO_OK;
    const char *key;
    json_t *day;
    json_object_foreach(v, key, day) {
        int d = 0;
        while (d < WH_DAYS && strcmp(wh_day_names[d], key) != 0) d++;
        char name[96];
        snprintf(name, sizeof name, "%s.%.16s", field, key);
        if (d == WH_DAYS) {
            e = so_field_error(err, name, "unknown day: use mon, tue, wed, thu, fri, sat, sun");
            continue;
        }
        if (!json_is_array(day) || json_array_size(day) > WH_MAX_RANGES) {
            e = so_field_error(err, name, "must be a list of at most %d \"HH:MM-HH:MM\" ranges", WH_MAX_RANGES);
            continue;
        }
        size_t i;
        json_t *r;
        json_array_foreach(day, i, r) {
            int s, en;
            if (!json_is_string(r) || !parse_range(json_string_value(r), &s, &en)) {
                char item[136];
                snprintf(item, sizeof item, "%s[%zu]", name, i);
                e = so_field_error(err, item, "must be \"HH:MM-HH:MM\" (00:00 to 24:00, start and end differ; "
                                              "an end before the start crosses midnight)");
                continue;
            }
            out->start[d][out->count[d]] = s;
            out->end[d][out->count[d]] = en;
            out->count[d]++;
        }
    }
    return e;
}

json_t *working_hours_json(const struct working_hours *wh)
{
    if (!wh->set) return json_null();
    json_t *o = json_object();
    for (int d = 0; d < WH_DAYS; d++) {
        json_t *ranges = json_array();
        for (int i = 0; i < wh->count[d]; i++) {
            char buf[48];
            snprintf(buf, sizeof buf, "%02d:%02d-%02d:%02d", wh->start[d][i] / 60, wh->start[d][i] % 60,
                     wh->end[d][i] / 60, wh->end[d][i] % 60);
            json_array_append_new(ranges, json_string(buf));
        }
        json_object_set_new(o, wh_day_names[d], ranges);
    }
    return o;
}

void working_hours_from_text(const char *text, struct working_hours *out)
{
    memset(out, 0, sizeof *out);
    if (text == NULL) return;
    json_t *v = json_loads(text, 0, NULL);
    struct so_error ignored = {0};
    working_hours_parse(v, "working_hours", out, &ignored); /* stored only after the same check */
    so_error_clear(&ignored);
    json_decref(v);
}

bool working_hours_contains(const struct working_hours *wh, int dow, int minute)
{
    if (!wh->set) return true;
    for (int i = 0; i < wh->count[dow]; i++) {
        int s = wh->start[dow][i], e = wh->end[dow][i];
        if (s < e ? minute >= s && minute < e : minute >= s) return true;
    }
    int prev = (dow + WH_DAYS - 1) % WH_DAYS; /* yesterday's ranges that cross midnight */
    for (int i = 0; i < wh->count[prev]; i++) {
        int s = wh->start[prev][i], e = wh->end[prev][i];
        if (e <= s && minute < e) return true;
    }
    return false;
}

const char *dist_ineligible_reason(const struct dist_candidate *c, bool off_hours)
{
    if (c->role == NULL || strcmp(c->role, "manager") != 0) return "not_a_manager";
    if (c->pool_user) return "pool_user";
    if (!c->active) return "inactive";
    if (!c->enabled) return "disabled";
    if (c->in_focus) return "in_focus";
    if (off_hours) return "off_hours";
    return NULL;
}

int dist_pick(struct dist_candidate *c, const bool *eligible, int n, bool weighted)
{
    int best = -1;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!eligible[i]) continue;
        int64_t w = weighted ? c[i].weight : 1;
        c[i].current += w;
        total += w;
        if (best < 0 || c[i].current > c[best].current) best = i;
    }
    if (best >= 0) c[best].current -= total;
    return best;
}
