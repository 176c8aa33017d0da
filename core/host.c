#include "host.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ci/backend_util.h"
#include "conf.h"
#include "log.h"

struct ci_host_ctx {
	ci_host table; /* first: the table's hctx points back at us */
	char *name;
	const struct ci_conf *conf;
	atomic_size_t mem_in_use;
};

/* mem_alloc prefixes each block with its size so mem_free can account it. */
union mem_hdr {
	size_t size;
	max_align_t align;
};

int64_t ci_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ci_wall_unix(void)
{
	return (int64_t)time(NULL);
}

/* key=value logging: quote values holding spaces, quotes or '='. */
static const char *quote(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	if (*s && !strpbrk(s, " \"=\t\r\n"))
		return s;
	buf[n++] = '"';
	for (; *s && n + 3 < len; s++) {
		if (*s == '"' || *s == '\\')
			buf[n++] = '\\';
		buf[n++] = *s;
	}
	buf[n++] = '"';
	buf[n] = 0;
	return buf;
}

/*
 * A message whose first word looks like an event ("docker.pull image=x")
 * keeps that word as the event; anything else becomes msg="...".
 */
static size_t event_len(const char *s)
{
	size_t n = 0;
	bool dot = false;

	for (; s[n] && s[n] != ' '; n++) {
		if (s[n] == '.')
			dot = n > 0;
		else if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
			   s[n] == '_' || s[n] == '-'))
			return 0;
	}
	return dot && n < 64 && s[n - 1] != '.' ? n : 0;
}

