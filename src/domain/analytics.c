/* Analytics arithmetic that is not SQL: periods and as_of, ratios and averages as PRODUCT.md (Numbers) defines
 * them. */
#include "internal.h"
#include "salesops/timeutil.h"

bool domain_ratio4(int64_t num, int64_t den, int64_t *q)
{
    if (den == 0) return false;
    bool negative = (num < 0) != (den < 0);
    int64_t n = num < 0 ? -num : num, d = den < 0 ? -den : den; /* counts: far below 2^63 / 20000 */
    int64_t r = (n * 20000 + d) / (2 * d);                     /* half away from zero */
    *q = negative ? -r : r;
    return true;
}

bool domain_avg_s(int64_t total, int64_t n, int64_t *avg)
{
    if (n == 0) return false;
    *avg = (total * 2 + n) / (2 * n); /* half up, for totals >= 0 */
    return true;
}

enum so_err domain_period(struct db *db, int64_t account_id, const char *from_date, const char *to_date,
                          int64_t now, struct so_period *out, struct so_error *err)
{
    enum db_rc rc = store_period_bounds(db, account_id, from_date, to_date, &out->start, &out->end);
    if (rc != DB_OK) return domain_db_error(rc, err);
    out->from_date = from_date;
    out->to_date = to_date;
    out->as_of = out->end - 1 < now ? out->end - 1 : now;
    return SO_OK;
}

#define REPLICA_WAIT_MS 1000
#define REPLICA_POLL_MS 10

struct db *domain_read_db(struct db *primary, const char *read_url)
{
    if (read_url == NULL || read_url[0] == '\0') return primary;
    struct db *replica = db_thread_read(read_url);
    char lsn[64];
    if (replica == NULL || store_wal_position(primary, lsn, sizeof lsn) != DB_OK) return primary;
    for (int waited = 0; waited <= REPLICA_WAIT_MS; waited += REPLICA_POLL_MS) {
        bool done = false;
        if (store_replayed(replica, lsn, &done) != DB_OK) return primary;
        if (done) return replica;
        so_sleep_ms(REPLICA_POLL_MS);
    }
    return primary; /* the replica lags more than a second: the primary answers */
}
