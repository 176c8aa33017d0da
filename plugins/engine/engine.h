/*
 * Docker Engine API client shared by the docker and podman backends.
 *
 * These sources are compiled into each plugin (see ENGINE_SOURCES in
 * plugins/engine/engine.cmake); they are never a library of their own, so
 * each .so carries its own copy and the two can be versioned apart. Every
 * host service comes through the ci_host table; HTTP goes over host->http
 * (libcurl in the core) to the engine's unix socket.
 *
 * Both engines are driven through the Docker-compatible API. What differs
 * is detected from GET /version (not from the plugin's name) and kept in
 * struct ci_be.kind: the layout of /mnt/data (docker: an anonymous volume
 * with tmpfs driver options, because docker's archive API cannot see tmpfs
 * mounts; podman: a HostConfig.Tmpfs mount, because podman's compat API
 * ignores volume driver options) and the tmpfs options each accepts.
 */
#ifndef CI_ENGINE_ENGINE_H
#define CI_ENGINE_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ci/backend.h"

#define ENG_API_MIN	 "1.35" /* exec WorkingDir, Mounts, Init */
#define ENG_API_MAX	 "1.47"
#define ENG_DATA_DIR	 "/mnt/data"
#define ENG_LABEL_PREFIX "ci."
#define ENG_URL_MAX	 2048

enum eng_kind { ENG_KIND_UNKNOWN = 0, ENG_KIND_DOCKER, ENG_KIND_PODMAN };

/* Compile-time identity of the plugin that embeds this client. */
struct eng_profile {
	const char *name;	     /* "docker" / "podman": labels, logs */
	const char *default_socket;  /* for root */
	const char *rootless_socket; /* relative to $XDG_RUNTIME_DIR, or NULL */
};

/* backends.<name>.* values, defaults applied (see docs/backends/docker.md). */
struct eng_conf {
	char *socket;	      /* unix socket path, NULL when url is TCP */
	char *url;	      /* base URL: "http://localhost" for the socket */
	char *ca_file;	      /* TLS CA bundle for an https url */
	char *api_pin;	      /* api_version: use this instead of negotiating */
	char *user;	      /* uid:gid the code runs as */
	char *keepalive_user; /* uid:gid of the container's PID 1 child */
	char *image_fmt;      /* printf format with one %s = runtime */
	int64_t mem_bytes, cpu_millis, pids, disk_bytes, tmp_bytes;
	int64_t nofile, nproc;
	int64_t exec_grace_ms; /* stream may outlive the program by this */
	int64_t pool_max_age_s;
	int64_t pool_refill_delay_ms;
	bool init;	    /* HostConfig.Init */
	const char *layout; /* "auto" | "volume" | "tmpfs" */
};

struct eng_pool;
struct eng_envtab;

struct ci_be {
	const ci_host *host;
	const struct eng_profile *prof;
	struct eng_conf conf;

	pthread_mutex_t lock; /* guards api, kind, owner */
	char api[16];	      /* "/v1.41" once negotiated, "" before */
	enum eng_kind kind;
	char *owner; /* owner label learnt from create()/sweep() */

	struct eng_pool *pool;
	struct eng_envtab *envs;
};

/* ---- growable byte buffer (eng_util.c) ---- */
struct eng_buf {
	char *data;
	size_t len, cap;
	size_t max; /* append fails beyond this; 0 = no limit */
};

