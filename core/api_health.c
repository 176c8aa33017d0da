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
	char body[256];
	int n;

	/* Built by hand: this is the route load balancers hammer. */
	n = snprintf(body, sizeof(body),
		     "{\"status\":\"ok\",\"version\":\"%s\",\"backend\":\"%s\","
		     "\"backend_version\":\"%s\",\"uptime_s\":%lld,\"busy\":%d}",
		     CI_VERSION, app->plugin->name, app->plugin->version,
		     (long long)((int64_t)time(NULL) - app->started_unix), ci_http_busy(app->http));
	ci_req_reply_raw_json(req, 200, body, (size_t)n);
}
