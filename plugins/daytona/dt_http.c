/*
 * Daytona backend: byte buffers, encodings and one HTTP exchange through
 * the host's http service, with the retry policy and error mapping.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ci/backend_util.h"
#include "daytona.h"

#define DT_SPOOL_MAX (64 * 1024) /* bytes held back from a sink until the status is known */

static int dt_buf_grow(struct dt_buf *b, size_t n)
{
	size_t need = b->len + n + 1;

	if (b->max && b->len + n > b->max)
		return -1;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *d;

		while (cap < need)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	return 0;
}

int dt_buf_add(struct dt_buf *b, const void *p, size_t n)
{
	if (dt_buf_grow(b, n))
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int dt_buf_str(struct dt_buf *b, const char *s)
{
	return dt_buf_add(b, s, strlen(s));
}

int dt_buf_printf(struct dt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || dt_buf_grow(b, (size_t)n))
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void dt_buf_free(struct dt_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int dt_buf_urlenc(struct dt_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[3] = {'%', hex[c >> 4], hex[c & 15]};

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			if (dt_buf_add(b, s, 1))
				return -1;
		} else if (dt_buf_add(b, e, 3)) {
			return -1;
		}
	}
	return 0;
}

int dt_buf_shquote(struct dt_buf *b, const char *s)
{
	if (dt_buf_add(b, "'", 1))
		return -1;
	for (; *s; s++) {
		if (*s == '\'' ? dt_buf_str(b, "'\\''") : dt_buf_add(b, s, 1))
			return -1;
	}
	return dt_buf_add(b, "'", 1);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int dt_buf_b64(struct dt_buf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		char q[4] = {b64chars[s[i] >> 2], b64chars[((s[i] & 3) << 4) | (s[i + 1] >> 4)],
			     b64chars[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)],
			     b64chars[s[i + 2] & 63]};

		if (dt_buf_add(b, q, 4))
			return -1;
	}
	if (i < n) {
		char q[4] = {b64chars[s[i] >> 2], 0, '=', '='};

		if (i + 1 < n) {
			q[1] = b64chars[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
			q[2] = b64chars[(s[i + 1] & 15) << 2];
		} else {
			q[1] = b64chars[(s[i] & 3) << 4];
		}
		if (dt_buf_add(b, q, 4))
			return -1;
	}
	return 0;
}

int dt_b64_decode(const char *s, size_t n, struct dt_buf *out)
{
	unsigned acc = 0;
	int bits = 0, pad = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *p;

		if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad || !c || !(p = strchr(b64chars, c)))
			return -1;
		acc = (acc << 6) | (unsigned)(p - b64chars);
		bits += 6;
		if (bits >= 8) {
			unsigned char o = (unsigned char)(acc >> (bits - 8));

			bits -= 8;
			acc &= (1u << bits) - 1;
			if (dt_buf_add(out, &o, 1))
				return -2;
		}
	}
	return pad > 2 ? -1 : 0;
}

