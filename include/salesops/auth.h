#ifndef SALESOPS_AUTH_H
#define SALESOPS_AUTH_H
#include "salesops/error.h"
#include "salesops/store.h"
#include "salesops/types.h"

/* Resolves "Bearer <key>" to the key's account, role and manager. db may be NULL (cache only). */
enum so_err auth_resolve(struct db *db, const char *authorization, struct so_auth *out, struct so_error *err);
void auth_cache_clear(void);

#endif
