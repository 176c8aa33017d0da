/* The route table: every route is also served under /v1 (router.c). */
#include "app.h"
#include "http.h"

void ci_api_health(struct ci_req *req, void *app);

static const struct ci_route routes[] = {
	{.method = "GET", .pattern = "/health", .fn = ci_api_health, .open = true},
	{.method = "GET", .pattern = "/healthz", .fn = ci_api_health, .open = true},
	{.method = "GET", .pattern = "/librechat/health", .fn = ci_api_health, .open = true},
};

const struct ci_route *ci_api_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}
