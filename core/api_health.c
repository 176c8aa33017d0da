/* Health endpoints: open (no auth), cheap, answered on the event thread. */
#include <stdio.h>
#include <time.h>

#include "api.h"
#include "app.h"
#include "conf.h"
#include "http.h"
#include "loader.h"

void ci_api_health(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;
	char body[256], reason[CI_ERR_MAX];
	int64_t down_ms = 0;
	int n;

	if (!ci_plugin_health(app->plugin, &down_ms, reason, sizeof(reason))) {
		/* Load balancers take 503 as "send no work here"; the body says why. */
		ci_req_reply_json(req, 503,
				  json_pack("{s:s,s:s,s:s,s:s,s:I}", "status", "degraded",
					    "backend", app->plugin->name, "backend_status", "down",
					    "error", reason, "down_s",
					    (json_int_t)(down_ms / 1000)));
		return;
	}
	/* Built by hand: this is the route load balancers hammer. */
	n = snprintf(body, sizeof(body),
		     "{\"status\":\"ok\",\"version\":\"%s\",\"backend\":\"%s\","
		     "\"backend_version\":\"%s\",\"backend_status\":\"up\",\"uptime_s\":%lld,"
		     "\"busy\":%d}",
		     CI_VERSION, app->plugin->name, app->plugin->version,
		     (long long)((int64_t)time(NULL) - app->started_unix), ci_http_busy(app->http));
	ci_req_reply_raw_json(req, 200, body, (size_t)n);
}
