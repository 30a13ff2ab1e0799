/* Analytics: manager KPIs, the account's summary and a pipeline's funnel, for a period in the account's zone. */
#include <string.h>
#include "common.h"
#include "handlers.h"

static json_t *json_ratio(int64_t num, int64_t den)
{
    int64_t q;
    return domain_ratio4(num, den, &q) ? json_real((double)q / 10000) : json_null();
}

/* The period of the query (from and to required) with as_of; replies and returns false when bad. */
static bool period(struct so_req *req, struct so_period *p)
{
    const char *from, *to;
    if (!query_period(req, true, &from, &to)) return false;
    if (domain_period(req->db, req->auth.account_id, from, to, req->now, p, &req->err) == SO_OK) return true;
    reply_err(req);
    return false;
}

static json_t *period_json(const struct so_period *p)
{
    return json_pack("{s:s, s:s, s:o}", "from", p->from_date, "to", p->to_date, "as_of", json_time(p->as_of));
}

static json_t *figure_json(int figure, bool present, int64_t v)
{
    if (!present) return json_null();
    return kpi_figures[figure].kind == KPI_RATIO ? json_real(kpi_number(figure, v)) : json_integer((json_int_t)v);
}

/* The figures of one row (a manager, or the team's sums), in API.md's order. */
static json_t *kpi_json(const struct kpi_values *v)
{
    json_t *o = json_object();
    for (int i = 0; i < KPI_FIGURES; i++)
        json_object_set_new(o, kpi_figures[i].name, figure_json(i, v->present[i], v->v[i]));
    return o;
}

static json_t *kpi_row_json(const struct so_kpi_row *k)
{
    struct kpi_values v;
    domain_kpi_values(k, &v);
    return kpi_json(&v);
}

static json_t *manager_row(const struct so_kpi_row *k, json_t *figures)
{
    json_t *row = json_pack("{s:I, s:s}", "manager_id", (json_int_t)k->manager_id, "name", k->name);
    json_object_update(row, figures);
    json_decref(figures);
    return row;
}

static void add_to_team(struct so_kpi_row *team, const struct so_kpi_row *k)
{
    team->talk_time_s += k->talk_time_s;
    team->outgoing_calls += k->outgoing_calls;
    team->deals_created += k->deals_created;
    team->won += k->won;
    team->won_revenue += k->won_revenue;
    team->lost += k->lost;
    team->deals_without_tasks += k->deals_without_tasks;
    team->deals_with_overdue_tasks += k->deals_with_overdue_tasks;
    team->tasks_due += k->tasks_due;
    team->tasks_on_time += k->tasks_on_time;
    team->overdue_total_s += k->overdue_total_s;
    team->late_tasks += k->late_tasks;
}

/* The team's row: the sums of its managers' rows. */
static struct so_kpi_row team_of(const struct so_kpi_row *rows, int n)
{
    struct so_kpi_row team = {0};
    for (int i = 0; i < n; i++)
        add_to_team(&team, &rows[i]);
    return team;
}

static void analytics_managers(struct so_req *req)
{
    struct so_period p;
    if (!period(req, &p)) return;
    struct so_kpi_row *rows;
    int n;
    enum db_rc rc = store_kpis(req->db, req->arena, req->auth.account_id, p.start, p.end, p.as_of, &rows, &n);
    if (rc != DB_OK) {
        reply_db(req, rc, "analytics", 0);
        return;
    }
    json_t *managers = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(managers, manager_row(&rows[i], kpi_row_json(&rows[i])));
    struct so_kpi_row team = team_of(rows, n);
    json_t *body = period_json(&p);
    json_object_set_new(body, "managers", managers);
    json_object_set_new(body, "team", kpi_row_json(&team));
    reply_json_steal(req, 200, body);
}

/* The summary's figures: created (or deals_created), won, won_revenue, lost and their ratios. */
static void outcome_figures(json_t *o, const char *created_name, int64_t created, int64_t won, int64_t revenue,
                            int64_t lost)
{
    json_object_set_new(o, created_name, json_integer(created));
    json_object_set_new(o, "won", json_integer(won));
    json_object_set_new(o, "won_revenue", json_integer(revenue));
    json_object_set_new(o, "lost", json_integer(lost));
    json_object_set_new(o, "conversion", json_ratio(won, created));
    json_object_set_new(o, "close_rate", json_ratio(won, won + lost));
}

