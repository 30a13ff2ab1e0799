/* The scheduler's jobs: each claims its own rows, so any number of threads and instances may run them. */
#ifndef SALESOPS_SCHED_JOBS_H
#define SALESOPS_SCHED_JOBS_H
#include "salesops/sched.h"
#include "salesops/store.h"

#define JOB_CHANNEL STORE_INBOX_CHANNEL

/* Applies up to max webhook bodies, batch of one account in a transaction; returns how many it took. */
int job_apply_webhooks(struct db *db, int batch, int max);
/* Every few seconds (once in the process): applies the waiting events whose deal or task appeared by a way
 * that does not wake them at once (ingest_wake_existing); returns how many. */
int job_wake_waiting(struct db *db);
/* Parks the events that waited 24 hours; returns how many. */
int job_expire_waiting(struct db *db);

/* The amoCRM connector: one due sync, one loss reason read, up to a batch of outbox rows. */
int job_amocrm_sync(struct db *db);
int job_amocrm_loss_reads(struct db *db);
int job_amocrm_call_reads(struct db *db);
int job_amocrm_outbox(struct db *db);

/* Focus sessions whose time is up end (timeout); returns how many. */
int job_focus_timeouts(struct db *db);
/* Deals waiting for an eligible manager are assigned, oldest first; returns how many. */
int job_assign_waiting(struct db *db);

/* Folds the analytics rollup's appended deltas; returns 1 when it folded any (0 otherwise). */
int job_kpi_compact(struct db *db);

/* Every SCHED_ANALYZE_EVERY_S seconds (per thread; one at a time in the database): analyzes the tables that
 * grew past their statistics. Returns 0. */
int job_analyze_grown(struct db *db);

/* Reviews for judged losses that lack theirs (after a crash); returns how many. */
int job_rejection_sweep(struct db *db);

#endif
