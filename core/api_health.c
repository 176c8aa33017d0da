/* Health endpoints: open (no auth), cheap, never behind a worker. */
#include <time.h>

#include "app.h"
#include "conf.h"
#include "http.h"

void ci_api_health(struct ci_req *req, void *app_ptr);

void ci_api_health(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;

	ci_req_reply_json(req, 200,
			  json_pack("{s:s,s:s,s:s,s:I}", "status", "ok", "version", CI_VERSION,
				    "backend", app->conf->backend, "uptime_s",
				    (json_int_t)((int64_t)time(NULL) - app->started_unix)));
}
