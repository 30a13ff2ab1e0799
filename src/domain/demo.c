/* The demo account of the README: the sample amoCRM ids of the shared FORMAT.md, and four weeks of activity
 * ending now, generated deterministically so that every run of the walkthrough looks alike. */
#include <stdio.h>
#include <string.h>
#include "internal.h"

struct demo_ctx {
    int64_t account_id;
    int64_t now;
    struct arena arena;
    struct so_error *err;
    int64_t managers[3];
    int64_t head;
    int64_t pipeline;
    int64_t stages[7]; /* five open, won, lost */
    int64_t reasons[3];
    uint32_t seed;
};

static uint32_t next_random(struct demo_ctx *c)
{
    c->seed = c->seed * 1103515245u + 12345u;
    return (c->seed >> 16) & 0x7fff;
}

static enum db_rc demo_setup(struct db *db, struct demo_ctx *c)
{
    static const struct {
        const char *ext, *name, *email, *role;
    } people[] = {
        {"8800001", "Иванова Анна", "anna@example.com", "manager"},
        {"8800002", "Петров Сергей", "sergey@example.com", "manager"},
        {"8800003", "Кузнецова Мария", "maria@example.com", "manager"},
        {"8800010", "Смирнова Ольга", "olga@example.com", "head"},
    };
    enum db_rc rc = DB_OK;
    for (int i = 0; i < 4 && rc == DB_OK; i++) {
        struct so_manager m = {.external_id = people[i].ext,
                               .name = people[i].name,
                               .email = people[i].email,
                               .role = people[i].role,
                               .active = true,
                               .distribution_enabled = strcmp(people[i].role, "manager") == 0,
                               .weight = i == 1 ? 2 : 1}; /* Petrov takes two leads to the others' one */
        rc = store_manager_insert(db, c->account_id, &m, c->now - 35 * 86400,
                                  i < 3 ? &c->managers[i] : &c->head);
    }
    if (rc == DB_OK)
        rc = store_pipeline_insert(db, c->account_id, "Продажи", "6101001", false, "amocrm",
                                   c->now - 35 * 86400, &c->pipeline);
    static const struct {
        const char *ext, *name;
        enum stage_kind kind;
    } stages[] = {
        {"55012001", "Неразобранное", STAGE_OPEN},
        {"55012002", "Взят в работу", STAGE_OPEN},
        {"55012003", "Квалификация", STAGE_OPEN},
        {"55012004", "Выслано КП", STAGE_OPEN},
        {"55012005", "Дожим", STAGE_OPEN},
        {"142", "Успешно реализовано", STAGE_WON},
        {"143", "Закрыто и не реализовано", STAGE_LOST},
    };
    for (int i = 0; i < 7 && rc == DB_OK; i++) {
        struct so_stage s = {.pipeline_id = c->pipeline,
                             .external_id = stages[i].ext,
                             .name = stages[i].name,
                             .kind = stages[i].kind,
                             .position = i + 1};
        rc = store_stage_insert(db, c->account_id, &s, &c->stages[i]);
    }
    static const char *const reasons[][2] = {
        {"9001", "Дорого"}, {"9002", "Не выходит на связь"}, {"9003", "Купил у конкурентов"}};
    for (int i = 0; i < 3 && rc == DB_OK; i++)
        rc = store_loss_reason_insert(db, c->account_id, reasons[i][1], reasons[i][0], false,
                                      c->now - 35 * 86400, &c->reasons[i]);
    return rc;
}

