/*
 * Containers: the hardened create body, create+start (deleting what was
 * created when start fails), delete, kill, update, and the sweep by owner
 * label and age (containers and the volumes docker leaves behind).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "engine.h"

#define CLEANUP_MS 3000 /* budget for undoing a half-made container */

void eng_limits_from_spec(const struct eng_conf *c, const ci_create_spec *spec,
			  struct eng_limits *l)
{
	l->mem_bytes = spec && spec->mem_bytes > 0 ? spec->mem_bytes : c->mem_bytes;
	l->cpu_millis = spec && spec->cpu_millis > 0 ? spec->cpu_millis : c->cpu_millis;
	l->pids = spec && spec->pids > 0 ? spec->pids : c->pids;
	l->disk_bytes = spec && spec->disk_bytes > 0 ? spec->disk_bytes : c->disk_bytes;
}

static bool name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-' || *s == '+'))
			return false;
	return true;
}

int eng_image_for(struct ci_be *be, const char *runtime, const char *image, char *out, size_t cap,
		  ci_call *call)
{
	const char *img = NULL;
	char key[96];
	int n;

	if (image && image[0]) {
		img = image;
	} else if (runtime && runtime[0]) {
		if (!name_ok(runtime) || strlen(runtime) > 48)
			return ci_fail(call, CI_E_INVAL, "bad runtime name '%s'", runtime);
		snprintf(key, sizeof(key), "image.%s", runtime);
		if (be->host->cfg_str(be->host->hctx, key, &img) != CI_OK)
			img = NULL;
	}
	if (img) {
		n = snprintf(out, cap, "%s", img);
	} else if (runtime && runtime[0]) {
		/* image_fmt was checked at init to hold exactly one %s. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		n = snprintf(out, cap, be->conf.image_fmt, runtime);
#pragma GCC diagnostic pop
	} else {
		return ci_fail(call, CI_E_INVAL, "create: neither image nor runtime given");
	}
	if (n < 0 || (size_t)n >= cap)
		return ci_fail(call, CI_E_INVAL, "image name too long");
	return CI_OK;
}

static int split_ids(const char *user, unsigned *uid, unsigned *gid)
{
	char *end;
	unsigned long u, g;

	u = strtoul(user, &end, 10);
	if (end == user || *end != ':')
		return -1;
	g = strtoul(end + 1, &end, 10);
	if (*end || u > 65535 * 65536UL || g > 65535 * 65536UL)
		return -1;
	*uid = (unsigned)u;
	*gid = (unsigned)g;
	return 0;
}

static json_t *ulimit(const char *name, int64_t v)
{
	return json_pack("{s:s, s:I, s:I}", "Name", name, "Soft", (json_int_t)v, "Hard",
			 (json_int_t)v);
}

static bool use_volume(const struct eng_conf *c, enum eng_kind kind)
{
	if (c->layout && strcmp(c->layout, "volume") == 0)
		return true;
	if (c->layout && strcmp(c->layout, "tmpfs") == 0)
		return false;
	return kind != ENG_KIND_PODMAN;
}

char *eng_create_body(const struct eng_conf *c, enum eng_kind kind, const char *backend,
		      const char *image, const char *runtime, const char *owner,
		      const char *session, const char *const *env, const struct eng_limits *l,
		      int64_t now_unix, bool pooled)
{
	json_t *body, *hc, *labels, *jenv, *tmpfs, *mounts;
	char buf[160], created[32];
	unsigned uid = 1000, gid = 1000;
	char *s;

	split_ids(c->user, &uid, &gid);
	snprintf(created, sizeof(created), "%lld", (long long)now_unix);
	labels = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", ENG_LABEL_PREFIX "sandbox", "1",
			   ENG_LABEL_PREFIX "backend", backend, ENG_LABEL_PREFIX "owner",
			   owner ? owner : "", ENG_LABEL_PREFIX "session",
			   session ? session : (pooled ? "pool" : ""), ENG_LABEL_PREFIX "runtime",
			   runtime ? runtime : "", ENG_LABEL_PREFIX "created", created);
	if (pooled)
		json_object_set_new(labels, ENG_LABEL_PREFIX "pool", json_string("1"));
	jenv = json_array();
	for (; env && *env; env++)
		json_array_append_new(jenv, json_string(*env));

	tmpfs = json_object();
	snprintf(buf, sizeof(buf), "rw,exec,nosuid,nodev,size=%lld", (long long)c->tmp_bytes);
	json_object_set_new(tmpfs, "/tmp", json_string(buf));
	mounts = json_array();
	if (use_volume(c, kind)) {
		/*
		 * docker: its archive API cannot reach tmpfs mounts, but it can
		 * reach a volume, and the local driver can back a volume with
		 * a size-capped tmpfs owned by the sandbox user. Removed with
		 * the container (DELETE ?v=1); labelled for the sweep.
		 */
		snprintf(buf, sizeof(buf), "size=%lld,uid=%u,gid=%u,nosuid,nodev",
			 (long long)l->disk_bytes, uid, gid);
		json_array_append_new(
			mounts, json_pack("{s:s, s:s, s:{s:O, s:{s:s, s:{s:s, s:s, s:s}}}}", "Type",
					  "volume", "Target", ENG_DATA_DIR, "VolumeOptions",
					  "Labels", labels, "DriverConfig", "Name", "local",
					  "Options", "type", "tmpfs", "device", "tmpfs", "o", buf));
	} else {
		/*
		 * podman: its compat API ignores volume driver options (the
		 * "tmpfs" volume would be an unbounded host directory) but its
		 * archive API works on tmpfs mounts. It rejects uid=/gid= and
		 * copies only the mode of the image's /mnt/data (1777), not
		 * its owner: the directory is root's, writable by the code.
		 */
		snprintf(buf, sizeof(buf), "rw,exec,nosuid,nodev,size=%lld",
			 (long long)l->disk_bytes);
		json_object_set_new(tmpfs, ENG_DATA_DIR, json_string(buf));
	}

	hc = json_pack("{s:I, s:I, s:I, s:I, s:s, s:b, s:[s], s:[s], s:b, s:[o,o], s:o, s:o, "
		       "s:{s:s}}",
		       "Memory", (json_int_t)l->mem_bytes, "MemorySwap", (json_int_t)l->mem_bytes,
		       "NanoCpus", (json_int_t)(l->cpu_millis * 1000000), "PidsLimit",
		       (json_int_t)l->pids, "NetworkMode", "none", "ReadonlyRootfs", 1, "CapDrop",
		       "ALL", "SecurityOpt", "no-new-privileges", "Init", c->init, "Ulimits",
		       ulimit("nofile", c->nofile), ulimit("nproc", c->nproc), "Tmpfs", tmpfs,
		       "Mounts", mounts, "RestartPolicy", "Name", "no");
	body = json_pack("{s:s, s:[s,s], s:s, s:s, s:o, s:o, s:b, s:i, s:b, s:b, s:b, s:o}",
			 "Image", image, "Cmd", "sleep", "infinity", "User", c->keepalive_user,
			 "WorkingDir", "/", "Env", jenv, "Labels", labels, "NetworkDisabled", 1,
			 "StopTimeout", 1, "Tty", 0, "OpenStdin", 0, "AttachStdout", 0,
			 "HostConfig", hc);
	if (!body)
		return NULL;
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return s;
}

