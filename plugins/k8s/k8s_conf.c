/*
 * backends.k8s.* and the bearer token.
 *
 * In a cluster (KUBERNETES_SERVICE_HOST set) everything has a default: the
 * API server from the environment, the namespace, token and CA from the
 * service account mount. The token file is re-read every token_reload_s
 * (projected tokens expire and the kubelet rotates them; client-go reloads
 * about every minute) and at once after a 401.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ci/backend_util.h"
#include "k8s.h"

#define TOKEN_MAX 16384

static int str_def(const ci_host *h, const char *key, const char *def, char **out, ci_call *call)
{
	const char *v = NULL;
	int rc = h->cfg_str(h->hctx, key, &v);

	if (rc == CI_E_INVAL)
		return ci_fail(call, CI_E_INVAL, "backends.k8s.%s must be a string", key);
	if (rc != CI_OK)
		v = def;
	*out = v ? strdup(v) : NULL;
	if (v && !*out)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	return CI_OK;
}

static int int_def(const ci_host *h, const char *key, int64_t def, int64_t min, int64_t max,
		   int64_t *out, ci_call *call)
{
	int rc = h->cfg_int(h->hctx, key, out);

	if (rc == CI_E_INVAL)
		return ci_fail(call, CI_E_INVAL, "backends.k8s.%s must be an integer", key);
	if (rc != CI_OK)
		*out = def;
	if (*out < min || *out > max)
		return ci_fail(call, CI_E_INVAL, "backends.k8s.%s = %lld is outside %lld..%lld",
			       key, (long long)*out, (long long)min, (long long)max);
	return CI_OK;
}

/* Whole small file, trailing whitespace cut; NULL when unreadable. */
static char *slurp(const char *path, size_t max, int *err)
{
	char *b = malloc(max + 1);
	size_t n = 0;
	ssize_t r;
	int fd;

	*err = 0;
	if (!b) {
		*err = ENOMEM;
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err = errno;
		free(b);
		return NULL;
	}
	while (n < max && (r = read(fd, b + n, max - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = errno;
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	if (*err || n == max) {
		*err = *err ? *err : EFBIG;
		free(b);
		return NULL;
	}
	while (n && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' ' || b[n - 1] == '\t'))
		n--;
	b[n] = '\0';
	return b;
}

void k8s_kv_free(struct k8s_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static bool key_ok(const char *k, size_t n)
{
	const char *slash = memchr(k, '/', n);
	size_t name = slash ? n - (size_t)(slash - k) - 1 : n;

	if (!n || name == 0 || name > 63 || (slash && (slash == k || slash - k > 253)))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '/'))
			return false;
	}
	return true;
}

int k8s_kv_parse(const char *s, char sep, bool label, struct k8s_kv **out, size_t *n, char *err,
		 size_t errlen)
{
	struct k8s_kv *kv = NULL, *t;
	size_t cnt = 0;
	const char *p = s, *end, *eq;

	*out = NULL;
	*n = 0;
	while (p && *p) {
		end = strchr(p, sep);
		if (!end)
			end = p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end) {
			p = *end ? end + 1 : end;
			continue;
		}
		eq = memchr(p, '=', (size_t)(end - p));
		if (!eq || !key_ok(p, (size_t)(eq - p))) {
			snprintf(err, errlen, "bad entry '%.*s' (want key=value)", (int)(end - p),
				 p);
			goto fail;
		}
		t = realloc(kv, (cnt + 1) * sizeof(*kv));
		if (!t) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		kv = t;
		kv[cnt].key = strndup(p, (size_t)(eq - p));
		kv[cnt].value = strndup(eq + 1, (size_t)(end - eq - 1));
		cnt++;
		if (!kv[cnt - 1].key || !kv[cnt - 1].value) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (label && !k8s_label_value_ok(kv[cnt - 1].value)) {
			snprintf(err, errlen, "label %s: '%s' is not a valid label value",
				 kv[cnt - 1].key, kv[cnt - 1].value);
			goto fail;
		}
		if (!strncmp(kv[cnt - 1].key, K8S_LABEL_PREFIX, sizeof(K8S_LABEL_PREFIX) - 1)) {
			snprintf(err, errlen,
				 "%s: keys starting with '" K8S_LABEL_PREFIX
				 "' are the backend's own",
				 kv[cnt - 1].key);
			goto fail;
		}
		p = *end ? end + 1 : end;
	}
	*out = kv;
	*n = cnt;
	return CI_OK;
fail:
	k8s_kv_free(kv, cnt);
	return CI_E_INVAL;
}