/* One deal's life: created some days ago, moved forward a few stages, maybe closed; tasks and calls. */
static enum so_err demo_deal(struct db *db, struct demo_ctx *c, int n)
{
    static const char *const names[] = {"Окна ПВХ",        "Кухня на заказ", "Ремонт офиса",
                                        "Поставка мебели", "Двери входные",  "Натяжные потолки",
                                        "Кондиционеры",    "Ламинат"};
    int64_t manager = c->managers[n % 3];
    int64_t created = c->now - (int64_t)(1 + next_random(c) % 27) * 86400 - (int64_t)(next_random(c) % 28800);
    char ext[16], name[96];
    snprintf(ext, sizeof ext, "4032%04d", n + 1);
    snprintf(name, sizeof name, "%s №%d", names[n % 8], n + 1);
    struct deal_change chg = {.at = created,
                              .external_id = ext,
                              .set_name = true,
                              .name = name,
                              .set_price = true,
                              .price = 50000 + (int64_t)(next_random(c) % 40) * 5000,
                              .set_stage = true,
                              .stage_id = c->stages[0],
                              .set_manager = true,
                              .manager_id = manager};
    struct so_deal d;
    enum so_err e = domain_deal_apply(db, &c->arena, c->account_id, &chg, &d, c->err);
    int steps = (int)(next_random(c) % 5);
    int64_t at = created;
    for (int s = 1; s <= steps && e == SO_OK; s++) {
        at += 3600 + (int64_t)(next_random(c) % 86400);
        if (at >= c->now) break;
        struct deal_change move = {.deal_id = d.id, .at = at, .set_stage = true, .stage_id = c->stages[s]};
        e = domain_deal_apply(db, &c->arena, c->account_id, &move, &d, c->err);
    }
    int fate = (int)(next_random(c) % 10);
    at += 3600 + (int64_t)(next_random(c) % 86400);
    if (e == SO_OK && at < c->now && (fate < 2 || fate > 6)) {
        bool won = fate < 2;
        struct deal_change close = {.deal_id = d.id,
                                    .at = at,
                                    .set_stage = true,
                                    .stage_id = c->stages[won ? 5 : 6],
                                    .loss_reason_id = won ? 0 : c->reasons[n % 3]};
        e = domain_deal_apply(db, &c->arena, c->account_id, &close, &d, c->err);
        if (e == SO_OK && !won)
            e = domain_rejection_after_loss(db, &c->arena, c->account_id, d.id, at, at, c->err);
    }
    if (e != SO_OK) return e;
    /* a task on most deals: some done on time, some late, some still open and overdue */
    if (n % 4 != 3) {
        struct so_task t = {.deal_id = d.id,
                            .manager_id = manager,
                            .type = n % 2 ? "call" : "meeting",
                            .text = "Связаться с клиентом",
                            .created_at = created + 600,
                            .due_at = created + 86400 + (int64_t)(n % 5) * 86400};
        if (n % 3 == 0 && t.due_at + 7200 < c->now)
            t.completed_at = t.due_at - 3600;
        else if (n % 3 == 1 && t.due_at + 7200 < c->now)
            t.completed_at = t.due_at + 7200;
        enum db_rc rc = store_task_insert(db, c->account_id, &t, &t.id);
        if (rc == DB_OK)
            rc = store_task_history_insert(db, c->account_id, t.id, t.created_at, true, true, t.manager_id,
                                           t.due_at);
        if (rc != DB_OK) return domain_db_error(rc, c->err);
    }
    for (int k = 0; k < 2; k++) {
        struct so_call call = {.manager_id = manager,
                               .deal_id = d.id,
                               .direction = k ? "in" : "out",
                               .started_at = created + 1800 + k * 7200,
                               .duration_s = (int)(next_random(c) % 600),
                               .answered = next_random(c) % 4 != 0,
                               .created_at = created + 1800 + k * 7200};
        if (!call.answered) call.duration_s = 0;
        enum db_rc rc = store_call_insert(db, c->account_id, &call, &call.id);
        if (rc != DB_OK) return domain_db_error(rc, c->err);
    }
    return SO_OK;
}

static enum db_rc demo_tx(struct db *db, void *p)
{
    struct demo_ctx *c = p;
    so_error_clear(c->err);
    c->seed = 20260901u;
    enum db_rc rc = demo_setup(db, c);
    /* rejection control since before the demo's history: losses for "too expensive" and "bought elsewhere"
     * are reviewed by the head of sales */
    int64_t reviewed_reasons[] = {c->reasons[0], c->reasons[2]};
    struct so_rejection_rule rule = {.enabled = true,
                                     .loss_reason_ids = reviewed_reasons,
                                     .loss_reason_count = 2,
                                     .reviewer_id = c->head,
                                     .due_hours = 24,
                                     .target_return_share = 0.1,
                                     .sample_share = 1};
    if (rc == DB_OK) rc = store_rejection_rule_put(db, c->account_id, &rule, c->now - 35 * 86400);
    if (rc != DB_OK) return rc;
    for (int n = 0; n < 24; n++)
        if (demo_deal(db, c, n) != SO_OK) return domain_tx_outcome(c->err->code, c->err);
    /* Ivanova's focus filter: her deals at "proposal sent" and "closing", the most valuable first */
    int64_t focus_stages[] = {c->stages[3], c->stages[4]};
    struct so_focus_filter f = {.manager_id = c->managers[0],
                                .pipeline_id = c->pipeline,
                                .stage_ids = focus_stages,
                                .stage_count = 2,
                                .order = "price_desc",
                                .max_minutes = 90};
    rc = store_focus_filter_put(db, c->account_id, &f, c->now);
    /* the head of sales' weekly targets for the checklist */
    static const struct so_target targets[] = {
        {"deals_without_tasks", 3, "max", 1},
        {"on_time_share", 0.8, "min", 0.1},
        {"outgoing_calls", 10, "min", 3},
    };
    if (rc == DB_OK) rc = store_targets_put(db, c->account_id, targets, 3, c->now);
    return rc;
}

enum so_err domain_demo_load(struct db *db, int64_t account_id, int64_t now, struct so_error *err)
{
    struct demo_ctx c = {.account_id = account_id, .now = now, .err = err};
    enum db_rc rc = db_tx(db, demo_tx, &c);
    arena_release(&c.arena);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}