static void host_log(void *hctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void host_log(void *hctx, int level, const char *fmt, ...)
{
	struct ci_host_ctx *h = hctx;
	char msg[1536], q[1600], event[64];
	size_t n;
	va_list ap;

	if (level < CI_LOG_ERROR)
		level = CI_LOG_ERROR;
	if (level > CI_LOG_DEBUG)
		level = CI_LOG_DEBUG;
	if (level > (int)ci_log_get_level() || !fmt)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = event_len(msg);
	if (n) {
		memcpy(event, msg, n);
		event[n] = 0;
		ci_log((enum ci_log_level)level, event, "backend=%s%s", h->name, msg + n);
	} else {
		ci_log((enum ci_log_level)level, "backend.log", "backend=%s msg=%s", h->name,
		       quote(q, sizeof(q), msg));
	}
}

static int cfg_rc(int conf_rc)
{
	return conf_rc == 0 ? CI_OK : conf_rc > 0 ? CI_E_NOTFOUND : CI_E_INVAL;
}

static int host_cfg_str(void *hctx, const char *key, const char **out)
{
	struct ci_host_ctx *h = hctx;

	if (!key || !out)
		return CI_E_INVAL;
	if (!h->conf)
		return CI_E_NOTFOUND;
	return cfg_rc(ci_conf_backend_str(h->conf, h->name, key, out));
}

static int host_cfg_int(void *hctx, const char *key, int64_t *out)
{
	struct ci_host_ctx *h = hctx;

	if (!key || !out)
		return CI_E_INVAL;
	if (!h->conf)
		return CI_E_NOTFOUND;
	return cfg_rc(ci_conf_backend_int(h->conf, h->name, key, out));
}

static int host_cfg_bool(void *hctx, const char *key, int *out)
{
	struct ci_host_ctx *h = hctx;

	if (!key || !out)
		return CI_E_INVAL;
	if (!h->conf)
		return CI_E_NOTFOUND;
	return cfg_rc(ci_conf_backend_bool(h->conf, h->name, key, out));
}

static void *host_mem_alloc(void *hctx, size_t n)
{
	struct ci_host_ctx *h = hctx;
	union mem_hdr *m;

	if (n > SIZE_MAX - sizeof(*m))
		return NULL;
	m = malloc(sizeof(*m) + n);
	if (!m)
		return NULL;
	m->size = n;
	atomic_fetch_add(&h->mem_in_use, n);
	return m + 1;
}

static void host_mem_free(void *hctx, void *p)
{
	struct ci_host_ctx *h = hctx;
	union mem_hdr *m;

	if (!p)
		return;
	m = (union mem_hdr *)p - 1;
	atomic_fetch_sub(&h->mem_in_use, m->size);
	free(m);
}

static int64_t host_now_ms(void *hctx)
{
	(void)hctx;
	return ci_now_ms();
}

static int64_t host_wall_unix(void *hctx)
{
	(void)hctx;
	return ci_wall_unix();
}

/* ---- http ---------------------------------------------------------------- */

/*
 * Idle easy handles, so that keep-alive connections (and TLS sessions) are
 * reused across calls and threads. A handle is owned by one caller at a time.
 */
#define POOL_MAX 16

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[POOL_MAX];
static int pool_n;
static bool curl_ready;

static CURL *handle_get(void)
{
	CURL *c = NULL;

	pthread_mutex_lock(&pool_lock);
	if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		curl_ready = true;
	if (curl_ready && pool_n)
		c = pool[--pool_n];
	pthread_mutex_unlock(&pool_lock);
	if (!c && curl_ready)
		c = curl_easy_init();
	return c;
}

static void handle_put(CURL *c)
{
	/* reset keeps live connections and caches, drops every option */
	curl_easy_reset(c);
	pthread_mutex_lock(&pool_lock);
	if (pool_n < POOL_MAX) {
		pool[pool_n++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

void ci_host_http_cleanup(void)
{
	pthread_mutex_lock(&pool_lock);
	while (pool_n)
		curl_easy_cleanup(pool[--pool_n]);
	if (curl_ready)
		curl_global_cleanup();
	curl_ready = false;
	pthread_mutex_unlock(&pool_lock);
}

struct xfer {
	const ci_sink *sink;
	bool sink_stopped;
	const ci_source *src;
	int64_t sent;
	const char *src_err; /* why the request body stopped, or NULL */
};

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;

	if (!x->sink || !x->sink->write)
		return size * n;
	if (x->sink->write(x->sink->ctx, CI_STREAM_DATA, p, size * n)) {
		x->sink_stopped = true;
		return 0; /* CURLE_WRITE_ERROR: stop here */
	}
	return size * n;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t cap = size * n;
	int64_t left = x->src->size - x->sent;
	ssize_t r;

	if (left <= 0)
		return 0;
	if ((int64_t)cap > left)
		cap = (size_t)left;
	/* Prefer the fd: pread can restart from 0 if curl must rewind. */
	if (x->src->fd >= 0)
		r = pread(x->src->fd, buf, cap, (off_t)x->sent);
	else if (x->src->read)
		r = x->src->read(x->src->ctx, buf, cap);
	else
		r = -1;
	if (r < 0) {
		x->src_err = "read failed";
		return CURL_READFUNC_ABORT;
	}
	if (r == 0) {
		x->src_err = "ended before its announced size";
		return CURL_READFUNC_ABORT;
	}
	x->sent += r;
	return (size_t)r;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct xfer *x = ud;

	if (origin != SEEK_SET || offset < 0 || offset > x->src->size)
		return CURL_SEEKFUNC_CANTSEEK;
	if (x->src->fd < 0 && offset != x->sent)
		return CURL_SEEKFUNC_CANTSEEK;
	x->sent = offset;
	return CURL_SEEKFUNC_OK;
}

static bool has_header(const ci_http_req *req, const char *name)
{
	size_t n = strlen(name);

	for (const char *const *h = req->headers; h && *h; h++)
		if (!strncasecmp(*h, name, n) && (*h)[n] == ':')
			return true;
	return false;
}

static int build_headers(const ci_http_req *req, struct curl_slist **out, ci_call *call)
{
	struct curl_slist *l = NULL, *t;

	for (const char *const *h = req->headers; h && *h; h++) {
		if (strpbrk(*h, "\r\n"))
			goto out_inval;
		t = curl_slist_append(l, *h);
		if (!t)
			goto out_nomem;
		l = t;
	}
	if (req->bearer) {
		/* Sized to the token: service-account JWTs run to several KiB. */
		size_t n = strlen(req->bearer) + sizeof("Authorization: Bearer ");
		char *auth;

		if (strpbrk(req->bearer, "\r\n"))
			goto out_inval;
		auth = malloc(n);
		if (!auth)
			goto out_nomem;
		snprintf(auth, n, "Authorization: Bearer %s", req->bearer);
		t = curl_slist_append(l, auth);
		free(auth);
		if (!t)
			goto out_nomem;
		l = t;
	}
	/* No 100-continue round trip; no form content type nobody asked for. */
	t = curl_slist_append(l, "Expect:");
	if (!t)
		goto out_nomem;
	l = t;
	if ((req->body || req->body_src) && !has_header(req, "Content-Type")) {
		t = curl_slist_append(l, "Content-Type:");
		if (!t)
			goto out_nomem;
		l = t;
	}
	*out = l;
	return CI_OK;

out_inval:
	curl_slist_free_all(l);
	return ci_fail(call, CI_E_INVAL, "http: header or bearer token holds a line break");
out_nomem:
	curl_slist_free_all(l);
	return ci_fail(call, CI_E_NOMEM, "http: out of memory");
}

static void set_method(CURL *c, const ci_http_req *req, struct xfer *x)
{
	const char *m = req->method;

	if (req->body_src) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_src->size);
		if (strcmp(m, "PUT"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
	} else if (req->body || !strcmp(m, "POST")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(req->body ? req->body_len : 0));
		if (strcmp(m, "POST"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
	} else if (!strcmp(m, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(m, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
	}
}

static int map_curl_error(CURLcode cc, const struct xfer *x, const ci_http_req *req,
			  const char *errbuf, int64_t budget_ms, ci_call *call)
{
	const char *why = *errbuf ? errbuf : curl_easy_strerror(cc);
	const char *via = req->unix_socket ? " via unix:" : "";
	const char *sock = req->unix_socket ? req->unix_socket : "";

	if (x->src_err)
		return ci_fail(call, CI_E_INTERNAL, "http %s %s: request body %s after %lld bytes",
			       req->method, req->url, x->src_err, (long long)x->sent);
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return ci_fail(call, CI_E_TIMEOUT, "http %s %s%s%s: no answer within %lld ms",
			       req->method, req->url, via, sock, (long long)budget_ms);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return ci_fail(call, CI_E_INVAL, "http %s %s: %s", req->method, req->url, why);
	case CURLE_OUT_OF_MEMORY:
		return ci_fail(call, CI_E_NOMEM, "http %s %s: out of memory", req->method,
			       req->url);
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return ci_fail(call, CI_E_UNAVAIL, "cannot connect to %s%s%s: %s", req->url, via,
			       sock, why);
	default:
		return ci_fail(call, CI_E_UNAVAIL, "http %s %s%s%s failed: %s", req->method,
			       req->url, via, sock, why);
	}
}

int ci_host_http(const ci_http_req *req, int *status, const ci_sink *body, ci_call *call)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct xfer x = {.sink = body, .src = req ? req->body_src : NULL};
	int64_t budget;
	long code = 0;
	CURLcode cc;
	CURL *c;
	int rc;

	if (!call)
		return CI_E_INVAL;
	if (status)
		*status = 0;
	if (!req || !req->method || !req->url || !status)
		return ci_fail(call, CI_E_INVAL, "http: method, url and status are required");
	if (req->body_src &&
	    (req->body_src->size < 0 || (!req->body_src->read && req->body_src->fd < 0)))
		return ci_fail(call, CI_E_INVAL, "http: body_src needs a size and read() or fd");
	budget = call->deadline_ms - ci_now_ms();
	if (budget <= 0)
		return ci_fail(call, CI_E_TIMEOUT, "http %s %s: deadline passed before the request",
			       req->method, req->url);
	rc = build_headers(req, &hdrs, call);
	if (rc)
		return rc;
	c = handle_get();
	if (!c) {
		curl_slist_free_all(hdrs);
		return ci_fail(call, CI_E_NOMEM, "http: cannot make a libcurl handle");
	}
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)budget);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	if (req->unix_socket)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
	if (req->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
	set_method(c, req, &x);

	cc = curl_easy_perform(c);
	if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && x.sink_stopped)) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		*status = (int)code;
		rc = CI_OK;
	} else {
		rc = map_curl_error(cc, &x, req, errbuf, budget, call);
	}
	handle_put(c);
	curl_slist_free_all(hdrs);
	return rc;
}