void dt_random_hex(char *out, size_t nbytes)
{
	unsigned char r[32];
	size_t i;

	if (nbytes > sizeof(r))
		nbytes = sizeof(r);
	if (getrandom(r, nbytes, 0) != (ssize_t)nbytes) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		for (i = 0; i < nbytes; i++)
			r[i] = (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ (i * 131) ^ rand());
	}
	for (i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

int64_t dt_now(ci_be *be)
{
	return be->host->now_ms(be->host->hctx);
}

int dt_sleep(ci_be *be, int64_t ms, const ci_call *call)
{
	int64_t left = call->deadline_ms - dt_now(be);
	struct timespec ts;

	if (left <= 0)
		return -1;
	if (ms > left)
		ms = left;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	return 0;
}

json_t *dt_json(const struct dt_resp *resp)
{
	if (!resp->body.data || !resp->body.len)
		return NULL;
	return json_loadb(resp->body.data, resp->body.len, 0, NULL);
}

void dt_err_message(const struct dt_resp *resp, char *out, size_t n)
{
	json_t *j = dt_json(resp), *m;

	out[0] = '\0';
	if (!j)
		return;
	m = json_object_get(j, "message");
	if (!json_is_string(m))
		m = json_object_get(j, "error");
	if (json_is_array(json_object_get(j, "errors")))
		m = json_array_get(json_object_get(j, "errors"), 0);
	if (json_is_string(m))
		snprintf(out, n, "%s", json_string_value(m));
	json_decref(j);
}

void dt_err_code(const struct dt_resp *resp, char *out, size_t n)
{
	json_t *j = dt_json(resp), *c;

	out[0] = '\0';
	if (!j)
		return;
	c = json_object_get(j, "code");
	if (json_is_string(c))
		snprintf(out, n, "%s", json_string_value(c));
	json_decref(j);
}

int dt_http_fail(ci_be *be, const struct dt_resp *resp, int tbx, const char *what, ci_call *call)
{
	char msg[160];
	int st = resp->status, rc;

	(void)be;
	dt_err_message(resp, msg, sizeof(msg));
	switch (st) {
	case 401:
	case 403:
		return ci_fail(call, CI_E_UNAVAIL,
			       "%s: Daytona rejected the API key (HTTP %d)%s%s: check "
			       "backends.daytona.api_key",
			       what, st, msg[0] ? ": " : "", msg);
	case 404:
		rc = CI_E_NOTFOUND;
		break;
	case 408:
		rc = CI_E_TIMEOUT;
		break;
	case 409:
		rc = CI_E_EXISTS;
		break;
	case 429:
		rc = CI_E_UNAVAIL;
		break;
	default:
		rc = st >= 500 && !tbx ? CI_E_UNAVAIL : CI_E_BACKEND;
	}
	return ci_fail(call, rc, "%s: HTTP %d%s%s", what, st, msg[0] ? ": " : "", msg);
}

void dt_resp_free(struct dt_resp *resp)
{
	dt_buf_free(&resp->body);
}

struct dt_spool {
	const ci_sink *sink;
	struct dt_resp *resp;
	int overflow;
	int stopped;
};

static int dt_spool_flush(struct dt_spool *sp)
{
	struct dt_resp *r = sp->resp;
	int stop = 0;

	if (r->body.len)
		stop = sp->sink->write(sp->sink->ctx, CI_STREAM_DATA, r->body.data, r->body.len);
	r->body.len = 0;
	r->sent_to_sink = 1;
	if (stop)
		sp->stopped = 1;
	return stop;
}

/*
 * The host streams the body before we know the status, so a sink only
 * gets bytes once 64 KiB have arrived (error bodies are far smaller) or
 * the exchange ended with a 2xx.
 */
static int dt_spool_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct dt_spool *sp = ctx;
	struct dt_resp *r = sp->resp;

	(void)stream;
	if (sp->stopped)
		return 1;
	if (!sp->sink || (!r->sent_to_sink && r->body.len + len <= DT_SPOOL_MAX)) {
		if (dt_buf_add(&r->body, buf, len)) {
			sp->overflow = 1;
			return 1;
		}
		return 0;
	}
	if (!r->sent_to_sink && dt_spool_flush(sp))
		return 1;
	if (sp->sink->write(sp->sink->ctx, CI_STREAM_DATA, buf, len)) {
		sp->stopped = 1;
		return 1;
	}
	return 0;
}

static int dt_retryable(int status, int flags)
{
	if (status == 429)
		return 1;
	if (flags & DT_NO_RETRY)
		return 0;
	if (flags & DT_EXEC_RETRY)
		return status == 502 || status == 503;
	if (flags & DT_IDEMPOTENT)
		return status >= 500 && status <= 504;
	return 0;
}

