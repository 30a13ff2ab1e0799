/* The rules of PRODUCT.md over plain structs. Every change to CRM data goes through these commands, whichever
 * door it came in by (REST now; events, webhooks and import reuse the same apply). Each command runs in one
 * transaction and reports failures as an so_error (never replies itself). */
#ifndef SALESOPS_DOMAIN_H
#define SALESOPS_DOMAIN_H
#include <stdbool.h>
#include <stdint.h>
#include "salesops/arena.h"
#include "salesops/error.h"
#include "salesops/store.h"
#include "salesops/types.h"

/* Maps a store outcome to an error (503 for a lost database, 409 for a duplicate external id, else 500). */
enum so_err domain_db_error(enum db_rc rc, struct so_error *err);
/* What a transaction callback returns for a command's outcome: retry, unavailable, or abort with the error. */
enum db_rc domain_tx_outcome(enum so_err e, struct so_error *err);

/* Accounts and keys */
struct account_created {
    int64_t account_id;
    char api_key[64];
    char webhook_token[64];
};
enum so_err domain_account_create(struct db *db, const char *name, const char *timezone, int64_t now,
                                  struct account_created *out, struct so_error *err);
enum so_err domain_account_update(struct db *db, int64_t account_id, const char *name, const char *timezone,
                                  struct so_error *err);
/* plain_key receives the new key (shown once). */
enum so_err domain_api_key_create(struct db *db, struct arena *a, int64_t account_id, enum so_role role,
                                  int64_t manager_id, const char *name, int64_t now, struct so_api_key *out,
                                  char plain_key[64], struct so_error *err);

/* Managers */
enum so_err domain_manager_create(struct db *db, int64_t account_id, const struct so_manager *m, int64_t now,
                                  int64_t *id, struct so_error *err);
/* Writes the whole manager row (the caller merged the patch into a fresh read); clears needs_setup. */
enum so_err domain_manager_update(struct db *db, int64_t account_id, const struct so_manager *m, int64_t now,
                                  struct so_error *err);

/* Pipelines and loss reasons */
struct stage_input {
    const char *name;
    const char *external_id;
    enum stage_kind kind;
};
enum so_err domain_pipeline_create(struct db *db, int64_t account_id, const char *name,
                                   const char *external_id, const struct stage_input *stages, int stage_count,
                                   int64_t now, int64_t *id, struct so_error *err);
struct stage_rename {
    int64_t id;
    const char *name;
    const char *external_id;
};
enum so_err domain_pipeline_update(struct db *db, int64_t account_id, int64_t id, const char *name,
                                   const char *external_id, const struct stage_rename *renames,
                                   int rename_count, struct so_error *err);
enum so_err domain_loss_reason_create(struct db *db, int64_t account_id, const char *name,
                                      const char *external_id, int64_t now, int64_t *id,
                                      struct so_error *err);
enum so_err domain_loss_reason_update(struct db *db, int64_t account_id, int64_t id, const char *name,
                                      const char *external_id, struct so_error *err);

/* Deals: the one apply for a change of a deal. Fields marked set_* change; the rest stay. */
struct deal_change {
    int64_t deal_id; /* 0: create */
    int64_t at;
    const char *external_id;
    int64_t pipeline_id;
    bool set_name, set_price, set_stage, set_manager, set_loss_reason;
    const char *name;
    int64_t price;
    int64_t stage_id; /* its kind decides the status: open, won or lost */
    const struct so_stage *stage; /* that stage, when the caller has read it (else it is read here) */
    int64_t manager_id;
    int64_t loss_reason_id;
};
/* The deal a creation (deal_id 0) makes, in the given stage (chg->stage_id's), as domain_deal_apply inserts it. */
struct so_deal domain_deal_new(const struct deal_change *chg, const struct so_stage *stage);
/* Applies inside the caller's transaction: inserts or updates the deal and writes one history row for a
 * change of stage, status or responsible. */
enum so_err domain_deal_apply(struct db *db, struct arena *a, int64_t account_id,
                              const struct deal_change *chg, struct so_deal *out, struct so_error *err);