int eng_id_check(const char *id, ci_call *call)
{
	size_t n = 0;

	if (!id)
		return ci_fail(call, CI_E_INVAL, "no sandbox id");
	for (; id[n]; n++)
		if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
			return ci_fail(call, CI_E_NOTFOUND, "no such sandbox '%.64s'", id);
	if (n < 12 || n >= CI_ID_MAX)
		return ci_fail(call, CI_E_NOTFOUND, "no such sandbox '%.64s'", id);
	return CI_OK;
}

/* A ci_call for clean-up work that must happen even past a short deadline. */
static ci_call cleanup_call(struct ci_be *be, const ci_call *call)
{
	ci_call c = *call;
	int64_t min = be->host->now_ms(be->host->hctx) + CLEANUP_MS;

	if (c.deadline_ms < min)
		c.deadline_ms = min;
	c.err[0] = '\0';
	return c;
}

int eng_container_new(struct ci_be *be, const char *image, const char *runtime, const char *owner,
		      const char *session, const char *const *env, const struct eng_limits *l,
		      bool pooled, char id[CI_ID_MAX], ci_call *call)
{
	struct eng_req req = {.method = "POST", .path = "/containers/create"};
	struct eng_resp resp = {0};
	struct eng_buf path = {0};
	const char *cid;
	json_t *j = NULL;
	char *body;
	ci_call cc;
	int rc;

	body = eng_create_body(&be->conf, be->kind, be->prof->name, image, runtime, owner, session,
			       env, l, be->host->wall_unix(be->host->hctx), pooled);
	if (!body)
		return ci_fail(call, CI_E_NOMEM, "create: building the request failed");
	req.body_json = body;
	rc = eng_call(be, &req, &resp, call);
	free(body);
	if (rc != CI_OK)
		goto out;
	if (resp.status == 404) {
		rc = ci_fail(call, CI_E_BACKEND,
			     "create: image '%s' not found in %s (build it: images/build.sh "
			     "--engine %s): %s",
			     image, be->prof->name,
			     be->kind == ENG_KIND_PODMAN ? "podman" : "docker",
			     eng_err_text(&resp));
		goto out;
	}
	if (resp.status != 201) {
		rc = eng_fail_status(be, &resp, call, "create");
		if (rc == CI_E_NOTFOUND || rc == CI_E_EXISTS || rc == CI_E_INVAL)
			rc = CI_E_BACKEND;
		goto out;
	}
	j = json_loadb(eng_buf_str(&resp.body), resp.body.len, 0, NULL);
	cid = json_string_value(json_object_get(j, "Id"));
	if (!cid || eng_id_check(cid, call) != CI_OK) {
		rc = ci_fail(call, CI_E_BACKEND, "create: no container id in the answer");
		goto out;
	}
	snprintf(id, CI_ID_MAX, "%s", cid);

	eng_resp_release(&resp);
	eng_buf_printf(&path, "/containers/%s/start", id);
	req = (struct eng_req){.method = "POST", .path = eng_buf_str(&path)};
	rc = eng_call(be, &req, &resp, call);
	if (rc == CI_OK && resp.status != 204 && resp.status != 304) {
		rc = eng_fail_status(be, &resp, call, "start");
		if (rc == CI_E_NOTFOUND || rc == CI_E_EXISTS || rc == CI_E_INVAL)
			rc = CI_E_BACKEND;
	}
	if (rc != CI_OK) {
		/* Engines validate some options only at start: undo the create. */
		cc = cleanup_call(be, call);
		if (eng_container_delete(be, id, &cc) != CI_OK)
			be->host->log(be->host->hctx, CI_LOG_WARN,
				      "%s: could not delete container %.12s after a failed "
				      "start: %s (the sweep will)",
				      be->prof->name, id, cc.err);
		id[0] = '\0';
	}
out:
	json_decref(j);
	eng_buf_release(&path);
	eng_resp_release(&resp);
	return rc;
}

