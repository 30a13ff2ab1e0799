/* amoCRM: the webhook form decoder, the mapping of its bodies to salesops events, and the API client. */
#ifndef SALESOPS_AMOCRM_H
#define SALESOPS_AMOCRM_H
#include <jansson.h>
#include <stddef.h>
#include "salesops/error.h"

#define AMO_FORM_MAX_DEPTH 12
#define AMO_FORM_MAX_PAIRS 50000

/* Decodes an application/x-www-form-urlencoded body with bracketed keys (`leads[add][0][id]=1`) into a JSON
 * tree: every value is a string; a level whose keys are all array indexes becomes an array in index order.
 * Percent-encoding and '+' are decoded; keys and values must be valid UTF-8. Returns a new reference, or NULL
 * with ERR_MALFORMED and a detail that says what is wrong. */
json_t *amo_form_decode(const char *body, size_t len, struct so_error *err);

/* The value of one top-level key (such as account[subdomain]) without decoding the whole body; out gets the
 * percent-decoded value. Returns 1 when found, 0 when absent, -1 when the body is not decodable there. */
int amo_form_lookup(const char *body, size_t len, const char *key, char *out, size_t outlen);

#endif
