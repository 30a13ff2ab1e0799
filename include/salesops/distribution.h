/* Lead distribution's rules as plain C (no database): working hours, eligibility and the smooth weighted
 * round robin choice. The domain feeds them rows read under the account's distribution lock. */
#ifndef SALESOPS_DISTRIBUTION_H
#define SALESOPS_DISTRIBUTION_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "salesops/error.h"
#include "salesops/types.h"

#define WH_MAX_RANGES 8
#define WH_DAYS       7

/* Weekly working hours in the account's zone. Minutes since midnight; a range with end <= start crosses
 * midnight and belongs to its start day; end may be 1440 (24:00). */
struct working_hours {
    bool set; /* false: no working hours (always inside) */
    int count[WH_DAYS]; /* day 0 is Monday */
    int start[WH_DAYS][WH_MAX_RANGES];
    int end[WH_DAYS][WH_MAX_RANGES];
};
extern const char *const wh_day_names[WH_DAYS]; /* mon .. sun */

/* Reads {"mon":["09:00-18:00"], ...}; null means none. Bad parts become field errors named under `field`
 * (e.g. "working_hours.mon[1]"). */
enum so_err working_hours_parse(json_t *v, const char *field, struct working_hours *out, struct so_error *err);
/* The hours stored as JSON text (NULL: none), which were checked before they were stored. */
void working_hours_from_text(const char *text, struct working_hours *out);
/* null when not set, else an object with all seven days. */
json_t *working_hours_json(const struct working_hours *wh);
/* Inside the hours at local day dow (0 = Monday) and minute of the day? */
bool working_hours_contains(const struct working_hours *wh, int dow, int minute);

/* The first reason that applies, in PRODUCT.md's order, or NULL when eligible. */
const char *dist_ineligible_reason(const struct dist_candidate *c, bool off_hours);
/* Smooth weighted round robin (nginx) over the candidates with eligible[i], in the given (id) order: adds each
 * weight (1 for round_robin) to its current, picks the largest current (ties: the first), subtracts the total
 * from it. Returns the index picked, or -1 when nobody is eligible (nothing changes then). */
int dist_pick(struct dist_candidate *c, const bool *eligible, int n, bool weighted);

#endif
