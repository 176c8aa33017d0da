/*
 * Daytona backend: sandbox lifecycle on the control-plane API (create,
 * wait for started, destroy, sweep) and the per-sandbox toolbox URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ci/backend_util.h"
#include "daytona.h"

int dt_check_id(const char *id, ci_call *call)
{
	size_t n = id ? strlen(id) : 0;

	if (!n || n >= CI_ID_MAX)
		return ci_fail(call, CI_E_INVAL, "bad sandbox id");
	return CI_OK;
}

int64_t dt_parse_iso(const char *s)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (int64_t)timegm(&tm);
}

int dt_parse_list(json_t *root, json_t **items, const char **cursor)
{
	json_t *c;

	*cursor = NULL;
	if (json_is_array(root)) { /* servers before v0.180 */
		*items = root;
		return 0;
	}
	*items = json_object_get(root, "items");
	if (!json_is_array(*items))
		return -1;
	c = json_object_get(root, "nextCursor");
	if (json_is_string(c) && json_string_length(c))
		*cursor = json_string_value(c);
	return 0;
}

static int dt_url(struct dt_buf *b, ci_be *be, const char *id, const char *suffix)
{
	if (dt_buf_printf(b, "%s/sandbox/", be->conf.api_url) || dt_buf_urlenc(b, id) ||
	    dt_buf_str(b, suffix ? suffix : ""))
		return -1;
	return 0;
}

/* --- toolbox URL cache --------------------------------------------------- */

static void dt_toolbox_remember(ci_be *be, const char *id, const char *proxy)
{
	struct dt_tbx_entry *e;
	struct dt_buf b = {0};

	if (dt_buf_str(&b, proxy))
		return;
	while (b.len && b.data[b.len - 1] == '/')
		b.data[--b.len] = '\0';
	if (dt_buf_add(&b, "/", 1) || dt_buf_urlenc(&b, id)) {
		dt_buf_free(&b);
		return;
	}
	pthread_mutex_lock(&be->lock);
	for (e = be->tbx; e; e = e->next)
		if (!strcmp(e->id, id))
			break;
	if (!e && (e = calloc(1, sizeof(*e)))) {
		snprintf(e->id, sizeof(e->id), "%s", id);
		e->next = be->tbx;
		be->tbx = e;
	}
	if (e) {
		free(e->base);
		e->base = b.data;
		b.data = NULL;
	}
	pthread_mutex_unlock(&be->lock);
	dt_buf_free(&b);
}

void dt_toolbox_forget(ci_be *be, const char *id)
{
	struct dt_tbx_entry **pp, *e;

	pthread_mutex_lock(&be->lock);
	for (pp = &be->tbx; (e = *pp); pp = &e->next) {
		if (!strcmp(e->id, id)) {
			*pp = e->next;
			free(e->base);
			free(e);
			break;
		}
	}
	pthread_mutex_unlock(&be->lock);
}

/* GET /sandbox/{id}: the DTO as JSON, CI_E_NOTFOUND when gone. */
static int dt_get_dto(ci_be *be, const char *id, json_t **dto, ci_call *call)
{
	struct dt_buf url = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "GET", .flags = DT_IDEMPOTENT};
	int rc;

	*dto = NULL;
	if (dt_url(&url, be, id, NULL))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	req.url = url.data;
	rc = dt_http(be, &req, &resp, call);
	if (rc == CI_OK && resp.status != 200) {
		rc = dt_http_fail(be, &resp, 0, "get sandbox", call);
		if (rc == CI_E_NOTFOUND)
			ci_fail(call, rc, "sandbox %s is gone", id);
	}
	if (rc == CI_OK && !(*dto = dt_json(&resp)))
		rc = ci_fail(call, CI_E_BACKEND, "get sandbox %s: bad JSON", id);
	dt_resp_free(&resp);
	dt_buf_free(&url);
	return rc;
}

