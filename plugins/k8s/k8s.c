/*
 * ci-backend-k8s: the descriptor, init (configuration, the host services it
 * needs, a probe of the API server) and the glue from the ABI operations to
 * the pod, exec and file code.
 *
 * init fails on what only an operator can fix -- bad configuration, a
 * token the API server rejects (401), missing RBAC (403), an unknown
 * namespace -- and only warns when the API server cannot be reached (it may
 * come up later; calls say CI_E_UNAVAIL until then).
 */
#include "k8s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"

#define PROBE_MS  5000
#define TOKEN_CAP 16384

static void be_free(ci_be *be)
{
	if (!be)
		return;
	k8s_conf_release(&be->conf);
	if (be->token)
		memset(be->token, 0, strlen(be->token));
	free(be->token);
	pthread_mutex_destroy(&be->lock);
	free(be);
}

/* GET pods?limit=1 in the namespace: proves the URL, CA, token and RBAC. */
static int probe(struct ci_be *be, ci_call *call)
{
	struct k8s_resp resp = {0};
	struct k8s_buf path = {0};
	ci_call sub = *call;
	char msg[CI_ERR_MAX], reason[64];
	int rc;

	sub.deadline_ms = be->host->now_ms(be->host->hctx) + PROBE_MS;
	if (sub.deadline_ms > call->deadline_ms && call->deadline_ms > 0)
		sub.deadline_ms = call->deadline_ms;
	k8s_buf_printf(&path, "/api/v1/namespaces/%s/pods?limit=1", be->conf.ns);
	rc = k8s_call(be, &(struct k8s_req){.method = "GET", .path = k8s_buf_str(&path)}, &resp,
		      &sub);
	if (rc != CI_OK) {
		if (rc == CI_E_INVAL || rc == CI_E_NOMEM) {
			ci_fail(call, rc, "k8s: %s", sub.err);
		} else {
			be->host->log(be->host->hctx, CI_LOG_WARN,
				      "k8s: API server not reachable yet: %s", sub.err);
			rc = CI_OK;
		}
		goto out;
	}
	k8s_status_text(k8s_buf_str(&resp.body), resp.body.len, msg, sizeof(msg), reason,
			sizeof(reason));
	switch (resp.status) {
	case 200:
		break;
	case 401:
		rc = ci_fail(call, CI_E_INVAL,
			     "k8s: the API server at %s rejected the token (401 Unauthorized): "
			     "check backends.k8s.token / token_file",
			     be->conf.url);
		break;
	case 403:
		rc = ci_fail(call, CI_E_INVAL,
			     "k8s: not allowed to list pods in namespace %s (403 Forbidden): %s; "
			     "bind the Role of docs/k8s.md",
			     be->conf.ns, msg);
		break;
	case 404:
		rc = ci_fail(call, CI_E_INVAL,
			     "k8s: namespace %s or the pods API not found at %s: %s", be->conf.ns,
			     be->conf.url, msg);
		break;
	default:
		be->host->log(be->host->hctx, CI_LOG_WARN, "k8s: probe answered HTTP %d: %s",
			      resp.status, msg);
	}
out:
	k8s_buf_release(&path);
	k8s_resp_release(&resp);
	return rc;
}

static int k8s_init(const ci_host *host, ci_be **out, ci_call *call)
{
	struct ci_be *be;
	int rc;

	*out = NULL;
	if (!CI_HOST_HAS(host, http) || !CI_HOST_HAS(host, cfg_bool))
		return ci_fail(call, CI_E_UNSUPPORTED, "k8s: the host lacks the http service");
	if (!CI_HOST_HAS(host, http_connect))
		return ci_fail(call, CI_E_UNSUPPORTED,
			       "k8s: the host lacks http_connect (ABI 1.1), needed for pods/exec "
			       "over WebSocket: upgrade ci-server");
	be = calloc(1, sizeof(*be));
	if (!be)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	be->host = host;
	pthread_mutex_init(&be->lock, NULL);
	rc = k8s_conf_read(be, call);
	if (rc == CI_OK && !be->conf.token) {
		/* An unreadable token file is a configuration error now. */
		char *tok = malloc(TOKEN_CAP);

		rc = tok ? k8s_token(be, tok, TOKEN_CAP, call)
			 : ci_fail(call, CI_E_NOMEM, "no memory");
		if (tok)
			memset(tok, 0, TOKEN_CAP);
		free(tok);
	}
	if (rc == CI_OK)
		rc = probe(be, call);
	if (rc != CI_OK) {
		be_free(be);
		return rc;
	}
	host->log(host->hctx, CI_LOG_INFO, "k8s: API server %s, namespace %s, pods run as %lld",
		  be->conf.url, be->conf.ns, (long long)be->conf.uid);
	*out = be;
	return CI_OK;
}

