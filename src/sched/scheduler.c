/* Scheduler threads. Each has its own database connection, LISTENs for inbox wake-ups, and otherwise looks
 * for due work twice a second. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include "salesops/log.h"
#include "salesops/sched.h"
#include "salesops/timeutil.h"
#include "salesops/store.h"
#include "jobs.h"

#define MAX_THREADS  16
#define IDLE_WAIT_MS 500

struct so_sched {
    const struct so_config *cfg;
    pthread_t threads[MAX_THREADS];
    int count;
    atomic_bool stopping;
};

int sched_run_once(struct db *db, int apply_batch)
{
    int handled = 0;
    handled += job_apply_webhooks(db, apply_batch, 2 * apply_batch);
    handled += job_wake_waiting(db);
    handled += job_expire_waiting(db);
    handled += job_focus_timeouts(db);
    handled += job_assign_waiting(db);
    handled += job_rejection_sweep(db);
    handled += job_kpi_compact(db);
    handled += job_analyze_grown(db);
    handled += job_amocrm_sync(db);
    handled += job_amocrm_loss_reads(db);
    handled += job_amocrm_call_reads(db);
    handled += job_amocrm_outbox(db);
    return handled;
}

static void *run(void *p)
{
    struct so_sched *s = p;
    bool listening = false;
    while (!atomic_load(&s->stopping)) {
        struct db *db = db_thread(s->cfg->database_url);
        if (db == NULL) {
            listening = false;
            so_sleep_ms(1000);
            continue;
        }
        if (!listening) listening = db_listen(db, JOB_CHANNEL) == DB_OK;
        if (sched_run_once(db, s->cfg->apply_batch) > 0) continue; /* more may be due: look again at once */
        if (db_wait_notify(db, IDLE_WAIT_MS) == DB_UNAVAILABLE) listening = false;
    }
    db_thread_release();
    return NULL;
}

struct so_sched *sched_start(const struct so_config *cfg, int threads, char *err, size_t errlen)
{
    struct so_sched *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&s->threads[i], NULL, run, s) != 0) {
            snprintf(err, errlen, "cannot start scheduler thread %d", i);
            sched_stop(s);
            return NULL;
        }
        s->count++;
    }
    return s;
}

void sched_stop(struct so_sched *s)
{
    if (s == NULL) return;
    atomic_store(&s->stopping, true);
    for (int i = 0; i < s->count; i++)
        pthread_join(s->threads[i], NULL);
    free(s);
}
