/* Scheduler jobs of distribution, focus, rejection control and the analytics rollup: end the focus sessions
 * whose time is up, give waiting deals to managers who became eligible, repair judged losses that lack their
 * review, and fold the rollup's appended deltas. All are safe with any number of instances: a timeout is one
 * UPDATE over rows claimed with SKIP LOCKED, waiting deals are assigned under the account's distribution lock,
 * and a fold takes the account's compaction lock or skips the account. */
#include <time.h>
#include "jobs.h"
#include "salesops/log.h"
#include "salesops/domain.h"
#include "salesops/timeutil.h"

int job_focus_timeouts(struct db *db)
{
    struct arena a = {0};
    int n = domain_focus_timeouts(db, &a);
    arena_release(&a);
    return n;
}

int job_assign_waiting(struct db *db)
{
    struct arena a = {0};
    int64_t *accounts;
    int count, assigned = 0;
    if (store_dist_waiting_accounts(db, &a, 50, &accounts, &count) == DB_OK) {
        int64_t now = so_now();
        for (int i = 0; i < count; i++)
            assigned += domain_dist_assign_waiting(db, &a, accounts[i], now);
    }
    arena_release(&a);
    return assigned;
}

int job_rejection_sweep(struct db *db)
{
    struct arena a = {0};
    int n = domain_rejection_sweep(db, &a, 20);
    arena_release(&a);
    return n;
}

int job_kpi_compact(struct db *db)
{
    int64_t rows = 0;
    return store_kpi_compact(db, 20, &rows) == DB_OK && rows > 0 ? 1 : 0;
}

int job_analyze_grown(struct db *db)
{
    static _Thread_local time_t last;
    time_t now = time(NULL);
    if (now - last < SCHED_ANALYZE_EVERY_S) return 0;
    last = now;
    int64_t tables = 0;
    if (store_analyze_grown(db, &tables) == DB_OK && tables > 0)
        log_event_steal(LOG_INFO, "tables analyzed", json_pack("{s:I}", "tables", (json_int_t)tables));
    return 0; /* not work that makes more due */
}
