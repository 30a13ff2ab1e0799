/* Deals, their stage/status/responsible history, and notes. */
#include <string.h>
#include "batcher.h"
#include "db_internal.h"
#include "salesops/buf.h"

#define DEAL_COLUMNS                                                                                         \
    "id, external_id, name, price, pipeline_id, stage_id, status, manager_id, loss_reason_id, " EPOCH(       \
        "created_at") ", " EPOCH("closed_at") ", " EPOCH("updated_at")

static const char *const statuses[] = {"open", "won", "lost"};

static enum deal_status parse_status(const char *s)
{
    return s[0] == 'w' ? DEAL_WON : s[0] == 'l' ? DEAL_LOST : DEAL_OPEN;
}

/* New deals, each with its creation in the change log and its creation history row, in one statement: what
 * salesops_rebuild_deals would derive from that one change (and a rebuild of a new deal would also leave its
 * fields as they are inserted here). The ids are drawn first, in the order given, and answered in that order.
 * The creator is the deal's first responsible. */
DB_STMT(stmt_deals_insert,
        "WITH input AS MATERIALIZED (SELECT t.*, nextval('deals_id_seq') AS id"
        "  FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::text[], $8::int8[],"
        "  $9::int8[], $10::int8[], $11::int8[], $12::int8[]) WITH ORDINALITY AS t(external_id, name, price,"
        "  pipeline_id, stage_id, status, manager_id, loss_reason_id, created_at, closed_at, updated_at, ord)),"
        " d AS (INSERT INTO deals (account_id, id, external_id, name, price, pipeline_id, stage_id, status,"
        "  manager_id, creator_manager_id, loss_reason_id, created_at, closed_at, updated_at)"
        "  SELECT $1, id, external_id, name, price, pipeline_id, stage_id, status, manager_id, manager_id,"
        "  loss_reason_id, to_timestamp(created_at), to_timestamp(closed_at), to_timestamp(updated_at)"
        "  FROM input ORDER BY ord"
        "  RETURNING id, name, price, stage_id, status, manager_id, loss_reason_id, created_at),"
        " c AS (INSERT INTO deal_changes (account_id, deal_id, at, creation, stage_id, loss_reason_id, set_manager,"
        "  manager_id, price, name) SELECT $1, id, created_at, true, stage_id, loss_reason_id, true, manager_id,"
        "  price, name FROM d ORDER BY id),"
        " h AS (INSERT INTO deal_history (account_id, deal_id, from_stage_id, to_stage_id, status, at, manager_id,"
        "  loss_reason_id, price) SELECT $1, id, NULL, stage_id, status, created_at, manager_id,"
        "  CASE WHEN status = 'lost' THEN loss_reason_id END, price FROM d ORDER BY id)"
        " SELECT id FROM input ORDER BY ord");
DB_STMT(stmt_deal_get, "SELECT " DEAL_COLUMNS " FROM deals WHERE account_id = $1 AND id = $2"
                       " AND deleted_at IS NULL");
DB_STMT(stmt_deal_get_locked, "SELECT " DEAL_COLUMNS " FROM deals WHERE account_id = $1 AND id = $2"
                              " AND deleted_at IS NULL FOR UPDATE");
DB_STMT(stmt_deal_list,
        "SELECT " DEAL_COLUMNS " FROM deals WHERE account_id = $1 AND id > $2 AND deleted_at IS NULL"
        " AND ($4::int8 IS NULL OR manager_id = $4) AND ($5::int8 IS NULL OR pipeline_id = $5)"
        " AND ($6::int8 IS NULL OR stage_id = $6) AND ($7::text IS NULL OR status = $7)"
        " AND ($8::int8 IS NULL OR updated_at >= to_timestamp($8))"
        " ORDER BY id LIMIT $3");
DB_STMT(stmt_deal_get_any, "SELECT " DEAL_COLUMNS " FROM deals WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_deals_absent,
        "SELECT NOT EXISTS (SELECT 1 FROM deals d WHERE d.account_id = $1 AND d.external_id = t.ext)"
        " FROM unnest($2::text[]) WITH ORDINALITY AS t(ext, ord) ORDER BY t.ord");