/* Learn the toolbox URL from a DTO, asking /toolbox-proxy-url when absent. */
static int dt_learn_toolbox(ci_be *be, const char *id, json_t *dto, ci_call *call)
{
	const char *proxy = json_string_value(json_object_get(dto, "toolboxProxyUrl"));
	struct dt_buf url = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "GET", .flags = DT_IDEMPOTENT};
	json_t *j = NULL;
	int rc;

	if (proxy && *proxy) {
		dt_toolbox_remember(be, id, proxy);
		return CI_OK;
	}
	if (dt_url(&url, be, id, "/toolbox-proxy-url"))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	req.url = url.data;
	rc = dt_http(be, &req, &resp, call);
	if (rc == CI_OK && resp.status != 200)
		rc = dt_http_fail(be, &resp, 0, "toolbox-proxy-url", call);
	if (rc == CI_OK) {
		j = dt_json(&resp);
		proxy = json_string_value(json_object_get(j, "url"));
		if (proxy && *proxy)
			dt_toolbox_remember(be, id, proxy);
		else
			rc = ci_fail(call, CI_E_BACKEND, "sandbox %s has no toolbox URL", id);
	}
	json_decref(j);
	dt_resp_free(&resp);
	dt_buf_free(&url);
	return rc;
}

int dt_toolbox_base(ci_be *be, const char *id, char **out, ci_call *call)
{
	struct dt_tbx_entry *e;
	json_t *dto;
	int rc, pass;

	for (pass = 0; pass < 2; pass++) {
		pthread_mutex_lock(&be->lock);
		for (e = be->tbx; e; e = e->next)
			if (!strcmp(e->id, id))
				break;
		*out = e ? strdup(e->base) : NULL;
		pthread_mutex_unlock(&be->lock);
		if (*out || pass)
			break;
		rc = dt_get_dto(be, id, &dto, call);
		if (rc)
			return rc;
		rc = dt_learn_toolbox(be, id, dto, call);
		json_decref(dto);
		if (rc)
			return rc;
	}
	return *out ? CI_OK : ci_fail(call, CI_E_NOMEM, "out of memory");
}

/* --- waiting for a state --------------------------------------------------- */

static int dt_post_start(ci_be *be, const char *id, ci_call *call)
{
	struct dt_buf url = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "POST", .flags = DT_IDEMPOTENT};
	int rc;

	if (dt_url(&url, be, id, "/start"))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	req.url = url.data;
	rc = dt_http(be, &req, &resp, call);
	/* 409: another state change is in flight; the wait loop sees its end */
	if (rc == CI_OK && resp.status != 200 && resp.status != 409)
		rc = dt_http_fail(be, &resp, 0, "start sandbox", call);
	dt_resp_free(&resp);
	dt_buf_free(&url);
	return rc;
}

int dt_ensure_started(ci_be *be, const char *id, int64_t deadline_ms, ci_call *call)
{
	int64_t delay = be->conf.poll_initial_ms, start = dt_now(be);
	ci_call sub = *call;
	int started_once = 0, rc;

	sub.struct_size = sizeof(sub);
	if (deadline_ms && deadline_ms < sub.deadline_ms)
		sub.deadline_ms = deadline_ms;
	for (;;) {
		json_t *dto;
		const char *st;

		rc = dt_get_dto(be, id, &dto, &sub);
		if (rc)
			goto out;
		if (!json_object_get(dto, "id") || !json_is_string(json_object_get(dto, "state"))) {
			json_decref(dto);
			rc = ci_fail(&sub, CI_E_BACKEND, "sandbox %s: DTO without state", id);
			goto out;
		}
		st = json_string_value(json_object_get(dto, "state"));
		if (!strcmp(st, "destroyed") || !strcmp(st, "destroying") ||
		    !strcmp(json_string_value(json_object_get(dto, "desiredState")) ?: "",
			    "destroyed")) {
			json_decref(dto);
			rc = ci_fail(&sub, CI_E_NOTFOUND, "sandbox %s is being destroyed", id);
			goto out;
		}
		if (!strcmp(st, "started")) {
			rc = dt_learn_toolbox(be, id, dto, &sub);
			json_decref(dto);
			goto out;
		}
		if (!strcmp(st, "error") || !strcmp(st, "build_failed")) {
			const char *why = json_string_value(json_object_get(dto, "errorReason"));

			rc = ci_fail(&sub, CI_E_BACKEND, "sandbox %s failed: %s%s%s", id, st,
				     why ? ": " : "", why ? why : "");
			json_decref(dto);
			goto out;
		}
		if ((!strcmp(st, "stopped") || !strcmp(st, "archived")) && started_once < 3) {
			started_once++;
			rc = dt_post_start(be, id, &sub);
			if (rc) {
				json_decref(dto);
				goto out;
			}
		}
		json_decref(dto);
		if (dt_sleep(be, delay, &sub)) {
			rc = ci_fail(&sub, CI_E_TIMEOUT,
				     "sandbox %s not started after %lld ms "
				     "(state %s)",
				     id, (long long)(dt_now(be) - start), st);
			goto out;
		}
		/* the SDK's cadence: fast first, then x1.5 up to poll_max_ms */
		if (dt_now(be) - start > 1000)
			delay = delay * 3 / 2 < be->conf.poll_max_ms ? delay * 3 / 2
								     : be->conf.poll_max_ms;
	}
out:
	if (rc)
		memcpy(call->err, sub.err, sizeof(call->err));
	return rc;
}