static int host_http(void *hctx, const ci_http_req *req, int *status, const ci_sink *body,
		     ci_call *call)
{
	(void)hctx;
	return ci_host_http(req, status, body, call);
}

/* ---- raw streams (ABI 1.1) ----------------------------------------------- */

/*
 * A libcurl CONNECT_ONLY connection. libcurl does the TCP/TLS set-up (CA
 * file, SNI, verification) and curl_easy_send/recv move the bytes; readiness
 * comes from poll() on its socket. TLS can hold decrypted bytes that poll()
 * cannot see, so wait() first tries a receive into a small look-ahead buffer
 * that recv() then drains before reading the connection again.
 */
struct host_stream {
	ci_stream pub; /* first: the plugin's pointer is ours */
	CURL *c;
	curl_socket_t fd;
	bool eof;
	size_t ahead_off, ahead_len;
	unsigned char ahead[16384];
};

static struct host_stream *stream_of(ci_stream *s)
{
	return (struct host_stream *)s;
}

static int poll_ms(int64_t deadline_ms)
{
	int64_t left = deadline_ms - ci_now_ms();

	if (deadline_ms <= 0 || left <= 0)
		return 0;
	return left > 60000 ? 60000 : (int)left;
}

static int stream_poll(struct host_stream *hs, short what, int64_t deadline_ms, bool *ready)
{
	struct pollfd p = {.fd = hs->fd, .events = what};
	int n;

	for (;;) {
		n = poll(&p, 1, poll_ms(deadline_ms));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		/* POLLERR/POLLHUP: the next send/recv reports what happened. */
		*ready = n > 0;
		if (*ready || ci_now_ms() >= deadline_ms)
			return 0;
	}
}