static int simple(struct ci_be *be, const char *method, const char *path, const char *body,
		  const char *op, const char *id, ci_call *call, int *status)
{
	struct eng_req req = {.method = method, .path = path, .body_json = body};
	struct eng_resp resp = {0};
	int rc;

	rc = eng_call(be, &req, &resp, call);
	*status = resp.status;
	if (rc == CI_OK && resp.status >= 300 && resp.status != 304) {
		rc = eng_fail_status(be, &resp, call, op);
		if (resp.status == 404)
			ci_fail(call, CI_E_NOTFOUND, "no such sandbox %.12s (container gone)", id);
	}
	eng_resp_release(&resp);
	return rc;
}

int eng_container_delete(struct ci_be *be, const char *id, ci_call *call)
{
	char path[CI_ID_MAX + 64];
	int st;

	snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
	return simple(be, "DELETE", path, NULL, "delete", id, call, &st);
}

int eng_container_kill(struct ci_be *be, const char *id, ci_call *call)
{
	char path[CI_ID_MAX + 64];
	int st, rc;

	snprintf(path, sizeof(path), "/containers/%s/kill?signal=SIGKILL", id);
	rc = simple(be, "POST", path, NULL, "kill", id, call, &st);
	return rc == CI_E_EXISTS ? CI_OK : rc; /* 409: not running any more */
}

int eng_container_update(struct ci_be *be, const char *id, const struct eng_limits *l,
			 ci_call *call)
{
	char path[CI_ID_MAX + 64], *body;
	json_t *j;
	int st, rc;

	j = json_pack("{s:I, s:I, s:I, s:I}", "Memory", (json_int_t)l->mem_bytes, "MemorySwap",
		      (json_int_t)l->mem_bytes, "NanoCpus", (json_int_t)(l->cpu_millis * 1000000),
		      "PidsLimit", (json_int_t)l->pids);
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!body)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	snprintf(path, sizeof(path), "/containers/%s/update", id);
	rc = simple(be, "POST", path, body, "update", id, call, &st);
	free(body);
	return rc;
}

