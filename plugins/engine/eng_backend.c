/*
 * The ABI operations shared by the docker and podman plugins: configuration
 * (backends.<name>.*), and the glue from ci_backend calls to the engine
 * client. The engine is not required at init: a daemon that is down makes
 * calls fail with CI_E_UNAVAIL (503) until it is back, and the API version
 * is negotiated on first use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ci/backend_util.h"
#include "engine.h"

static int cfg_str_def(const ci_host *h, const char *key, const char *def, char **out,
		       ci_call *call)
{
	const char *v = NULL;
	int rc = h->cfg_str(h->hctx, key, &v);

	if (rc == CI_E_INVAL)
		return ci_fail(call, CI_E_INVAL, "%s must be a string", key);
	if (rc != CI_OK)
		v = def;
	*out = v ? strdup(v) : NULL;
	if (v && !*out)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	return CI_OK;
}

static int cfg_int_def(const ci_host *h, const char *key, int64_t def, int64_t min, int64_t max,
		       int64_t *out, ci_call *call)
{
	int rc = h->cfg_int(h->hctx, key, out);

	if (rc == CI_E_INVAL)
		return ci_fail(call, CI_E_INVAL, "%s must be an integer", key);
	if (rc != CI_OK)
		*out = def;
	if (*out < min || *out > max)
		return ci_fail(call, CI_E_INVAL, "%s = %lld is outside %lld..%lld", key,
			       (long long)*out, (long long)min, (long long)max);
	return CI_OK;
}

static bool ids_ok(const char *s, bool nonroot)
{
	unsigned u, g;
	char extra;

	return s && sscanf(s, "%u:%u%c", &u, &g, &extra) == 2 && (!nonroot || (u && g));
}

static bool image_fmt_ok(const char *f)
{
	const char *p = strchr(f, '%');

	return p && p[1] == 's' && !strchr(p + 2, '%');
}

static int read_conf(struct ci_be *be, ci_call *call)
{
	const ci_host *h = be->host;
	struct eng_conf *c = &be->conf;
	char rootless[512] = "";
	const char *def_sock = be->prof->default_socket, *xdg = getenv("XDG_RUNTIME_DIR");
	int64_t mb;
	int rc = 0, init = 1;

	if (geteuid() != 0 && be->prof->rootless_socket && xdg) {
		snprintf(rootless, sizeof(rootless), "%s/%s", xdg, be->prof->rootless_socket);
		def_sock = rootless;
	}
	rc |= cfg_str_def(h, "url", "http://localhost", &c->url, call);
	rc |= cfg_str_def(h, "socket",
			  c->url && strncmp(c->url, "http://localhost", 16) ? NULL : def_sock,
			  &c->socket, call);
	rc |= cfg_str_def(h, "ca_file", NULL, &c->ca_file, call);
	rc |= cfg_str_def(h, "api_version", NULL, &c->api_pin, call);
	rc |= cfg_str_def(h, "user", "1000:1000", &c->user, call);
	rc |= cfg_str_def(h, "keepalive_user", "65534:65534", &c->keepalive_user, call);
	rc |= cfg_str_def(h, "image_format", "ci-sandbox-%s", &c->image_fmt, call);
	if (rc)
		return call->err[0] ? CI_E_INVAL : CI_E_NOMEM;
	if (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8))
		return ci_fail(call, CI_E_INVAL, "url must start with http:// or https://");
	if (!ids_ok(c->user, true))
		return ci_fail(call, CI_E_INVAL, "user must be a non-root \"uid:gid\", not '%s'",
			       c->user);
	if (!ids_ok(c->keepalive_user, true) || strcmp(c->user, c->keepalive_user) == 0)
		return ci_fail(call, CI_E_INVAL,
			       "keepalive_user must be a non-root \"uid:gid\" other than user");
	if (!image_fmt_ok(c->image_fmt))
		return ci_fail(call, CI_E_INVAL, "image_format must hold exactly one %%s");

	if ((rc = cfg_int_def(h, "memory_mb", 512, 16, 1 << 20, &mb, call)))
		return rc;
	c->mem_bytes = mb << 20;
	if ((rc = cfg_int_def(h, "cpu_millis", 1000, 10, 1 << 20, &c->cpu_millis, call)))
		return rc;
	if ((rc = cfg_int_def(h, "pids", 256, 16, 1 << 22, &c->pids, call)))
		return rc;
	if ((rc = cfg_int_def(h, "disk_mb", 256, 1, 1 << 20, &mb, call)))
		return rc;
	c->disk_bytes = mb << 20;
	if ((rc = cfg_int_def(h, "tmp_mb", 64, 1, 1 << 20, &mb, call)))
		return rc;
	c->tmp_bytes = mb << 20;
	if ((rc = cfg_int_def(h, "nofile", 1024, 64, 1 << 20, &c->nofile, call)))
		return rc;
	if ((rc = cfg_int_def(h, "nproc", 4096, 16, 1 << 22, &c->nproc, call)))
		return rc;
	if ((rc = cfg_int_def(h, "exec_grace_ms", 2000, 100, 600000, &c->exec_grace_ms, call)))
		return rc;
	if ((rc = cfg_int_def(h, "pool_max_age_s", 300, 10, 86400, &c->pool_max_age_s, call)))
		return rc;
	if ((rc = cfg_int_def(h, "pool_refill_delay_ms", 1000, 0, 60000, &c->pool_refill_delay_ms,
			      call)))
		return rc;
	rc = h->cfg_bool(h->hctx, "init", &init);
	if (rc == CI_E_INVAL)
		return ci_fail(call, CI_E_INVAL, "init must be a boolean");
	c->init = init != 0;
	if (h->cfg_str(h->hctx, "layout", &c->layout) != CI_OK)
		c->layout = "auto";
	if (strcmp(c->layout, "auto") && strcmp(c->layout, "volume") && strcmp(c->layout, "tmpfs"))
		return ci_fail(call, CI_E_INVAL, "layout must be auto, volume or tmpfs");
	return CI_OK;
}

static void conf_release(struct eng_conf *c)
{
	free(c->url);
	free(c->socket);
	free(c->ca_file);
	free(c->api_pin);
	free(c->user);
	free(c->keepalive_user);
	free(c->image_fmt);
}

int eng_be_init(const struct eng_profile *prof, const ci_host *host, ci_be **out, ci_call *call)
{
	struct ci_be *be;
	int rc;

	*out = NULL;
	if (!CI_HOST_HAS(host, http) || !CI_HOST_HAS(host, cfg_bool))
		return ci_fail(call, CI_E_UNSUPPORTED, "%s: the host lacks the http service",
			       prof->name);
	be = calloc(1, sizeof(*be));
	if (!be)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	be->host = host;
	be->prof = prof;
	pthread_mutex_init(&be->lock, NULL);
	rc = read_conf(be, call);
	if (rc == CI_OK && (rc = eng_envtab_new(be)) != CI_OK)
		ci_fail(call, rc, "out of memory");
	if (rc == CI_OK && (rc = eng_pool_start(be)) != CI_OK)
		ci_fail(call, rc, "%s: cannot start the warm pool", prof->name);
	if (rc != CI_OK) {
		eng_be_fini(be);
		return rc;
	}
	host->log(host->hctx, CI_LOG_INFO, "%s: engine at %s%s, code runs as %s", prof->name,
		  be->conf.socket ? be->conf.socket : "", be->conf.socket ? "" : be->conf.url,
		  be->conf.user);
	/* Probe now for an early log line; failure is not fatal (engine may start later). */
	{
		ci_call probe = *call;

		probe.deadline_ms = host->now_ms(host->hctx) + 2000;
		if (eng_ready(be, &probe) != CI_OK)
			host->log(host->hctx, CI_LOG_WARN, "%s: %s", prof->name, probe.err);
	}
	*out = be;
	return CI_OK;
}

