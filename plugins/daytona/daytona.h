/*
 * Daytona backend: private declarations shared by the plugin's files.
 *
 * daytona.c       descriptor, init/fini, configuration
 * dt_http.c       buffers, URLs, one HTTP exchange with retries, errors
 * dt_sandbox.c    create/wait/destroy/sweep, toolbox URL cache, list shapes
 * dt_exec.c       the exec wrapper script and its output framing
 * dt_files.c      put (streamed multipart), get (streamed), list (find)
 */
#ifndef CI_PLUGINS_DAYTONA_H
#define CI_PLUGINS_DAYTONA_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ci/backend.h"

#define DT_SDK_VERSION "0.218.0"   /* the daemon gates features on it (daytona-api.md 2) */
#define DT_DATA_ROOT   "/mnt/data" /* the core's view of the data area */
#define DT_DELIM_LEN   32

struct dt_conf {
	char *api_url; /* no trailing '/' */
	char *api_key;
	char *target;
	char *snapshot; /* default snapshot, NULL = Daytona's default */
	char *data_dir; /* in-sandbox directory that backs /mnt/data */
	char *name_prefix;
	char *ca_file;
	int64_t cpu, memory_gb, disk_gb; /* only with images (buildInfo) */
	int64_t auto_stop_min, auto_delete_min;
	int64_t request_timeout_ms, create_timeout_ms, destroy_timeout_ms, exec_grace_ms;
	int64_t retries, retry_backoff_ms, poll_initial_ms, poll_max_ms;
	int64_t max_output_bytes;
	int get_refuse_symlinks;
};

struct dt_tbx_entry {
	struct dt_tbx_entry *next;
	char id[CI_ID_MAX];
	char *base; /* "<toolboxProxyUrl>/<id>" */
};

struct ci_be {
	const ci_host *host;
	struct dt_conf conf;
	pthread_mutex_t lock; /* guards tbx */
	struct dt_tbx_entry *tbx;
};

/* --- growable byte buffer (private malloc) ---------------------------- */
struct dt_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len, cap;
	size_t max; /* 0 = unlimited; append past it fails */
};

int dt_buf_add(struct dt_buf *b, const void *p, size_t n);
int dt_buf_str(struct dt_buf *b, const char *s);
int dt_buf_printf(struct dt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dt_buf_free(struct dt_buf *b);
/* Append s percent-encoded for a URL query value or path segment. */
int dt_buf_urlenc(struct dt_buf *b, const char *s);
/* Append s as one POSIX shell word in single quotes. */
int dt_buf_shquote(struct dt_buf *b, const char *s);
/* Append base64 of p. */
int dt_buf_b64(struct dt_buf *b, const void *p, size_t n);
/* Decode base64 (whitespace ignored) into out; -1 on bad input. */
int dt_b64_decode(const char *s, size_t n, struct dt_buf *out);

/* --- HTTP -------------------------------------------------------------- */
enum {
	DT_IDEMPOTENT = 1 << 0, /* retry 5xx/connect errors */
	DT_NO_RETRY = 1 << 1,	/* never retry (non-idempotent exec) */
	DT_UPLOAD = 1 << 2,	/* send "Expect:" (no 100-continue wait) */
	DT_EXEC_RETRY = 1 << 3, /* retry only what cannot have reached the daemon */
};

struct dt_req {
	const char *method;
	const char *url;
	const char *ctype; /* Content-Type of the body, or NULL */
	const char *accept;
	const void *body;
	size_t body_len;
	const ci_source *body_src;
	int (*rewind)(void *ctx); /* makes body_src readable again; NULL = cannot */
	void *rewind_ctx;
	const ci_sink *sink; /* success bodies go here instead of resp->body */
	size_t max_resp;     /* cap of the buffered body; 0 = 1 MiB */
	int flags;
	int64_t deadline_ms; /* 0 = request_timeout_ms from now (capped by the call's) */
};

struct dt_resp {
	int status;
	struct dt_buf body;
	int sent_to_sink; /* bytes already reached req->sink: no retry possible */
};

int dt_http(ci_be *be, const struct dt_req *req, struct dt_resp *resp, ci_call *call);
void dt_resp_free(struct dt_resp *resp);
/* Map a non-2xx answer to an rc with "what: HTTP n: message" in call->err. */
int dt_http_fail(ci_be *be, const struct dt_resp *resp, int tbx, const char *what, ci_call *call);
/* The "message" (or "error") of a Daytona error body, or "" (static/borrowed). */
void dt_err_message(const struct dt_resp *resp, char *out, size_t n);
/* The "code" of a toolbox error body into out, or "". */
void dt_err_code(const struct dt_resp *resp, char *out, size_t n);
json_t *dt_json(const struct dt_resp *resp);
/* Sleep up to ms, never past the call's deadline; -1 when the deadline is reached. */
int dt_sleep(ci_be *be, int64_t ms, const ci_call *call);
int64_t dt_now(ci_be *be);
/* 2*nbytes random hex digits and a NUL into out (nbytes <= 32). */
void dt_random_hex(char *out, size_t nbytes);

/* --- sandboxes --------------------------------------------------------- */
int dt_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call);
int dt_destroy(ci_be *be, const char *id, ci_call *call);
int dt_sweep(ci_be *be, const char *owner, int64_t older_than, unsigned *n, ci_call *call);
/* Toolbox base URL of id ("<proxy>/<id>"), malloc'ed into *out. */
int dt_toolbox_base(ci_be *be, const char *id, char **out, ci_call *call);
void dt_toolbox_forget(ci_be *be, const char *id);
/* Make id's sandbox started again (start when stopped, wait while transitional). */
int dt_ensure_started(ci_be *be, const char *id, int64_t deadline_ms, ci_call *call);
/*
 * One toolbox request for sandbox id: path is appended to its base URL.
 * Handles "sandbox gone" (CI_E_NOTFOUND), stopped sandboxes (start, retry
 * once) and bad credentials; returns CI_OK with resp->status for any
 * other answer, file-level 404s included.
 */
