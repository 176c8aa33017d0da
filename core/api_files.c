/*
 * Stored files: GET /files/:sid?detail=, GET /sessions/:sid/objects/:fid,
 * GET /download/:sid/:fid, DELETE /files/:sid/:fid (librechat-api.md §8-11).
 * Another principal's ids answer exactly like unknown ones.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "http.h"
#include "store.h"

/* "<sid>/<fid><.ext of the original name>", the object name clients parse. */
static void object_name(const struct ci_store_info *f, char *out, size_t len)
{
	const char *base = strrchr(f->name, '/');
	const char *dot;

	base = base ? base + 1 : f->name;
	dot = strrchr(base, '.');
	if (!dot || dot == base || strlen(dot) > 16)
		dot = "";
	snprintf(out, len, "%s/%s%s", f->sid, f->fid, dot);
}

static json_t *etag(const struct ci_store_info *f)
{
	char tag[40];

	snprintf(tag, sizeof(tag), "\"%.32s\"", f->sha256);
	return json_string(tag);
}

static json_t *entry(const struct ci_store_info *f, const char *detail)
{
	char name[300], when[32];

	object_name(f, name, sizeof(name));
	ci_iso8601(f->created_ns, when);
	if (!strcmp(detail, "simple"))
		return json_string(name);
	if (!strcmp(detail, "summary"))
		return json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", name, "id", f->fid, "fileId",
				 f->fid, "size", (json_int_t)f->size, "lastModified", when, "etag",
				 etag(f));
	if (!strcmp(detail, "normalized")) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s}", "id", f->fid, "name", f->name,
				      "storage_session_id", f->sid, "size", (json_int_t)f->size,
				      "contentType", f->content_type, "lastModified", when);

		if (o && (f->flags & CI_STORE_F_READ_ONLY))
			json_object_set_new(o, "read_only", json_true());
		return o;
	}
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:o,s:{s:s,s:s},s:s}", "name", name, "id",
			 f->fid, "storage_session_id", f->sid, "session_id", f->sid, "size",
			 (json_int_t)f->size, "lastModified", when, "etag", etag(f), "metadata",
			 "content-type", f->content_type, "original-filename", f->name,
			 "contentType", f->content_type);
}

struct list_ctx {
	json_t *arr;
	const char *detail;
};

static int list_cb(void *ctx, const struct ci_store_info *f)
{
	struct list_ctx *l = ctx;

	json_array_append_new(l->arr, entry(f, l->detail));
	return 0;
}

void ci_api_list_files(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;
	const char *sid = ci_req_param(req, "session_id");
	const char *detail = ci_req_query(req, "detail");
	struct list_ctx l;
	char owner[CI_STORE_OWNER_MAX + 1];
	int rc;

	if (!detail || !*detail)
		detail = "simple";
	if (strcmp(detail, "simple") && strcmp(detail, "summary") && strcmp(detail, "full") &&
	    strcmp(detail, "normalized")) {
		ci_req_reply_error(req, 400, "detail must be simple, summary, full or normalized");
		return;
	}
	if (!ci_nanoid_is_valid(sid)) {
		ci_req_reply_error(req, 400, "Bad request: session id must be a 21-character id");
		return;
	}
	l.arr = json_array();
	l.detail = detail;
	rc = ci_store_list(app->store, sid,
			   ci_api_owner(req, ci_api_read_user(req), owner, sizeof(owner)), list_cb,
			   &l);
	if (rc && rc != CI_E_NOTFOUND) {
		json_decref(l.arr);
		ci_req_reply_error(req, 500, "cannot list the session");
		return;
	}
	/* Unknown (or expired) session: an empty list, which clients handle best. */
	ci_req_reply_json(req, 200, l.arr);
}

/* The file (sid, fid) of this scope; legacy clients may pair fid with another sid. */
static int lookup(struct ci_app *app, struct ci_req *req, struct ci_store_info *info,
		  const char *owner)
{
	const char *sid = ci_req_param(req, "session_id");
	const char *fid = ci_req_param(req, "file_id");

	if (!ci_nanoid_is_valid(sid) || !ci_nanoid_is_valid(fid)) {
		ci_req_reply_error(req, 400, "Bad request");
		return -1;
	}
	if (!ci_store_stat(app->store, sid, fid, owner, info) ||
	    !ci_store_find(app->store, fid, owner, info))
		return 0;
	ci_req_reply_json(req, 404,
			  json_pack("{s:s,s:s}", "error", "File not found", "details",
				    "The file may have expired or does not exist"));
	return -1;
}

void ci_api_object(struct ci_req *req, void *app_ptr)
{
	char name[300], when[32], owner[CI_STORE_OWNER_MAX + 1];
	struct ci_store_info f;

	if (lookup(app_ptr, req, &f,
		   ci_api_owner(req, ci_api_read_user(req), owner, sizeof(owner))))
		return;
	object_name(&f, name, sizeof(name));
	ci_iso8601(f.created_ns, when);
	ci_req_reply_json(req, 200,
			  json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:o,s:s,s:b}", "name", name, "id",
				    f.fid, "storage_session_id", f.sid, "originalFilename", f.name,
				    "size", (json_int_t)f.size, "lastModified", when, "etag",
				    etag(&f), "contentType", f.content_type, "readOnly",
				    (f.flags & CI_STORE_F_READ_ONLY) != 0));
}

void ci_api_download(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;
	char owner_buf[CI_STORE_OWNER_MAX + 1];
	const char *owner = ci_api_owner(req, ci_api_read_user(req), owner_buf, sizeof(owner_buf));
	struct ci_store_info f;
	int fd;

	if (lookup(app, req, &f, owner))
		return;
	if (ci_store_file_open(app->store, f.sid, f.fid, owner, &fd, &f)) {
		ci_req_reply_json(req, 404,
				  json_pack("{s:s,s:s}", "error", "File not found", "details",
					    "The file may have expired or does not exist"));
		return;
	}
	ci_req_reply_fd(req, fd, f.size, f.content_type, f.name);
}

void ci_api_delete_file(struct ci_req *req, void *app_ptr)
{
	char owner[CI_STORE_OWNER_MAX + 1];
	struct ci_app *app = app_ptr;
	const char *sid = ci_req_param(req, "session_id");
	const char *fid = ci_req_param(req, "file_id");

	if (!ci_nanoid_is_valid(sid) || !ci_nanoid_is_valid(fid)) {
		ci_req_reply_error(req, 400, "Bad request");
		return;
	}
	if (ci_store_delete(app->store, sid, fid,
			    ci_api_owner(req, ci_api_read_user(req), owner, sizeof(owner)))) {
		ci_req_reply_error(req, 404, "File not found");
		return;
	}
	ci_req_reply_json(req, 200,
			  json_pack("{s:s,s:s,s:s}", "message", "File deleted successfully",
				    "session_id", sid, "fileId", fid));
}
