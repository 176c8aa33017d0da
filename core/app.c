#include "app.h"

#include <string.h>
#include <time.h>

#include "conf.h"
#include "http.h"
#include "log.h"

int ci_app_start(struct ci_app *app, struct ci_conf *conf, char *err, size_t errlen)
{
	const struct ci_route *routes;
	size_t n;

	memset(app, 0, sizeof(*app));
	app->conf = conf;
	app->started_unix = (int64_t)time(NULL);
	routes = ci_api_routes(&n);
	app->http = ci_http_start(conf, routes, n, app, err, errlen);
	if (!app->http)
		return -1;
	ci_log(CI_LL_INFO, "server.listening", "host=%s port=%d backend=%s auth=%s", conf->host,
	       ci_http_port(app->http), conf->backend,
	       conf->auth_mode == CI_AUTH_NONE ? "none" : "keys");
	return 0;
}

void ci_app_stop(struct ci_app *app, int grace_ms)
{
	ci_http_stop(app->http, grace_ms);
	app->http = NULL;
}