int dt_toolbox(ci_be *be, const char *id, const char *path, struct dt_req *req,
	       struct dt_resp *resp, ci_call *call);
int dt_check_id(const char *id, ci_call *call);

/*
 * Parse a GET /sandbox answer in either shape: {"items":[...],"nextCursor":..}
 * (>= v0.180) or a bare array (older). *items is borrowed from root;
 * *cursor is NULL at the last page (borrowed too).
 */
int dt_parse_list(json_t *root, json_t **items, const char **cursor);
/* "2026-11-21T22:31:11.662Z" -> unix seconds, -1 when unparsable. */
int64_t dt_parse_iso(const char *s);

/* --- exec -------------------------------------------------------------- */
struct dt_script {
	const char *const *argv;
	const char *const *env; /* "K=V" */
	const char *cwd;	/* in-sandbox (already mapped) */
	const void *stdin_buf;
	size_t stdin_len;
	int64_t timeout_ms;
	int64_t max_output;
	const char *nolink_path; /* refuse (status L) when it resolves through a link */
	const char *nolink_root; /* ... relative to this directory */
	char delim[DT_DELIM_LEN + 1];
};

struct dt_framed {
	char status; /* R ran, C cd failed, L symlink refused, N path missing, M no mktemp;
		      * in poll frames: R running, X exited, G state gone */
	int exit_code;
	int64_t wall_ms;	    /* -1 when the sandbox could not measure it */
	int64_t out_size, err_size; /* file sizes so far (all bytes, before any cap) */
	char dir[256];		    /* the exec's state directory in the sandbox */
	struct dt_buf out, err;	    /* the slices this frame carried (decoded) */
};

/*
 * One shell round trip: run script (it returns within about wait_ms) and
 * put what it printed into *result. The plugin's is /process/execute; the
 * unit tests run sh locally.
 */
typedef int (*dt_shell_fn)(void *ctx, const char *script, int64_t wait_ms, struct dt_buf *result,
			   ci_call *call);

void dt_make_delim(char delim[DT_DELIM_LEN + 1]);
/* The first script of an exec: start the program in the background, then poll. */
int dt_script_build(struct dt_buf *b, const struct dt_script *s, int64_t chunk, int64_t wait_ms,
		    ci_call *call);
/* A later poll: wait up to wait_ms for output past the offsets or the exit. */
int dt_poll_build(struct dt_buf *b, const char *delim, const char *dir, const int64_t off[2],
		  const int64_t chunk[2], int64_t wait_ms);
/* Find and decode the last frame in result; -1 when there is none. */
int dt_framed_parse(const char *result, size_t len, const char *delim, struct dt_framed *f);
void dt_framed_free(struct dt_framed *f);
/*
 * Run s to completion through shell, streaming output into sink (or, when
 * sink is NULL, collecting up to s->max_output per stream into f->out and
 * f->err). f->status, exit_code, wall_ms and sizes describe the run.
 */
int dt_exec_loop(ci_be *be, dt_shell_fn shell, void *sctx, struct dt_script *s, const ci_sink *sink,
		 struct dt_framed *f, int *timed_out, ci_call *call);
/* dt_exec_loop through the sandbox's /process/execute, collecting output. */
int dt_run_framed(ci_be *be, const char *id, struct dt_script *s, struct dt_framed *f,
		  int *timed_out, ci_call *call);
int dt_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
	    ci_call *call);

/* --- files ------------------------------------------------------------- */
/*
 * Check a core path (absolute, under /mnt/data, no "." or ".." parts) and
 * map it into the sandbox's data_dir. allow_root: /mnt/data itself is ok.
 */
int dt_map_path(ci_be *be, const char *path, int allow_root, struct dt_buf *out, ci_call *call);
int dt_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	   ci_call *call);
int dt_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call);
int dt_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx, ci_call *call);
/* Parse find -printf '%y %s %T@ %m %P\0' output and report each entry. */
int dt_list_parse(const char *data, size_t len, ci_entry_cb cb, void *ctx);

#endif /* CI_PLUGINS_DAYTONA_H */
