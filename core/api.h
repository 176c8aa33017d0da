/* Shared helpers of the HTTP handlers (api_*.c). */
#ifndef CI_CORE_API_H
#define CI_CORE_API_H

#include <jansson.h>
#include <stddef.h>

struct ci_req;

/* Owner scope of everything this request stores or runs. */
const char *ci_api_scope(const struct ci_req *req);

/* A JSON string from bytes that may not be UTF-8 (invalid bytes -> U+FFFD). */
json_t *ci_json_text(const char *buf, size_t len);

/* ISO-8601 UTC with milliseconds, as LibreChat reads lastModified. */
void ci_iso8601(int64_t ns, char out[32]);

/* Handlers, one per route (api_routes.c). */
void ci_api_health(struct ci_req *req, void *app);
void ci_api_backends(struct ci_req *req, void *app);
void ci_api_exec(struct ci_req *req, void *app);
void ci_api_upload(struct ci_req *req, void *app);
void ci_api_upload_batch(struct ci_req *req, void *app);
void ci_api_list_files(struct ci_req *req, void *app);
void ci_api_object(struct ci_req *req, void *app);
void ci_api_download(struct ci_req *req, void *app);
void ci_api_delete_file(struct ci_req *req, void *app);
void ci_api_sessions(struct ci_req *req, void *app);
void ci_api_delete_session(struct ci_req *req, void *app);
void ci_api_languages(struct ci_req *req, void *app);

#endif /* CI_CORE_API_H */
