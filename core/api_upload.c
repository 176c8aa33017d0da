/*
 * POST /upload and /upload/batch: multipart bodies streamed straight into the
 * store (librechat-api.md §6, §7). Parts are parsed on the event thread as
 * they arrive; the files are committed (fsync) by the handler on a worker.
 * A refused or interrupted upload leaves nothing behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "app.h"
#include "conf.h"
#include "http.h"
#include "http_multipart.h"
#include "log.h"
#include "store.h"

#define FIELD_MAX 160

struct up_file {
	char name[CI_NAME_SIZE];
	struct ci_store_writer *w; /* NULL once failed */
	uint64_t written;
	int status; /* HTTP-style: 0 ok, 400/413/500 failed */
	char error[CI_ERR_MAX + 32];
};

struct upload {
	struct ci_app *app;
	struct ci_multipart *mp;
	char sid[CI_NANOID_SIZE];
	char scope[CI_STORE_OWNER_MAX + 1]; /* the files' owner, set by the first file */
	char principal[CI_STORE_OWNER_MAX + 1];
	char user[CI_RESOURCE_ID_MAX + 1]; /* User-Id header, when valid */
	char kind[FIELD_MAX], id[FIELD_MAX], version[FIELD_MAX], entity_id[FIELD_MAX];
	char read_only[16];
	char *cur_field; /* plain field being collected, or NULL */
	size_t cur_field_cap;
	struct up_file *files;
	int n_files, cap_files;
	struct up_file *cur; /* file part being written */
	uint64_t quota_left; /* principal's stored-bytes quota left; UINT64_MAX = none */
	bool malformed, too_many;
	char bad_field[128];
};

static void upload_free(struct upload *u)
{
	if (!u)
		return;
	ci_multipart_finish(u->mp);
	for (int i = 0; i < u->n_files; i++)
		ci_store_abort(u->files[i].w);
	free(u->files);
	free(u);
}

static char *field_slot(struct upload *u, const char *field, size_t *cap)
{
	static const struct {
		const char *name;
		size_t off, size;
	} slots[] = {
		{"kind", offsetof(struct upload, kind), FIELD_MAX},
		{"id", offsetof(struct upload, id), FIELD_MAX},
		{"version", offsetof(struct upload, version), FIELD_MAX},
		{"entity_id", offsetof(struct upload, entity_id), FIELD_MAX},
		{"read_only", offsetof(struct upload, read_only), 16},
	};

	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		if (!strcmp(field, slots[i].name)) {
			*cap = slots[i].size;
			return (char *)u + slots[i].off;
		}
	return NULL;
}

static void file_fail(struct up_file *f, int status, const char *msg)
{
	ci_store_abort(f->w);
	f->w = NULL;
	if (!f->status) {
		f->status = status;
		snprintf(f->error, sizeof(f->error), "%s", msg);
	}
}

/*
 * A user's own attachments are narrowed to that user; agent and skill files
 * are shared by every user of the principal.
 */
static void settle_owner(struct upload *u)
{
	bool per_user = !u->kind[0] || !strcmp(u->kind, "user");

	if (u->scope[0])
		return;
	if (per_user && u->user[0] && strncmp(u->principal, "jwt:", 4))
		snprintf(u->scope, sizeof(u->scope), "%s/%s", u->principal, u->user);
	else
		snprintf(u->scope, sizeof(u->scope), "%s", u->principal);
}

static struct up_file *file_start(struct upload *u, const char *filename)
{
	struct ci_store_put put = {.sid = u->sid, .owner = u->scope};
	struct up_file *f;
	char err[CI_ERR_MAX];
	int rc;

	if (u->n_files == u->cap_files) {
		int cap = u->cap_files ? u->cap_files * 2 : 4;
		struct up_file *n = realloc(u->files, sizeof(*n) * (size_t)cap);

		if (!n)
			return NULL;
		u->files = n;
		u->cap_files = cap;
	}
	f = &u->files[u->n_files++];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", filename);
	if (ci_name_check(filename)) {
		file_fail(f, 400, "Invalid filename");
		snprintf(f->error, sizeof(f->error), "Invalid filename: %s",
			 ci_name_check(filename));
		return f;
	}
	put.name = filename;
	put.kind = u->kind[0] ? u->kind : "user";
	put.resource_id = ci_resource_id_is_valid(u->id)	  ? u->id
			  : ci_resource_id_is_valid(u->entity_id) ? u->entity_id
								  : NULL;
	put.flags = !strcasecmp(u->read_only, "true") ? CI_STORE_F_READ_ONLY : 0;
	if (u->quota_left < (uint64_t)u->app->conf->max_file_size)
		put.max_size = u->quota_left ? u->quota_left : 1;
	rc = ci_store_begin(u->app->store, &put, &f->w, err);
	if (rc == CI_E_LIMIT)
		file_fail(f, 413, "Too many files in this session");
	else if (rc)
		file_fail(f, rc == CI_E_INVAL ? 400 : 500, err);
	return f;
}