/* --- create ------------------------------------------------------------------ */

static const char *dt_snapshot_for(ci_be *be, const ci_create_spec *spec, int *is_image)
{
	const char *v = NULL;
	char key[96];
	const char *rt = spec->runtime;

	*is_image = 0;
	if (rt && *rt && strlen(rt) < 64 && !strpbrk(rt, ". ")) {
		snprintf(key, sizeof(key), "snapshots.%s", rt);
		if (be->host->cfg_str(be->host->hctx, key, &v) == CI_OK && v && *v)
			return v;
		snprintf(key, sizeof(key), "images.%s", rt);
		if (be->host->cfg_str(be->host->hctx, key, &v) == CI_OK && v && *v) {
			*is_image = 1;
			return v;
		}
	}
	/*
	 * spec->image is not used: the core's language table names container
	 * images there (ci-sandbox-python), which no Daytona org has as a
	 * snapshot. Snapshots are configured here, per runtime.
	 */
	return be->conf.snapshot;
}

static int dt_ceil_div(int64_t a, int64_t b)
{
	return (int)((a + b - 1) / b);
}

static int dt_create_body(ci_be *be, const ci_create_spec *spec, const char *name, json_t **out,
			  ci_call *call)
{
	json_t *body = json_object(), *labels = json_object(), *env = json_object();
	const char *snap, *rt = spec->runtime;
	char created[32];
	int is_image, bad = 0, rc = CI_E_INVAL;
	size_t i;

	if (!body || !labels || !env)
		goto nomem;
	snprintf(created, sizeof(created), "%lld", (long long)be->host->wall_unix(be->host->hctx));
	bad |= json_object_set_new(labels, "managed-by", json_string("ci-server"));
	bad |= json_object_set_new(labels, "ci-created-at", json_string(created));
	if (spec->owner)
		bad |= json_object_set_new(labels, "ci-owner", json_string(spec->owner));
	if (spec->session)
		bad |= json_object_set_new(labels, "ci-session", json_string(spec->session));
	if (rt) {
		bad |= json_object_set_new(labels, "ci-runtime", json_string(rt));
		if (!strcmp(rt, "python") || !strcmp(rt, "javascript") || !strcmp(rt, "typescript"))
			bad |= json_object_set_new(labels, "code-toolbox-language",
						   json_string(rt));
	}
	for (i = 0; spec->env && spec->env[i]; i++) {
		const char *eq = strchr(spec->env[i], '=');
		char k[128];

		if (!eq || eq == spec->env[i] || (size_t)(eq - spec->env[i]) >= sizeof(k)) {
			ci_fail(call, CI_E_INVAL, "create: env entry is not K=V: %.40s",
				spec->env[i]);
			goto fail;
		}
		memcpy(k, spec->env[i], (size_t)(eq - spec->env[i]));
		k[eq - spec->env[i]] = '\0';
		bad |= json_object_set_new(env, k, json_string(eq + 1));
	}
	bad |= json_object_set_new(body, "name", json_string(name));
	bad |= json_object_set_new(body, "labels", labels);
	bad |= json_object_set_new(body, "env", env);
	labels = env = NULL;
	snap = dt_snapshot_for(be, spec, &is_image);
	if (snap && is_image) {
		char df[512];
		int64_t mem = spec->mem_bytes ? dt_ceil_div(spec->mem_bytes, 1 << 30)
					      : be->conf.memory_gb;
		int64_t cpu = spec->cpu_millis ? dt_ceil_div(spec->cpu_millis, 1000) : be->conf.cpu;
		int64_t disk = spec->disk_bytes ? dt_ceil_div(spec->disk_bytes, 1 << 30)
						: be->conf.disk_gb;

		snprintf(df, sizeof(df), "FROM %s\n", snap);
		bad |= json_object_set_new(body, "buildInfo",
					   json_pack("{s:s}", "dockerfileContent", df));
		if (cpu > 0)
			bad |= json_object_set_new(body, "cpu", json_integer(cpu));
		if (mem > 0)
			bad |= json_object_set_new(body, "memory", json_integer(mem));
		if (disk > 0)
			bad |= json_object_set_new(body, "disk", json_integer(disk));
	} else if (snap) {
		bad |= json_object_set_new(body, "snapshot", json_string(snap));
	}
	if (be->conf.target)
		bad |= json_object_set_new(body, "target", json_string(be->conf.target));
	bad |= json_object_set_new(body, "autoStopInterval", json_integer(be->conf.auto_stop_min));
	bad |= json_object_set_new(body, "autoDeleteInterval",
				   json_integer(be->conf.auto_delete_min));
	bad |= json_object_set_new(body, "networkBlockAll", json_boolean(!spec->network));
	bad |= json_object_set_new(body, "public", json_false());
	if (bad)
		goto nomem;
	*out = body;
	return CI_OK;
nomem:
	rc = ci_fail(call, CI_E_NOMEM, "out of memory");
fail:
	json_decref(labels);
	json_decref(env);
	json_decref(body);
	*out = NULL;
	return rc;
}

