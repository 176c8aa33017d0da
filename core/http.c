#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "ci/backend.h"
#include "conf.h"
#include "http_priv.h"
#include "log.h"
#include "router.h"
#include "workers.h"

struct ci_http {
	struct MHD_Daemon *mhd;
	const struct ci_conf *conf;
	const struct ci_auth *auth;
	const struct ci_route *routes;
	size_t n_routes;
	void *app;
	struct ci_workers *workers;
	int port;
	unsigned long next_id; /* atomic */
};

#define CI_MAX_DRAIN_BYTES (64u << 20)

enum req_state { RS_NEW = 0, RS_BODY, RS_DISPATCHED, RS_DONE };

struct ci_req {
	struct ci_http *http;
	struct MHD_Connection *conn;
	const struct ci_route *route;
	enum req_state state;
	char method[8];
	char *path;
	char id[24];
	char principal[CI_PRINCIPAL_MAX];
	struct ci_params params;
	char *body;
	size_t body_len, body_cap, body_limit;
	uint64_t drained;
	void *ctx;
	struct MHD_Response *response;
	int status;
	struct timespec started;
};

static void set_response(struct ci_req *req, int status, struct MHD_Response *resp)
{
	if (req->response) {
		/* A second reply is a bug in a handler: keep the first. */
		ci_log(CI_LL_ERROR, "http.double_reply", "rid=%s path=%s", req->id, req->path);
		MHD_destroy_response(resp);
		return;
	}
	MHD_add_response_header(resp, "X-Request-Id", req->id);
	req->response = resp;
	req->status = status;
}

void ci_req_reply_json(struct ci_req *req, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	size_t len = text ? strlen(text) : 0;
	struct MHD_Response *resp;

	json_decref(body);
	if (!text) {
		static const char oom[] = "{\"error\":\"out of memory\"}";

		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
						       MHD_RESPMEM_PERSISTENT);
		status = 500;
	} else {
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	set_response(req, status, resp);
}

void ci_req_reply_raw_json(struct ci_req *req, int status, const char *json, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)json, MHD_RESPMEM_MUST_COPY);

	MHD_add_response_header(resp, "Content-Type", "application/json");
	set_response(req, status, resp);
}

void ci_req_reply_error(struct ci_req *req, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ci_req_reply_json(req, status, json_pack("{s:s}", "error", msg));
}

void ci_req_reply_rate_limited(struct ci_req *req, int retry_after_s)
{
	char v[16];

	ci_req_reply_json(req, 429,
			  json_pack("{s:s,s:i}", "error", "rate_limited", "retry_after_seconds",
				    retry_after_s));
	snprintf(v, sizeof(v), "%d", retry_after_s);
	if (req->response)
		MHD_add_response_header(req->response, "Retry-After", v);
}

