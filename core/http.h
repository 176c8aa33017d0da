/*
 * HTTP front end on libmicrohttpd: routing (every route at "/" and under
 * "/v1"), authentication, request limits, JSON error bodies from one status
 * table, and a worker pool for slow handlers so /health never waits.
 * This is the only module that includes microhttpd.h.
 */
#ifndef CI_CORE_HTTP_H
#define CI_CORE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ci_auth;
struct ci_conf;
struct ci_http;
struct ci_req;

enum ci_body_mode {
	CI_BODY_NONE = 0, /* a body is drained and ignored */
	CI_BODY_BUFFER,	  /* collected in memory up to the route's limit (413 above) */
	CI_BODY_STREAM,	  /* handed to stream->data as it arrives */
};

enum ci_run_on {
	CI_RUN_INLINE = 0, /* on the event thread: only for quick, non-blocking work */
	CI_RUN_WORKER,	   /* on the worker pool, the connection suspended meanwhile */
};

typedef void (*ci_handler_fn)(struct ci_req *req, void *app);

/* Streaming body callbacks, run on the event thread (keep them quick). */
struct ci_stream_ops {
	/* Headers are known; return 0, or non-zero after replying (e.g. 400). */
	int (*begin)(struct ci_req *req, void *app);
	/* A chunk of the body; return 0, or non-zero after replying (e.g. 413). */
	int (*data)(struct ci_req *req, const char *buf, size_t len, void *app);
	/* The request ended before the handler ran (client gone, error reply). */
	void (*abort)(struct ci_req *req, void *app);
};

struct ci_route {
	const char *method;  /* "GET", "POST", "DELETE" */
	const char *pattern; /* "/files/:session_id/:file_id" */
	ci_handler_fn fn;    /* runs once the whole body is in */
	enum ci_run_on run;
	enum ci_body_mode body;
	size_t max_body; /* BUFFER limit; 0 = listen.max_json_body_bytes */
	bool open;	 /* no authentication (health checks) */
	const struct ci_stream_ops *stream;
};

/*
 * Start listening with the given routes and authenticator (both borrowed:
 * they must outlive the server).
 * app is passed to every handler. NULL with err on failure.
 */
struct ci_http *ci_http_start(const struct ci_conf *conf, const struct ci_auth *auth,
			      const struct ci_route *routes, size_t n_routes, void *app, char *err,
			      size_t errlen);
/* The port actually bound (useful with port 0). */
int ci_http_port(const struct ci_http *h);
/* Requests running on workers or waiting for one. */
int ci_http_busy(const struct ci_http *h);
/*
 * Stop accepting, let in-flight work finish for up to grace_ms, then close
 * every connection and free the server.
 */
void ci_http_stop(struct ci_http *h, int grace_ms);

/* Request accessors; strings are valid until the reply is sent. */
const char *ci_req_method(const struct ci_req *req);
const char *ci_req_path(const struct ci_req *req);
const char *ci_req_id(const struct ci_req *req);
const char *ci_req_principal(const struct ci_req *req);
const char *ci_req_param(const struct ci_req *req, const char *name); /* ":name" in pattern */
const char *ci_req_query(const struct ci_req *req, const char *name);
const char *ci_req_header(const struct ci_req *req, const char *name);
const char *ci_req_body(const struct ci_req *req, size_t *len);
/* Handler-owned state for streamed routes (freed by the handler). */
void ci_req_set_ctx(struct ci_req *req, void *ctx);
void *ci_req_ctx(const struct ci_req *req);
bool ci_req_has_reply(const struct ci_req *req);

/* Replies: exactly one per request. */
void ci_req_reply_json(struct ci_req *req, int status, json_t *body); /* steals body */
/* Already-encoded JSON (copied). */
void ci_req_reply_raw_json(struct ci_req *req, int status, const char *json, size_t len);
void ci_req_reply_error(struct ci_req *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 429 {"error":"rate_limited","retry_after_seconds":N} with Retry-After. */
void ci_req_reply_rate_limited(struct ci_req *req, int retry_after_s);
void ci_req_reply_empty(struct ci_req *req, int status);
/* Stream a file; takes ownership of fd. filename (UTF-8) sets Content-Disposition. */
void ci_req_reply_fd(struct ci_req *req, int fd, uint64_t size, const char *content_type,
		     const char *filename);

#endif /* CI_CORE_HTTP_H */
