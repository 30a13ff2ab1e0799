/* Shared inside the domain only. */
#ifndef SALESOPS_DOMAIN_INTERNAL_H
#define SALESOPS_DOMAIN_INTERNAL_H
#include "salesops/domain.h"

/* A manager named in a body: it must exist in the account (422); a manager key may name only himself (403).
 */
enum so_err domain_check_manager(struct db *db, struct arena *a, const struct so_auth *auth,
                                 const char *field, int64_t manager_id, struct so_error *err);

/* The actor of a REST action for focus mode: the manager bound to the key, else 0 (the deal's responsible). */
static inline int64_t domain_rest_actor(const struct so_auth *auth)
{
    return auth->role == ROLE_MANAGER ? auth->manager_id : 0;
}

#endif
