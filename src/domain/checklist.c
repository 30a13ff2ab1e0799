/* The checklist's rules: the figures of a manager row as values, verdicts against targets, and plain-language
 * findings in Russian for the head of sales. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

const struct kpi_figure kpi_figures[KPI_FIGURES] = {
    {"talk_time_s", KPI_SECONDS},
    {"outgoing_calls", KPI_COUNT},
    {"deals_created", KPI_COUNT},
    {"won", KPI_COUNT},
    {"won_revenue", KPI_MONEY},
    {"lost", KPI_COUNT},
    {"conversion", KPI_RATIO},
    {"close_rate", KPI_RATIO},
    {"deals_without_tasks", KPI_COUNT},
    {"deals_with_overdue_tasks", KPI_COUNT},
    {"missed_deals", KPI_COUNT},
    {"tasks_due", KPI_COUNT},
    {"tasks_on_time", KPI_COUNT},
    {"on_time_share", KPI_RATIO},
    {"overdue_total_s", KPI_SECONDS},
    {"overdue_avg_s", KPI_SECONDS},
};

int kpi_figure_index(const char *name)
{
    for (int i = 0; i < KPI_FIGURES; i++)
        if (strcmp(kpi_figures[i].name, name) == 0) return i;
    return -1;
}

static void set(struct kpi_values *out, int i, bool present, int64_t v)
{
    out->present[i] = present;
    out->v[i] = present ? v : 0;
}

static void set_ratio(struct kpi_values *out, int i, int64_t num, int64_t den)
{
    int64_t q = 0;
    bool ok = domain_ratio4(num, den, &q);
    set(out, i, ok, q);
}

void domain_kpi_values(const struct so_kpi_row *k, struct kpi_values *out)
{
    int64_t q = 0;
    set(out, 0, true, k->talk_time_s);
    set(out, 1, true, k->outgoing_calls);
    set(out, 2, true, k->deals_created);
    set(out, 3, true, k->won);
    set(out, 4, true, k->won_revenue);
    set(out, 5, true, k->lost);
    set_ratio(out, 6, k->won, k->deals_created);
    set_ratio(out, 7, k->won, k->won + k->lost);
    set(out, 8, true, k->deals_without_tasks);
    set(out, 9, true, k->deals_with_overdue_tasks);
    set(out, 10, true, k->deals_without_tasks + k->deals_with_overdue_tasks);
    set(out, 11, true, k->tasks_due);
    set(out, 12, true, k->tasks_on_time);
    set_ratio(out, 13, k->tasks_on_time, k->tasks_due);
    set(out, 14, true, k->overdue_total_s);
    bool avg = domain_avg_s(k->overdue_total_s, k->late_tasks, &q);
    set(out, 15, avg, q);
}

double kpi_number(int figure, int64_t v)
{
    return kpi_figures[figure].kind == KPI_RATIO ? (double)v / 10000 : (double)v;
}

int64_t domain_ten_thousandths(double x)
{
    double y = x * 10000;
    return (int64_t)(y < 0 ? y - 0.5 : y + 0.5);
}

const char *domain_verdict(const struct so_target *t, int figure, const struct kpi_values *v)
{
    if (t == NULL || !v->present[figure]) return NULL;
    /* compared exactly in ten-thousandths: 0.8 - 0.1 is 0.7 here, not 0.7000000000000001 */
    int64_t x = kpi_figures[figure].kind == KPI_RATIO ? v->v[figure] : v->v[figure] * 10000;
    int64_t target = domain_ten_thousandths(t->target), warn = domain_ten_thousandths(t->warn_within);
    if (strcmp(t->direction, "min") == 0) return x >= target ? "ok" : x >= target - warn ? "warn" : "bad";
    return x <= target ? "ok" : x <= target + warn ? "warn" : "bad";
}

bool domain_change_notable(const struct so_target *t, int figure, int64_t delta)
{
    int64_t d = kpi_figures[figure].kind == KPI_RATIO ? delta : delta * 10000;
    return (d < 0 ? -d : d) >= domain_ten_thousandths(t->warn_within);
}

/* ---- findings in Russian ---- */

static const char *plural(int64_t n, const char *one, const char *few, const char *many)
{
    int64_t m10 = n % 10, m100 = n % 100;
    if (m10 == 1 && m100 != 11) return one;
    if (m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14)) return few;
    return many;
}

/* "2 ч 15 мин", "45 мин", "30 с" */
static void duration(int64_t s, char *buf, size_t len)
{
    if (s >= 3600)
        snprintf(buf, len, "%" PRId64 " ч %" PRId64 " мин", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, len, "%" PRId64 " мин", s / 60);
    else
        snprintf(buf, len, "%" PRId64 " с", s);
}

