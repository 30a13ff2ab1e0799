/* The REST API: the route table and its handlers (one file per resource in src/api/). */
#ifndef SALESOPS_API_H
#define SALESOPS_API_H
#include <stddef.h>
#include "salesops/http.h"

extern const struct so_route so_api_routes[];
extern const size_t so_api_route_count;

#endif