/* POST /sandbox; a 409 for our own (random) name means a retry won: adopt it. */
static int dt_post_create(ci_be *be, json_t *body, const char *name, const char *owner,
			  json_t **dto, ci_call *call)
{
	struct dt_buf url = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "POST",
			     .ctype = "application/json",
			     .flags = DT_IDEMPOTENT,
			     .max_resp = 1 << 20};
	char *js = json_dumps(body, JSON_COMPACT);
	int rc;

	*dto = NULL;
	if (!js || dt_buf_printf(&url, "%s/sandbox", be->conf.api_url)) {
		free(js);
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	}
	req.url = url.data;
	req.body = js;
	req.body_len = strlen(js);
	rc = dt_http(be, &req, &resp, call);
	if (rc == CI_OK && resp.status == 409) {
		const char *o;

		rc = dt_get_dto(be, name, dto, call);
		o = rc ? NULL
		       : json_string_value(
				 json_object_get(json_object_get(*dto, "labels"), "ci-owner"));
		if (!rc && owner && (!o || strcmp(o, owner))) {
			json_decref(*dto);
			*dto = NULL;
			rc = ci_fail(call, CI_E_EXISTS, "create: name %s belongs to someone else",
				     name);
		}
	} else if (rc == CI_OK && resp.status != 200 && resp.status != 201) {
		rc = dt_http_fail(be, &resp, 0, "create sandbox", call);
		if (rc == CI_E_NOTFOUND || rc == CI_E_EXISTS)
			rc = CI_E_BACKEND;
		call->err[CI_ERR_MAX - 1] = '\0';
	} else if (rc == CI_OK && !(*dto = dt_json(&resp))) {
		rc = ci_fail(call, CI_E_BACKEND, "create sandbox: bad JSON answer");
	}
	dt_resp_free(&resp);
	dt_buf_free(&url);
	free(js);
	return rc;
}