void ci_req_reply_empty(struct ci_req *req, int status)
{
	set_response(req, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

/* RFC 5987 value: UTF-8 bytes outside attr-char are percent-encoded. */
static void percent_encode(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p && n + 4 < cap; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("!#$&+-.^_`|~", *p)) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	out[n] = 0;
}

void ci_req_reply_fd(struct ci_req *req, int fd, uint64_t size, const char *content_type,
		     const char *filename)
{
	struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
	char enc[1024], ascii[256], disp[1400];
	const char *base;
	size_t n = 0;

	if (!resp) {
		close(fd);
		ci_req_reply_error(req, 500, "cannot stream file");
		return;
	}
	MHD_add_response_header(resp, "Content-Type",
				content_type ? content_type : "application/octet-stream");
	if (filename) {
		base = strrchr(filename, '/');
		base = base ? base + 1 : filename;
		/* ASCII fallback for old clients, the exact UTF-8 name in filename*. */
		for (const unsigned char *p = (const unsigned char *)base;
		     *p && n < sizeof(ascii) - 1; p++)
			ascii[n++] = (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\') ? '_'
											 : (char)*p;
		ascii[n] = 0;
		percent_encode(base, enc, sizeof(enc));
		snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"; filename*=UTF-8''%s",
			 ascii, enc);
		MHD_add_response_header(resp, "Content-Disposition", disp);
	}
	set_response(req, 200, resp);
}

const char *ci_req_method(const struct ci_req *req)
{
	return req->method;
}

const char *ci_req_path(const struct ci_req *req)
{
	return req->path;
}

const char *ci_req_id(const struct ci_req *req)
{
	return req->id;
}

const char *ci_req_principal(const struct ci_req *req)
{
	return req->principal;
}

const char *ci_req_param(const struct ci_req *req, const char *name)
{
	return ci_params_get(&req->params, name);
}

const char *ci_req_query(const struct ci_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *ci_req_header(const struct ci_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *ci_req_body(const struct ci_req *req, size_t *len)
{
	if (len)
		*len = req->body_len;
	return req->body ? req->body : "";
}

void ci_req_set_ctx(struct ci_req *req, void *ctx)
{
	req->ctx = ctx;
}

void *ci_req_ctx(const struct ci_req *req)
{
	return req->ctx;
}

bool ci_req_has_reply(const struct ci_req *req)
{
	return req->response != NULL;
}

static void make_request_id(struct ci_req *req)
{
	const char *given = ci_req_header(req, "X-Request-Id");
	unsigned long n;
	bool ok = given && *given && strlen(given) < sizeof(req->id);

	for (const char *p = given; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
	if (ok) {
		snprintf(req->id, sizeof(req->id), "%s", given);
		return;
	}
	n = __atomic_add_fetch(&req->http->next_id, 1, __ATOMIC_RELAXED);
	snprintf(req->id, sizeof(req->id), "r%lx-%lu", (unsigned long)getpid(), n);
}

static enum MHD_Result queue(struct ci_req *req)
{
	enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, req->response);

	req->state = RS_DONE;
	return r;
}

static void run_job(void *arg)
{
	struct ci_req *req = arg;

	req->route->fn(req, req->http->app);
	if (!req->response)
		ci_req_reply_error(req, 500, "handler produced no response");
	MHD_resume_connection(req->conn);
}

/* The request's first call: route, authenticate, check declared size. */
static void start_request(struct ci_req *req, const char *url)
{
	struct ci_http *h = req->http;
	const char *cl, *key, *authz;
	char why[128];
	bool path_known = false;

	make_request_id(req);
	req->route = ci_router_match(h->routes, h->n_routes, req->method, url, &req->params,
				     &path_known);
	if (!req->route) {
		if (path_known)
			ci_req_reply_error(req, 405, "method %s not allowed on %s", req->method,
					   url);
		else
			ci_req_reply_error(req, 404, "no such route: %s %s", req->method, url);
		return;
	}
	if (!req->route->open) {
		key = ci_req_header(req, "X-API-Key");
		authz = ci_req_header(req, "Authorization");
		if (ci_auth_check(h->auth, key, authz, req->principal, why, sizeof(why))) {
			ci_req_reply_error(req, 401, "unauthorized: %s", why);
			if (req->response)
				MHD_add_response_header(req->response, "WWW-Authenticate",
							"Basic realm=\"ci-server\"");
			return;
		}
	}
	req->body_limit =
		req->route->max_body ? req->route->max_body : h->conf->max_json_body_bytes;
	cl = ci_req_header(req, "Content-Length");
	if (req->route->body == CI_BODY_BUFFER && cl &&
	    strtoull(cl, NULL, 10) > (unsigned long long)req->body_limit) {
		ci_req_reply_error(req, 413, "request body too large (limit %zu bytes)",
				   req->body_limit);
		return;
	}
	if (req->route->body == CI_BODY_STREAM && req->route->stream->begin &&
	    req->route->stream->begin(req, h->app) && !req->response)
		ci_req_reply_error(req, 400, "request refused");
}

static void take_body(struct ci_req *req, const char *data, size_t size)
{
	const struct ci_route *r = req->route;

	if (r->body == CI_BODY_STREAM) {
		if (r->stream->data(req, data, size, req->http->app) && !req->response)
			ci_req_reply_error(req, 400, "request body refused");
		return;
	}
	if (r->body != CI_BODY_BUFFER)
		return;
	if (req->body_len + size > req->body_limit) {
		/* Chunked bodies have no Content-Length: enforce while reading. */
		ci_req_reply_error(req, 413, "request body too large (limit %zu bytes)",
				   req->body_limit);
		return;
	}
	if (req->body_len + size + 1 > req->body_cap) {
		size_t cap = req->body_cap ? req->body_cap : 4096;
		char *nb;

		while (cap < req->body_len + size + 1)
			cap *= 2;
		nb = realloc(req->body, cap);
		if (!nb) {
			ci_req_reply_error(req, 500, "out of memory");
			return;
		}
		req->body = nb;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, size);
	req->body_len += size;
	req->body[req->body_len] = 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct ci_http *h = cls;
	struct ci_req *req = *con_cls;

	(void)version;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		req->http = h;
		req->conn = conn;
		clock_gettime(CLOCK_MONOTONIC, &req->started);
		snprintf(req->method, sizeof(req->method), "%s", method);
		req->path = strdup(url);
		*con_cls = req;
		start_request(req, url);
		if (req->response)
			return queue(req);
		req->state = RS_BODY;
		return MHD_YES;
	}
	if (req->state == RS_DONE)
		return MHD_YES; /* late body bytes after an error reply: drop them */
	if (*upload_data_size) {
		if (!req->response)
			take_body(req, upload_data, *upload_data_size);
		else
			req->drained += *upload_data_size;
		*upload_data_size = 0;
		/*
		 * libmicrohttpd 0.9 cannot send a reply before the body is read:
		 * an error decided mid-body is sent after draining the rest, up
		 * to a bound past which the connection is simply closed.
		 */
		return req->drained > CI_MAX_DRAIN_BYTES ? MHD_NO : MHD_YES;
	}
	if (req->response)
		return queue(req);
	if (req->state == RS_DISPATCHED)
		return queue(req); /* resumed by the worker: the reply is ready */
	if (req->route->run == CI_RUN_INLINE) {
		req->route->fn(req, h->app);
		if (!req->response)
			ci_req_reply_error(req, 500, "handler produced no response");
		return queue(req);
	}
	req->state = RS_DISPATCHED;
	MHD_suspend_connection(conn);
	if (!ci_workers_submit(h->workers, run_job, req)) {
		ci_req_reply_rate_limited(req, 1);
		MHD_resume_connection(conn);
	}
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct ci_req *req = *con_cls;
	struct timespec now;
	long ms;

	(void)cls;
	(void)conn;
	if (!req)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - req->started.tv_sec) * 1000 +
	     (now.tv_nsec - req->started.tv_nsec) / 1000000;
	if (req->route && req->route->body == CI_BODY_STREAM && req->route->stream->abort &&
	    req->ctx)
		req->route->stream->abort(req, req->http->app);
	if (!(req->route && req->route->open && req->status == 200))
		ci_log(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? CI_LL_INFO : CI_LL_WARN,
		       "http.request", "rid=%s method=%s path=%s status=%d ms=%ld principal=%s%s",
		       req->id, req->method, req->path, req->status, ms,
		       req->principal[0] ? req->principal : "-",
		       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
	if (req->response)
		MHD_destroy_response(req->response);
	ci_params_clear(&req->params);
	free(req->body);
	free(req->path);
	free(req);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	ci_log(CI_LL_WARN, "http.mhd", "msg=\"%s\"", msg);
}

struct ci_http *ci_http_start(const struct ci_conf *conf, const struct ci_auth *auth,
			      const struct ci_route *routes, size_t n_routes, void *app, char *err,
			      size_t errlen)
{
	struct ci_http *h = calloc(1, sizeof(*h));
	struct sockaddr_in6 sa6 = {0};
	struct sockaddr_in sa4 = {0};
	struct sockaddr *sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;

	if (!h)
		return NULL;
	h->conf = conf;
	h->auth = auth;
	h->routes = routes;
	h->n_routes = n_routes;
	h->app = app;
	if (inet_pton(AF_INET, conf->host, &sa4.sin_addr) == 1) {
		sa4.sin_family = AF_INET;
		sa4.sin_port = htons((uint16_t)conf->port);
		sa = (struct sockaddr *)&sa4;
	} else if (inet_pton(AF_INET6, conf->host, &sa6.sin6_addr) == 1) {
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons((uint16_t)conf->port);
		sa = (struct sockaddr *)&sa6;
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, errlen, "listen.host '%s' is not an IPv4 or IPv6 address",
			 conf->host);
		goto out_free;
	}
	h->workers = ci_workers_new(conf->worker_threads, conf->queue_depth);
	if (!h->workers) {
		snprintf(err, errlen, "cannot start %d worker threads", conf->worker_threads);
		goto out_free;
	}
	h->mhd = MHD_start_daemon(
		flags, (uint16_t)conf->port, NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER,
		on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, h, MHD_OPTION_CONNECTION_LIMIT, (unsigned)conf->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)conf->connection_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(conf->max_header_bytes * 2 + 16384),
		MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(err, errlen, "cannot listen on %s:%d (address in use or not permitted)",
			 conf->host, conf->port);
		goto out_workers;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : conf->port;
	return h;
out_workers:
	ci_workers_free(h->workers);
out_free:
	free(h);
	return NULL;
}

int ci_http_port(const struct ci_http *h)
{
	return h->port;
}

int ci_http_busy(const struct ci_http *h)
{
	return ci_workers_busy(h->workers);
}

void ci_http_stop(struct ci_http *h, int grace_ms)
{
	bool idle;

	if (!h)
		return;
	MHD_quiesce_daemon(h->mhd);
	idle = ci_workers_drain(h->workers, grace_ms);
	if (!idle)
		ci_log(CI_LL_WARN, "http.shutdown",
		       "busy=%d grace_ms=%d msg=\"closing with work "
		       "in flight\"",
		       ci_workers_busy(h->workers), grace_ms);
	/* Workers resume their connections; join them before MHD goes away. */
	ci_workers_free(h->workers);
	MHD_stop_daemon(h->mhd);
	free(h);
}

struct MHD_Connection *ci_req_connection(struct ci_req *req)
{
	return req->conn;
}