DB_STMT(stmt_deal_get_any_by_ext, "SELECT " DEAL_COLUMNS " FROM deals WHERE account_id = $1 AND external_id = $2");
DB_STMT(stmt_deal_lock, "SELECT 1 FROM deals WHERE account_id = $1 AND id = $2 FOR UPDATE");
DB_STMT(stmt_deal_change_insert,
        "INSERT INTO deal_changes (account_id, deal_id, at, creation, stage_id, loss_reason_id, set_manager,"
        " manager_id, price, name) VALUES ($1, $2, to_timestamp($3), $4, $5, $6, $7, $8, $9, $10)");
DB_STMT(stmt_deal_rebuild, "SELECT salesops_rebuild_deal($1, $2, to_timestamp($3))");
DB_STMT(
    stmt_deal_loss_reason_set,
    "UPDATE deal_changes c SET loss_reason_id = $3 FROM stages s"
    " WHERE c.account_id = $1 AND c.id = (SELECT id FROM deal_changes WHERE account_id = $1 AND deal_id = $2"
    "  AND stage_id IS NOT NULL ORDER BY at DESC, creation, id DESC LIMIT 1)"
    " AND s.account_id = c.account_id AND s.id = c.stage_id AND s.kind = 'lost'"
    " RETURNING " EPOCH("c.at"));
DB_STMT(
    stmt_deal_set_deleted,
    "UPDATE deals SET deleted_at = CASE WHEN $3 THEN to_timestamp($4) END, deleted_set_at = to_timestamp($4)"
    " WHERE account_id = $1 AND id = $2 AND (deleted_set_at IS NULL OR deleted_set_at <= to_timestamp($4))");

enum db_rc store_deals_insert(struct db *db, int64_t account_id, const struct so_deal *deals, int count,
                              int64_t *ids)
{
    if (count == 0) return DB_OK;
    enum { COLUMNS = 11 };
    struct so_buf col[COLUMNS] = {0};
    for (int i = 0; i < count; i++) {
        const struct so_deal *d = &deals[i];
        db_array_row(col, COLUMNS, i);
        db_array_put_text(&col[0], d->external_id, d->external_id ? strlen(d->external_id) : 0);
        db_array_put_text(&col[1], d->name, d->name ? strlen(d->name) : 0);
        db_array_put_int(&col[2], d->price);
        db_array_put_int(&col[3], d->pipeline_id);
        db_array_put_int(&col[4], d->stage_id);
        db_array_put_text(&col[5], statuses[d->status], strlen(statuses[d->status]));
        db_array_put_id(&col[6], d->manager_id);
        db_array_put_id(&col[7], d->loss_reason_id);
        db_array_put_int(&col[8], d->created_at);
        db_array_put_id(&col[9], d->closed_at);
        db_array_put_int(&col[10], d->updated_at);
    }
    struct db_params p = {0};
    dbp_int(&p, account_id);
    PGresult *res;
    enum db_rc rc = db_array_exec(db, &stmt_deals_insert, col, COLUMNS, &p, count, &res);
    for (int i = 0; rc == DB_OK && ids != NULL && i < count; i++)
        ids[i] = db_i64(res, i, 0);
    PQclear(res);
    return rc;
}

static void fill_deal(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_deal *d = item;
    d->id = db_i64(r, row, 0);
    d->external_id = db_str(a, r, row, 1);
    d->name = db_str(a, r, row, 2);
    d->price = db_i64(r, row, 3);
    d->pipeline_id = db_i64(r, row, 4);
    d->stage_id = db_i64(r, row, 5);
    d->status = parse_status(PQgetvalue(r, row, 6));
    d->manager_id = db_i64(r, row, 7);
    d->loss_reason_id = db_i64(r, row, 8);
    d->created_at = db_i64(r, row, 9);
    d->closed_at = db_i64(r, row, 10);
    d->updated_at = db_i64(r, row, 11);
}

enum db_rc store_deal_get(struct db *db, struct arena *a, int64_t account_id, int64_t id, bool for_update,
                          struct so_deal *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, for_update ? &stmt_deal_get_locked : &stmt_deal_get, &p, fill_deal, out);
}

/* Deal reads in batches: the deals of the queued reads in one statement, each row with its read's place. At
 * load, one statement of many lookups costs PostgreSQL a fraction of as many single SELECTs, and the HTTP
 * worker threads are not blocked on the database meanwhile (their connections are suspended). */
#define DEAL_READS_MAX 64
DB_STMT(stmt_deal_read_batch,
        "SELECT " DEAL_COLUMNS ", r.ord FROM unnest($1::int8[], $2::int8[]) WITH ORDINALITY AS r (acc, deal, ord)"
        " JOIN deals d ON d.account_id = r.acc AND d.id = r.deal AND d.deleted_at IS NULL");