static void analytics_summary(struct so_req *req)
{
    struct so_period p;
    if (!period(req, &p)) return;
    struct so_summary_totals t;
    struct so_kpi_row *rows;
    int n;
    enum db_rc rc = store_summary(req->db, req->auth.account_id, p.start, p.end, &t);
    if (rc == DB_OK)
        rc = store_kpis(req->db, req->arena, req->auth.account_id, p.start, p.end, p.as_of, &rows, &n);
    if (rc != DB_OK) {
        reply_db(req, rc, "analytics", 0);
        return;
    }
    json_t *body = period_json(&p);
    outcome_figures(body, "created", t.created, t.won, t.won_revenue, t.lost);
    json_t *by_manager = json_array();
    for (int i = 0; i < n; i++) {
        json_t *row = json_pack("{s:I, s:s}", "manager_id", (json_int_t)rows[i].manager_id, "name", rows[i].name);
        outcome_figures(row, "deals_created", rows[i].deals_created, rows[i].won, rows[i].won_revenue,
                        rows[i].lost);
        json_array_append_new(by_manager, row);
    }
    json_object_set_new(body, "by_manager", by_manager);
    reply_json_steal(req, 200, body);
}

/* a's loss share is above b's: exact fractions compared by cross-multiplying */
static bool worse(const struct so_funnel_stage *a, const struct so_funnel_stage *b)
{
    if (a->lost != b->lost) return a->lost > b->lost;
    int64_t x = a->lost * b->entered, y = b->lost * a->entered;
    if (x != y) return x > y;
    return a->position < b->position;
}

static void analytics_funnel(struct so_req *req)
{
    int64_t pipeline_id = 0;
    if (!query_id(req, "pipeline_id", &pipeline_id)) return;
    if (pipeline_id == 0) {
        so_field_error(&req->err, "pipeline_id", "is required");
        reply_err(req);
        return;
    }
    struct so_pipeline pl;
    enum db_rc rc = store_pipeline_get(req->db, req->arena, req->auth.account_id, pipeline_id, &pl);
    if (rc == DB_NONE) {
        so_field_error(&req->err, "pipeline_id", "no pipeline %lld in this account", (long long)pipeline_id);
        reply_err(req);
        return;
    }
    struct so_period p;
    if (rc != DB_OK) {
        reply_db(req, rc, "pipeline", pipeline_id);
        return;
    }
    if (!period(req, &p)) return;
    struct so_funnel_stage *st;
    struct so_funnel_reason *rs;
    int n, rn;
    struct so_summary_totals t;
    rc = store_funnel(req->db, req->arena, req->auth.account_id, pipeline_id, p.start, p.end, p.as_of, &st, &n,
                      &rs, &rn, &t);
    if (rc != DB_OK) {
        reply_db(req, rc, "funnel", pipeline_id);
        return;
    }
    json_t *stages = json_array();
    int worst[3], worst_n = 0;
    for (int i = 0; i < n; i++) {
        json_t *reasons = json_array();
        for (int k = 0; k < rn; k++)
            if (rs[k].stage_id == st[i].stage_id)
                json_array_append_new(reasons, json_pack("{s:o, s:o, s:I}", "loss_reason_id",
                                                         json_id(rs[k].loss_reason_id), "name",
                                                         json_str_or_null(rs[k].name), "count",
                                                         (json_int_t)rs[k].count));
        json_array_append_new(
            stages, json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "stage_id", (json_int_t)st[i].stage_id,
                              "name", st[i].name, "entered", (json_int_t)st[i].entered, "advanced",
                              (json_int_t)st[i].advanced, "lost", (json_int_t)st[i].lost, "in_stage",
                              (json_int_t)st[i].in_stage, "conversion", json_ratio(st[i].advanced, st[i].entered),
                              "loss_share", json_ratio(st[i].lost, st[i].entered), "loss_reasons", reasons));
        if (st[i].lost == 0) continue;
        /* keep the three worst, in order */
        int at = worst_n < 3 ? worst_n++ : 3;
        while (at > 0 && worse(&st[i], &st[worst[at - 1]])) {
            if (at < 3) worst[at] = worst[at - 1];
            at--;
        }
        if (at < 3) worst[at] = i;
    }
    json_t *worst_json = json_array();
    for (int k = 0; k < worst_n; k++) {
        const struct so_funnel_stage *s = &st[worst[k]];
        json_array_append_new(worst_json, json_pack("{s:I, s:s, s:I, s:o}", "stage_id", (json_int_t)s->stage_id,
                                                    "name", s->name, "lost", (json_int_t)s->lost, "loss_share",
                                                    json_ratio(s->lost, s->entered)));
    }
    json_t *body = json_pack("{s:I}", "pipeline_id", (json_int_t)pipeline_id);
    json_t *period_fields = period_json(&p);
    json_object_update(body, period_fields);
    json_decref(period_fields);
    json_object_set_new(body, "created", json_integer(t.created));
    json_object_set_new(body, "won", json_integer(t.won));
    json_object_set_new(body, "lost", json_integer(t.lost));
    json_object_set_new(body, "conversion", json_ratio(t.won, t.created));
    json_object_set_new(body, "stages", stages);
    json_object_set_new(body, "worst_stages", worst_json);
    reply_json_steal(req, 200, body);
}