static int on_part(void *ctx, const char *field, const char *filename, const char *ctype,
		   uint64_t off, const char *data, size_t size)
{
	struct upload *u = ctx;
	char err[CI_ERR_MAX];
	size_t cap;
	char *slot;
	int rc;

	(void)ctype;
	if (!filename) {
		/* A plain field: kind, id, version, entity_id, read_only. */
		slot = field_slot(u, field, &cap);
		if (slot && off + size < cap) {
			memcpy(slot + off, data, size);
			slot[off + size] = 0;
		} else if (slot) {
			snprintf(u->bad_field, sizeof(u->bad_field), "%s is too long", field);
		}
		return 0;
	}
	if (strcmp(field, "file") && strcmp(field, "files"))
		return 0;
	/*
	 * libmicrohttpd may deliver the start of one part twice at offset 0
	 * (an empty chunk first when a read ends right after the part's
	 * headers): only a part with another name, or one that already got
	 * bytes, starts a new file.
	 */
	if (off == 0 && u->cur && !u->cur->written && !strcmp(u->cur->name, filename))
		off = 1;
	if (off == 0) {
		settle_owner(u);
		if (u->n_files >= u->app->conf->max_files_per_session) {
			u->too_many = true;
			return 1;
		}
		u->cur = file_start(u, filename);
		if (!u->cur)
			return 1;
	}
	if (!u->cur || !u->cur->w || !size)
		return 0;
	u->cur->written += size;
	rc = ci_store_write(u->cur->w, data, size, err);
	if (rc == CI_E_LIMIT && u->quota_left < (uint64_t)u->app->conf->max_file_size)
		file_fail(u->cur, 413, "Storage quota exceeded");
	else if (rc == CI_E_LIMIT)
		file_fail(u->cur, 413, "File size limit exceeded");
	if (!rc && u->quota_left != UINT64_MAX)
		u->quota_left = u->quota_left > size ? u->quota_left - size : 0;
	else if (rc)
		file_fail(u->cur, 500, err);
	return 0;
}

static bool kind_is_valid(const char *k)
{
	return !*k || !strcmp(k, "user") || !strcmp(k, "agent") || !strcmp(k, "skill");
}

static int up_begin(struct ci_req *req, void *app_ptr)
{
	struct upload *u = calloc(1, sizeof(*u));

	if (!u) {
		ci_req_reply_error(req, 500, "out of memory");
		return 1;
	}
	u->app = app_ptr;
	snprintf(u->principal, sizeof(u->principal), "%s", ci_api_scope(req));
	if (ci_resource_id_is_valid(ci_req_header(req, "User-Id")))
		snprintf(u->user, sizeof(u->user), "%s", ci_req_header(req, "User-Id"));
	u->quota_left = UINT64_MAX;
	if (u->app->conf->principal_stored_bytes > 0) {
		uint64_t quota = (uint64_t)u->app->conf->principal_stored_bytes;
		uint64_t used = ci_store_owner_bytes(u->app->store, u->principal);

		if (used >= quota) {
			free(u);
			ci_req_reply_error(req, 413,
					   "Storage quota exceeded: %llu of %llu bytes used",
					   (unsigned long long)used, (unsigned long long)quota);
			return 1;
		}
		u->quota_left = quota - used;
	}
	u->mp = ci_multipart_new(req, on_part, u);
	if (!u->mp) {
		free(u);
		ci_req_reply_error(req, 400, "Invalid content type. Must be multipart/form-data.");
		return 1;
	}
	/* The store makes the session with the first file, under its owner. */
	ci_nanoid(u->sid);
	ci_req_set_ctx(req, u);
	return 0;
}

static int up_data(struct ci_req *req, const char *buf, size_t len, void *app)
{
	struct upload *u = ci_req_ctx(req);

	(void)app;
	if (!u->malformed && ci_multipart_feed(u->mp, buf, len))
		u->malformed = true;
	return 0; /* errors are answered once the body is in */
}

static void up_abort(struct ci_req *req, void *app)
{
	(void)app;
	upload_free(ci_req_ctx(req));
	ci_req_set_ctx(req, NULL);
}

const struct ci_stream_ops ci_api_upload_stream = {
	.begin = up_begin, .data = up_data, .abort = up_abort};

