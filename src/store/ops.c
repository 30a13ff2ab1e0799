/* Operational gauges for /metrics: queue depths and ages across all accounts. Every count reads a partial
 * index over a rare state (0003, 0005, 0007, 0011, 0015), so a scrape stays cheap on large tables. */
#include <stdlib.h>
#include "db_internal.h"

/* The inbox's open rows are read through inbox_open (0015), whose predicate names received_at. */
DB_STMT(st_ops_gauges,
        "SELECT (SELECT count(*) FROM inbox WHERE state = 'pending' AND received_at IS NOT NULL),"
        " (SELECT count(*) FROM inbox WHERE state = 'waiting' AND received_at IS NOT NULL),"
        " (SELECT count(*) FROM inbox WHERE state = 'failed'),"
        " coalesce((SELECT extract(epoch FROM now() - min(received_at)) FROM inbox"
        "           WHERE state IN ('pending', 'waiting') AND received_at IS NOT NULL), 0),"
        " coalesce((SELECT extract(epoch FROM now() - min(received_at)) FROM inbox"
        "           WHERE state = 'pending' AND next_attempt_at <= now()), 0),"
        " (SELECT count(*) FROM outbox WHERE state = 'pending'),"
        " (SELECT count(*) FROM outbox WHERE state = 'dead'),"
        " coalesce((SELECT extract(epoch FROM now() - min(created_at)) FROM outbox WHERE state = 'pending'), 0),"
        " (SELECT count(*) FROM amocrm_loss_reads WHERE state = 'pending'),"
        " (SELECT count(*) FROM amocrm_loss_reads WHERE state = 'dead'),"
        " (SELECT count(*) FROM amocrm_call_reads WHERE state = 'pending'),"
        " (SELECT count(*) FROM amocrm_call_reads WHERE state = 'dead'),"
        " (SELECT count(*) FROM distribution_waiting),"
        " (SELECT count(*) FROM focus_sessions WHERE ended_at IS NULL),"
        " (SELECT count(*) FROM rejection_reviews WHERE state = 'pending')");

enum db_rc store_ops_gauges(struct db *db, struct ops_gauges *out)
{
    PGresult *r;
    enum db_rc rc = db_exec(db, &st_ops_gauges, NULL, &r);
    if (rc != DB_OK) return rc;
    int c = 0;
    out->inbox_pending = db_i64(r, 0, c++);
    out->inbox_waiting = db_i64(r, 0, c++);
    out->inbox_failed = db_i64(r, 0, c++);
    out->inbox_oldest_age_s = strtod(PQgetvalue(r, 0, c++), NULL);
    out->applier_lag_s = strtod(PQgetvalue(r, 0, c++), NULL);
    out->outbox_pending = db_i64(r, 0, c++);
    out->outbox_dead = db_i64(r, 0, c++);
    out->outbox_oldest_age_s = strtod(PQgetvalue(r, 0, c++), NULL);
    out->loss_reads_pending = db_i64(r, 0, c++);
    out->loss_reads_dead = db_i64(r, 0, c++);
    out->call_reads_pending = db_i64(r, 0, c++);
    out->call_reads_dead = db_i64(r, 0, c++);
    out->distribution_waiting = db_i64(r, 0, c++);
    out->focus_active = db_i64(r, 0, c++);
    out->reviews_pending = db_i64(r, 0, c++);
    PQclear(r);
    return DB_OK;
}