/* Make the data directory; the toolbox may answer 502 for a moment after start. */
static int dt_setup(ci_be *be, const char *id, ci_call *call)
{
	const char *argv[] = {"/bin/sh",
			      "-c",
			      "mkdir -p -- \"$1\" 2>/dev/null || { sudo -n mkdir -p -- \"$1\" && "
			      "sudo -n chown \"$(id -u):$(id -g)\" \"$1\"; }",
			      "sh",
			      be->conf.data_dir,
			      NULL};
	struct dt_script s = {.argv = argv, .cwd = "/", .timeout_ms = 30000, .max_output = 4096};
	struct dt_framed f;
	int rc, to = 0;

	rc = dt_run_framed(be, id, &s, &f, &to, call);
	if (rc)
		return rc;
	if (f.exit_code != 0 || to)
		rc = ci_fail(call, CI_E_BACKEND,
			     "cannot create %s in the sandbox (exit %d): %.80s; "
			     "set backends.daytona.data_dir to a writable directory",
			     be->conf.data_dir, f.exit_code, f.err.data ? f.err.data : "");
	dt_framed_free(&f);
	return rc;
}

static int dt_destroy_until(ci_be *be, const char *id, int64_t deadline, ci_call *call);

static void dt_delete_quietly(ci_be *be, const char *id, ci_call *call)
{
	ci_call sub = *call;

	/* one short try: a sandbox stuck in a transition answers 409 for long */
	sub.struct_size = sizeof(sub);
	sub.deadline_ms = dt_now(be) + 3000;
	if (dt_destroy_until(be, id, dt_now(be) + 500, &sub) && sub.err[0])
		be->host->log(be->host->hctx, CI_LOG_WARN,
			      "daytona: cleanup of failed sandbox %s: %s (sweep will retry)", id,
			      sub.err);
}

int dt_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call)
{
	char name[80], rnd[33], rt[17] = "";
	const char *sid;
	json_t *body, *dto = NULL;
	int64_t deadline = dt_now(be) + be->conf.create_timeout_ms;
	size_t i;
	int rc;

	/* a fresh name per sandbox, reused by every retry of this create */
	dt_random_hex(rnd, 10);
	for (i = 0; spec->runtime && spec->runtime[i] && i < sizeof(rt) - 1; i++) {
		char c = spec->runtime[i];

		rt[i] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
	}
	rt[i] = '\0';
	snprintf(name, sizeof(name), "%s-%s%s%s", be->conf.name_prefix, rt, rt[0] ? "-" : "", rnd);

	rc = dt_create_body(be, spec, name, &body, call);
	if (rc)
		return rc;
	rc = dt_post_create(be, body, name, spec->owner, &dto, call);
	json_decref(body);
	if (rc)
		return rc;
	sid = json_string_value(json_object_get(dto, "id"));
	if (!sid || strlen(sid) >= CI_ID_MAX) {
		json_decref(dto);
		return ci_fail(call, CI_E_BACKEND, "create sandbox: answer without id");
	}
	snprintf(id, CI_ID_MAX, "%s", sid);
	json_decref(dto);
	be->host->log(be->host->hctx, CI_LOG_INFO, "daytona: created sandbox %s (%s)", id, name);

	rc = dt_ensure_started(be, id, deadline, call);
	if (!rc)
		rc = dt_setup(be, id, call);
	if (rc) {
		char why[CI_ERR_MAX];

		memcpy(why, call->err, sizeof(why));
		dt_delete_quietly(be, id, call);
		dt_toolbox_forget(be, id);
		memcpy(call->err, why, sizeof(why));
		id[0] = '\0';
		/* "gone while starting" is not the caller's unknown id */
		return rc == CI_E_NOTFOUND ? CI_E_BACKEND : rc;
	}
	return CI_OK;
}

/* --- destroy and sweep --------------------------------------------------------- */