void eng_be_fini(ci_be *be)
{
	if (!be)
		return;
	eng_pool_stop(be);
	eng_envtab_free(be);
	free(be->owner);
	conf_release(&be->conf);
	pthread_mutex_destroy(&be->lock);
	free(be);
}

static bool limits_default(const struct eng_conf *c, const struct eng_limits *l)
{
	return l->mem_bytes == c->mem_bytes && l->cpu_millis == c->cpu_millis && l->pids == c->pids;
}

int eng_be_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call)
{
	struct eng_limits l;
	char image[512];
	int rc;

	id[0] = '\0';
	if (!spec)
		return ci_fail(call, CI_E_INVAL, "create: no spec");
	if (spec->network)
		return ci_fail(call, CI_E_UNSUPPORTED, "%s: sandboxes have no network",
			       be->prof->name);
	rc = eng_image_for(be, spec->runtime, spec->image, image, sizeof(image), call);
	if (rc != CI_OK)
		return rc;
	rc = eng_ready(be, call);
	if (rc != CI_OK)
		return rc;
	eng_limits_from_spec(&be->conf, spec, &l);
	eng_pool_owner(be, spec->owner);

	if (l.disk_bytes == be->conf.disk_bytes &&
	    eng_pool_take(be, spec->runtime, image, spec->owner, id) == CI_OK) {
		ci_call sub = *call;

		rc = limits_default(&be->conf, &l) ? CI_OK : eng_container_update(be, id, &l, &sub);
		if (rc == CI_OK)
			rc = eng_envtab_set(be, id, spec->env);
		if (rc == CI_OK)
			return CI_OK;
		be->host->log(be->host->hctx, CI_LOG_WARN,
			      "%s: pooled container unusable (%s); creating a new one",
			      be->prof->name, sub.err);
		sub = *call;
		eng_container_delete(be, id, &sub);
		eng_envtab_drop(be, id);
		id[0] = '\0';
	}
	return eng_container_new(be, image, spec->runtime, spec->owner, spec->session, spec->env,
				 &l, false, id, call);
}

