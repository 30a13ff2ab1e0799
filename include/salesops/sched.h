/* Scheduler threads: apply webhook bodies from the inbox, expire events that waited too long, and (with the
 * connector) sync amoCRM and deliver the outbox. Safe with any number of instances: work is claimed row by
 * row with FOR UPDATE SKIP LOCKED; LISTEN/NOTIFY is only a wake-up hint. */
#ifndef SALESOPS_SCHED_H
#define SALESOPS_SCHED_H
#include <stddef.h>
#include "salesops/config.h"

struct so_sched;
struct so_sched *sched_start(const struct so_config *cfg, int threads, char *err, size_t errlen);
void sched_stop(struct so_sched *s);

/* One pass of every job, on the caller's connection; the applier takes apply_batch bodies a transaction.
 * Returns the number of rows it handled. */
struct db;
int sched_run_once(struct db *db, int apply_batch);

/* How often a scheduler thread analyzes the tables that grew past their statistics (migrations/0016). A check
 * that finds nothing costs under a millisecond; a burst into tables analyzed nearly empty runs on plans made
 * for empty tables until the check comes (at 5 s, a 52,000-body drain took 10-12 s instead of 8). */
#define SCHED_ANALYZE_EVERY_S 1

#endif