static void read_batch(struct db *db, struct so_batch_item *items, int count)
{
    struct so_deal_read *reads[DEAL_READS_MAX];
    int64_t accounts[DEAL_READS_MAX], ids[DEAL_READS_MAX];
    int n = 0;
    for (struct so_batch_item *it = items; it != NULL && n < count && n < DEAL_READS_MAX; it = it->next) {
        struct so_deal_read *r = (struct so_deal_read *)it;
        reads[n] = r;
        r->link.rc = DB_NONE;
        accounts[n] = r->account_id;
        ids[n++] = r->id;
    }
    struct arena a = {0};
    struct db_params p = {.values = {db_id_array(&a, accounts, n), db_id_array(&a, ids, n)}, .count = 2};
    PGresult *res = NULL;
    enum db_rc rc = p.values[0] && p.values[1] ? db_exec(db, &stmt_deal_read_batch, &p, &res) : DB_ERROR;
    if (rc == DB_OK) {
        for (int row = 0; row < PQntuples(res); row++) {
            int64_t ord = db_i64(res, row, 12);
            if (ord < 1 || ord > n) continue;
            struct so_deal_read *r = reads[ord - 1];
            fill_deal(r->arena, res, row, &r->out);
            r->link.rc = DB_OK;
        }
    } else if (rc != DB_NONE) {
        for (int i = 0; i < n; i++)
            reads[i]->link.rc = rc;
    }
    PQclear(res);
    arena_release(&a);
}

static struct batcher readers = BATCHER_INIT(DEAL_READS_MAX, DEAL_READS_MAX, read_batch, NULL);

bool deal_reads_start(const char *conninfo, int count)
{
    return batcher_start(&readers, conninfo, count);
}

void deal_reads_stop(void)
{
    batcher_stop(&readers);
}

void deal_read_submit(struct so_deal_read *r)
{
    r->link.bytes = 1;
    batcher_submit(&readers, &r->link);
}

void store_deal_read_stats(long *batches, long *reads)
{
    batcher_stats(&readers, batches, reads);
}

enum db_rc store_deal_list(struct db *db, struct arena *a, int64_t account_id, const struct so_deal_filter *f,
                           const struct so_page *page, struct so_deal **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_id(&p, f->manager_id);
    dbp_id(&p, f->pipeline_id);
    dbp_id(&p, f->stage_id);
    dbp_str(&p, f->status >= 0 ? statuses[f->status] : NULL);
    dbp_id(&p, f->updated_since);
    return db_list(db, a, &stmt_deal_list, &p, sizeof **items, fill_deal, (void **)items, count);
}

enum db_rc store_deal_get_any(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                              struct so_deal *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, &stmt_deal_get_any, &p, fill_deal, out);
}

enum db_rc store_deals_absent(struct db *db, int64_t account_id, const char *const *exts, int count, bool *absent)
{
    if (count == 0) return DB_OK;
    struct so_buf col[1] = {0};
    for (int i = 0; i < count; i++) {
        db_array_row(col, 1, i);
        db_array_put_text(&col[0], exts[i], strlen(exts[i]));
    }
    struct db_params p = {0};
    dbp_int(&p, account_id);
    PGresult *res;
    enum db_rc rc = db_array_exec(db, &stmt_deals_absent, col, 1, &p, count, &res);
    for (int i = 0; rc == DB_OK && i < count; i++)
        absent[i] = PQgetvalue(res, i, 0)[0] == 't';
    PQclear(res);
    return rc;
}

enum db_rc store_deal_get_any_by_external(struct db *db, struct arena *a, int64_t account_id,
                                          const char *external_id, struct so_deal *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, external_id);
    return db_one(db, a, &stmt_deal_get_any_by_ext, &p, fill_deal, out);
}

enum db_rc store_deal_lock(struct db *db, int64_t account_id, int64_t id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_deal_lock, &p, &r);
    PQclear(r);
    return rc;
}

enum db_rc store_deal_change_insert(struct db *db, int64_t account_id, const struct so_deal_change_row *c)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, c->deal_id);
    dbp_int(&p, c->at);
    dbp_bool(&p, c->creation);
    dbp_id(&p, c->stage_id);
    dbp_id(&p, c->loss_reason_id);
    dbp_bool(&p, c->set_manager);
    dbp_id(&p, c->set_manager ? c->manager_id : 0);
    if (c->set_price)
        dbp_int(&p, c->price);
    else
        dbp_str(&p, NULL);
    dbp_str(&p, c->name);
    return db_run(db, &stmt_deal_change_insert, &p);
}