static int dt_destroy_until(ci_be *be, const char *id, int64_t deadline, ci_call *call)
{
	struct dt_buf url = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "DELETE", .flags = DT_IDEMPOTENT};
	int64_t delay = be->conf.poll_initial_ms;
	ci_call sub = *call;
	int rc;

	sub.struct_size = sizeof(sub);
	if (deadline < sub.deadline_ms)
		sub.deadline_ms = deadline;
	if (dt_url(&url, be, id, NULL))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	req.url = url.data;
	for (;;) {
		rc = dt_http(be, &req, &resp, &sub);
		if (rc)
			break;
		if (resp.status == 200 || resp.status == 204) {
			dt_toolbox_forget(be, id);
			break;
		}
		if (resp.status != 409) {
			rc = dt_http_fail(be, &resp, 0, "destroy sandbox", &sub);
			if (rc == CI_E_NOTFOUND) {
				dt_toolbox_forget(be, id);
				ci_fail(&sub, rc, "no sandbox %s", id);
			}
			break;
		}
		/* 409: creating/starting/stopping; retry once it settles */
		if (dt_sleep(be, delay, &sub)) {
			rc = ci_fail(&sub, CI_E_TIMEOUT,
				     "destroy sandbox %s: still changing state (HTTP 409)", id);
			break;
		}
		delay = delay * 2 < be->conf.poll_max_ms ? delay * 2 : be->conf.poll_max_ms;
	}
	if (rc)
		memcpy(call->err, sub.err, sizeof(call->err));
	dt_resp_free(&resp);
	dt_buf_free(&url);
	return rc;
}

int dt_destroy(ci_be *be, const char *id, ci_call *call)
{
	int rc = dt_check_id(id, call);

	if (rc)
		return rc == CI_E_INVAL ? CI_E_NOTFOUND : rc;
	return dt_destroy_until(be, id, dt_now(be) + be->conf.destroy_timeout_ms, call);
}

/* One page of GET /sandbox?labels={"ci-owner":owner}; appends due ids to ids. */
static int dt_sweep_page(ci_be *be, const char *owner, int64_t older_than, const char *cursor,
			 json_t *ids, char **next, ci_call *call)
{
	struct dt_buf url = {0}, q = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "GET", .flags = DT_IDEMPOTENT, .max_resp = 64u << 20};
	json_t *want = json_pack("{s:s}", "ci-owner", owner), *root = NULL, *items, *it;
	char *wjs = want ? json_dumps(want, JSON_COMPACT) : NULL;
	const char *cur;
	size_t i;
	int rc = CI_OK;

	*next = NULL;
	if (!wjs || dt_buf_printf(&url, "%s/sandbox?labels=", be->conf.api_url) ||
	    dt_buf_urlenc(&url, wjs) || dt_buf_str(&url, "&limit=100") ||
	    (cursor && (dt_buf_str(&url, "&cursor=") || dt_buf_urlenc(&url, cursor)))) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	req.url = url.data;
	rc = dt_http(be, &req, &resp, call);
	if (rc == CI_OK && resp.status != 200)
		rc = dt_http_fail(be, &resp, 0, "list sandboxes", call);
	if (rc)
		goto out;
	root = dt_json(&resp);
	if (!root || dt_parse_list(root, &items, &cur)) {
		rc = ci_fail(call, CI_E_BACKEND, "list sandboxes: unexpected answer");
		goto out;
	}
	json_array_foreach(items, i, it)
	{
		json_t *labels = json_object_get(it, "labels");
		const char *o = json_string_value(json_object_get(labels, "ci-owner"));
		const char *c = json_string_value(json_object_get(labels, "ci-created-at"));
		const char *ds = json_string_value(json_object_get(it, "desiredState"));
		json_t *sid = json_object_get(it, "id");
		int64_t created = c ? strtoll(c, NULL, 10) : 0;

		/* old servers may ignore the filter: never touch another owner's */
		if (!o || strcmp(o, owner) || !json_is_string(sid))
			continue;
		if (ds && !strcmp(ds, "destroyed"))
			continue;
		if (created <= 0)
			created = dt_parse_iso(json_string_value(json_object_get(it, "createdAt")));
		if (created < 0 || created >= older_than)
			continue;
		json_array_append(ids, sid);
	}
	if (cur && !(*next = strdup(cur)))
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
out:
	json_decref(root);
	json_decref(want);
	free(wjs);
	dt_resp_free(&resp);
	dt_buf_free(&url);
	dt_buf_free(&q);
	return rc;
}

