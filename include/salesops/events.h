/* Events: the one way CRM data comes in (POST /events, amoCRM webhooks once mapped, import). An event names
 * objects by external id; applying it creates placeholders for unknown managers, pipelines, stages and loss
 * reasons, and waits when the deal or task it is about does not exist yet. */
#ifndef SALESOPS_EVENTS_H
#define SALESOPS_EVENTS_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "salesops/arena.h"
#include "salesops/error.h"
#include "salesops/store.h"

#define EVENTS_MAX_PER_REQUEST 10000
#define EVENT_ID_MAX_CHARS     200

enum event_type {
    EV_MANAGER_UPSERTED,
    EV_DEAL_CREATED,
    EV_DEAL_UPDATED,
    EV_DEAL_STAGE_CHANGED,
    EV_DEAL_RESPONSIBLE_CHANGED,
    EV_DEAL_DELETED,
    EV_DEAL_RESTORED,
    EV_TASK_CREATED,
    EV_TASK_UPDATED,
    EV_TASK_COMPLETED,
    EV_TASK_DELETED,
    EV_CALL_LOGGED,
    EV_NOTE_ADDED,
    EV_TYPE_COUNT
};
const char *event_type_name(enum event_type type);
/* Creations sort before other events at the same second. */
bool event_is_creation(enum event_type type);

struct so_event {
    const char *id;
    enum event_type type;
    int64_t at;
    /* data: objects by external id; has_* tells which optional fields were given */
    const char *deal, *pipeline, *stage, *loss_reason, *manager, *task, *call, *note;
    const char *name, *role, *task_type, *text, *result, *direction;
    bool has_name, has_price, has_active, has_text, has_due, has_manager;
    int64_t price, due_at, duration_s;
    bool active, answered;
    /* only in events mapped from amoCRM */
    bool from_amocrm;
    bool if_changed; /* stage and responsible of a lead update apply only when they differ and are newer */
    bool details_pending; /* a call note whose duration and status the connector reads later */
    const char *actor;
    /* set by ingest: a deal created live is distributed (webhooks, and /events within the last 24 hours) */
    bool live;
};

/* Checks one event object strictly (types, enums, required and unknown fields). internal allows the fields
 * only mapped amoCRM events carry. Strings stay borrowed from ev. */
enum so_err event_parse(json_t *ev, bool internal, struct so_event *out, struct so_error *err);

enum event_outcome { EVENT_APPLIED, EVENT_WAITING, EVENT_IGNORED };
struct event_result {
    enum event_outcome outcome;
    const char *waits_kind; /* deal | task, when waiting */
    const char *waits_for;  /* the external id it waits for */
};
/* What the events of one transaction looked up by external id: managers, pipelines and stages (a batch names
 * the same few again and again). Valid while nothing it holds is rolled back: clear it after a rollback to a
 * savepoint and at the start of each transaction. Its stages' strings live in the arena given to event_apply. */
#define EVENT_CACHE_SIZE 32
struct event_cache {
    /* no event of the account waits: known when the transaction took the keys of its events (no other
     * transaction can add one for them until it ends), until one of its own events waits; false when unknown */
    bool none_waiting;
    /* events are applied without a savepoint each (two round trips fewer an event); the first that fails on its
     * own clears this and fails the transaction, which its caller runs again with savepoints. Kept by
     * event_cache_clear. */
    bool optimistic;
    /* deals created by events and not inserted yet: held while the transaction is optimistic and no event
     * waits, inserted in one statement before any other kind of event applies, or by ingest_finish */
    int64_t held_account;
    struct so_deal *held;
    int held_count;
    /* the external ids of the deals the transaction's events name that did not exist when it began (its keys
     * keep other ingests from making them), sorted; gone once an event of the transaction creates it. Used
     * while the transaction is optimistic. */
    struct absent_deal {
        const char *ext;
        bool gone;
    } *absent;
    int absent_count;
    int count, next;
    struct event_cache_entry {
        int kind;
        int64_t scope; /* a stage's pipeline */
        char ext[96];
        int64_t id;
        struct so_stage stage;
    } e[EVENT_CACHE_SIZE];
};
void event_cache_clear(struct event_cache *cache);
/* Looks up, in one statement, which of the n deal external ids have no deal yet (for an optimistic transaction;
 * nothing otherwise): the events' lookups of those need no statement of their own. */
enum so_err event_cache_deals_absent(struct db *db, struct arena *a, int64_t account_id, struct event_cache *cache,
                                     const char **exts, int n, struct so_error *err);
/* Inserts the deals the cache holds (see held), in one statement. A failure makes the transaction run again
 * with every event in its own savepoint (err->retry), where nothing is held. */
enum so_err event_cache_flush(struct db *db, struct event_cache *cache, struct so_error *err);
/* Applies one event inside the caller's transaction. cache may be NULL. */
enum so_err event_apply(struct db *db, struct arena *a, int64_t account_id, const struct so_event *ev,
                        struct event_cache *cache, struct event_result *result, struct so_error *err);

#endif
