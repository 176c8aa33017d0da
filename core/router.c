#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Match one pattern against a path (without the /v1 prefix). */
static bool match_pattern(const char *pat, const char *path, struct ci_params *p)
{
	ci_params_clear(p);
	while (*pat && *path) {
		if (*pat != '/' || *path != '/')
			return false;
		pat++;
		path++;
		if (*pat == ':') {
			const char *name = ++pat, *seg = path;
			size_t name_len, seg_len;

			while (*pat && *pat != '/')
				pat++;
			while (*path && *path != '/')
				path++;
			name_len = (size_t)(pat - name);
			seg_len = (size_t)(path - seg);
			if (!seg_len || p->n == CI_MAX_PARAMS)
				return false;
			p->names[p->n] = name;
			p->name_lens[p->n] = name_len;
			p->values[p->n] = strndup(seg, seg_len);
			if (!p->values[p->n])
				return false;
			p->n++;
		} else {
			while (*pat && *pat != '/') {
				if (*pat != *path)
					return false;
				pat++;
				path++;
			}
			if (*path && *path != '/')
				return false;
		}
	}
	/* One trailing slash is tolerated: "/health/" == "/health". */
	if (!*pat && path[0] == '/' && !path[1])
		return true;
	return !*pat && !*path;
}

const struct ci_route *ci_router_match(const struct ci_route *routes, size_t n, const char *method,
				       const char *path, struct ci_params *params, bool *path_known)
{
	const char *rest = path;

	*path_known = false;
	if (!strncmp(path, "/v1/", 4))
		rest = path + 3;
	for (size_t i = 0; i < n; i++) {
		if (!match_pattern(routes[i].pattern, rest, params))
			continue;
		if (!strcmp(routes[i].method, method) ||
		    (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET")))
			return &routes[i];
		*path_known = true;
	}
	ci_params_clear(params);
	return NULL;
}

const char *ci_params_get(const struct ci_params *p, const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < p->n; i++)
		if (p->name_lens[i] == len && !memcmp(p->names[i], name, len))
			return p->values[i];
	return NULL;
}

void ci_params_clear(struct ci_params *p)
{
	for (int i = 0; i < p->n; i++)
		free(p->values[i]);
	memset(p, 0, sizeof(*p));
}
