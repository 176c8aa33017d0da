/*
 * Route matching: patterns like "/files/:session_id/:file_id", each served
 * both at "/" and under "/v1". Pure functions, no I/O.
 */
#ifndef CI_CORE_ROUTER_H
#define CI_CORE_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

struct ci_route;

#define CI_MAX_PARAMS 4

struct ci_params {
	int n;
	const char *names[CI_MAX_PARAMS]; /* borrowed from the pattern: ":sid" -> "sid" */
	size_t name_lens[CI_MAX_PARAMS];
	char *values[CI_MAX_PARAMS]; /* owned */
};

/*
 * The route for method + path, filling params; NULL when none. When no
 * route matches, *path_known tells whether some other method would have
 * (405 rather than 404).
 */
const struct ci_route *ci_router_match(const struct ci_route *routes, size_t n, const char *method,
				       const char *path, struct ci_params *params,
				       bool *path_known);
const char *ci_params_get(const struct ci_params *p, const char *name);
void ci_params_clear(struct ci_params *p);

#endif /* CI_CORE_ROUTER_H */
