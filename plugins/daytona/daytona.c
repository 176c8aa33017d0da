/*
 * Daytona backend plugin: descriptor, configuration and init/fini.
 * Sandboxes are Daytona sandboxes driven over the control-plane REST API
 * and each sandbox's toolbox (read docs/backends/daytona.md).
 */
#include "daytona.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"

#define DT_DEFAULT_API_URL "https://app.daytona.io/api"

static int dt_cfg_str(ci_be *be, const char *key, const char *env, const char *def, char **out,
		      ci_call *call)
{
	const char *v = NULL;
	int rc = be->host->cfg_str(be->host->hctx, key, &v);

	if (rc == CI_E_INVAL)
		return ci_fail(call, CI_E_INVAL, "backends.daytona.%s must be a string", key);
	if (rc != CI_OK || !v || !*v)
		v = env ? getenv(env) : NULL;
	if (!v || !*v)
		v = def;
	*out = NULL;
	if (v && !(*out = strdup(v)))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	return CI_OK;
}

static int dt_cfg_int(ci_be *be, const char *key, int64_t def, int64_t min, int64_t max,
		      int64_t *out, ci_call *call)
{
	int rc = be->host->cfg_int(be->host->hctx, key, out);

	if (rc == CI_E_NOTFOUND)
		*out = def;
	else if (rc != CI_OK)
		return ci_fail(call, CI_E_INVAL, "backends.daytona.%s must be an integer", key);
	if (*out < min || *out > max)
		return ci_fail(call, CI_E_INVAL, "backends.daytona.%s = %lld is outside %lld..%lld",
			       key, (long long)*out, (long long)min, (long long)max);
	return CI_OK;
}

static void dt_conf_release(struct dt_conf *c)
{
	free(c->api_url);
	free(c->api_key);
	free(c->target);
	free(c->snapshot);
	free(c->data_dir);
	free(c->name_prefix);
	free(c->ca_file);
}

static int dt_conf_load(ci_be *be, ci_call *call)
{
	struct dt_conf *c = &be->conf;
	const struct {
		const char *key;
		int64_t def, min, max;
		int64_t *out;
	} ints[] = {
		{"cpu", 0, 0, 64, &c->cpu},
		{"memory_gb", 0, 0, 1024, &c->memory_gb},
		{"disk_gb", 0, 0, 4096, &c->disk_gb},
		{"auto_stop_minutes", 30, 0, 525600, &c->auto_stop_min},
		{"auto_delete_minutes", 0, -1, 525600, &c->auto_delete_min},
		{"request_timeout_ms", 30000, 100, 3600000, &c->request_timeout_ms},
		{"create_timeout_ms", 120000, 100, 3600000, &c->create_timeout_ms},
		{"destroy_timeout_ms", 60000, 100, 3600000, &c->destroy_timeout_ms},
		{"exec_grace_ms", 5000, 0, 600000, &c->exec_grace_ms},
		{"retries", 2, 0, 10, &c->retries},
		{"retry_backoff_ms", 250, 0, 60000, &c->retry_backoff_ms},
		{"poll_initial_ms", 100, 10, 60000, &c->poll_initial_ms},
		{"poll_max_ms", 1000, 10, 60000, &c->poll_max_ms},
		{"max_output_bytes", 8 << 20, 1024, 64 << 20, &c->max_output_bytes},
	};
	size_t i;
	int rc, b;

	if ((rc = dt_cfg_str(be, "api_url", "DAYTONA_API_URL", DT_DEFAULT_API_URL, &c->api_url,
			     call)) ||
	    (rc = dt_cfg_str(be, "api_key", "DAYTONA_API_KEY", NULL, &c->api_key, call)) ||
	    (rc = dt_cfg_str(be, "target", "DAYTONA_TARGET", NULL, &c->target, call)) ||
	    (rc = dt_cfg_str(be, "snapshot", NULL, NULL, &c->snapshot, call)) ||
	    (rc = dt_cfg_str(be, "data_dir", NULL, DT_DATA_ROOT, &c->data_dir, call)) ||
	    (rc = dt_cfg_str(be, "name_prefix", NULL, "ci", &c->name_prefix, call)) ||
	    (rc = dt_cfg_str(be, "ca_file", NULL, NULL, &c->ca_file, call)))
		return rc;
	if (!c->target && (rc = dt_cfg_str(be, "region", NULL, NULL, &c->target, call)))
		return rc;
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		rc = dt_cfg_int(be, ints[i].key, ints[i].def, ints[i].min, ints[i].max, ints[i].out,
				call);
		if (rc)
			return rc;
	}
	rc = be->host->cfg_bool(be->host->hctx, "get_refuse_symlinks", &b);
	if (rc == CI_E_INVAL)
		return ci_fail(call, CI_E_INVAL,
			       "backends.daytona.get_refuse_symlinks must be a "
			       "boolean");
	c->get_refuse_symlinks = rc == CI_OK ? b : 1;

	if (!c->api_key)
		return ci_fail(call, CI_E_INVAL,
			       "no Daytona API key: set backends.daytona.api_key "
			       "or DAYTONA_API_KEY");
	if (strncmp(c->api_url, "http://", 7) && strncmp(c->api_url, "https://", 8))
		return ci_fail(call, CI_E_INVAL, "backends.daytona.api_url must be an http(s) URL");
	for (i = strlen(c->api_url); i > 8 && c->api_url[i - 1] == '/'; i--)
		c->api_url[i - 1] = '\0';
	if (c->data_dir[0] != '/' || strlen(c->data_dir) < 2 || strstr(c->data_dir, "/.") ||
	    c->data_dir[strlen(c->data_dir) - 1] == '/')
		return ci_fail(call, CI_E_INVAL,
			       "backends.daytona.data_dir must be an absolute "
			       "normalised path");
	for (i = 0; c->name_prefix[i]; i++) {
		char ch = c->name_prefix[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') || i > 20)
			return ci_fail(call, CI_E_INVAL,
				       "backends.daytona.name_prefix must be "
				       "1-20 of [a-z0-9-]");
	}
	if (c->poll_max_ms < c->poll_initial_ms)
		c->poll_max_ms = c->poll_initial_ms;
	if ((c->cpu || c->memory_gb || c->disk_gb) && !c->snapshot)
		be->host->log(be->host->hctx, CI_LOG_INFO,
			      "daytona: cpu/memory_gb/disk_gb apply to images.<runtime> only; "
			      "snapshots carry their own resources");
	return CI_OK;
}