/* The REST commands, with the rights of the key (a manager key acts only on his own deals). */
struct deal_create {
    const char *name;
    int64_t price;
    int64_t pipeline_id;
    int64_t stage_id;   /* 0: the first open stage */
    int64_t manager_id; /* 0: none given */
    const char *external_id;
};
/* dist (may be NULL) tells what lead distribution did (attempted false: the deal had a manager). */
struct dist_outcome;
enum so_err domain_deal_create(struct db *db, struct arena *a, const struct so_auth *auth,
                               const struct deal_create *in, int64_t now, struct so_deal *out,
                               struct dist_outcome *dist, struct so_error *err);
struct deal_patch {
    bool set_name, set_price, set_stage, set_manager;
    const char *name;
    int64_t price;
    int64_t stage_id;
    int64_t manager_id;
};
enum so_err domain_deal_patch(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                              const struct deal_patch *in, int64_t now, struct so_deal *out,
                              struct so_error *err);
enum so_err domain_deal_close(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                              enum deal_status outcome, int64_t loss_reason_id, int64_t now,
                              struct so_deal *out, struct so_error *err);
enum so_err domain_deal_reopen(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                               int64_t stage_id, int64_t manager_id, int64_t now, struct so_deal *out,
                               struct so_error *err);
/* A deal the key may see (404 otherwise). */
enum so_err domain_deal_visible(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                                struct so_deal *out, struct so_error *err);
/* The same rule for a deal read elsewhere (rc and d from store_deal_get or a deal read batch). */
enum so_err domain_deal_seen(const struct so_auth *auth, int64_t deal_id, enum db_rc rc, const struct so_deal *d,
                             struct so_error *err);
enum so_err domain_note_add(struct db *db, struct arena *a, const struct so_auth *auth, int64_t deal_id,
                            const char *text, int64_t manager_id, int64_t now, struct so_note *out,
                            struct so_error *err);

/* Tasks */
struct task_create {
    int64_t deal_id;
    int64_t manager_id; /* 0: the deal's */
    const char *type;
    const char *text;
    int64_t due_at;
};
enum so_err domain_task_create(struct db *db, struct arena *a, const struct so_auth *auth,
                               const struct task_create *in, int64_t now, struct so_task *out,
                               struct so_error *err);
struct task_patch {
    bool set_manager, set_type, set_text, set_due;
    int64_t manager_id;
    const char *type;
    const char *text;
    int64_t due_at;
};
enum so_err domain_task_patch(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                              const struct task_patch *in, int64_t now, struct so_task *out,
                              struct so_error *err);
enum so_err domain_task_complete(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                                 const char *result, int64_t now, struct so_task *out, struct so_error *err);
enum so_err domain_task_delete(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                               int64_t now, struct so_error *err);
enum so_err domain_task_visible(struct db *db, struct arena *a, const struct so_auth *auth, int64_t task_id,
                                struct so_task *out, struct so_error *err);

/* Calls */
enum so_err domain_call_create(struct db *db, struct arena *a, const struct so_auth *auth,
                               const struct so_call *in, int64_t now, struct so_call *out,
                               struct so_error *err);

/* amoCRM write-back: queues the outbox rows for a change made in salesops (nothing without an integration).
 */
enum so_err domain_outbox_deal(struct db *db, struct arena *a, int64_t account_id,
                               const struct so_deal *before, const struct so_deal *after,
                               struct so_error *err);
enum so_err domain_outbox_task_add(struct db *db, struct arena *a, int64_t account_id,
                                   const struct so_task *task, struct so_error *err);
enum so_err domain_outbox_task_complete(struct db *db, struct arena *a, int64_t account_id,
                                        const struct so_task *task, struct so_error *err);
enum so_err domain_outbox_note_add(struct db *db, struct arena *a, int64_t account_id,
                                   const struct so_note *note, struct so_error *err);
/* A loss that came from amoCRM: with an integration, its reason is read through the API (pending = true). */
enum so_err domain_amocrm_loss_read(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                    const char *lead_id, int64_t lost_at, bool *pending,
                                    struct so_error *err);

/* A call note from amoCRM without its duration and status: with an integration, they are read through the
 * API later. */
enum so_err domain_amocrm_call_read(struct db *db, struct arena *a, int64_t account_id, int64_t call_id,
                                    const char *lead_id, const char *note_id, struct so_error *err);