/* ---- targets and the weekly checklist ---- */

static const char *const directions[] = {"min", "max", NULL};

static json_t *render_targets(const struct so_target *t, int n)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(o, t[i].figure,
                            json_pack("{s:f, s:s, s:f}", "target", t[i].target, "direction", t[i].direction,
                                      "warn_within", t[i].warn_within));
    return o;
}

void handle_targets_get(struct so_req *req)
{
    struct so_target *t;
    int n;
    enum db_rc rc = store_targets_get(req->db, req->arena, req->auth.account_id, &t, &n);
    if (rc != DB_OK)
        reply_db(req, rc, "targets", 0);
    else
        reply_json_steal(req, 200, render_targets(t, n));
}

void handle_targets_put(struct so_req *req)
{
    size_t n = json_object_size(req->body);
    struct so_target *t = arena_alloc(req->arena, sizeof *t * (n + 1));
    if (t == NULL) {
        reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    int count = 0;
    const char *key;
    json_t *v;
    json_object_foreach(req->body, key, v)
    {
        if (kpi_figure_index(key) < 0) {
            so_field_error(&req->err, key, "unknown figure: use one of the manager figures of /analytics/managers");
            continue;
        }
        static const struct field_spec spec[] = {
            {"target", F_JSON, F_REQUIRED, 0, 0, NULL},
            {"direction", F_ENUM, F_REQUIRED, 0, 0, directions},
            {"warn_within", F_JSON, 0, 0, 0, NULL},
        };
        struct field_value f[3];
        struct so_error inner = {0};
        if (!json_is_object(v) || validate_fields(v, spec, 3, f, &inner) != SO_OK || !json_is_number(f[0].j) ||
            (f[2].present && (!json_is_number(f[2].j) || json_number_value(f[2].j) < 0))) {
            so_error_clear(&inner);
            so_field_error(&req->err, key,
                           "must be {\"target\": number, \"direction\": \"min\"|\"max\", \"warn_within\": number >= 0}");
            continue;
        }
        t[count++] = (struct so_target){.figure = key,
                                        .target = json_number_value(f[0].j),
                                        .direction = f[1].s,
                                        .warn_within = f[2].present ? json_number_value(f[2].j) : 0};
    }
    if (req->err.code != SO_OK ||
        domain_targets_put(req->db, req->auth.account_id, t, count, req->now, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    handle_targets_get(req);
}

#define CHECKLIST_MAX_WEEKS     52
#define CHECKLIST_DEFAULT_WEEKS 8

struct week {
    char start_date[16], end_date[16];
    struct so_period p;
    struct so_kpi_row *rows;
    int n;
    struct kpi_values *values; /* per row */
    struct kpi_values team;
};

static const struct so_target *target_of(const struct so_target *t, int n, int figure)
{
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].figure, kpi_figures[figure].name) == 0) return &t[i];
    return NULL;
}