/* GET /sandbox?limit=1: proves the URL and the key before we serve anything. */
static int dt_probe(ci_be *be, ci_call *call)
{
	struct dt_buf url = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "GET", .flags = DT_IDEMPOTENT, .max_resp = 4u << 20};
	json_t *root = NULL, *items;
	const char *cur;
	char msg[160];
	int rc;

	if (dt_buf_printf(&url, "%s/sandbox?limit=1", be->conf.api_url))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	req.url = url.data;
	rc = dt_http(be, &req, &resp, call);
	if (rc) {
		char why[CI_ERR_MAX];

		memcpy(why, call->err, sizeof(why));
		ci_fail(call, rc, "cannot reach Daytona at %s: %s", be->conf.api_url, why);
		goto out;
	}
	dt_err_message(&resp, msg, sizeof(msg));
	if (resp.status == 401 || resp.status == 403) {
		rc = ci_fail(call, CI_E_INVAL,
			     "Daytona at %s rejected the API key (HTTP %d%s%s): check "
			     "backends.daytona.api_key or DAYTONA_API_KEY",
			     be->conf.api_url, resp.status, msg[0] ? " " : "", msg);
		goto out;
	}
	if (resp.status != 200) {
		rc = ci_fail(call, resp.status >= 500 ? CI_E_UNAVAIL : CI_E_BACKEND,
			     "Daytona at %s answered HTTP %d to GET /sandbox%s%s", be->conf.api_url,
			     resp.status, msg[0] ? ": " : "", msg);
		goto out;
	}
	root = dt_json(&resp);
	if (!root || dt_parse_list(root, &items, &cur))
		rc = ci_fail(call, CI_E_BACKEND,
			     "%s/sandbox did not answer like a Daytona API (check api_url)",
			     be->conf.api_url);
out:
	json_decref(root);
	dt_resp_free(&resp);
	dt_buf_free(&url);
	return rc;
}

static void dt_fini(ci_be *be)
{
	const ci_host *h;

	if (!be)
		return;
	h = be->host;
	while (be->tbx) {
		struct dt_tbx_entry *e = be->tbx;

		be->tbx = e->next;
		free(e->base);
		free(e);
	}
	pthread_mutex_destroy(&be->lock);
	dt_conf_release(&be->conf);
	h->mem_free(h->hctx, be);
}

static int dt_init(const ci_host *host, ci_be **out, ci_call *call)
{
	ci_be *be;
	int rc;

	*out = NULL;
	if (!CI_HOST_HAS(host, http) || !CI_HOST_HAS(host, wall_unix))
		return ci_fail(call, CI_E_UNSUPPORTED, "daytona needs the host's http service");
	be = host->mem_alloc(host->hctx, sizeof(*be));
	if (!be)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	memset(be, 0, sizeof(*be));
	be->host = host;
	pthread_mutex_init(&be->lock, NULL);
	rc = dt_conf_load(be, call);
	if (!rc)
		rc = dt_probe(be, call);
	if (rc) {
		dt_fini(be);
		return rc;
	}
	host->log(host->hctx, CI_LOG_INFO, "daytona: api %s, data_dir %s, auto-stop %lld min",
		  be->conf.api_url, be->conf.data_dir, (long long)be->conf.auto_stop_min);
	*out = be;
	return CI_OK;
}

static const ci_backend dt_backend = {
	.abi_version = CI_ABI_VERSION,
	.struct_size = sizeof(ci_backend),
	.name = "daytona",
	.version = CI_BACKEND_VERSION,
	.caps = CI_CAP_STDIN | CI_CAP_NETWORK,
	.init = dt_init,
	.fini = dt_fini,
	.create = dt_create,
	.exec = dt_exec,
	.put = dt_put,
	.get = dt_get,
	.list = dt_list,
	.destroy = dt_destroy,
	.sweep = dt_sweep,
};

CI_EXPORT ci_entry_fn ci_backend_v1;

const ci_backend *ci_backend_v1(uint32_t host_abi_version)
{
	if (host_abi_version >> 16 != CI_ABI_MAJOR)
		return NULL;
	return &dt_backend;
}