/* One non-blocking receive: CI_OK with *got (0 and eof set at the end), or
 * CI_E_TIMEOUT for "nothing now". */
static int stream_try_recv(struct host_stream *hs, void *buf, size_t cap, size_t *got,
			   ci_call *call)
{
	CURLcode cc;

	*got = 0;
	if (hs->eof)
		return CI_OK;
	cc = curl_easy_recv(hs->c, buf, cap, got);
	if (cc == CURLE_AGAIN)
		return CI_E_TIMEOUT;
	if (cc != CURLE_OK)
		return ci_fail(call, CI_E_UNAVAIL, "stream: receive failed: %s",
			       curl_easy_strerror(cc));
	if (*got == 0)
		hs->eof = true;
	return CI_OK;
}

static int stream_recv(ci_stream *s, void *buf, size_t cap, size_t *got, int64_t deadline_ms,
		       ci_call *call)
{
	struct host_stream *hs = stream_of(s);
	bool ready;
	int rc;

	*got = 0;
	if (!buf || !cap)
		return ci_fail(call, CI_E_INVAL, "stream: recv needs a buffer");
	if (hs->ahead_len) {
		*got = hs->ahead_len < cap ? hs->ahead_len : cap;
		memcpy(buf, hs->ahead + hs->ahead_off, *got);
		hs->ahead_off += *got;
		hs->ahead_len -= *got;
		return CI_OK;
	}
	for (;;) {
		rc = stream_try_recv(hs, buf, cap, got, call);
		if (rc != CI_E_TIMEOUT)
			return rc;
		if (stream_poll(hs, POLLIN, deadline_ms, &ready))
			return ci_fail(call, CI_E_UNAVAIL, "stream: poll: %s", strerror(errno));
		if (!ready)
			return ci_fail(call, CI_E_TIMEOUT,
				       "stream: nothing received by the deadline");
	}
}

static int stream_send(ci_stream *s, const void *buf, size_t len, size_t *sent, int64_t deadline_ms,
		       ci_call *call)
{
	struct host_stream *hs = stream_of(s);
	CURLcode cc;
	bool ready;

	*sent = 0;
	if (!len)
		return CI_OK;
	if (!buf)
		return ci_fail(call, CI_E_INVAL, "stream: send needs a buffer");
	for (;;) {
		cc = curl_easy_send(hs->c, buf, len, sent);
		if (cc == CURLE_OK && *sent)
			return CI_OK;
		if (cc != CURLE_OK && cc != CURLE_AGAIN)
			return ci_fail(call, CI_E_UNAVAIL, "stream: send failed: %s",
				       curl_easy_strerror(cc));
		*sent = 0;
		if (stream_poll(hs, POLLOUT, deadline_ms, &ready))
			return ci_fail(call, CI_E_UNAVAIL, "stream: poll: %s", strerror(errno));
		if (!ready)
			return ci_fail(call, CI_E_TIMEOUT,
				       "stream: could not send by the deadline");
	}
}