static int dt_http_once(ci_be *be, const struct dt_req *req, struct dt_resp *resp, ci_call *call)
{
	const ci_host *h = be->host;
	const char *hdrs[8];
	char accept[96], ctype[160], ua[64];
	struct dt_spool sp = {req->sink, resp, 0, 0};
	ci_sink sink = {dt_spool_write, &sp};
	ci_http_req hr = {0};
	ci_call sub = *call;
	int64_t now = dt_now(be), dl;
	int n = 0, rc;

	dl = req->deadline_ms ? req->deadline_ms : now + be->conf.request_timeout_ms;
	sub.struct_size = sizeof(sub);
	sub.deadline_ms = dl < call->deadline_ms ? dl : call->deadline_ms;
	sub.err[0] = '\0';

	snprintf(accept, sizeof(accept), "Accept: %s",
		 req->accept ? req->accept : "application/json");
	snprintf(ua, sizeof(ua), "User-Agent: ci-backend-daytona/%s", CI_BACKEND_VERSION);
	hdrs[n++] = accept;
	hdrs[n++] = ua;
	hdrs[n++] = "X-Daytona-Source: ci-server";
	hdrs[n++] = "X-Daytona-SDK-Version: " DT_SDK_VERSION;
	if (req->ctype) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s", req->ctype);
		hdrs[n++] = ctype;
	}
	if (req->flags & DT_UPLOAD)
		hdrs[n++] = "Expect:";
	hdrs[n] = NULL;

	hr.method = req->method;
	hr.url = req->url;
	hr.headers = hdrs;
	hr.body = req->body;
	hr.body_len = req->body_len;
	hr.body_src = req->body_src;
	hr.ca_file = be->conf.ca_file;
	hr.bearer = be->conf.api_key;

	resp->status = 0;
	resp->body.len = 0;
	resp->body.max = req->sink ? 0 : (req->max_resp ? req->max_resp : (1u << 20));
	rc = h->http(h->hctx, &hr, &resp->status, &sink, &sub);
	if (sp.overflow)
		return ci_fail(call, CI_E_BACKEND, "%s %s: response larger than %zu bytes",
			       req->method, req->url, resp->body.max);
	if (sp.stopped && resp->sent_to_sink)
		return CI_OK; /* the sink wanted no more */
	if (rc == CI_E_TIMEOUT && sub.deadline_ms < call->deadline_ms)
		return ci_fail(call, CI_E_TIMEOUT, "%s %s: no answer within %lld ms", req->method,
			       req->url, (long long)(sub.deadline_ms - now));
	if (rc != CI_OK) {
		snprintf(call->err, sizeof(call->err), "%s", sub.err[0] ? sub.err : "http failed");
		return rc;
	}
	/* a 2xx body small enough to have stayed in the spool */
	if (req->sink && resp->status >= 200 && resp->status < 300 && !resp->sent_to_sink)
		dt_spool_flush(&sp);
	return CI_OK;
}

int dt_http(ci_be *be, const struct dt_req *req, struct dt_resp *resp, ci_call *call)
{
	int attempts = (req->flags & DT_NO_RETRY) ? 1 : 1 + (int)be->conf.retries;
	int i, rc = CI_OK;

	resp->sent_to_sink = 0;
	for (i = 0;; i++) {
		rc = dt_http_once(be, req, resp, call);
		if (rc == CI_OK && !dt_retryable(resp->status, req->flags))
			return CI_OK;
		if (rc != CI_OK && rc != CI_E_UNAVAIL)
			return rc;
		/* a reset connection may have run a non-idempotent request */
		if (rc == CI_E_UNAVAIL && !(req->flags & DT_IDEMPOTENT))
			return rc;
		if (resp->sent_to_sink || i + 1 >= attempts)
			break;
		if (req->body_src && (!req->rewind || req->rewind(req->rewind_ctx)))
			break;
		if (rc == CI_OK)
			be->host->log(be->host->hctx, CI_LOG_WARN,
				      "daytona: %s %s: HTTP %d; retry %d/%d", req->method, req->url,
				      resp->status, i + 1, attempts - 1);
		else
			be->host->log(be->host->hctx, CI_LOG_WARN, "daytona: %s; retry %d/%d",
				      call->err, i + 1, attempts - 1);
		if (dt_sleep(be, be->conf.retry_backoff_ms * (i + 1), call))
			break;
	}
	return rc;
}