static void k8s_fini(ci_be *be)
{
	be_free(be);
}

static int k8s_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call)
{
	id[0] = '\0';
	if (!spec)
		return ci_fail(call, CI_E_INVAL, "create: no spec");
	return k8s_pod_create(be, spec, id, call);
}

static int k8s_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
		    ci_call *call)
{
	struct k8s_exec x = {0};
	struct k8s_exec_res r;
	struct k8s_mem m;
	ci_source in;
	int rc;

	if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
		return ci_fail(call, CI_E_INVAL, "exec: empty argv");
	if (spec->cwd && spec->cwd[0] != '/')
		return ci_fail(call, CI_E_INVAL, "exec: cwd must be absolute");
	for (const char *const *e = spec->env; e && *e; e++)
		if (!strchr(*e, '=') || **e == '=')
			return ci_fail(call, CI_E_INVAL, "exec: env entry '%.40s' is not KEY=VALUE",
				       *e);
	rc = k8s_pod_usable(be, id, call);
	if (rc != CI_OK)
		return rc;
	x.argv = spec->argv;
	x.env = spec->env;
	x.cwd = spec->cwd;
	x.timeout_ms = spec->timeout_ms;
	x.out = spec->out;
	if (spec->stdin_buf && spec->stdin_len) {
		/* `head -c N` in the pod: the program sees EOF on v4 servers too. */
		m = (struct k8s_mem){spec->stdin_buf, spec->stdin_len};
		in = (ci_source){
			.read = k8s_mem_read, .ctx = &m, .size = (int64_t)m.left, .fd = -1};
		x.in = &in;
		x.stdin_kind = K8S_STDIN_COUNTED;
	}
	rc = k8s_exec_run(be, id, &x, &r, call);
	if (rc == CI_OK) {
		k8s_status_to_result(r.status, r.timed_out, res);
		res->wall_ms = r.wall_ms;
	}
	return rc;
}

static int k8s_put_op(ci_be *be, const char *id, const char *path, const ci_source *src,
		      uint32_t mode, ci_call *call)
{
	return k8s_put(be, id, path, src, mode, call);
}

static int k8s_get_op(ci_be *be, const char *id, const char *path, const ci_sink *out,
		      ci_call *call)
{
	if (!out || !out->write)
		return ci_fail(call, CI_E_INVAL, "get: no sink");
	return k8s_get(be, id, path, out, call);
}

static int k8s_list_op(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
		       ci_call *call)
{
	if (!cb)
		return ci_fail(call, CI_E_INVAL, "list: no callback");
	return k8s_list(be, id, dir, cb, ctx, call);
}

static int k8s_destroy(ci_be *be, const char *id, ci_call *call)
{
	enum k8s_pod_state st;
	char why[CI_ERR_MAX];
	int rc = k8s_pod_fetch(be, id, &st, why, sizeof(why), call);

	/* A pod already terminating counts as gone (a second destroy). */
	if (rc == CI_OK && st == K8S_POD_GONE)
		rc = ci_fail(call, CI_E_NOTFOUND, "no such sandbox %s (%s)", id, why);
	return rc != CI_OK ? rc : k8s_pod_delete(be, id, call);
}

static int k8s_sweep(ci_be *be, const char *owner, int64_t older_than_unix, unsigned *n_removed,
		     ci_call *call)
{
	*n_removed = 0;
	if (!owner || !owner[0])
		return ci_fail(call, CI_E_INVAL, "sweep: owner label required");
	return k8s_pod_sweep(be, owner, older_than_unix, n_removed, call);
}

static const ci_backend k8s_backend = {
	.abi_version = CI_ABI_VERSION,
	.struct_size = sizeof(ci_backend),
	.name = "k8s",
	.version = CI_BACKEND_VERSION,
	.caps = CI_CAP_STDIN,
	.init = k8s_init,
	.fini = k8s_fini,
	.create = k8s_create,
	.exec = k8s_exec,
	.put = k8s_put_op,
	.get = k8s_get_op,
	.list = k8s_list_op,
	.destroy = k8s_destroy,
	.sweep = k8s_sweep,
};

CI_EXPORT ci_entry_fn ci_backend_v1;

const ci_backend *ci_backend_v1(uint32_t host_abi_version)
{
	if (host_abi_version >> 16 != CI_ABI_MAJOR)
		return NULL;
	return &k8s_backend;
}
