/*
 * Test host for the Daytona plugin: see dt_test_host.h.
 */
#include "dt_test_host.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

int64_t th_wall_offset;
int th_warnings;
static const struct th_cfg *th_table;

static void th_log(void *hctx, int level, const char *fmt, ...)
{
	va_list ap;

	(void)hctx;
	if (level <= CI_LOG_WARN)
		th_warnings++;
	if (!getenv("DT_TEST_VERBOSE") && level > CI_LOG_WARN)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "[plugin %d] ", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const struct th_cfg *th_find(const char *key)
{
	const struct th_cfg *c;

	for (c = th_table; c && c->key; c++)
		if (!strcmp(c->key, key))
			return c;
	return NULL;
}

static int th_cfg_str(void *hctx, const char *key, const char **out)
{
	const struct th_cfg *c = th_find(key);

	(void)hctx;
	if (!c)
		return CI_E_NOTFOUND;
	if (c->type != 's')
		return CI_E_INVAL;
	*out = c->s;
	return CI_OK;
}

static int th_cfg_int(void *hctx, const char *key, int64_t *out)
{
	const struct th_cfg *c = th_find(key);

	(void)hctx;
	if (!c)
		return CI_E_NOTFOUND;
	if (c->type != 'i')
		return CI_E_INVAL;
	*out = c->i;
	return CI_OK;
}

static int th_cfg_bool(void *hctx, const char *key, int *out)
{
	const struct th_cfg *c = th_find(key);

	(void)hctx;
	if (!c)
		return CI_E_NOTFOUND;
	if (c->type != 'b')
		return CI_E_INVAL;
	*out = (int)c->i;
	return CI_OK;
}

/*
 * Plain malloc: tests re-initialise the plugin inside a test body, which
 * cmocka's per-test block accounting cannot follow; leaks are LeakSanitizer's
 * job in the CI_SANITIZE build.
 */
static void *th_alloc(void *hctx, size_t n)
{
	(void)hctx;
	return malloc(n);
}

static void th_free(void *hctx, void *p)
{
	(void)hctx;
	free(p);
}

static int64_t th_now_ms(void *hctx)
{
	struct timespec ts;

	(void)hctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t th_wall(void *hctx)
{
	(void)hctx;
	return (int64_t)time(NULL) + th_wall_offset;
}

struct th_xfer {
	const ci_sink *sink;
	const ci_source *src;
	int stopped;
};

static size_t th_write(char *p, size_t size, size_t n, void *ctx)
{
	struct th_xfer *x = ctx;

	if (x->sink && x->sink->write(x->sink->ctx, CI_STREAM_DATA, p, size * n)) {
		x->stopped = 1;
		return 0;
	}
	return size * n;
}

static size_t th_read(char *p, size_t size, size_t n, void *ctx)
{
	struct th_xfer *x = ctx;
	ssize_t r = x->src->read(x->src->ctx, p, size * n);

	return r < 0 ? CURL_READFUNC_ABORT : (size_t)r;
}

static int th_http(void *hctx, const ci_http_req *req, int *status, const ci_sink *body,
		   ci_call *call)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct th_xfer x = {body, req->body_src, 0};
	char auth[512];
	int64_t left = call->deadline_ms - th_now_ms(hctx);
	const char *const *h;
	long code = 0;
	CURLcode cc;
	int rc = CI_OK;

	*status = 0;
	if (left <= 0) {
		curl_easy_cleanup(c);
		snprintf(call->err, sizeof(call->err), "deadline passed");
		return CI_E_TIMEOUT;
	}
	for (h = req->headers; h && *h; h++)
		hl = curl_slist_append(hl, *h);
	if (req->bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", req->bearer);
		hl = curl_slist_append(hl, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	if (req->body_src) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, th_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &x);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_src->size);
	} else if (req->body || !strcmp(req->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	if (strcmp(req->method, "GET") && strcmp(req->method, "POST"))
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	*status = (int)code;
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		rc = CI_E_TIMEOUT;
	} else if (cc == CURLE_WRITE_ERROR && x.stopped) {
		rc = CI_OK;
	} else if (cc != CURLE_OK) {
		rc = CI_E_UNAVAIL;
	}
	if (rc)
		snprintf(call->err, sizeof(call->err), "%s %s: %s", req->method, req->url,
			 curl_easy_strerror(cc));
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return rc;
}

void th_host(ci_host *h, const struct th_cfg *cfg)
{
	memset(h, 0, sizeof(*h));
	th_table = cfg;
	h->struct_size = sizeof(*h);
	h->abi_version = CI_ABI_VERSION;
	h->log = th_log;
	h->cfg_str = th_cfg_str;
	h->cfg_int = th_cfg_int;
	h->cfg_bool = th_cfg_bool;
	h->mem_alloc = th_alloc;
	h->mem_free = th_free;
	h->now_ms = th_now_ms;
	h->wall_unix = th_wall;
	h->http = th_http;
}

void th_call(const ci_host *h, ci_call *c, int64_t ms)
{
	memset(c, 0, sizeof(*c));
	c->struct_size = sizeof(*c);
	c->request_id = "test";
	c->deadline_ms = h->now_ms(h->hctx) + ms;
}

const char *th_api_url(void)
{
	static char url[256];
	const char *dir = getenv("DT_FAKE_DIR");
	char path[512];
	FILE *f;

	if (url[0])
		return url;
	if (!dir)
		return NULL;
	snprintf(path, sizeof(path), "%s/api_url", dir);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	if (!fgets(url, sizeof(url), f))
		url[0] = '\0';
	fclose(f);
	url[strcspn(url, "\n")] = '\0';
	return url[0] ? url : NULL;
}

struct th_mem {
	char *p;
	size_t n;
};

static size_t th_mem_write(char *p, size_t size, size_t n, void *ctx)
{
	struct th_mem *m = ctx;
	char *q = realloc(m->p, m->n + size * n + 1);

	if (!q)
		return 0;
	memcpy(q + m->n, p, size * n);
	m->n += size * n;
	q[m->n] = '\0';
	m->p = q;
	return size * n;
}

int th_request(const char *method, const char *url, const char *bearer, const char *json,
	       char **out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	struct th_mem m = {0};
	char auth[256];
	long code = 0;

	if (bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
		hl = curl_slist_append(hl, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_mem_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
	if (json)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	if (out)
		*out = m.p ? m.p : strdup("");
	else
		free(m.p);
	return (int)code;
}

int th_ctl(const char *method, const char *path, const char *json, char **out)
{
	char url[512];
	const char *api = th_api_url();
	size_t n;

	if (!api)
		return -1;
	n = strlen(api) - 4; /* strip "/api" */
	snprintf(url, sizeof(url), "%.*s%s", (int)n, api, path);
	return th_request(method, url, NULL, json, out);
}