/* {"figure": verdict} and {"figure": delta} of a row against the previous week's same row. */
static void flags_and_delta(const struct kpi_values *v, const struct kpi_values *prev, const struct so_target *t,
                            int tn, bool ratios_only, json_t **flags, json_t **delta)
{
    *flags = json_object();
    *delta = json_object();
    for (int i = 0; i < KPI_FIGURES; i++) {
        const char *verdict = ratios_only && kpi_figures[i].kind != KPI_RATIO
                                  ? NULL
                                  : domain_verdict(target_of(t, tn, i), i, v);
        json_object_set_new(*flags, kpi_figures[i].name, json_str_or_null(verdict));
        bool has = v->present[i] && prev->present[i];
        json_object_set_new(*delta, kpi_figures[i].name, figure_json(i, has, v->v[i] - prev->v[i]));
    }
}

static bool week_period(struct so_req *req, int64_t monday, struct week *w)
{
    so_format_date(monday, w->start_date, sizeof w->start_date);
    so_format_date(monday + 6, w->end_date, sizeof w->end_date);
    if (domain_period(req->db, req->auth.account_id, w->start_date, w->end_date, req->now, &w->p, &req->err) !=
        SO_OK) {
        reply_err(req);
        return false;
    }
    return true;
}

/* The figures of every week (n of them) from one read of the rollup. */
static bool load_weeks(struct so_req *req, struct week *w, int n)
{
    int64_t *starts = arena_alloc(req->arena, sizeof *starts * (size_t)n * 3);
    if (starts == NULL) {
        reply_error(req, ERR_INTERNAL, "out of memory");
        return false;
    }
    int64_t *ends = starts + n, *as_ofs = starts + 2 * n;
    for (int k = 0; k < n; k++) {
        starts[k] = w[k].p.start;
        ends[k] = w[k].p.end;
        as_ofs[k] = w[k].p.as_of;
    }
    struct so_kpi_row *rows;
    int count;
    enum db_rc rc = store_kpis_multi(req->db, req->arena, req->auth.account_id, n, starts, ends, as_ofs, &rows,
                                     &count);
    if (rc != DB_OK) {
        reply_db(req, rc, "checklist", 0);
        return false;
    }
    int at = 0;
    for (int k = 0; k < n; k++) {
        w[k].rows = rows + at;
        w[k].n = 0;
        while (at < count && rows[at].period == k) {
            w[k].n++;
            at++;
        }
        w[k].values = arena_alloc(req->arena, sizeof *w[k].values * ((size_t)w[k].n + 1));
        if (w[k].values == NULL) {
            reply_error(req, ERR_INTERNAL, "out of memory");
            return false;
        }
        for (int i = 0; i < w[k].n; i++)
            domain_kpi_values(&w[k].rows[i], &w[k].values[i]);
        struct so_kpi_row team = team_of(w[k].rows, w[k].n);
        domain_kpi_values(&team, &w[k].team);
    }
    return true;
}

