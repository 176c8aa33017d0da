/* Health endpoints: open (no auth), cheap, answered on the event thread. */
#include <time.h>

#include "api.h"
#include "app.h"
#include "conf.h"
#include "http.h"
#include "loader.h"

void ci_api_health(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;

	ci_req_reply_json(req, 200,
			  json_pack("{s:s,s:s,s:s,s:s,s:I,s:i}", "status", "ok", "version",
				    CI_VERSION, "backend", app->plugin->name, "backend_version",
				    app->plugin->version, "uptime_s",
				    (json_int_t)((int64_t)time(NULL) - app->started_unix), "busy",
				    ci_http_busy(app->http)));
}