static char *owner_filter(const char *owner)
{
	char label[CI_ERR_MAX + 16];
	json_t *f;
	char *s;
	struct eng_buf b = {0};

	snprintf(label, sizeof(label), ENG_LABEL_PREFIX "owner=%s", owner);
	f = json_pack("{s:[s,s]}", "label", ENG_LABEL_PREFIX "sandbox=1", label);
	s = f ? json_dumps(f, JSON_COMPACT) : NULL;
	json_decref(f);
	if (!s || eng_url_escape(&b, s)) {
		free(s);
		eng_buf_release(&b);
		return NULL;
	}
	free(s);
	return b.data;
}

static int64_t label_created(json_t *labels)
{
	const char *s = json_string_value(json_object_get(labels, ENG_LABEL_PREFIX "created"));

	return s ? strtoll(s, NULL, 10) : 0;
}

static int sweep_volumes(struct ci_be *be, const char *filter, int64_t older_than, ci_call *call)
{
	struct eng_req req = {.method = "GET"};
	struct eng_resp resp = {0};
	struct eng_buf path = {0};
	json_t *j = NULL, *v;
	size_t i;
	int rc, st;

	eng_buf_printf(&path, "/volumes?filters=%s", filter);
	req.path = eng_buf_str(&path);
	rc = eng_call(be, &req, &resp, call);
	if (rc == CI_OK && resp.status != 200)
		rc = eng_fail_status(be, &resp, call, "list volumes");
	if (rc != CI_OK)
		goto out;
	j = json_loadb(eng_buf_str(&resp.body), resp.body.len, 0, NULL);
	json_array_foreach(json_object_get(j, "Volumes"), i, v)
	{
		const char *name = json_string_value(json_object_get(v, "Name"));
		struct eng_buf del = {0};
		ci_call sub = *call;

		if (!name || label_created(json_object_get(v, "Labels")) >= older_than)
			continue;
		eng_buf_printf(&del, "/volumes/");
		eng_url_escape(&del, name);
		/* 409 = still in use by a container: not ours to force. */
		simple(be, "DELETE", eng_buf_str(&del), NULL, "delete volume", name, &sub, &st);
		eng_buf_release(&del);
	}
out:
	json_decref(j);
	eng_buf_release(&path);
	eng_resp_release(&resp);
	return rc;
}

int eng_sweep(struct ci_be *be, const char *owner, int64_t older_than, unsigned *n, ci_call *call)
{
	struct eng_req req = {.method = "GET"};
	struct eng_resp resp = {0};
	struct eng_buf path = {0};
	char *filter;
	json_t *j = NULL, *c;
	size_t i;
	int rc;

	*n = 0;
	filter = owner_filter(owner);
	if (!filter)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	eng_buf_printf(&path, "/containers/json?all=1&filters=%s", filter);
	req.path = eng_buf_str(&path);
	rc = eng_call(be, &req, &resp, call);
	if (rc == CI_OK && resp.status != 200)
		rc = eng_fail_status(be, &resp, call, "list containers");
	if (rc != CI_OK)
		goto out;
	j = json_loadb(eng_buf_str(&resp.body), resp.body.len, 0, NULL);
	if (!json_is_array(j)) {
		rc = ci_fail(call, CI_E_BACKEND, "list containers: not a JSON array");
		goto out;
	}
	json_array_foreach(j, i, c)
	{
		const char *id = json_string_value(json_object_get(c, "Id"));
		json_t *labels = json_object_get(c, "Labels");
		const char *lo =
			json_string_value(json_object_get(labels, ENG_LABEL_PREFIX "owner"));
		int64_t created = label_created(labels);
		ci_call sub = *call;
		int drc;

		/* The engine filtered already; check again, never touch others. */
		if (!id || !lo || strcmp(lo, owner) != 0 || eng_id_check(id, &sub) != CI_OK)
			continue;
		if (!created)
			created = (int64_t)json_integer_value(json_object_get(c, "Created"));
		if (created >= older_than || eng_pool_holds(be, id))
			continue;
		drc = eng_container_delete(be, id, &sub);
		eng_envtab_drop(be, id);
		if (drc == CI_OK)
			(*n)++;
		else if (drc != CI_E_NOTFOUND)
			be->host->log(be->host->hctx, CI_LOG_WARN, "%s sweep: %.12s: %s",
				      be->prof->name, id, sub.err);
	}
	rc = sweep_volumes(be, filter, older_than, call);
out:
	free(filter);
	json_decref(j);
	eng_buf_release(&path);
	eng_resp_release(&resp);
	return rc;
}