static void analytics_checklist(struct so_req *req)
{
    int64_t weeks = CHECKLIST_DEFAULT_WEEKS;
    const char *wq = so_req_query(req, "weeks");
    if (wq != NULL && (!parse_positive_id(wq, &weeks) || weeks > CHECKLIST_MAX_WEEKS)) {
        so_field_error(&req->err, "weeks", "must be a whole number from 1 to %d", CHECKLIST_MAX_WEEKS);
        reply_err(req);
        return;
    }
    char today[16];
    const char *end = so_req_query(req, "end");
    int64_t end_day;
    if (end == NULL) {
        enum db_rc rc = store_local_today(req->db, req->auth.account_id, today, sizeof today);
        if (rc != DB_OK) {
            reply_db(req, rc, "checklist", 0);
            return;
        }
        end = today;
    }
    if (!so_parse_date(end, &end_day)) {
        so_field_error(&req->err, "end", "must be a date YYYY-MM-DD");
        reply_err(req);
        return;
    }
    struct so_target *targets;
    int tn;
    enum db_rc rc = store_targets_get(req->db, req->arena, req->auth.account_id, &targets, &tn);
    if (rc != DB_OK) {
        reply_db(req, rc, "targets", 0);
        return;
    }
    int64_t last_monday = end_day - (so_iso_weekday(end_day) - 1);
    /* week 0 is the one before the first listed: its figures give the first week's deltas */
    struct week *w = arena_alloc(req->arena, sizeof *w * (size_t)(weeks + 1));
    if (w == NULL) {
        reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    for (int64_t k = 0; k <= weeks; k++)
        if (!week_period(req, last_monday - 7 * (weeks - k), &w[k])) return;
    if (!load_weeks(req, w, (int)weeks + 1)) return;
    json_t *list = json_array();
    for (int64_t k = 1; k <= weeks; k++) {
        json_t *managers = json_array();
        for (int i = 0; i < w[k].n; i++) {
            json_t *flags, *delta;
            const struct kpi_values *prev = i < w[k - 1].n ? &w[k - 1].values[i] : &w[k].values[i];
            flags_and_delta(&w[k].values[i], prev, targets, tn, false, &flags, &delta);
            json_t *row = manager_row(&w[k].rows[i], kpi_json(&w[k].values[i]));
            json_object_set_new(row, "flags", flags);
            json_object_set_new(row, "delta", delta);
            json_array_append_new(managers, row);
        }
        json_t *flags, *delta;
        flags_and_delta(&w[k].team, &w[k - 1].team, targets, tn, true, &flags, &delta);
        json_t *team = kpi_json(&w[k].team);
        json_object_set_new(team, "flags", flags);
        json_object_set_new(team, "delta", delta);
        json_array_append_new(list, json_pack("{s:s, s:s, s:o, s:o, s:o}", "week_start", w[k].start_date,
                                              "week_end", w[k].end_date, "as_of", json_time(w[k].p.as_of),
                                              "managers", managers, "team", team));
    }
    /* findings of the last week: a bad verdict, or a change of at least warn_within */
    json_t *findings = json_array();
    const struct week *last = &w[weeks], *before = &w[weeks - 1];
    for (int i = 0; i < last->n; i++) {
        for (int f = 0; f < KPI_FIGURES; f++) {
            const struct so_target *t = target_of(targets, tn, f);
            if (t == NULL) continue;
            const struct kpi_values *v = &last->values[i];
            bool has_delta = i < before->n && v->present[f] && before->values[i].present[f];
            int64_t d = has_delta ? v->v[f] - before->values[i].v[f] : 0;
            const char *verdict = domain_verdict(t, f, v);
            bool flagged = (verdict != NULL && strcmp(verdict, "bad") == 0) ||
                           (has_delta && domain_change_notable(t, f, d));
            if (!flagged) continue;
            char text[512];
            domain_finding_text(last->rows[i].name, f, v->present[f], v->v[f], has_delta, d, text, sizeof text);
            json_array_append_new(findings,
                                  json_pack("{s:I, s:s, s:o, s:o, s:o, s:s}", "manager_id",
                                            (json_int_t)last->rows[i].manager_id, "kpi", kpi_figures[f].name, "value",
                                            figure_json(f, v->present[f], v->v[f]), "delta", figure_json(f, has_delta, d),
                                            "verdict", json_str_or_null(verdict), "text", text));
        }
    }
    reply_json_steal(req, 200, json_pack("{s:o, s:o}", "weeks", list, "findings", findings));
}

/* Analytics read from the replica when DATABASE_READ_URL is set (see domain_read_db). */
static void on_read_db(struct so_req *req, void (*fn)(struct so_req *))
{
    struct db *primary = req->db;
    req->db = domain_read_db(primary, req->cfg->database_read_url);
    fn(req);
    req->db = primary;
}

void handle_analytics_managers(struct so_req *req)
{
    on_read_db(req, analytics_managers);
}

void handle_analytics_summary(struct so_req *req)
{
    on_read_db(req, analytics_summary);
}

void handle_analytics_funnel(struct so_req *req)
{
    on_read_db(req, analytics_funnel);
}

void handle_analytics_checklist(struct so_req *req)
{
    on_read_db(req, analytics_checklist);
}
