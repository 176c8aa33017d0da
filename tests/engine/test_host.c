/* See test_host.h. */
#include "test_host.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct th_host *of(void *hctx)
{
	return hctx;
}

static void th_log(void *hctx, int level, const char *fmt, ...)
{
	struct th_host *th = of(hctx);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(th->last_log, sizeof(th->last_log), fmt, ap);
	va_end(ap);
	if (th->verbose || level == CI_LOG_ERROR)
		fprintf(stderr, "[host log %d] %s\n", level, th->last_log);
}

static const char *cfg_find(struct th_host *th, const char *key)
{
	size_t n = strlen(key);

	for (const char *const *c = th->cfg; c && *c; c++)
		if (strncmp(*c, key, n) == 0 && (*c)[n] == '=')
			return *c + n + 1;
	return NULL;
}

static int th_cfg_str(void *hctx, const char *key, const char **out)
{
	const char *v = cfg_find(of(hctx), key);

	if (!v)
		return CI_E_NOTFOUND;
	*out = v;
	return CI_OK;
}

static int th_cfg_int(void *hctx, const char *key, int64_t *out)
{
	const char *v = cfg_find(of(hctx), key);
	char *end;

	if (!v)
		return CI_E_NOTFOUND;
	*out = strtoll(v, &end, 10);
	return *end ? CI_E_INVAL : CI_OK;
}

