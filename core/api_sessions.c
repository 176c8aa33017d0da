/*
 * Operator-facing routes: live sandboxes (/v1/librechat/sessions), the
 * language table, the loaded backend.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "conf.h"
#include "http.h"
#include "loader.h"
#include "sandbox.h"

static void session_cb(void *ctx, const struct ci_sandbox_view *v)
{
	json_t *sids = json_array();

	for (int i = 0; i < v->n_sessions; i++)
		json_array_append_new(sids, json_string(v->sessions[i]));
	json_array_append_new(ctx,
			      json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:i,s:o}", "id", v->serial,
					"sandbox_id", v->backend_id, "runtime", v->runtime, "state",
					v->state, "created", (json_int_t)v->created_unix,
					"last_used", (json_int_t)v->last_used_unix, "expires",
					(json_int_t)v->expires_unix, "execs", (int)v->execs,
					"storage_sessions", sids));
}

void ci_api_sessions(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;
	json_t *arr = json_array();

	ci_sandboxes_each(app->sandboxes, ci_api_scope(req), session_cb, arr);
	ci_req_reply_json(req, 200,
			  json_pack("{s:s,s:o}", "backend", app->plugin->name, "sessions", arr));
}

void ci_api_delete_session(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;
	const char *id = ci_req_param(req, "id");

	if (ci_sandboxes_destroy(app->sandboxes, ci_api_scope(req), id, ci_req_id(req))) {
		ci_req_reply_error(req, 404, "Session not found");
		return;
	}
	ci_req_reply_json(req, 200, json_pack("{s:s,s:s}", "message", "Session deleted", "id", id));
}

void ci_api_languages(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;
	json_t *arr = json_array();

	for (int i = 0; i < app->conf->n_langs; i++) {
		const struct ci_lang *l = &app->conf->langs[i];
		json_t *aliases = json_array();
		json_t *o;

		for (char **a = l->aliases; a && *a; a++)
			json_array_append_new(aliases, json_string(*a));
		o = json_pack("{s:s,s:o,s:s,s:b}", "name", l->name, "aliases", aliases, "runtime",
			      l->runtime, "available",
			      !(app->lang_missing && app->lang_missing[i]));
		if (app->lang_missing && app->lang_missing[i])
			json_object_set_new(o, "reason", json_string(app->lang_missing[i]));
		json_array_append_new(arr, o);
	}
	ci_req_reply_json(req, 200, json_pack("{s:o}", "languages", arr));
}

void ci_api_backends(struct ci_req *req, void *app_ptr)
{
	struct ci_app *app = app_ptr;
	char abi[16];

	snprintf(abi, sizeof(abi), "%u.%u", app->plugin->desc.abi_version >> 16,
		 app->plugin->desc.abi_version & 0xffff);
	ci_req_reply_json(req, 200,
			  json_pack("{s:[{s:s,s:s,s:s,s:s}],s:s}", "backends", "name",
				    app->plugin->name, "version", app->plugin->version, "abi", abi,
				    "path", app->plugin->path, "host_abi", CI_ABI_STRING));
}