/* Lead distribution (see PRODUCT.md, Lead distribution). */
#include "salesops/distribution.h"
struct dist_state {
    struct so_dist_settings settings;
    struct working_hours hours;
    struct dist_candidate *c; /* every manager, by id */
    int n;
    bool *eligible;
    const char **reasons; /* NULL when eligible */
    int eligible_count;
};
/* Every manager's eligibility now, with the settings (no lock). */
enum so_err domain_dist_load(struct db *db, struct arena *a, int64_t account_id, const char *kind, int64_t now,
                             struct dist_state *st, struct so_error *err);
/* Chooses the next manager for a kind (lead | call) and moves its cursor, under the account's lock, inside the
 * caller's transaction. *manager_id 0: nobody is eligible (nothing moved). */
enum so_err domain_dist_choose(struct db *db, struct arena *a, int64_t account_id, const char *kind,
                               int64_t now, int64_t *manager_id, const char **strategy, struct so_error *err);
/* A deal created live is distributed when it has no manager or an amoCRM pool user: wants (before the deal is
 * stored) says whether; after_create (once it is stored, in the same transaction) chooses, gives it the
 * manager as its creator, logs and writes back, or puts it among the waiting deals. */
struct dist_outcome {
    bool attempted, assigned;
    const char *reason; /* new_deal | pool_user */
    const char *strategy;
    int64_t original_manager_id;
    int64_t manager_id; /* the chosen one */
};
enum so_err domain_dist_wants(struct db *db, struct arena *a, int64_t account_id, int64_t manager_id,
                              struct dist_outcome *out, struct so_error *err);
/* The same when the caller knows whether the manager (0: none) is a pool user. */
void domain_dist_wants_known(int64_t manager_id, bool pool_user, struct dist_outcome *out);
enum so_err domain_dist_after_create(struct db *db, struct arena *a, int64_t account_id, struct so_deal *deal,
                                     struct dist_outcome *o, int64_t now, struct so_error *err);
/* POST /distribution/next: its own transaction; ERR_NO_ELIGIBLE_MANAGER when nobody is. */
enum so_err domain_dist_next(struct db *db, struct arena *a, int64_t account_id, const char *kind, int64_t now,
                             int64_t *manager_id, int64_t *assignment_id, struct so_error *err);
enum so_err domain_dist_settings_put(struct db *db, int64_t account_id, const struct so_dist_settings *s,
                                     int64_t now, struct so_error *err);
/* The scheduler: assigns the account's waiting deals, oldest first, while someone is eligible. */
int domain_dist_assign_waiting(struct db *db, struct arena *a, int64_t account_id, int64_t now);
/* Fills eligible and ineligible_reason of the managers for a reply. */
enum so_err domain_managers_eligibility(struct db *db, struct arena *a, int64_t account_id, int64_t now,
                                        struct so_manager *managers, int count, struct so_error *err);

/* Focus mode (see PRODUCT.md, Focus mode). Commands check the key's rights: a manager key acts only on his
 * own sessions (another's answers 404). */
enum so_err domain_focus_filter_put(struct db *db, struct arena *a, int64_t account_id,
                                    const struct so_focus_filter *f, int64_t now, struct so_error *err);
/* body NULL: the saved filter; else the body replaces the saved filter. */
enum so_err domain_focus_start(struct db *db, struct arena *a, const struct so_auth *auth, int64_t manager_id,
                               const struct so_focus_filter *body, int64_t now, struct so_focus_session *out,
                               struct so_error *err);
enum so_err domain_focus_session_visible(struct db *db, struct arena *a, const struct so_auth *auth, int64_t id,
                                         struct so_focus_session *out, struct so_error *err);
enum so_err domain_focus_mark_done(struct db *db, struct arena *a, const struct so_auth *auth,
                                   int64_t session_id, int64_t deal_id, int64_t now,
                                   struct so_focus_session *out, struct so_error *err);
enum so_err domain_focus_stop(struct db *db, struct arena *a, const struct so_auth *auth, int64_t session_id,
                              int64_t now, struct so_focus_session *out, struct so_error *err);
/* Inside the caller's transaction: the manager `actor` acted on the deal at `at` (stage change, close,
 * completed task, call, note); actor 0 means the deal's responsible. */
enum so_err domain_focus_activity(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                  int64_t actor, int64_t at, struct so_error *err);
/* Inside the caller's transaction: the deal changed hands or was deleted. */
enum so_err domain_focus_deal_left(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                   int64_t at, struct so_error *err);
/* The scheduler: ends the sessions whose time is up; returns how many. */
int domain_focus_timeouts(struct db *db, struct arena *a);