static bool image_fmt_ok(const char *f)
{
	const char *p = strchr(f, '%');

	return p && p[1] == 's' && !strchr(p + 2, '%');
}

static int read_strings(struct ci_be *be, bool in_cluster, ci_call *call)
{
	const ci_host *h = be->host;
	struct k8s_conf *c = &be->conf;
	char url[300] = "", *sa_ns = NULL;
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port;
	int rc = 0, e;

	if (in_cluster) {
		port = getenv("KUBERNETES_SERVICE_PORT");
		snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
			 host, port && *port ? port : "443");
		sa_ns = slurp(K8S_SA_DIR "/namespace", 256, &e);
	}
	rc |= str_def(h, "url", url[0] ? url : NULL, &c->url, call);
	rc |= str_def(h, "namespace", sa_ns ? sa_ns : "default", &c->ns, call);
	free(sa_ns);
	rc |= str_def(h, "token", NULL, &c->token, call);
	rc |= str_def(h, "token_file", !c->token && in_cluster ? K8S_SA_DIR "/token" : NULL,
		      &c->token_file, call);
	rc |= str_def(h, "ca_file",
		      in_cluster && access(K8S_SA_DIR "/ca.crt", R_OK) == 0 ? K8S_SA_DIR "/ca.crt"
									    : NULL,
		      &c->ca_file, call);
	rc |= str_def(h, "image_format", "ci-sandbox-%s", &c->image_fmt, call);
	rc |= str_def(h, "image_prefix", "", &c->image_prefix, call);
	rc |= str_def(h, "image_pull_policy", "IfNotPresent", &c->pull_policy, call);
	rc |= str_def(h, "runtime_class", NULL, &c->runtime_class, call);
	rc |= str_def(h, "data_medium", "", &c->data_medium, call);
	return rc ? (call->err[0] ? CI_E_INVAL : CI_E_NOMEM) : CI_OK;
}

static int read_ints(struct ci_be *be, ci_call *call)
{
	const ci_host *h = be->host;
	struct k8s_conf *c = &be->conf;
	int64_t v;
	int rc;

#define INT(key, def, min, max, dst)                                          \
	do {                                                                  \
		if ((rc = int_def(h, key, def, min, max, &v, call)) != CI_OK) \
			return rc;                                            \
		dst;                                                          \
	} while (0)
	INT("token_reload_s", 60, 1, 86400, c->token_reload_s = v);
	INT("run_as_user", 1000, 1, 2147483647, c->uid = v);
	INT("run_as_group", 1000, 1, 2147483647, c->gid = v);
	INT("memory_mb", 512, 16, 1 << 20, c->mem_bytes = v << 20);
	INT("memory_request_mb", 128, 1, 1 << 20, c->mem_request_bytes = v << 20);
	INT("cpu_millis", 1000, 10, 1 << 20, c->cpu_millis = v);
	INT("cpu_request_millis", 100, 1, 1 << 20, c->cpu_request_millis = v);
	INT("disk_mb", 256, 1, 1 << 20, c->disk_bytes = v << 20);
	INT("tmp_mb", 64, 1, 1 << 20, c->tmp_bytes = v << 20);
	INT("active_deadline_s", 86400, 60, 30 * 86400, c->active_deadline_s = v);
	INT("start_timeout_ms", 120000, 1000, 3600000, c->start_timeout_ms = v);
	INT("exec_grace_ms", 2000, 100, 600000, c->exec_grace_ms = v);
#undef INT
	if (c->mem_request_bytes > c->mem_bytes || c->cpu_request_millis > c->cpu_millis)
		return ci_fail(
			call, CI_E_INVAL,
			"backends.k8s: a request is larger than its limit (memory_request_mb "
			"> memory_mb or cpu_request_millis > cpu_millis)");
	return CI_OK;
}

static int read_maps(struct ci_be *be, ci_call *call)
{
	const ci_host *h = be->host;
	struct k8s_conf *c = &be->conf;
	const char *s = NULL;
	char err[160];

	if (h->cfg_str(h->hctx, "pod_labels", &s) == CI_OK &&
	    k8s_kv_parse(s, ',', true, &c->labels, &c->n_labels, err, sizeof(err)))
		return ci_fail(call, CI_E_INVAL, "backends.k8s.pod_labels: %s", err);
	s = NULL;
	if (h->cfg_str(h->hctx, "pod_annotations", &s) == CI_OK &&
	    k8s_kv_parse(s, '\n', false, &c->annotations, &c->n_annotations, err, sizeof(err)))
		return ci_fail(call, CI_E_INVAL, "backends.k8s.pod_annotations: %s", err);
	return CI_OK;
}

