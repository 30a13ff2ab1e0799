/* amoCRM: the mapping of a decoded webhook body (amo_form_decode) to salesops events (API.md "Events"). */
#ifndef SALESOPS_AMOCRM_MAP_H
#define SALESOPS_AMOCRM_MAP_H
#include <jansson.h>
#include <stdint.h>
#include "salesops/error.h"

/* What one body held besides its events. Entities are counted one per array element (one lead, task or
 * note); a part that is not an array counts as one. */
struct amo_map_stats {
    int events;  /* events returned */
    int ignored; /* entities salesops does not use: contacts, companies, unsorted, talk, message, catalogs,
                    customers, tasks and notes on something other than a lead */
    int unknown; /* unknown entities or actions, and entities skipped for a missing or non-numeric id or an
                    unreadable required field (price, task deadline) */
};

/* Maps a decoded amoCRM webhook body to a new JSON array of events in the /events format:
 * {"id": "<id_prefix>:<n>", "type", "at": "YYYY-MM-DDTHH:MM:SSZ", "data": {...}}, n being the event's
 * 0-based position in the array (the same body always gives the same ids). Objects are named by amoCRM ids
 * as decimal strings. Creations come first (leads[add], then task[add]), then the other actions in the
 * body's order; within an action, entities in index order. Every event's data carries "actor" (the amoCRM
 * user who acted) when the body names one, except call.logged, whose "manager" (the caller) is the actor.
 * `at` is the entity's updated_at, else last_modified, else created_at (unix seconds only), else received_at;
 * a note's is its created_at, else received_at. Beyond the /events fields: deal.updated carries "if_changed":
 * true with any stage, pipeline or manager (the domain applies those only when they differ from the stored
 * state and the body is newer), and a call.logged without duration and call_status in the note's params
 * carries "details_pending": true. A body that is not a JSON object: NULL with ERR_MALFORMED. Anything inside
 * the body that cannot be mapped is skipped and counted in stats (which may be NULL), never an error. */
json_t *amo_map_webhook(json_t *form, int64_t received_at, const char *id_prefix, struct amo_map_stats *stats,
                        struct so_error *err);

#endif