static int stream_wait(ci_stream *s, int events, int64_t deadline_ms, int *ready, ci_call *call)
{
	struct host_stream *hs = stream_of(s);
	struct pollfd p = {.fd = hs->fd};
	size_t got;
	int n, rc;

	*ready = 0;
	if (!(events & (CI_WAIT_READ | CI_WAIT_WRITE)))
		return ci_fail(call, CI_E_INVAL, "stream: wait for nothing");
	p.events = (short)((events & CI_WAIT_READ ? POLLIN : 0) |
			   (events & CI_WAIT_WRITE ? POLLOUT : 0));
	for (;;) {
		if ((events & CI_WAIT_READ) && !hs->ahead_len && !hs->eof) {
			/* TLS may hold bytes poll() cannot see: ask libcurl first. */
			rc = stream_try_recv(hs, hs->ahead, sizeof(hs->ahead), &got, call);
			if (rc != CI_OK && rc != CI_E_TIMEOUT)
				return rc;
			hs->ahead_off = 0;
			hs->ahead_len = rc == CI_OK ? got : 0;
		}
		if ((events & CI_WAIT_READ) && (hs->ahead_len || hs->eof))
			*ready |= CI_WAIT_READ;
		n = poll(&p, 1, *ready ? 0 : poll_ms(deadline_ms));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ci_fail(call, CI_E_UNAVAIL, "stream: poll: %s", strerror(errno));
		if ((events & CI_WAIT_WRITE) && (p.revents & (POLLOUT | POLLERR | POLLHUP)))
			*ready |= CI_WAIT_WRITE;
		/* A readable socket may hold only part of a TLS record: the next
		 * round's receive decides. */
		if (*ready || ci_now_ms() >= deadline_ms)
			return CI_OK;
	}
}

static void stream_close(ci_stream *s)
{
	struct host_stream *hs = stream_of(s);

	if (!hs)
		return;
	curl_easy_cleanup(hs->c);
	free(hs);
}

/* "GET /path?query HTTP/1.1", Host, headers, bearer, blank line. */
static int request_head(const ci_http_req *req, char **out, size_t *len, ci_call *call)
{
	char *path = NULL, *query = NULL, *host = NULL, *port = NULL;
	CURLU *u = curl_url();
	FILE *f = NULL;
	int rc = CI_OK;

	*out = NULL;
	*len = 0;
	if (!u || !(f = open_memstream(out, len))) {
		rc = ci_fail(call, CI_E_NOMEM, "http_connect: out of memory");
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, req->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		rc = ci_fail(call, CI_E_INVAL, "http_connect: bad URL '%s'", req->url);
		goto out;
	}
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (strpbrk(req->method, " \r\n") || strpbrk(path, " \r\n") ||
	    (query && strpbrk(query, " \r\n"))) {
		rc = ci_fail(call, CI_E_INVAL, "http_connect: method or URL holds a space");
		goto out;
	}
	fprintf(f, "%s %s%s%s HTTP/1.1\r\nHost: %s%s%s\r\n", req->method, path, query ? "?" : "",
		query ? query : "", host, port ? ":" : "", port ? port : "");
	for (const char *const *h = req->headers; h && *h; h++) {
		if (strpbrk(*h, "\r\n") || !strchr(*h, ':')) {
			rc = ci_fail(call, CI_E_INVAL, "http_connect: bad header line");
			goto out;
		}
		fprintf(f, "%s\r\n", *h);
	}
	if (req->bearer) {
		if (strpbrk(req->bearer, "\r\n")) {
			rc = ci_fail(call, CI_E_INVAL,
				     "http: header or bearer token holds a line break");
			goto out;
		}
		fprintf(f, "Authorization: Bearer %s\r\n", req->bearer);
	}
	fputs("\r\n", f);
out:
	if (f && fclose(f) && rc == CI_OK)
		rc = ci_fail(call, CI_E_NOMEM, "http_connect: out of memory");
	curl_free(path);
	curl_free(query);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	if (rc != CI_OK) {
		free(*out);
		*out = NULL;
		*len = 0;
	}
	return rc;
}

