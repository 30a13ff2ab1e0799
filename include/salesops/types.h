/* The plain structs of the domain. Ids are positive; 0 means null. Times are epoch seconds; 0 means null.
 * Strings are NULL when null and live in the request's arena. */
#ifndef SALESOPS_TYPES_H
#define SALESOPS_TYPES_H
#include <stdbool.h>
#include <stdint.h>

enum so_role { ROLE_ADMIN, ROLE_HEAD, ROLE_MANAGER, ROLE_READONLY, ROLE_COUNT };
#define ROLE_BIT(r) (1u << (r))
const char *so_role_name(enum so_role role);
int so_role_parse(const char *name, enum so_role *out);

struct so_auth {
    int64_t account_id;
    int64_t key_id;
    enum so_role role;
    int64_t manager_id; /* the manager a manager key is bound to */
};

struct so_account {
    int64_t id;
    const char *name;
    const char *timezone;
    int64_t created_at;
};

struct so_api_key {
    int64_t id;
    enum so_role role;
    int64_t manager_id;
    const char *name;
    int64_t created_at;
};

struct so_manager {
    int64_t id;
    const char *external_id;
    const char *name;
    const char *email;
    const char *role; /* manager | head | admin */
    bool active;
    bool distribution_enabled;
    int weight;
    bool needs_setup;
    bool pool_user;
    bool in_focus;
    int64_t created_at;
    /* computed for replies (see domain_managers_eligibility) */
    bool eligible;
    const char *ineligible_reason;
};

enum stage_kind { STAGE_OPEN, STAGE_WON, STAGE_LOST };
const char *so_stage_kind_name(enum stage_kind kind);

struct so_stage {
    int64_t id;
    int64_t pipeline_id;
    const char *external_id;
    const char *name;
    enum stage_kind kind;
    int position;
    bool needs_setup;
};

struct so_pipeline {
    int64_t id;
    const char *external_id;
    const char *name;
    bool needs_setup;
    int64_t created_at;
    struct so_stage *stages; /* in funnel order */
    int stage_count;
};

struct so_loss_reason {
    int64_t id;
    const char *external_id;
    const char *name;
    bool needs_setup;
    int64_t created_at;
};

enum deal_status { DEAL_OPEN, DEAL_WON, DEAL_LOST };
const char *so_deal_status_name(enum deal_status status);

struct so_deal {
    int64_t id;
    const char *external_id;
    const char *name;
    int64_t price;
    int64_t pipeline_id;
    int64_t stage_id;
    enum deal_status status;
    int64_t manager_id;
    int64_t loss_reason_id;
    int64_t created_at;
    int64_t closed_at;
    int64_t updated_at;
};

struct so_history_row {
    int64_t id;
    int64_t deal_id;
    int64_t from_stage_id;
    int64_t to_stage_id;
    enum deal_status status;
    int64_t at;
    int64_t manager_id;
    int64_t loss_reason_id;
    int64_t price;
};

struct so_note {
    int64_t id;
    const char *external_id;
    int64_t deal_id;
    const char *text;
    int64_t manager_id;
    int64_t created_at;
};

struct so_task {
    int64_t id;
    const char *external_id;
    int64_t deal_id;
    int64_t manager_id;
    const char *type;
    const char *text;
    int64_t due_at;
    int64_t completed_at;
    int64_t deleted_at;
    const char *result;
    int64_t created_at;
};
/* open | overdue | done | deleted, as of now */
const char *so_task_state(const struct so_task *task, int64_t now);

struct so_call {
    int64_t id;
    const char *external_id;
    int64_t manager_id;
    int64_t deal_id;
    const char *direction;
    int64_t started_at;
    int duration_s;
    bool answered;
    int64_t created_at;
};

/* Lead distribution */
struct so_dist_settings {
    const char *strategy;      /* weighted | round_robin */
    const char *working_hours; /* JSON text, NULL when none */
    int max_in_focus;          /* -1: no cap */
    int local_dow;             /* the account's local day (0 = Monday) and minute of the day at the time asked */
    int local_minute;
};

/* One manager as distribution sees him. */
struct dist_candidate {
    int64_t manager_id;
    const char *name;
    const char *role;
    bool active, enabled, pool_user, in_focus;
    int weight;
    int64_t current; /* the smooth round robin's current weight for the kind at hand */
};

struct so_assignment {
    int64_t id;
    const char *kind; /* lead | call */
    int64_t deal_id;
    int64_t manager_id;
    const char *reason; /* new_deal | pool_user | awaited | next */
    const char *strategy;
    int64_t at;
};

/* Focus mode */
struct so_focus_filter {
    int64_t manager_id;
    int64_t pipeline_id;
    int64_t *stage_ids;
    int stage_count;
    const char *order; /* oldest | price_desc | overdue_first */
    int limit;         /* 0: the whole queue */
    int max_minutes;
    int64_t updated_at;
};

struct so_focus_item {
    int64_t deal_id;
    int64_t done_at;
};

struct so_focus_session {
    int64_t id;
    int64_t manager_id;
    int64_t pipeline_id;
    int64_t *stage_ids;
    int stage_count;
    const char *order;
    int limit;
    int64_t started_at;
    int64_t ends_by;
    int64_t ended_at;
    const char *end_reason; /* NULL while active */
    struct so_focus_item *items;
    int item_count;
    int done;
};

/* A session that ended, for the log. */
struct so_focus_end {
    int64_t account_id;
    int64_t session_id;
    int64_t manager_id;
    const char *reason;
};

/* Rejection control */
struct so_rejection_rule {
    bool enabled;
    bool any_reason;
    int64_t *loss_reason_ids;
    int loss_reason_count;
    int64_t reviewer_id;
    int due_hours;
    double target_return_share; /* at most 4 decimals */
    double sample_share;
    int64_t enabled_since;
    int64_t updated_at;
};

/* A move into lost as it was judged. */
struct so_loss {
    int64_t deal_id;
    int64_t lost_at;
    int ordinal; /* among the deal's moves into lost within that second */
    int64_t lost_by_manager_id;
    int64_t loss_reason_id;
    int64_t from_stage_id;
};

struct so_review {
    int64_t id;
    int64_t deal_id;
    int64_t task_id;
    int64_t lost_by_manager_id;
    int64_t loss_reason_id;
    int64_t from_stage_id;
    int64_t lost_at;
    const char *state; /* pending | returned | confirmed */
    int64_t decided_at;
    const char *note;
    int64_t returned_to_id;
    int64_t follow_up_task_id;
    int64_t created_at;
};

/* A checklist target for one figure. */
struct so_target {
    const char *figure;
    double target;
    const char *direction; /* min | max */
    double warn_within;
};

/* A page of a list: up to limit items after the cursor, ordered by id. */
struct so_page {
    int limit;
    int64_t after_id;
    int64_t after_at; /* for lists ordered by (at, id) */
};

#endif