int k8s_conf_read(struct ci_be *be, ci_call *call)
{
	struct k8s_conf *c = &be->conf;
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	bool in_cluster = host && *host;
	size_t n;
	int rc;

	if ((rc = read_strings(be, in_cluster, call)) || (rc = read_ints(be, call)) ||
	    (rc = read_maps(be, call)))
		return rc;
	if (!c->url)
		return ci_fail(call, CI_E_INVAL,
			       "backends.k8s.url is not set and this is not a pod "
			       "(KUBERNETES_SERVICE_HOST is unset)");
	if (strncmp(c->url, "https://", 8) && strncmp(c->url, "http://", 7))
		return ci_fail(call, CI_E_INVAL, "backends.k8s.url must start with https://");
	n = strlen(c->url);
	while (n > 8 && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	if (!k8s_name_ok(c->ns))
		return ci_fail(call, CI_E_INVAL, "backends.k8s.namespace '%s' is not a DNS label",
			       c->ns);
	if (!c->token && !c->token_file)
		return ci_fail(call, CI_E_INVAL,
			       "backends.k8s: set token or token_file (no service account here)");
	if (!image_fmt_ok(c->image_fmt))
		return ci_fail(call, CI_E_INVAL,
			       "backends.k8s.image_format must hold exactly one %%s");
	if (strcmp(c->pull_policy, "IfNotPresent") && strcmp(c->pull_policy, "Always") &&
	    strcmp(c->pull_policy, "Never"))
		return ci_fail(
			call, CI_E_INVAL,
			"backends.k8s.image_pull_policy must be IfNotPresent, Always or Never");
	if (c->data_medium[0] && strcmp(c->data_medium, "Memory"))
		return ci_fail(call, CI_E_INVAL, "backends.k8s.data_medium must be \"\" or Memory");
	if (c->runtime_class && !k8s_name_ok(c->runtime_class))
		return ci_fail(call, CI_E_INVAL,
			       "backends.k8s.runtime_class '%s' is not a DNS label",
			       c->runtime_class);
	if (c->ca_file && access(c->ca_file, R_OK))
		return ci_fail(call, CI_E_INVAL, "backends.k8s.ca_file %s: %s", c->ca_file,
			       strerror(errno));
	return CI_OK;
}

void k8s_conf_release(struct k8s_conf *c)
{
	free(c->url);
	free(c->ns);
	free(c->ca_file);
	free(c->token);
	free(c->token_file);
	free(c->image_fmt);
	free(c->image_prefix);
	free(c->pull_policy);
	free(c->runtime_class);
	free(c->data_medium);
	k8s_kv_free(c->labels, c->n_labels);
	k8s_kv_free(c->annotations, c->n_annotations);
	memset(c, 0, sizeof(*c));
}

int k8s_token(struct ci_be *be, char *buf, size_t cap, ci_call *call)
{
	const struct k8s_conf *c = &be->conf;
	int64_t now = be->host->now_ms(be->host->hctx);
	char *fresh = NULL;
	int e = 0, rc = CI_OK;

	if (c->token) {
		if (strlen(c->token) >= cap)
			return ci_fail(call, CI_E_INVAL, "backends.k8s.token is too long");
		snprintf(buf, cap, "%s", c->token);
		return CI_OK;
	}
	pthread_mutex_lock(&be->lock);
	if (!be->token || now - be->token_at >= c->token_reload_s * 1000) {
		fresh = slurp(c->token_file, TOKEN_MAX, &e);
		if (fresh && *fresh) {
			free(be->token);
			be->token = fresh;
			be->token_at = now;
		} else {
			free(fresh);
			/* Keep serving the last good token while the file is being
			 * rotated; with none at all the call cannot go. */
			if (be->token)
				be->host->log(be->host->hctx, CI_LOG_WARN,
					      "k8s: cannot re-read token_file %s: %s",
					      c->token_file, e ? strerror(e) : "empty");
		}
	}
	if (!be->token)
		rc = ci_fail(call, CI_E_INVAL, "k8s: cannot read token_file %s: %s", c->token_file,
			     e ? strerror(e) : "empty");
	else if (strlen(be->token) >= cap)
		rc = ci_fail(call, CI_E_INVAL, "k8s: token in %s is too long", c->token_file);
	else
		snprintf(buf, cap, "%s", be->token);
	pthread_mutex_unlock(&be->lock);
	return rc;
}

void k8s_token_stale(struct ci_be *be)
{
	pthread_mutex_lock(&be->lock);
	be->token_at = INT64_MIN / 2;
	pthread_mutex_unlock(&be->lock);
}