enum db_rc store_deal_rebuild(struct db *db, int64_t account_id, int64_t deal_id, int64_t from_at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_int(&p, from_at);
    return db_run(db, &stmt_deal_rebuild, &p);
}

enum db_rc store_deal_loss_reason_set(struct db *db, int64_t account_id, int64_t deal_id,
                                      int64_t loss_reason_id, int64_t *at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_id(&p, loss_reason_id);
    return db_returning_id(db, &stmt_deal_loss_reason_set, &p, at);
}

enum db_rc store_deal_set_deleted(struct db *db, int64_t account_id, int64_t deal_id, bool deleted,
                                  int64_t at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_bool(&p, deleted);
    dbp_int(&p, at);
    return db_run(db, &stmt_deal_set_deleted, &p);
}

/* The cursor of a history page is the last row's (at, id). */
DB_STMT(stmt_history_list, "SELECT id, deal_id, from_stage_id, to_stage_id, status, " EPOCH(
                               "at") ", manager_id, loss_reason_id, price"
                                     " FROM deal_history WHERE account_id = $1 AND deal_id = $4"
                                     " AND (at, id) > (to_timestamp($5), $2) ORDER BY at, id LIMIT $3");

static void fill_history(struct arena *a, const PGresult *r, int row, void *item)
{
    (void)a;
    struct so_history_row *h = item;
    h->id = db_i64(r, row, 0);
    h->deal_id = db_i64(r, row, 1);
    h->from_stage_id = db_i64(r, row, 2);
    h->to_stage_id = db_i64(r, row, 3);
    h->status = parse_status(PQgetvalue(r, row, 4));
    h->at = db_i64(r, row, 5);
    h->manager_id = db_i64(r, row, 6);
    h->loss_reason_id = db_i64(r, row, 7);
    h->price = db_i64(r, row, 8);
}

enum db_rc store_history_list(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                              const struct so_page *page, struct so_history_row **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_int(&p, deal_id);
    dbp_int(&p, page->after_at ? page->after_at : -62135596800LL); /* year 1 when no cursor */
    return db_list(db, a, &stmt_history_list, &p, sizeof **items, fill_history, (void **)items, count);
}

DB_STMT(stmt_note_insert, "INSERT INTO notes (account_id, external_id, deal_id, text, manager_id, created_at)"
                          " VALUES ($1, $2, $3, $4, $5, to_timestamp($6)) RETURNING id");
DB_STMT(stmt_note_upsert,
        "INSERT INTO notes (account_id, external_id, deal_id, text, manager_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5, to_timestamp($6)) ON CONFLICT (account_id, external_id)"
        " DO UPDATE SET text = EXCLUDED.text RETURNING id");
DB_STMT(
    stmt_note_list,
    "SELECT id, external_id, deal_id, text, manager_id, " EPOCH(
        "created_at") " FROM notes WHERE account_id = $1 AND deal_id = $4 AND id > $2 ORDER BY id LIMIT $3");

static enum db_rc note_write(struct db *db, struct db_stmt *stmt, int64_t account_id, const struct so_note *n,
                             int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, n->external_id);
    dbp_int(&p, n->deal_id);
    dbp_str(&p, n->text);
    dbp_id(&p, n->manager_id);
    dbp_int(&p, n->created_at);
    return db_returning_id(db, stmt, &p, id);
}

enum db_rc store_note_insert(struct db *db, int64_t account_id, const struct so_note *n, int64_t *id)
{
    return note_write(db, &stmt_note_insert, account_id, n, id);
}

enum db_rc store_note_upsert(struct db *db, int64_t account_id, const struct so_note *n, int64_t *id)
{
    return note_write(db, &stmt_note_upsert, account_id, n, id);
}

static void fill_note(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_note *n = item;
    n->id = db_i64(r, row, 0);
    n->external_id = db_str(a, r, row, 1);
    n->deal_id = db_i64(r, row, 2);
    n->text = db_str(a, r, row, 3);
    n->manager_id = db_i64(r, row, 4);
    n->created_at = db_i64(r, row, 5);
}

enum db_rc store_note_list(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                           const struct so_page *page, struct so_note **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_int(&p, deal_id);
    return db_list(db, a, &stmt_note_list, &p, sizeof **items, fill_note, (void **)items, count);
}
