/*
 * ci-backend-k8s: sandboxes are hardened pods on a Kubernetes cluster.
 *
 * REST calls (pods create/get/list/watch/delete) go through host->http;
 * pods/exec is a WebSocket (v5.channel.k8s.io or v4.channel.k8s.io) over
 * the raw stream host->http_connect opens (ABI 1.1), framed by libwslay.
 * Files travel as tar over exec stdin/stdout; list is an exec of find(1).
 * See docs/backends/k8s.md and docs/k8s.md.
 */
#ifndef CI_K8S_K8S_H
#define CI_K8S_K8S_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ci/backend.h"

#define K8S_DATA_DIR	 "/mnt/data"
#define K8S_CONTAINER	 "sandbox"
#define K8S_LABEL_PREFIX "ci."
#define K8S_SA_DIR	 "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_NAME_MAX	 63

/* ---- growable byte buffer (k8s_util.c) ---- */
struct k8s_buf {
	char *data;
	size_t len, cap;
	size_t max; /* append fails beyond this; 0 = no limit */
};

int k8s_buf_add(struct k8s_buf *b, const void *p, size_t n);
int k8s_buf_printf(struct k8s_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *k8s_buf_str(const struct k8s_buf *b); /* NUL-terminated view, "" when empty */
void k8s_buf_release(struct k8s_buf *b);
/* Percent-encode s as a URL query value. */
int k8s_url_escape(struct k8s_buf *b, const char *s);
/* Normalise an absolute path inside /mnt/data (see eng_path_check in docker). */
int k8s_path_check(const char *path, char *out, size_t cap, ci_call *call);
/* A valid label value (<= 63, [A-Za-z0-9._-], alphanumeric at both ends). */
bool k8s_label_value_ok(const char *s);
/* A label value standing for s: s itself when valid, else "h-" + 16 hex digits. */
void k8s_label_value(const char *s, char out[K8S_NAME_MAX + 1]);
/* A pod name we could have made or may address: a DNS-1123 label. */
bool k8s_name_ok(const char *s);
/* A ci_source over memory. */
struct k8s_mem {
	const unsigned char *p;
	size_t left;
};
ssize_t k8s_mem_read(void *ctx, void *buf, size_t cap);

/* ---- configuration (k8s_conf.c), backends.k8s.* with defaults applied ---- */
struct k8s_kv {
	char *key, *value;
};

struct k8s_conf {
	char *url;	  /* https://host:port, no trailing '/' */
	char *ns;	  /* namespace of the sandbox pods */
	char *ca_file;	  /* PEM CA of the API server, NULL = system store */
	char *token;	  /* explicit bearer token, or NULL */
	char *token_file; /* re-read every token_reload_s, or NULL */
	int64_t token_reload_s;
	char *image_fmt;    /* printf format with one %s = runtime */
	char *image_prefix; /* prepended to the core's and image_fmt's names */
	char *pull_policy;
	char *runtime_class; /* NULL = the cluster default */
	char *data_medium;   /* "" (node disk) or "Memory" */
	int64_t uid, gid;
	int64_t mem_bytes, mem_request_bytes, cpu_millis, cpu_request_millis;
	int64_t disk_bytes, tmp_bytes;
	int64_t active_deadline_s; /* pod lifetime cap */
	int64_t start_timeout_ms;  /* create: Pending -> Running at most this long */
	int64_t exec_grace_ms;	   /* stream may outlive the program by this */
	struct k8s_kv *labels, *annotations;
	size_t n_labels, n_annotations;
};

struct ci_be {
	const ci_host *host;
	struct k8s_conf conf;

	pthread_mutex_t lock; /* guards token, token_at */
	char *token;	      /* current bearer token */
	int64_t token_at;     /* now_ms of the last read of token_file */
};

int k8s_conf_read(struct ci_be *be, ci_call *call);
void k8s_conf_release(struct k8s_conf *c);
/* Parse "k=v<sep>k=v" into pairs (labels: ','; annotations: '\n'). Pure. */
int k8s_kv_parse(const char *s, char sep, bool label, struct k8s_kv **out, size_t *n, char *err,
		 size_t errlen);
void k8s_kv_free(struct k8s_kv *kv, size_t n);
/* Copy the current token into buf (re-reading token_file when due). */
int k8s_token(struct ci_be *be, char *buf, size_t cap, ci_call *call);
/* Drop the cached token age so the next call re-reads the file (after a 401). */
void k8s_token_stale(struct ci_be *be);

/* ---- REST (k8s_api.c) ---- */
struct k8s_resp {
	int status;
	struct k8s_buf body;
};

struct k8s_req {
	const char *method;
	const char *path; /* below the API server URL: "/api/v1/namespaces/..." */
	const char *body_json;
	const ci_sink *sink; /* streams the body instead of resp->body */
	int64_t deadline_ms; /* 0 = call->deadline_ms */
};

int k8s_call(struct ci_be *be, const struct k8s_req *req, struct k8s_resp *resp, ci_call *call);
void k8s_resp_release(struct k8s_resp *r);
/* message (and reason) of a metav1.Status body, or the raw text. Pure. */
void k8s_status_text(const char *body, size_t len, char *out, size_t cap, char *reason,
		     size_t rcap);
/* Map an HTTP error answer to a ci_rc with "op: HTTP n reason: message". */
int k8s_fail_status(struct k8s_resp *r, ci_call *call, const char *op);

/* ---- pods (k8s_pod.c) ---- */
struct k8s_limits {
	int64_t mem_bytes, cpu_millis, disk_bytes;
};

/* The Pod JSON (malloc'ed). Pure, unit-tested. */
char *k8s_pod_json(const struct k8s_conf *c, const char *name, const char *image,
		   const char *runtime, const char *owner, const char *session,
		   const char *const *env, const struct k8s_limits *l, int64_t now_unix, char *err,
		   size_t errlen);

/*
 * What a pod object says about its readiness. Pure: feeds on a Pod JSON.
 * K8S_POD_BROKEN fills why (image pull error, Failed, Evicted...).
 */
enum k8s_pod_state { K8S_POD_PENDING, K8S_POD_RUNNING, K8S_POD_BROKEN, K8S_POD_GONE };
enum k8s_pod_state k8s_pod_state_of(const char *json, size_t len, char *why, size_t cap);

int k8s_pod_create(struct ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call);
/* GET the pod and say what state it is in; 404 -> CI_E_NOTFOUND. */
int k8s_pod_fetch(struct ci_be *be, const char *name, enum k8s_pod_state *st, char *why, size_t cap,
		  ci_call *call);
/* GET the pod: CI_OK when Running, CI_E_NOTFOUND when gone/terminating/dead. */
int k8s_pod_usable(struct ci_be *be, const char *name, ci_call *call);
/* DELETE ?gracePeriodSeconds=0; 404 -> CI_E_NOTFOUND. */
int k8s_pod_delete(struct ci_be *be, const char *name, ci_call *call);
int k8s_pod_sweep(struct ci_be *be, const char *owner, int64_t older_than, unsigned *n,
		  ci_call *call);
/* "2026-11-21T10:00:00Z" -> unix seconds; -1 when malformed. Pure. */
int64_t k8s_parse_time(const char *s);

/* ---- exec channels (k8s_chan.c), pure ---- */
enum {
	K8S_CH_STDIN = 0,
	K8S_CH_STDOUT = 1,
	K8S_CH_STDERR = 2,
	K8S_CH_ERROR = 3,
	K8S_CH_RESIZE = 4,
	K8S_CH_CLOSE = 255
};

struct k8s_chan {
	const ci_sink *out; /* receives CI_STREAM_STDOUT / STDERR */
	int ch;		    /* channel of the current message, -1 before its first byte */
	bool in_msg;
	bool stop_out, stop_err; /* the sink said "no more" for that stream */
	struct k8s_buf status;	 /* channel 3, capped */
	bool have_status;
	bool bad; /* unknown channel or oversized status */
	uint64_t bytes[3];
};

void k8s_chan_init(struct k8s_chan *c, const ci_sink *out);
void k8s_chan_release(struct k8s_chan *c);
void k8s_chan_msg_start(struct k8s_chan *c);
void k8s_chan_data(struct k8s_chan *c, const void *buf, size_t len);
void k8s_chan_msg_end(struct k8s_chan *c);

/*
 * Parse the channel-3 metav1.Status: CI_OK with *exit_code (Success -> 0,
 * NonZeroExitCode -> its ExitCode cause), or CI_E_BACKEND with err set
 * (another failure: the command could not run).
 */
int k8s_exit_status(const char *json, size_t len, int *exit_code, char *err, size_t errlen);

/* ---- WebSocket exec (k8s_ws.c) ---- */
struct k8s_ws_io {
	const ci_source *in; /* stdin bytes, or NULL for none */
	struct k8s_chan *chan;
	int64_t deadline_ms; /* the connection is closed by then */
	/* results */
	bool v5;      /* the server spoke v5.channel.k8s.io */
	bool closed;  /* the exchange ended (close frame or EOF) before the deadline */
	int64_t sent; /* stdin bytes sent */
};

/*
 * One pods/exec: upgrade, stream stdin/stdout/stderr, read the status.
 * query is the part after "exec?" (command=..&stdin=..). After the last
 * stdin byte a v5 server gets [255, 0] (stdin closed); a v4 server cannot
 * be told, so the command must not need that EOF (k8s_exec.c). HTTP errors
 * before the upgrade map like REST errors (404 -> NOTFOUND).
 */
int k8s_ws_exec(struct ci_be *be, const char *name, const char *query, struct k8s_ws_io *io,
		ci_call *call);
/* base64 of SHA-1(key + GUID): the expected Sec-WebSocket-Accept. Pure. */
void k8s_ws_accept(const char *key, char out[32]);
/* Parse an HTTP/1.1 answer head: status, and the values of three headers. Pure. */
int k8s_http_head(const char *head, size_t len, int *status, char *proto, size_t pcap, char *accept,
		  size_t acap, int64_t *content_length);

/* ---- exec (k8s_exec.c) ---- */
enum k8s_stdin {
	K8S_STDIN_NONE,	   /* </dev/null */
	K8S_STDIN_COUNTED, /* `head -c <size>` feeds the program: EOF without v5 */
	K8S_STDIN_RAW,	   /* the program reads the stream and ends by itself on v4 */
};

struct k8s_exec {
	const char *const *argv;
	const char *const *env;
	const char *cwd;     /* NULL = /mnt/data */
	const ci_source *in; /* stdin, or NULL */
	enum k8s_stdin stdin_kind;
	int64_t timeout_ms; /* 0 = bounded by the call only */
	const ci_sink *out;
};

struct k8s_exec_res {
	int status; /* exit status as the shell reports it */
	bool timed_out;
	int64_t wall_ms;
};

int k8s_exec_run(struct ci_be *be, const char *name, const struct k8s_exec *x,
		 struct k8s_exec_res *r, ci_call *call);
/*
 * The exec query (command=...&stdin=..&stdout=true&stderr=true) of x run
 * under the wrapper (env, cwd, timeout, stdin, clean-up). Pure, unit-tested.
 */
int k8s_exec_query(struct k8s_buf *q, const struct k8s_exec *x, int64_t prog_ms);
void k8s_status_to_result(int status, bool timed_out, ci_exec_result *res);

/* ---- files (k8s_files.c) ---- */
int k8s_put(struct ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	    ci_call *call);
int k8s_get(struct ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call);
int k8s_list(struct ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
	     ci_call *call);

/* find -printf '%y %s %T@ %m %P\0' records -> ci_entry callbacks. Pure. */
struct k8s_listp {
	struct k8s_buf rec;
	ci_entry_cb cb;
	void *ctx;
	bool stopped, bad;
	unsigned count;
};
int k8s_listp_feed(struct k8s_listp *p, const void *buf, size_t len);
int k8s_listp_record(struct k8s_listp *p, const char *rec, size_t len);

/* ---- tar (k8s_tar.c), pure ---- */
struct k8s_tar_out; /* a ci_source producing a tar of one file with its parents */

/*
 * Tar of rel (relative to /mnt/data) with its parent directories (0755) and
 * the file (mode, mtime), whose bytes come from data (exactly data->size).
 * out gets a source of the exact tar size. Free with k8s_tar_out_free.
 */
int k8s_tar_out_new(const char *rel, uint32_t mode, int64_t mtime, const ci_source *data,
		    struct k8s_tar_out **t, ci_source *out, ci_call *call);
void k8s_tar_out_free(struct k8s_tar_out *t);
/* CI_OK when data gave exactly its size; else CI_E_INVAL with why. */
int k8s_tar_out_status(const struct k8s_tar_out *t, ci_call *call);

/* Push parser of a tar stream that must hold one regular file, name. */
struct k8s_tar_in {
	const char *name;
	const ci_sink *out; /* CI_STREAM_DATA */
	unsigned char hdr[512];
	size_t hdr_len;
	struct k8s_buf ext; /* pax 'x' / GNU 'L' payload */
	int state;
	uint64_t left, pad;
	char longname[4096];
	bool have_longname;
	bool done, stopped;
	int rc; /* CI_OK, or what went wrong (err) */
	char err[160];
	uint64_t delivered;
};
void k8s_tar_in_init(struct k8s_tar_in *t, const char *name, const ci_sink *out);
void k8s_tar_in_release(struct k8s_tar_in *t);
/* Feed stdout bytes; returns 0, or -1 once an error is recorded in t->rc. */
int k8s_tar_in_feed(struct k8s_tar_in *t, const void *buf, size_t len);

#endif /* CI_K8S_K8S_H */
