/* Shared helpers of the HTTP handlers (api_*.c). */
#ifndef CI_CORE_API_H
#define CI_CORE_API_H

#include <jansson.h>
#include <stddef.h>

struct ci_req;

/* The authenticated principal (owner of the principal-level scope). */
const char *ci_api_scope(const struct ci_req *req);

/*
 * The storage owner for this request: the principal, narrowed to
 * "principal/user" when an API-key principal names an end user (a valid
 * resource id). Tokens' principals are one user already. Written to buf.
 */
const char *ci_api_owner(const struct ci_req *req, const char *user, char *buf, size_t len);

/*
 * The end user a read names: ?kind=user&id=X, else the User-Id header;
 * NULL for agent/skill reads (shared at the principal's level) or none.
 */
const char *ci_api_read_user(const struct ci_req *req);

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