static int host_http_connect(void *hctx, const ci_http_req *req, ci_stream **out, ci_call *call)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct xfer x = {0};
	struct host_stream *hs = NULL;
	char *head = NULL;
	size_t head_len = 0, off = 0, n;
	curl_socket_t fd;
	int64_t budget;
	CURLcode cc;
	CURL *probe;
	int rc;

	(void)hctx;
	if (!call)
		return CI_E_INVAL;
	if (!out)
		return ci_fail(call, CI_E_INVAL, "http_connect: no place for the stream");
	*out = NULL;
	if (!req || !req->url)
		return ci_fail(call, CI_E_INVAL, "http_connect: url is required");
	if (req->body || req->body_src)
		return ci_fail(call, CI_E_INVAL, "http_connect: a request body is not supported");
	budget = call->deadline_ms - ci_now_ms();
	if (budget <= 0)
		return ci_fail(call, CI_E_TIMEOUT, "http_connect %s: deadline passed before it",
			       req->url);
	if (req->method && (rc = request_head(req, &head, &head_len, call)) != CI_OK)
		return rc;
	/* The pool's first handle_get() runs curl_global_init; give it back. */
	probe = handle_get();
	if (!probe)
		goto out_nomem;
	handle_put(probe);
	hs = calloc(1, sizeof(*hs));
	if (!hs || !(hs->c = curl_easy_init()))
		goto out_nomem;
	hs->pub = (ci_stream){
		.struct_size = sizeof(ci_stream),
		.wait = stream_wait,
		.send = stream_send,
		.recv = stream_recv,
		.close = stream_close,
	};
	curl_easy_setopt(hs->c, CURLOPT_URL, req->url);
	curl_easy_setopt(hs->c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(hs->c, CURLOPT_CONNECT_ONLY, 1L);
	/* HTTP/1.1 through ALPN: an Upgrade is not possible over HTTP/2. */
	curl_easy_setopt(hs->c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(hs->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(hs->c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(hs->c, CURLOPT_CONNECTTIMEOUT_MS, (long)budget);
	curl_easy_setopt(hs->c, CURLOPT_TIMEOUT_MS, (long)budget);
	if (req->unix_socket)
		curl_easy_setopt(hs->c, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
	if (req->ca_file)
		curl_easy_setopt(hs->c, CURLOPT_CAINFO, req->ca_file);
	cc = curl_easy_perform(hs->c);
	if (cc != CURLE_OK) {
		rc = map_curl_error(cc, &x,
				    &(ci_http_req){.method = "CONNECT",
						   .url = req->url,
						   .unix_socket = req->unix_socket},
				    errbuf, budget, call);
		goto out_fail;
	}
	if (curl_easy_getinfo(hs->c, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK ||
	    fd == CURL_SOCKET_BAD) {
		rc = ci_fail(call, CI_E_INTERNAL, "http_connect %s: no socket", req->url);
		goto out_fail;
	}
	hs->fd = fd;
	while (off < head_len) {
		rc = stream_send(&hs->pub, head + off, head_len - off, &n, call->deadline_ms, call);
		if (rc != CI_OK)
			goto out_fail;
		off += n;
	}
	free(head);
	*out = &hs->pub;
	return CI_OK;

out_nomem:
	rc = ci_fail(call, CI_E_NOMEM, "http_connect: out of memory");
out_fail:
	if (hs && hs->c)
		curl_easy_cleanup(hs->c);
	free(hs);
	free(head);
	return rc;
}

/* ---- the table ----------------------------------------------------------- */

struct ci_host_ctx *ci_host_new(const char *name, const struct ci_conf *conf)
{
	struct ci_host_ctx *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->name = strdup(name);
	if (!h->name) {
		free(h);
		return NULL;
	}
	h->conf = conf;
	atomic_init(&h->mem_in_use, 0);
	h->table = (ci_host){
		.struct_size = sizeof(ci_host),
		.abi_version = CI_ABI_VERSION,
		.hctx = h,
		.log = host_log,
		.cfg_str = host_cfg_str,
		.cfg_int = host_cfg_int,
		.cfg_bool = host_cfg_bool,
		.mem_alloc = host_mem_alloc,
		.mem_free = host_mem_free,
		.now_ms = host_now_ms,
		.wall_unix = host_wall_unix,
		.http = host_http,
		.http_connect = host_http_connect,
	};
	return h;
}

void ci_host_free(struct ci_host_ctx *h)
{
	if (!h)
		return;
	free(h->name);
	free(h);
}

const ci_host *ci_host_table(const struct ci_host_ctx *h)
{
	return &h->table;
}

size_t ci_host_mem_in_use(const struct ci_host_ctx *h)
{
	return atomic_load(&h->mem_in_use);
}