static int prologue(ci_be *be, const char *id, ci_call *call)
{
	int rc = eng_id_check(id, call);

	return rc != CI_OK ? rc : eng_ready(be, call);
}

int eng_be_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
		ci_call *call)
{
	struct eng_exec x = {0};
	struct eng_exec_res r;
	char **extra = NULL;
	const char **env = NULL;
	size_t n = 0, i;
	int rc;

	if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
		return ci_fail(call, CI_E_INVAL, "exec: empty argv");
	if (spec->cwd && spec->cwd[0] != '/')
		return ci_fail(call, CI_E_INVAL, "exec: cwd must be absolute");
	rc = prologue(be, id, call);
	if (rc != CI_OK)
		return rc;

	extra = eng_envtab_get(be, id);
	while (extra && extra[n])
		n++;
	for (i = 0; spec->env && spec->env[i]; i++)
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env) {
		eng_cmd_free(extra);
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	}
	n = 0;
	for (i = 0; extra && extra[i]; i++)
		env[n++] = extra[i];
	for (i = 0; spec->env && spec->env[i]; i++)
		env[n++] = spec->env[i];

	x.argv = spec->argv;
	x.env = env;
	x.cwd = spec->cwd;
	x.user = be->conf.user;
	x.stdin_buf = spec->stdin_buf;
	x.stdin_len = spec->stdin_buf ? spec->stdin_len : 0;
	x.timeout_ms = spec->timeout_ms;
	x.wrap = true;
	x.out = spec->out;
	rc = eng_exec_run(be, id, &x, &r, call);
	if (rc == CI_OK) {
		eng_status_to_result(r.status, r.timed_out, res);
		res->wall_ms = r.wall_ms;
	}
	free(env);
	eng_cmd_free(extra);
	return rc;
}

int eng_be_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	       ci_call *call)
{
	int rc = prologue(be, id, call);

	return rc != CI_OK ? rc : eng_put(be, id, path, src, mode, call);
}

int eng_be_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call)
{
	int rc = prologue(be, id, call);

	return rc != CI_OK ? rc : eng_get(be, id, path, out, call);
}

int eng_be_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
		ci_call *call)
{
	int rc = prologue(be, id, call);

	if (rc == CI_OK && !cb)
		rc = ci_fail(call, CI_E_INVAL, "list: no callback");
	return rc != CI_OK ? rc : eng_list(be, id, dir, cb, ctx, call);
}

int eng_be_destroy(ci_be *be, const char *id, ci_call *call)
{
	int rc = prologue(be, id, call);

	if (rc != CI_OK)
		return rc;
	eng_envtab_drop(be, id);
	return eng_container_delete(be, id, call);
}

int eng_be_sweep(ci_be *be, const char *owner, int64_t older_than_unix, unsigned *n_removed,
		 ci_call *call)
{
	int rc;

	*n_removed = 0;
	if (!owner || !owner[0])
		return ci_fail(call, CI_E_INVAL, "sweep: owner label required");
	rc = eng_ready(be, call);
	if (rc != CI_OK)
		return rc;
	eng_pool_owner(be, owner);
	return eng_sweep(be, owner, older_than_unix, n_removed, call);
}