/* Rejection control (see PRODUCT.md, Rejection control). */
enum so_err domain_rejection_rule_put(struct db *db, struct arena *a, int64_t account_id,
                                      const struct so_rejection_rule *r, int64_t now, struct so_error *err);
/* Inside the caller's transaction: the deal's history has a status lost row at lost_at; when it is a move into
 * lost it is judged (once) and, when it qualifies, reviewed. */
enum so_err domain_rejection_after_loss(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                        int64_t lost_at, int64_t now, struct so_error *err);
/* The scheduler: reviews for judged losses that lack theirs (after a crash), up to max; returns how many. */
int domain_rejection_sweep(struct db *db, struct arena *a, int max);
struct review_decision {
    const char *decision; /* return | confirm */
    const char *note;
    int64_t manager_id;       /* return: 0 = the one who lost it */
    int64_t stage_id;         /* return: 0 = the stage it was lost from */
    int64_t follow_up_due_at; /* return: 0 = 24 h after the decision */
};
/* Its own transaction: 404, 409 already_decided, 409 deal_not_lost, 422 for a return without a note. */
enum so_err domain_review_decide(struct db *db, struct arena *a, const struct so_auth *auth, int64_t review_id,
                                 const struct review_decision *in, int64_t now, struct so_review *out,
                                 struct so_error *err);

/* Analytics (see PRODUCT.md, Definitions). */
struct so_period {
    const char *from_date, *to_date; /* YYYY-MM-DD in the account's zone, both inclusive */
    int64_t start, end;              /* [start, end) */
    int64_t as_of;                   /* end - 1 s, or now if that is in the future */
};
enum so_err domain_period(struct db *db, int64_t account_id, const char *from_date, const char *to_date,
                          int64_t now, struct so_period *out, struct so_error *err);
/* The connection analytics read from: the replica of read_url once it has replayed the primary's current
 * position (waiting up to 1 s), else the primary. */
struct db *domain_read_db(struct db *primary, const char *read_url);
/* num / den rounded half away from zero to 4 decimals, in ten-thousandths; false when den is 0 (null). */
bool domain_ratio4(int64_t num, int64_t den, int64_t *q);
/* A number in ten-thousandths, rounded to the nearest (shares and targets are compared in them). */
int64_t domain_ten_thousandths(double x);
/* An average in whole seconds, rounded half up; false when n is 0 (null). */
bool domain_avg_s(int64_t total, int64_t n, int64_t *avg);

/* The manager figures of API.md in their order, as values: counts, money and seconds as themselves, ratios
 * in ten-thousandths; present false for null. */
#define KPI_FIGURES 16
enum kpi_kind { KPI_COUNT, KPI_MONEY, KPI_SECONDS, KPI_RATIO };
struct kpi_figure {
    const char *name;
    enum kpi_kind kind;
};
extern const struct kpi_figure kpi_figures[KPI_FIGURES];
int kpi_figure_index(const char *name); /* -1 when unknown */
struct kpi_values {
    bool present[KPI_FIGURES];
    int64_t v[KPI_FIGURES];
};
void domain_kpi_values(const struct so_kpi_row *k, struct kpi_values *out);
/* The value as a JSON-able number (a ratio as a fraction). */
double kpi_number(int figure, int64_t v);
/* ok | warn | bad against the target, or NULL (no target, or no value). */
const char *domain_verdict(const struct so_target *t, int figure, const struct kpi_values *v);
/* |delta| >= the target's warn_within (exactly, in the figure's units). */
bool domain_change_notable(const struct so_target *t, int figure, int64_t delta);
/* "Иванова Анна: 14 сделок без задач, на 6 больше, чем неделей ранее" */
void domain_finding_text(const char *manager_name, int figure, bool has_value, int64_t value, bool has_delta,
                         int64_t delta, char *buf, size_t len);
/* Replaces the account's whole set of targets. */
enum so_err domain_targets_put(struct db *db, int64_t account_id, const struct so_target *items, int count,
                               int64_t now, struct so_error *err);

/* Demo data for the README's walkthrough, relative to now (see API.md, Operations). */
enum so_err domain_demo_load(struct db *db, int64_t account_id, int64_t now, struct so_error *err);

#endif