int eng_buf_append(struct eng_buf *b, const void *p, size_t n);
int eng_buf_printf(struct eng_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *eng_buf_str(struct eng_buf *b); /* NUL-terminated view, "" when empty */
void eng_buf_release(struct eng_buf *b);

/* Percent-encode s for a URL query value into b. */
int eng_url_escape(struct eng_buf *b, const char *s);

/*
 * Normalise an absolute sandbox path that must lie in /mnt/data (or be it):
 * collapses "//" and "/." and a trailing '/', refuses "..", NUL-free only.
 * out gets the result. Returns CI_OK or CI_E_INVAL with call->err set.
 */
int eng_path_check(const char *path, char *out, size_t cap, ci_call *call);

/* ---- HTTP over host->http (eng_http.c) ---- */
struct eng_resp {
	int status;
	struct eng_buf body; /* capped JSON/text body */
};

/*
 * One API call. path is below the negotiated prefix ("/containers/json");
 * raw = true sends it unversioned ("/version"). body_json may be NULL.
 * sink, when given, receives the body instead of resp->body. Returns the
 * host's rc (CI_OK for any HTTP answer).
 */
struct eng_req {
	const char *method;
	const char *path;
	bool raw;
	const char *body_json;
	const ci_source *body_src;
	const char *content_type;
	const ci_sink *sink;
	int64_t deadline_ms; /* 0 = call->deadline_ms */
};

int eng_call(struct ci_be *be, const struct eng_req *req, struct eng_resp *resp, ci_call *call);
void eng_resp_release(struct eng_resp *resp);

/* "message" of an engine error body (docker and podman shapes), or the raw text. */
const char *eng_err_text(struct eng_resp *resp);

/* Generic status -> ci_rc mapping with an "op: message" error text. */
int eng_fail_status(struct ci_be *be, struct eng_resp *resp, ci_call *call, const char *op);

/* Negotiate the API version once (retried after failure). */
int eng_ready(struct ci_be *be, ci_call *call);

/*
 * Pure part of the negotiation, unit-tested: parse a GET /version body and
 * choose the API prefix. Returns CI_OK, or CI_E_UNAVAIL / CI_E_BACKEND with
 * err filled.
 */
int eng_version_pick(const char *json, size_t len, const char *pin, char api[16],
		     enum eng_kind *kind, char *err, size_t errlen);
/* Compare "1.41"-style versions: <0, 0, >0. */
int eng_api_cmp(const char *a, const char *b);

/* ---- multiplexed exec stream (eng_demux.c) ---- */
struct eng_demux {
	const ci_sink *out; /* receives CI_STREAM_STDOUT / STDERR */
	unsigned char hdr[8];
	unsigned hdr_len;
	uint32_t left; /* payload bytes left in the current frame */
	int stream;
	bool stop_out, stop_err; /* sink said "no more" for that stream */
	bool bad;		 /* framing error: stream id not 0..2 */
	uint64_t bytes[3];
};

void eng_demux_init(struct eng_demux *d, const ci_sink *out);
/* Feed bytes as they arrive; returns 0, or -1 on a framing error. */
int eng_demux_feed(struct eng_demux *d, const void *buf, size_t len);
/* True when the stream ended on a frame boundary. */
bool eng_demux_complete(const struct eng_demux *d);

/* ---- tar (eng_tar.c) ---- */
struct eng_tar_src; /* a ci_source producing a tar of one file on the fly */

/*
 * Build the source for a tar holding the parent directories of rel (each
 * "a/", "a/b/", owned by uid:gid, 0755) and the file rel with mode and the
 * bytes of data (exactly data->size of them). *out->size is the exact tar
 * size. Free with eng_tar_src_free.
 */
int eng_tar_src_new(const char *rel, uint32_t mode, int64_t mtime, unsigned uid, unsigned gid,
		    const ci_source *data, struct eng_tar_src **ts, ci_source *out, ci_call *call);
void eng_tar_src_free(struct eng_tar_src *ts);
/* After the upload: CI_OK when exactly the promised bytes were produced. */
int eng_tar_src_status(struct eng_tar_src *ts, ci_call *call);

/*
 * Read a tar from fd and stream the single regular-file member called name
 * into out (CI_STREAM_DATA). Refuses symlinks, directories and anything
 * else with CI_E_INVAL. Returns CI_OK, CI_E_INVAL, CI_E_BACKEND (bad tar) or
 * the sink's "stop" as CI_OK with *stopped set.
 */
int eng_tar_extract_one(int fd, const char *name, const ci_sink *out, bool *stopped, ci_call *call);

/* ---- containers (eng_create.c) ---- */
struct eng_limits {
	int64_t mem_bytes, cpu_millis, pids, disk_bytes;
};

/* Fill limits from spec, defaults from conf for zero values. */
void eng_limits_from_spec(const struct eng_conf *c, const ci_create_spec *spec,
			  struct eng_limits *l);
/* Image for spec: spec->image, else image.<runtime>, else image_fmt. */
int eng_image_for(struct ci_be *be, const char *runtime, const char *image, char *out, size_t cap,
		  ci_call *call);

/*
 * The JSON body of POST /containers/create (malloc'ed string). Pure, for
 * unit tests: labels, hardened HostConfig, /mnt/data layout for kind.
 */
char *eng_create_body(const struct eng_conf *c, enum eng_kind kind, const char *backend,
		      const char *image, const char *runtime, const char *owner,
		      const char *session, const char *const *env, const struct eng_limits *l,
		      int64_t now_unix, bool pooled);

/* Create and start a container; deletes it again when start fails. */
int eng_container_new(struct ci_be *be, const char *image, const char *runtime, const char *owner,
		      const char *session, const char *const *env, const struct eng_limits *l,
		      bool pooled, char id[CI_ID_MAX], ci_call *call);
/* DELETE ?force=1&v=1. 404 -> CI_E_NOTFOUND. */
int eng_container_delete(struct ci_be *be, const char *id, ci_call *call);
int eng_container_kill(struct ci_be *be, const char *id, ci_call *call);
/* POST /containers/{id}/update with the limits (pooled containers). */
int eng_container_update(struct ci_be *be, const char *id, const struct eng_limits *l,
			 ci_call *call);
int eng_sweep(struct ci_be *be, const char *owner, int64_t older_than, unsigned *n, ci_call *call);
/* Validate a sandbox id (hex container id) before putting it in a URL. */
int eng_id_check(const char *id, ci_call *call);

/* ---- exec (eng_exec.c) ---- */
struct eng_exec {
	const char *const *argv; /* program */
	const char *const *env;
	const char *cwd;
	const char *user;
	const void *stdin_buf;
	size_t stdin_len;
	int64_t timeout_ms; /* 0 = none (bounded by the call) */
	bool wrap;	    /* run under the timeout/cleanup wrapper */
	const ci_sink *out;
};

struct eng_exec_res {
	int status;	/* raw exit status of the exec'd process */
	bool timed_out; /* program killed at its deadline */
	int64_t wall_ms;
};

int eng_exec_run(struct ci_be *be, const char *id, const struct eng_exec *x, struct eng_exec_res *r,
		 ci_call *call);

/*
 * The Cmd array of a wrapped exec (NULL-terminated, malloc'ed array of
 * borrowed/malloc'ed strings, free with eng_cmd_free). Pure, unit-tested.
 */
char **eng_wrap_cmd(const char *const *argv, int64_t timeout_ms, const char *stdin_mode,
		    const char *stdin_arg);
void eng_cmd_free(char **cmd);
#define ENG_STDIN_INLINE_MAX (64 * 1024) /* larger stdin travels as a file */

/* Map a wrapper exit status to the ABI's exit_code/signal. */
void eng_status_to_result(int status, bool timed_out, ci_exec_result *res);

/* ---- files (eng_files.c) ---- */
int eng_put(struct ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	    ci_call *call);
int eng_get(struct ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call);
int eng_list(struct ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
	     ci_call *call);

/* Parser of the list command's output (NUL-terminated records), unit-tested. */
struct eng_listp {
	struct eng_buf rec;
	ci_entry_cb cb;
	void *ctx;
	bool stopped;
	bool bad;
	unsigned count;
};
int eng_listp_feed(struct eng_listp *p, const void *buf, size_t len);
int eng_listp_record(struct eng_listp *p, const char *rec, size_t len);

/* ---- per-sandbox env of pooled containers (eng_pool.c) ---- */
int eng_envtab_new(struct ci_be *be);
void eng_envtab_free(struct ci_be *be);
int eng_envtab_set(struct ci_be *be, const char *id, const char *const *env);
/* Copy of the env for id (NULL when none); free with eng_cmd_free. */
char **eng_envtab_get(struct ci_be *be, const char *id);
void eng_envtab_drop(struct ci_be *be, const char *id);

/* ---- warm pool (eng_pool.c) ---- */
int eng_pool_start(struct ci_be *be);
void eng_pool_stop(struct ci_be *be);
/* Take a pooled container for runtime/image; CI_E_NOTFOUND when none. */
int eng_pool_take(struct ci_be *be, const char *runtime, const char *image, const char *owner,
		  char id[CI_ID_MAX]);
/* True when id is waiting in this process's pool (sweep leaves it). */
bool eng_pool_holds(struct ci_be *be, const char *id);
/* Tell the pool which owner label to use (first create/sweep). */
void eng_pool_owner(struct ci_be *be, const char *owner);

/* ---- the ABI operations (eng_backend.c) ---- */
int eng_be_init(const struct eng_profile *prof, const ci_host *host, ci_be **out, ci_call *call);
void eng_be_fini(ci_be *be);
int eng_be_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call);
int eng_be_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
		ci_call *call);
int eng_be_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	       ci_call *call);
int eng_be_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call);
int eng_be_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
		ci_call *call);
int eng_be_destroy(ci_be *be, const char *id, ci_call *call);
int eng_be_sweep(ci_be *be, const char *owner, int64_t older_than_unix, unsigned *n_removed,
		 ci_call *call);

#endif /* CI_ENGINE_ENGINE_H */
