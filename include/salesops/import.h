/* salesops import --account ID FILE.ndjson: history in bulk, set-based, in one transaction. */
#ifndef SALESOPS_IMPORT_H
#define SALESOPS_IMPORT_H
#include <stdint.h>
#include <stdio.h>
#include "salesops/error.h"
#include "salesops/store.h"

struct import_stats {
    int64_t lines;
    int64_t valid;      /* lines that parsed as events */
    int64_t rejected;   /* lines that did not (reported on stderr, not stored) */
    int64_t accepted;   /* new events stored and applied */
    int64_t duplicates; /* ids seen before, or twice in the file */
    int64_t woken;      /* earlier events that had waited for what the import created */
    double seconds;
};

/* Progress goes to stderr once a second. Nothing is distributed or written to the CRM. */
enum so_err domain_import(struct db *db, int64_t account_id, FILE *in, struct import_stats *stats,
                          struct so_error *err);

#endif
