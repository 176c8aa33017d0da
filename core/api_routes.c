/* The route table: every route is also served under /v1 (router.c). */
#include "api.h"
#include "app.h"
#include "http.h"

extern const struct ci_stream_ops ci_api_upload_stream;

#define GET(p, f)                                      \
	{                                              \
		.method = "GET", .pattern = p, .fn = f \
	}
#define OPEN(p, f)                                                   \
	{                                                            \
		.method = "GET", .pattern = p, .fn = f, .open = true \
	}

static const struct ci_route routes[] = {
	OPEN("/health", ci_api_health),
	OPEN("/healthz", ci_api_health),
	OPEN("/librechat/health", ci_api_health),
	/* LibreChat Code Interpreter API (both generations). */
	{.method = "POST",
	 .pattern = "/exec",
	 .fn = ci_api_exec,
	 .run = CI_RUN_WORKER,
	 .body = CI_BODY_BUFFER},
	{.method = "POST",
	 .pattern = "/upload",
	 .fn = ci_api_upload,
	 .run = CI_RUN_WORKER,
	 .body = CI_BODY_STREAM,
	 .stream = &ci_api_upload_stream},
	{.method = "POST",
	 .pattern = "/upload/batch",
	 .fn = ci_api_upload_batch,
	 .run = CI_RUN_WORKER,
	 .body = CI_BODY_STREAM,
	 .stream = &ci_api_upload_stream},
	GET("/files/:session_id", ci_api_list_files),
	GET("/sessions/:session_id/objects/:file_id", ci_api_object),
	GET("/download/:session_id/:file_id", ci_api_download),
	{.method = "DELETE", .pattern = "/files/:session_id/:file_id", .fn = ci_api_delete_file},
	/* The llm-sandbox proxy's standard API, for drop-in replacement. */
	{.method = "POST",
	 .pattern = "/librechat/runs",
	 .fn = ci_api_exec,
	 .run = CI_RUN_WORKER,
	 .body = CI_BODY_BUFFER},
	GET("/librechat/sessions", ci_api_sessions),
	{.method = "DELETE",
	 .pattern = "/librechat/sessions/:id",
	 .fn = ci_api_delete_session,
	 .run = CI_RUN_WORKER},
	{.method = "POST",
	 .pattern = "/librechat/files",
	 .fn = ci_api_upload,
	 .run = CI_RUN_WORKER,
	 .body = CI_BODY_STREAM,
	 .stream = &ci_api_upload_stream},
	GET("/librechat/files/:session_id", ci_api_list_files),
	GET("/librechat/files/:session_id/:file_id", ci_api_download),
	{.method = "DELETE",
	 .pattern = "/librechat/files/:session_id/:file_id",
	 .fn = ci_api_delete_file},
	/* Operators. */
	GET("/languages", ci_api_languages),
	GET("/backends", ci_api_backends),
};

const struct ci_route *ci_api_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}