/* Validate the form fields; 0 or an HTTP status with the message. */
static int check_fields(struct upload *u, char *msg, size_t len)
{
	if (u->bad_field[0])
		return snprintf(msg, len, "%s", u->bad_field), 400;
	if (!kind_is_valid(u->kind))
		return snprintf(msg, len, "kind must be one of: skill, agent, user"), 400;
	if (!strcmp(u->kind, "skill") && !u->version[0])
		return snprintf(msg, len, "version is required for kind: 'skill'"), 400;
	if (u->version[0] && strcmp(u->kind, "skill"))
		return snprintf(msg, len, "version is only valid for kind: 'skill'"), 400;
	if (u->id[0] && !ci_resource_id_is_valid(u->id))
		return snprintf(msg, len, "id must be 1-128 characters of [A-Za-z0-9_-]"), 400;
	return 0;
}

/* Finish parsing; 0 or an HTTP status with the message. */
static int finish_parse(struct upload *u, char *msg, size_t len)
{
	int st;

	if (ci_multipart_finish(u->mp) && !u->too_many)
		u->malformed = true;
	u->mp = NULL;
	if (u->too_many)
		return snprintf(msg, len, "Too many files: at most %d per upload",
				u->app->conf->max_files_per_session),
		       413;
	if (u->malformed)
		return snprintf(msg, len, "Malformed multipart body"), 400;
	st = check_fields(u, msg, len);
	if (st)
		return st;
	if (!u->n_files)
		return snprintf(msg, len, "No file in the request (field \"file\")"), 400;
	return 0;
}

static void commit_all(struct upload *u, json_t *files, bool batch, int *ok, int *failed)
{
	for (int i = 0; i < u->n_files; i++) {
		struct up_file *f = &u->files[i];
		struct ci_store_info info;
		char err[CI_ERR_MAX];

		if (f->w && ci_store_commit(f->w, &info, err))
			file_fail(f, 500, err);
		f->w = NULL;
		if (f->status) {
			(*failed)++;
			if (batch)
				json_array_append_new(files, json_pack("{s:s,s:s,s:s}", "status",
								       "error", "filename", f->name,
								       "error", f->error));
			continue;
		}
		(*ok)++;
		json_array_append_new(
			files,
			batch ? json_pack("{s:s,s:s,s:s}", "status", "success", "fileId", info.fid,
					  "filename", info.name)
			      : json_pack("{s:s,s:s}", "fileId", info.fid, "filename", info.name));
	}
}

static void reply_upload(struct ci_req *req, bool batch)
{
	struct upload *u = ci_req_ctx(req);
	json_t *files;
	char msg[CI_ERR_MAX + 64];
	int st, ok = 0, failed = 0;

	ci_req_set_ctx(req, NULL);
	st = finish_parse(u, msg, sizeof(msg));
	/* A single upload is all or nothing: the first failed file fails it. */
	for (int i = 0; !st && !batch && i < u->n_files; i++)
		if (u->files[i].status) {
			st = u->files[i].status;
			snprintf(msg, sizeof(msg), "%s", u->files[i].error);
		}
	if (st) {
		ci_log(CI_LL_INFO, "upload.refused", "rid=%s status=%d msg=\"%s\"", ci_req_id(req),
		       st, msg);
		upload_free(u);
		ci_req_reply_error(req, st, "%s", msg);
		return;
	}
	files = json_array();
	commit_all(u, files, batch, &ok, &failed);
	ci_log(CI_LL_INFO, "upload.stored", "rid=%s session=%s files=%d failed=%d", ci_req_id(req),
	       u->sid, ok, failed);
	if (!batch && failed) {
		/* Commit failed on disk: remove what was stored, report the failure. */
		for (size_t i = 0; i < json_array_size(files); i++)
			ci_store_delete(u->app->store, u->sid,
					json_string_value(json_object_get(json_array_get(files, i),
									  "fileId")),
					u->scope);
		json_decref(files);
		upload_free(u);
		ci_req_reply_error(req, 500, "upload failed while saving the file");
		return;
	}
	if (batch)
		ci_req_reply_json(req, ok ? 200 : 400,
				  json_pack("{s:s,s:s,s:s,s:o,s:i,s:i}", "message",
					    !failed ? "success"
					    : ok    ? "partial_success"
						    : "error",
					    "storage_session_id", u->sid, "session_id", u->sid,
					    "files", files, "succeeded", ok, "failed", failed));
	else
		ci_req_reply_json(req, 200,
				  json_pack("{s:s,s:s,s:s,s:o}", "message", "success",
					    "storage_session_id", u->sid, "session_id", u->sid,
					    "files", files));
	upload_free(u);
}

void ci_api_upload(struct ci_req *req, void *app)
{
	(void)app;
	reply_upload(req, false);
}

void ci_api_upload_batch(struct ci_req *req, void *app)
{
	(void)app;
	reply_upload(req, true);
}