static int th_cfg_bool(void *hctx, const char *key, int *out)
{
	const char *v = cfg_find(of(hctx), key);

	if (!v)
		return CI_E_NOTFOUND;
	if (strcmp(v, "true") && strcmp(v, "false"))
		return CI_E_INVAL;
	*out = strcmp(v, "true") == 0;
	return CI_OK;
}

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
	struct th_host *th = of(hctx);
	struct timespec ts;

	if (!th->live) {
		th->clock_ms += th->clock_step;
		return th->clock_ms;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t th_wall(void *hctx)
{
	(void)hctx;
	return (int64_t)time(NULL);
}

/* ---- scripted http ---- */
static void drain_body(struct th_step *st, const ci_http_req *req)
{
	char buf[4096];
	ssize_t n;

	if (req->body) {
		st->req_body = malloc(req->body_len + 1);
		memcpy(st->req_body, req->body, req->body_len);
		st->req_len = req->body_len;
		st->req_body[st->req_len] = '\0';
		return;
	}
	if (!req->body_src)
		return;
	while ((n = req->body_src->read(req->body_src->ctx, buf, sizeof(buf))) > 0) {
		st->req_body = realloc(st->req_body, st->req_len + (size_t)n + 1);
		memcpy(st->req_body + st->req_len, buf, (size_t)n);
		st->req_len += (size_t)n;
		st->req_body[st->req_len] = '\0';
	}
}

static int scripted_http(struct th_host *th, const ci_http_req *req, int *status,
			 const ci_sink *body, ci_call *call)
{
	struct th_step *st;
	const char *p;
	size_t len, off, n;

	if (th->next >= th->n_steps) {
		snprintf(call->err, sizeof(call->err), "unexpected request %s %s", req->method,
			 req->url);
		fprintf(stderr, "test host: %s\n", call->err);
		th->unexpected++;
		return CI_E_INTERNAL;
	}
	st = &th->steps[th->next++];
	snprintf(st->url, sizeof(st->url), "%s", req->url);
	if (strcmp(st->method, req->method) || !strstr(req->url, st->url_part)) {
		snprintf(call->err, sizeof(call->err), "expected %s *%s*, got %s %s", st->method,
			 st->url_part, req->method, req->url);
		fprintf(stderr, "test host: %s\n", call->err);
		th->unexpected++;
		return CI_E_INTERNAL;
	}
	drain_body(st, req);
	if (st->rc != CI_OK) {
		snprintf(call->err, sizeof(call->err), "scripted failure");
		return st->rc;
	}
	*status = st->status;
	p = st->body;
	len = st->body_len ? st->body_len : (p ? strlen(p) : 0);
	for (off = 0; off < len; off += n) {
		n = len - off < th->chunk ? len - off : th->chunk;
		if (body->write(body->ctx, CI_STREAM_DATA, p + off, n))
			break;
	}
	return CI_OK;
}

/* ---- live http (libcurl) ---- */
struct live_io {
	const ci_sink *sink;
	const ci_source *src;
	bool stopped;
};

static size_t live_write(char *p, size_t sz, size_t nm, void *ud)
{
	struct live_io *io = ud;

	if (io->sink->write(io->sink->ctx, CI_STREAM_DATA, p, sz * nm)) {
		io->stopped = true;
		return 0;
	}
	return sz * nm;
}

static size_t live_read(char *p, size_t sz, size_t nm, void *ud)
{
	struct live_io *io = ud;
	ssize_t n = io->src->read(io->src->ctx, p, sz * nm);

	return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

/* One libcurl handle per thread, reused like the core's handle pool. */
static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *c)
{
	curl_easy_cleanup(c);
}

static void handle_init(void)
{
	pthread_key_create(&handle_key, handle_free);
}

static CURL *handle_get(void)
{
	CURL *c;

	pthread_once(&handle_once, handle_init);
	c = pthread_getspecific(handle_key);
	pthread_setspecific(handle_key, NULL);
	return c ? c : curl_easy_init();
}

static int live_http(struct th_host *th, const ci_http_req *req, int *status, const ci_sink *body,
		     ci_call *call)
{
	struct live_io io = {body, req->body_src, false};
	struct curl_slist *hl = NULL;
	CURL *c = handle_get();
	int64_t left = call->deadline_ms - th_now_ms(th);
	long code = 0;
	CURLcode cr;
	int rc = CI_OK;

	curl_easy_reset(c);
	if (left <= 0) {
		snprintf(call->err, sizeof(call->err), "deadline passed");
		curl_easy_cleanup(c);
		return CI_E_TIMEOUT;
	}
	for (const char *const *h = req->headers; h && *h; h++)
		hl = curl_slist_append(hl, *h);
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	if (req->unix_socket)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, live_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &io);
	if (!strcmp(req->method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (req->body_src) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, live_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &io);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_src->size);
	} else if (req->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else if (!strcmp(req->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	*status = (int)code;
	if (cr == CURLE_COULDNT_CONNECT || cr == CURLE_COULDNT_RESOLVE_HOST) {
		rc = CI_E_UNAVAIL;
	} else if (cr == CURLE_OPERATION_TIMEDOUT) {
		rc = CI_E_TIMEOUT;
	} else if (cr == CURLE_WRITE_ERROR && io.stopped) {
		rc = CI_OK;
	} else if (cr != CURLE_OK) {
		rc = CI_E_UNAVAIL;
	}
	if (rc != CI_OK)
		snprintf(call->err, sizeof(call->err), "%s", curl_easy_strerror(cr));
	curl_slist_free_all(hl);
	pthread_setspecific(handle_key, c);
	return rc;
}

static int th_http(void *hctx, const ci_http_req *req, int *status, const ci_sink *body,
		   ci_call *call)
{
	struct th_host *th = of(hctx);

	*status = 0;
	return th->live ? live_http(th, req, status, body, call)
			: scripted_http(th, req, status, body, call);
}

void th_init(struct th_host *th, bool live, const char *const *cfg)
{
	memset(th, 0, sizeof(*th));
	th->host.struct_size = sizeof(ci_host);
	th->host.abi_version = CI_ABI_VERSION;
	th->host.hctx = th;
	th->host.log = th_log;
	th->host.cfg_str = th_cfg_str;
	th->host.cfg_int = th_cfg_int;
	th->host.cfg_bool = th_cfg_bool;
	th->host.mem_alloc = th_alloc;
	th->host.mem_free = th_free;
	th->host.now_ms = th_now_ms;
	th->host.wall_unix = th_wall;
	th->host.http = th_http;
	th->cfg = cfg;
	th->live = live;
	th->chunk = 3;
	th->clock_ms = 1000000;
	th->verbose = getenv("CI_TEST_VERBOSE") != NULL;
	if (live)
		curl_global_init(CURL_GLOBAL_DEFAULT);
}

void th_release(struct th_host *th)
{
	for (int i = 0; i < th->n_steps; i++)
		free(th->steps[i].req_body);
	th->n_steps = th->next = 0;
}

struct th_step *th_expect(struct th_host *th, const char *method, const char *url_part, int status,
			  const char *body)
{
	struct th_step *st = &th->steps[th->n_steps++];

	memset(st, 0, sizeof(*st));
	st->method = method;
	st->url_part = url_part;
	st->status = status;
	st->body = body;
	return st;
}

ci_call th_call(struct th_host *th, int64_t ms)
{
	ci_call c = {.struct_size = sizeof(ci_call), .request_id = "test"};

	c.deadline_ms = th_now_ms(th) + ms;
	return c;
}