int dt_sweep(ci_be *be, const char *owner, int64_t older_than, unsigned *n, ci_call *call)
{
	json_t *ids = json_array(), *sid;
	char *cursor = NULL, *next;
	char first_err[CI_ERR_MAX] = "";
	int rc = CI_OK, first_rc = CI_OK, pages;
	size_t i;

	*n = 0;
	if (!owner || !*owner) {
		json_decref(ids);
		return ci_fail(call, CI_E_INVAL, "sweep: empty owner");
	}
	if (!ids)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	/* collect first: deleting while paging would shift the pages */
	for (pages = 0; pages < 1000; pages++) {
		rc = dt_sweep_page(be, owner, older_than, cursor, ids, &next, call);
		free(cursor);
		cursor = next;
		if (rc || !cursor)
			break;
	}
	free(cursor);
	if (rc) {
		json_decref(ids);
		return rc;
	}
	json_array_foreach(ids, i, sid)
	{
		const char *s = json_string_value(sid);

		rc = dt_destroy_until(be, s, dt_now(be) + be->conf.destroy_timeout_ms, call);
		if (rc == CI_OK) {
			(*n)++;
		} else if (rc != CI_E_NOTFOUND && first_rc == CI_OK) {
			first_rc = rc;
			memcpy(first_err, call->err, sizeof(first_err));
		}
	}
	json_decref(ids);
	if (first_rc)
		memcpy(call->err, first_err, sizeof(first_err));
	else
		call->err[0] = '\0';
	be->host->log(be->host->hctx, CI_LOG_INFO, "daytona: sweep owner=%s removed %u", owner, *n);
	return first_rc;
}

/* --- toolbox requests ------------------------------------------------------------ */

static int dt_is_stopped_answer(const struct dt_resp *resp)
{
	char msg[128];

	if (resp->status == 502)
		return 1;
	if (resp->status != 400)
		return 0;
	dt_err_message(resp, msg, sizeof(msg));
	return strstr(msg, "Is the Sandbox started") != NULL;
}

int dt_toolbox(ci_be *be, const char *id, const char *path, struct dt_req *req,
	       struct dt_resp *resp, ci_call *call)
{
	struct dt_buf url = {0};
	char *base = NULL, code[48];
	int rc, pass;

	for (pass = 0; pass < 2; pass++) {
		rc = dt_toolbox_base(be, id, &base, call);
		if (rc)
			return rc;
		url.len = 0;
		if (dt_buf_str(&url, base) || dt_buf_str(&url, path)) {
			rc = ci_fail(call, CI_E_NOMEM, "out of memory");
			break;
		}
		free(base);
		base = NULL;
		req->url = url.data;
		rc = dt_http(be, req, resp, call);
		if (rc || resp->sent_to_sink)
			break;
		if (resp->status == 404 || resp->status == 401 || resp->status == 403) {
			json_t *dto;

			dt_err_code(resp, code, sizeof(code));
			if (resp->status == 404 && !strcmp(code, "FILE_NOT_FOUND"))
				break;
			/* the proxy answers 404 or 401 for a sandbox it cannot find */
			rc = dt_get_dto(be, id, &dto, call);
			json_decref(dto);
			if (rc == CI_E_NOTFOUND)
				dt_toolbox_forget(be, id);
			if (rc == CI_OK && resp->status != 404)
				rc = dt_http_fail(be, resp, 1, "toolbox", call);
			break;
		}
		if (pass || !dt_is_stopped_answer(resp) || (req->body_src && !req->rewind))
			break;
		/* auto-stopped (or not up yet): start it and try once more */
		rc = dt_ensure_started(be, id, dt_now(be) + be->conf.create_timeout_ms, call);
		if (rc)
			break;
		if (req->body_src && req->rewind(req->rewind_ctx)) {
			rc = ci_fail(call, CI_E_INTERNAL, "cannot resend the upload body");
			break;
		}
	}
	free(base);
	dt_buf_free(&url);
	return rc;
}
