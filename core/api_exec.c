/* POST /exec: JSON <-> struct ci_exec_req / ci_exec_resp (both client generations). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "exec.h"
#include "host.h"
#include "http.h"
#include "rate_limit.h"
#include "store.h"

#define MAX_ARGS 256

struct parsed {
	struct ci_exec_req req;
	struct ci_exec_input *files;
	const char **args;
	json_t *root;
};

static const char *str_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_files(json_t *arr, struct parsed *p, char *err, size_t errlen)
{
	size_t i;
	json_t *f;

	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr)) {
		snprintf(err, errlen, "files must be an array");
		return -1;
	}
	p->files = calloc(json_array_size(arr) + 1, sizeof(*p->files));
	if (!p->files) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(arr, i, f)
	{
		struct ci_exec_input *in = &p->files[i];

		if (!json_is_object(f)) {
			snprintf(err, errlen, "files[%zu] must be an object", i);
			return -1;
		}
		in->fid = str_member(f, "id");
		/* Current clients: storage_session_id; legacy: session_id. */
		in->sid = str_member(f, "storage_session_id");
		if (!in->sid)
			in->sid = str_member(f, "session_id");
		in->name = str_member(f, "name");
		if (!in->fid || !in->name) {
			snprintf(err, errlen, "files[%zu] needs id and name", i);
			return -1;
		}
	}
	p->req.files = p->files;
	p->req.n_files = (int)json_array_size(arr);
	return 0;
}

static int parse_args(json_t *v, struct parsed *p, char *err, size_t errlen)
{
	size_t i;
	json_t *a;

	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		/* Some callers send one string: one argument. */
		p->args = calloc(2, sizeof(*p->args));
		if (!p->args)
			return -1;
		p->args[0] = json_string_value(v);
		p->req.args = p->args;
		p->req.n_args = 1;
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) > MAX_ARGS) {
		snprintf(err, errlen, "args must be an array of at most %d strings", MAX_ARGS);
		return -1;
	}
	p->args = calloc(json_array_size(v) + 1, sizeof(*p->args));
	if (!p->args)
		return -1;
	json_array_foreach(v, i, a)
	{
		if (!json_is_string(a)) {
			snprintf(err, errlen, "args[%zu] must be a string", i);
			return -1;
		}
		p->args[i] = json_string_value(a);
	}
	p->req.args = p->args;
	p->req.n_args = (int)json_array_size(v);
	return 0;
}

/* Fill p from the request body; -1 with a 400 message in err. */
static int parse_exec(const char *body, size_t len, struct parsed *p, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *t;

	memset(p, 0, sizeof(*p));
	p->root = json_loadb(body, len, 0, &jerr);
	if (!p->root) {
		snprintf(err, errlen, "request body is not valid JSON: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(p->root)) {
		snprintf(err, errlen, "request body must be a JSON object");
		return -1;
	}
	p->req.lang = str_member(p->root, "lang");
	if (!p->req.lang)
		p->req.lang = str_member(p->root, "language");
	p->req.code = str_member(p->root, "code");
	if (!p->req.lang || !*p->req.lang) {
		snprintf(err, errlen, "lang is required");
		return -1;
	}
	if (!p->req.code) {
		snprintf(err, errlen, "code is required and must be a string");
		return -1;
	}
	if (strlen(p->req.code) != json_string_length(json_object_get(p->root, "code"))) {
		snprintf(err, errlen, "code must not contain NUL characters");
		return -1;
	}
	p->req.session_hint = str_member(p->root, "session_id");
	t = json_object_get(p->root, "timeout");
	if (t && !json_is_null(t)) {
		if (!json_is_number(t) || json_number_value(t) < 0) {
			snprintf(err, errlen, "timeout must be a number of milliseconds");
			return -1;
		}
		p->req.timeout_ms = (int64_t)json_number_value(t);
		if (p->req.timeout_ms && p->req.timeout_ms < 1000)
			p->req.timeout_ms = 1000;
	}
	if (parse_args(json_object_get(p->root, "args"), p, err, errlen))
		return -1;
	return parse_files(json_object_get(p->root, "files"), p, err, errlen);
}

static void parsed_release(struct parsed *p)
{
	free(p->files);
	free(p->args);
	json_decref(p->root);
}

static json_t *file_ref(const char *sid, const struct ci_exec_file *f)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id", f->fid, "name", f->name,
			      "storage_session_id", sid, "session_id", sid);

	if (o && f->from_fid[0])
		json_object_set_new(o, "modified_from",
				    json_pack("{s:s,s:s}", "id", f->from_fid, "storage_session_id",
					      f->from_sid));
	return o;
}