/* ten-thousandths as a percentage with a decimal comma: 3333 -> "33,33", 1250 -> "12,5", 10000 -> "100" */
static void percent(int64_t q, char *buf, size_t len)
{
    int64_t whole = q / 100, frac = q % 100;
    if (frac == 0)
        snprintf(buf, len, "%" PRId64, whole);
    else if (frac % 10 == 0)
        snprintf(buf, len, "%" PRId64 ",%" PRId64, whole, frac / 10);
    else
        snprintf(buf, len, "%" PRId64 ",%02" PRId64, whole, frac);
}

/* The counted noun of a count figure: one, few, many. */
static const char *const nouns[KPI_FIGURES][3] = {
    [1] = {"исходящий звонок", "исходящих звонка", "исходящих звонков"},
    [2] = {"новая сделка", "новые сделки", "новых сделок"},
    [3] = {"выигранная сделка", "выигранные сделки", "выигранных сделок"},
    [5] = {"проигранная сделка", "проигранные сделки", "проигранных сделок"},
    [8] = {"сделка без задач", "сделки без задач", "сделок без задач"},
    [9] = {"сделка с просроченными задачами", "сделки с просроченными задачами", "сделок с просроченными задачами"},
    [10] = {"упущенная сделка", "упущенные сделки", "упущенных сделок"},
    [11] = {"задача со сроком за неделю", "задачи со сроком за неделю", "задач со сроком за неделю"},
    [12] = {"задача выполнена в срок", "задачи выполнены в срок", "задач выполнено в срок"},
};
/* The label of a figure that is not counted. */
static const char *const labels[KPI_FIGURES] = {
    [0] = "время разговоров",  [4] = "выручка",         [6] = "конверсия",
    [7] = "доля выигранных",   [13] = "доля задач в срок",  [14] = "суммарная просрочка",
    [15] = "средняя просрочка",
};

static void magnitude(int figure, int64_t v, char *buf, size_t len)
{
    switch (kpi_figures[figure].kind) {
    case KPI_SECONDS:
        duration(v, buf, len);
        break;
    case KPI_RATIO: {
        char p[32];
        percent(v, p, sizeof p);
        snprintf(buf, len, "%s п.п.", p);
        break;
    }
    default:
        snprintf(buf, len, "%" PRId64, v);
    }
}

void domain_finding_text(const char *manager_name, int figure, bool has_value, int64_t value, bool has_delta,
                         int64_t delta, char *buf, size_t len)
{
    char what[160], amount[64], change[128];
    if (!has_value) {
        snprintf(what, sizeof what, "%s: нет данных", labels[figure] ? labels[figure] : nouns[figure][2]);
    } else if (nouns[figure][0] != NULL) {
        int64_t n = value < 0 ? -value : value;
        snprintf(what, sizeof what, "%" PRId64 " %s", value,
                 plural(n, nouns[figure][0], nouns[figure][1], nouns[figure][2]));
    } else if (kpi_figures[figure].kind == KPI_RATIO) {
        percent(value, amount, sizeof amount);
        snprintf(what, sizeof what, "%s %s%%", labels[figure], amount);
    } else {
        magnitude(figure, value, amount, sizeof amount);
        snprintf(what, sizeof what, "%s %s", labels[figure], amount);
    }
    if (!has_delta) {
        snprintf(change, sizeof change, "неделей ранее данных нет");
    } else if (delta == 0) {
        snprintf(change, sizeof change, "столько же, сколько неделей ранее");
    } else {
        magnitude(figure, delta < 0 ? -delta : delta, amount, sizeof amount);
        snprintf(change, sizeof change, "на %s %s, чем неделей ранее", amount, delta > 0 ? "больше" : "меньше");
    }
    snprintf(buf, len, "%s: %s, %s", manager_name, what, change);
}

struct targets_ctx {
    int64_t account_id;
    const struct so_target *items;
    int count;
    int64_t now;
};

static enum db_rc targets_tx(struct db *db, void *p)
{
    struct targets_ctx *c = p;
    return store_targets_put(db, c->account_id, c->items, c->count, c->now);
}

enum so_err domain_targets_put(struct db *db, int64_t account_id, const struct so_target *items, int count,
                               int64_t now, struct so_error *err)
{
    struct targets_ctx c = {account_id, items, count, now};
    enum db_rc rc = db_tx(db, targets_tx, &c);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}