json_t *ci_api_exec_json(const struct ci_exec_resp *r);
json_t *ci_api_exec_json(const struct ci_exec_resp *r)
{
	json_t *files = json_array(), *o;
	const char *status = r->timed_out		   ? "timeout"
			     : (r->exit_code || r->signal) ? "error"
							   : "ok";

	for (int i = 0; i < r->n_files; i++)
		json_array_append_new(files, file_ref(r->session_id, &r->files[i]));
	o = json_pack("{s:s,s:o,s:o,s:o,s:i,s:s,s:I}", "session_id", r->session_id, "stdout",
		      ci_json_text(r->out, r->out_len), "stderr", ci_json_text(r->err, r->err_len),
		      "files", files, "code", r->exit_code, "status", status, "wall_time",
		      (json_int_t)r->wall_ms);
	if (!o)
		return NULL;
	json_object_set_new(o, "signal",
			    r->signal ? json_string(strsignal(r->signal)) : json_null());
	if (r->n_deleted) {
		json_t *d = json_array();

		for (int i = 0; i < r->n_deleted; i++)
			json_array_append_new(d, json_string(r->deleted[i]));
		json_object_set_new(o, "deleted_files", d);
	}
	if (r->delivery_failed)
		json_object_set_new(o, "artifact_delivery",
				    json_pack("{s:s,s:s,s:i,s:i,s:i}", "code",
					      "artifact_delivery_failed", "status",
					      r->n_files ? "partial" : "failed", "attempted",
					      r->n_files + r->delivery_failed, "delivered",
					      r->n_files, "failed", r->delivery_failed));
	return o;
}

void ci_api_exec(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;
	char owner[CI_STORE_OWNER_MAX + 1];
	struct ci_exec_resp resp;
	struct parsed p;
	char err[512];
	size_t len;
	const char *body = ci_req_body(req, &len);
	int status, rc, wait;
	json_t *out;

	if (parse_exec(body, len, &p, err, sizeof(err))) {
		ci_req_reply_error(req, 400, "%s", err);
		parsed_release(&p);
		return;
	}
	p.req.rid = ci_req_id(req);
	/* The end user keeps files and sandboxes apart between the users of one key. */
	p.req.user = str_member(p.root, "user_id");
	if (!p.req.user)
		p.req.user = ci_req_header(req, "User-Id");
	if (p.req.user && !ci_resource_id_is_valid(p.req.user))
		p.req.user = NULL;
	p.req.scope = ci_api_owner(req, p.req.user, owner, sizeof(owner));
	p.req.principal = ci_api_scope(req);
	wait = ci_limits_exec_begin(app->limits, ci_api_scope(req), ci_now_ms());
	if (wait) {
		ci_req_reply_rate_limited(req, wait);
		parsed_release(&p);
		return;
	}
	rc = ci_exec_run(app, &p.req, &resp, &status, err, sizeof(err));
	ci_limits_exec_end(app->limits, ci_api_scope(req));
	if (rc) {
		ci_req_reply_error(req, status, "%s", err);
		parsed_release(&p);
		return;
	}
	out = ci_api_exec_json(&resp);
	ci_exec_resp_release(&resp);
	parsed_release(&p);
	if (!out)
		ci_req_reply_error(req, 500, "cannot encode the response");
	else
		ci_req_reply_json(req, 200, out);
}
