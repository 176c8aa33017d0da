#include "exec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "ci/backend.h"
#include "conf.h"
#include "exec_priv.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "sandbox.h"
#include "store.h"

#define CALL_SLACK_MS 15000 /* backend overhead allowed beyond the program's own limit */

extern const char ci_prelude_python[];
extern const unsigned long ci_prelude_python_len;
extern const char ci_prelude_r[];
extern const unsigned long ci_prelude_r_len;

/* Output of one stream, capped; the marker tells the reader what was cut. */
struct capture {
	char *buf;
	size_t len, cap, limit;
	uint64_t dropped;
};

struct captures {
	struct capture out, err;
	/* Inline mode: the last bytes of stderr, where the runner's manifest ends up. */
	char *tail;
	size_t tail_len, tail_cap;
};

#define MANIFEST_TAIL_MAX (2u << 20)

static void tail_push(struct captures *c, const char *buf, size_t len)
{
	if (!c->tail_cap)
		return;
	if (len >= c->tail_cap) {
		memcpy(c->tail, buf + len - c->tail_cap, c->tail_cap);
		c->tail_len = c->tail_cap;
		return;
	}
	if (c->tail_len + len > c->tail_cap) {
		size_t drop = c->tail_len + len - c->tail_cap;

		memmove(c->tail, c->tail + drop, c->tail_len - drop);
		c->tail_len -= drop;
	}
	memcpy(c->tail + c->tail_len, buf, len);
	c->tail_len += len;
}

static int capture_append(struct capture *k, const char *buf, size_t len)
{
	if (k->len + len + 1 > k->cap) {
		size_t cap = k->cap ? k->cap : 4096;
		char *n;

		while (cap < k->len + len + 1)
			cap *= 2;
		n = realloc(k->buf, cap);
		if (!n)
			return 1;
		k->buf = n;
		k->cap = cap;
	}
	memcpy(k->buf + k->len, buf, len);
	k->len += len;
	k->buf[k->len] = 0;
	return 0;
}

static int capture_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct captures *c = ctx;
	struct capture *k = stream == CI_STREAM_STDERR ? &c->err : &c->out;
	size_t take = len;

	if (stream == CI_STREAM_STDERR)
		tail_push(c, buf, len);

	if (k->len + take > k->limit) {
		take = k->limit > k->len ? k->limit - k->len : 0;
		k->dropped += len - take;
	}
	/* Keep accepting (and counting what is dropped); stop only on OOM. */
	return take ? capture_append(k, buf, take) : 0;
}

/* A line of ours after the program's output, past the cap. */
static void capture_note(struct capture *k, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void capture_note(struct capture *k, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if (k->len && k->buf[k->len - 1] != '\n')
		capture_append(k, "\n", 1);
	capture_append(k, line, strlen(line));
	capture_append(k, "\n", 1);
}

static ssize_t fd_read(void *ctx, void *buf, size_t cap)
{
	return read(*(int *)ctx, buf, cap);
}

struct mem_src {
	const char *p;
	size_t left;
};

static ssize_t mem_read(void *ctx, void *buf, size_t cap)
{
	struct mem_src *m = ctx;
	size_t n = cap < m->left ? cap : m->left;

	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

int ci_exec_put_bytes(struct ci_exec_ctx *x, const char *path, const char *data, size_t len,
		      uint32_t mode)
{
	struct mem_src m = {data, len};
	ci_source src = {.read = mem_read, .ctx = &m, .size = (int64_t)len, .fd = -1};
	ci_call call;
	int rc = ci_plugin_put(x->app->plugin, &call, x->req->rid, x->deadline_ms, x->sb->id, path,
			       &src, mode);

	if (rc)
		snprintf(x->err, sizeof(x->err), "cannot write %s into the sandbox: %s", path,
			 call.err);
	return rc;
}

/* The preludes and the program text, under /mnt/data/.ci (never reported). */
static int put_program(struct ci_exec_ctx *x)
{
	char path[256];
	int rc;

	if (!x->sb->prelude_ready) {
		rc = ci_exec_put_bytes(x, CI_EXEC_META_DIR "/py/sitecustomize.py",
				       ci_prelude_python, ci_prelude_python_len, 0644);
		if (!rc)
			rc = ci_exec_put_bytes(x, CI_EXEC_META_DIR "/Rprofile", ci_prelude_r,
					       ci_prelude_r_len, 0644);
		if (rc)
			return rc;
		x->sb->prelude_ready = true;
	}
	snprintf(path, sizeof(path), CI_EXEC_META_DIR "/%s", x->lang->source_file);
	return ci_exec_put_bytes(x, path, x->req->code, strlen(x->req->code), 0644);
}

/* Copy the inputs the sandbox does not hold yet (same path and hash = skip). */
static int sync_inputs(struct ci_exec_ctx *x)
{
	char path[600];

	for (int i = 0; i < x->n_inputs; i++) {
		const struct ci_exec_resolved *in = &x->inputs[i];
		struct ci_sandbox_file *known = ci_sandbox_file_find(x->sb, in->name);
		ci_source src = {.read = fd_read, .size = (int64_t)in->info.size};
		ci_call call;
		int fd, rc;

		if (known && !strcmp(known->sha256, in->info.sha256))
			continue;
		rc = ci_store_file_open(x->app->store, in->info.sid, in->info.fid, x->req->scope,
					&fd, NULL);
		if (rc) {
			snprintf(x->err, sizeof(x->err), "input file %s expired meanwhile",
				 in->name);
			return CI_E_NOTFOUND;
		}
		src.fd = fd;
		src.ctx = &fd;
		snprintf(path, sizeof(path), "/mnt/data/%s", in->name);
		rc = ci_plugin_put(x->app->plugin, &call, x->req->rid, x->deadline_ms, x->sb->id,
				   path, &src, 0644);
		close(fd);
		if (rc) {
			snprintf(x->err, sizeof(x->err), "cannot copy %s into the sandbox: %s",
				 in->name, call.err);
			return rc;
		}
		/* mtime unknown until listed: the next listing checks the hash. */
		ci_sandbox_file_set(x->sb, in->name, (int64_t)in->info.size, -1, in->info.sha256);
		x->n_put++;
	}
	return CI_OK;
}

/*
 * In-sandbox setup for backends where each file copy is a round trip (a
 * container engine, a remote API): the program text arrives on stdin and the
 * preludes in the environment, written by the same shell that then runs the
 * program: one exec per run instead of an upload (and its checks) per file.
 */
#define INLINE_SETUP                                                                      \
	"d=" CI_EXEC_META_DIR "; mkdir -p \"$d/py\" && "                                  \
	"{ [ -f \"$d/py/sitecustomize.py\" ] || printf %s \"$CI_PRELUDE_PY\" "            \
	">\"$d/py/sitecustomize.py\"; } && "                                              \
	"{ [ -f \"$d/Rprofile\" ] || printf %s \"$CI_PRELUDE_R\" >\"$d/Rprofile\"; } && " \
	"IFS= read -r ci_n && cat >\"$CI_SOURCE\" || exit 125; "                          \
	"unset CI_PRELUDE_PY CI_PRELUDE_R d; "
/*
 * ... and after the program, the manifest of /mnt/data on stderr between
 * markers made of a per-run nonce (read from stdin: never in the program's
 * environment), so no listing round trip is needed (exec_manifest.c).
 */
#define INLINE_MANIFEST                                                      \
	"ci_rc=$?; printf '\\n%s\\n' \"$ci_n\" >&2; "                        \
	"{ find /mnt/data -mindepth 1 -path " CI_EXEC_META_DIR " -prune -o " \
	"-printf '%y %s %T@ %m %P\\0' 2>/dev/null; } >&2; "                  \
	"printf '%s-end %d\\n' \"$ci_n\" $? >&2; exit $ci_rc"
#define INLINE_MAX_BYTES (512 * 1024)

static bool program_inline(const struct ci_exec_ctx *x)
{
	return !x->app->host_toolchains && (x->app->plugin->desc.caps & CI_CAP_STDIN) &&
	       strlen(x->req->code) <= INLINE_MAX_BYTES;
}

static char *build_script(const struct ci_lang *lang, bool inline_setup)
{
	const char *setup = inline_setup ? INLINE_SETUP : "";
	size_t n = strlen(setup) + strlen(lang->run) + (lang->compile ? strlen(lang->compile) : 0) +
		   32;
	char *s = malloc(n);

	if (!s)
		return NULL;
	if (inline_setup) {
		char *grown;

		n += sizeof(INLINE_MANIFEST);
		grown = realloc(s, n);
		if (!grown) {
			free(s);
			return NULL;
		}
		s = grown;
		snprintf(s, n, "%s{ %s%s%s \"$@\"; } </dev/null; %s", setup,
			 lang->compile ? lang->compile : "", lang->compile ? " && " : "", lang->run,
			 INLINE_MANIFEST);
		return s;
	}
	/* One shell, one exec: compile (if any), then replace the shell by the program. */
	if (lang->compile)
		snprintf(s, n, "%s && exec %s \"$@\"", lang->compile, lang->run);
	else
		snprintf(s, n, "exec %s \"$@\"", lang->run);
	return s;
}

/* "NAME=<bytes>" for an environment entry; NULL when out of memory. */
static char *env_entry(const char *name, const char *value, size_t len)
{
	size_t nl = strlen(name);
	char *e = malloc(nl + len + 2);

	if (e) {
		memcpy(e, name, nl);
		e[nl] = '=';
		memcpy(e + nl + 1, value, len);
		e[nl + 1 + len] = 0;
	}
	return e;
}

static bool is_plain_word(const char *w, size_t n)
{
	if (!n || memchr(w, '=', n))
		return false; /* empty, or an environment assignment: needs a shell */
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:+-",
			    w[i]))
			return false;
	return true;
}

/*
 * "python3 -X utf8 \"$CI_SOURCE\"" needs no shell: split it into argv
 * (saving a shell start per run). Returns the count, or -1 when the
 * command uses anything a shell must interpret.
 */
static int split_plain(const char *cmd, const char *source, char *buf, size_t cap,
		       const char **argv, int max)
{
	static const char src_tok[] = "\"$CI_SOURCE\"";
	int n = 0;
	size_t used = 0;

	for (const char *p = cmd; *p;) {
		size_t len;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		len = strcspn(p, " ");
		if (n == max)
			return -1;
		if (len == sizeof(src_tok) - 1 && !memcmp(p, src_tok, len) && n > 0) {
			argv[n++] = source;
		} else if (is_plain_word(p, len) && used + len + 1 <= cap) {
			memcpy(buf + used, p, len);
			buf[used + len] = 0;
			argv[n++] = buf + used;
			used += len + 1;
		} else {
			return -1;
		}
		p += len;
	}
	return n;
}

static int run_program(struct ci_exec_ctx *x, struct captures *cap, ci_exec_result *res)
{
	const struct ci_conf *conf = x->app->conf;
	const bool inline_setup = program_inline(x);
	char source[280], source_env[300], words[256];
	const char *env[] = {source_env,
			     "PYTHONPATH=" CI_EXEC_META_DIR "/py:/mnt/data",
			     "MPLBACKEND=Agg",
			     "MPLCONFIGDIR=/tmp/matplotlib",
			     "R_PROFILE_USER=" CI_EXEC_META_DIR "/Rprofile",
			     "CI_OUTPUT_DIR=/mnt/data",
			     "HOME=/mnt/data",
			     NULL, /* the preludes, inline only */
			     NULL,
			     NULL};
	const char **argv = calloc((size_t)x->req->n_args + 17, sizeof(*argv));
	ci_sink sink = {.write = capture_write, .ctx = cap};
	ci_exec_spec spec = {.struct_size = sizeof(spec)};
	char *script = build_script(x->lang, inline_setup);
	char *pre_py = NULL, *pre_r = NULL, *stdin_buf = NULL;
	ci_call call;
	int rc, n = 0;

	if (inline_setup) {
		size_t code_len = strlen(x->req->code);

		pre_py = env_entry("CI_PRELUDE_PY", ci_prelude_python, ci_prelude_python_len);
		pre_r = env_entry("CI_PRELUDE_R", ci_prelude_r, ci_prelude_r_len);
		env[7] = pre_py;
		env[8] = pre_r;
		ci_nanoid(x->nonce);
		stdin_buf = malloc(sizeof(x->nonce) + code_len);
		cap->tail = malloc(MANIFEST_TAIL_MAX);
		cap->tail_cap = cap->tail ? MANIFEST_TAIL_MAX : 0;
		if (stdin_buf) {
			memcpy(stdin_buf, x->nonce, sizeof(x->nonce) - 1);
			stdin_buf[sizeof(x->nonce) - 1] = '\n';
			memcpy(stdin_buf + sizeof(x->nonce), x->req->code, code_len);
			spec.stdin_buf = stdin_buf;
			spec.stdin_len = sizeof(x->nonce) + code_len;
		}
	}
	if (!argv || !script || (inline_setup && (!pre_py || !pre_r || !stdin_buf))) {
		rc = CI_E_NOMEM;
		goto out;
	}
	snprintf(source, sizeof(source), CI_EXEC_META_DIR "/%s", x->lang->source_file);
	snprintf(source_env, sizeof(source_env), "CI_SOURCE=%s", source);
	n = x->lang->compile || inline_setup
		    ? -1
		    : split_plain(x->lang->run, source, words, sizeof(words), argv, 16);
	if (n < 0) {
		n = 0;
		argv[n++] = "/bin/sh";
		argv[n++] = "-c";
		argv[n++] = script;
		argv[n++] = "sh";
	}
	for (int i = 0; i < x->req->n_args; i++)
		argv[n++] = x->req->args[i];
	spec.argv = argv;
	spec.env = env;
	spec.cwd = "/mnt/data";
	spec.timeout_ms = x->timeout_ms;
	spec.out = &sink;
	cap->out.limit = cap->err.limit = (size_t)conf->max_output_bytes;
	*res = (ci_exec_result){.struct_size = sizeof(*res)};
	rc = ci_plugin_exec(x->app->plugin, &call, x->req->rid, x->deadline_ms, x->sb->id, &spec,
			    res);
	if (rc)
		snprintf(x->err, sizeof(x->err), "the backend could not run the program: %s",
			 call.err);
out:
	free(stdin_buf);
	free(pre_py);
	free(pre_r);
	free(argv);
	free(script);
	return rc;
}

static void finish_output(struct ci_exec_ctx *x, struct captures *cap, const ci_exec_result *res,
			  struct ci_exec_resp *resp)
{
	if (cap->out.dropped)
		capture_note(&cap->out, "[output truncated: %llu more bytes not shown]",
			     (unsigned long long)cap->out.dropped);
	if (cap->err.dropped)
		capture_note(&cap->err, "[output truncated: %llu more bytes not shown]",
			     (unsigned long long)cap->err.dropped);
	if (res->timed_out)
		capture_note(&cap->err,
			     "Execution timed out after %lld seconds and was stopped; the output "
			     "above is partial.",
			     (long long)(x->timeout_ms / 1000));
	if (x->skipped_outputs)
		capture_note(&cap->err, "[%d generated files were not kept: limit %d per run]",
			     x->skipped_outputs, x->app->conf->max_files_per_run);
	resp->out = cap->out.buf ? cap->out.buf : strdup("");
	resp->out_len = cap->out.len;
	resp->err = cap->err.buf ? cap->err.buf : strdup("");
	resp->err_len = cap->err.len;
	resp->exit_code = res->exit_code;
	resp->signal = res->signal;
	resp->timed_out = res->timed_out;
	resp->wall_ms = res->wall_ms;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t choose_timeout(const struct ci_conf *conf, int64_t asked_ms)
{
	int64_t max = (int64_t)conf->max_run_timeout_s * 1000;

	if (asked_ms <= 0)
		return (int64_t)conf->default_run_timeout_s * 1000;
	return asked_ms < max ? asked_ms : max;
}

/* Everything after input validation, on one sandbox. */
/*
 * Inline mode: cut the runner's manifest off the end of stderr (so the
 * client never sees it, whatever the output cap dropped) and return its
 * records, or NULL when it is missing, incomplete or unreadable.
 */
static const char *take_manifest(struct ci_exec_ctx *x, struct captures *cap, size_t *len)
{
	const char *body;
	size_t start, block;
	bool complete;

	if (!cap->tail_len || !ci_exec_manifest_find(cap->tail, cap->tail_len, x->nonce, &start,
						     &body, len, &complete))
		return NULL;
	block = cap->tail_len - start;
	if (cap->err.dropped >= block) {
		cap->err.dropped -= block;
	} else {
		cap->err.len -= block - cap->err.dropped;
		cap->err.dropped = 0;
		if (cap->err.buf)
			cap->err.buf[cap->err.len] = 0;
	}
	return complete ? body : NULL;
}

static int run_in_sandbox(struct ci_exec_ctx *x, struct ci_exec_resp *resp, bool *lost)
{
	struct captures cap = {0};
	const char *manifest;
	size_t manifest_len = 0;
	ci_exec_result res;
	int rc;

	int64_t t0 = now_us(), t1, t2;

	*lost = false;
	x->deadline_ms = ci_now_ms() + x->timeout_ms + CALL_SLACK_MS;
	rc = program_inline(x) ? CI_OK : put_program(x);
	if (!rc)
		rc = sync_inputs(x);
	t1 = now_us();
	if (!rc)
		rc = run_program(x, &cap, &res);
	t2 = now_us();
	x->us_sync = t1 - t0;
	x->us_run = t2 - t1;
	if (rc == CI_E_NOTFOUND) {
		*lost = true;
		goto out;
	}
	if (rc)
		goto out;
	x->deadline_ms = ci_now_ms() + CALL_SLACK_MS * 4;
	manifest = take_manifest(x, &cap, &manifest_len);
	rc = ci_exec_collect_outputs(x, resp, manifest, manifest_len);
	x->us_collect = now_us() - t2;
	if (rc == CI_E_NOTFOUND)
		*lost = true;
	if (rc)
		goto out;
	free(cap.tail);
	finish_output(x, &cap, &res, resp);
	return CI_OK;
out:
	free(cap.tail);
	free(cap.out.buf);
	free(cap.err.buf);
	return rc;
}

int ci_exec_run(struct ci_app *app, const struct ci_exec_req *req, struct ci_exec_resp *resp,
		int *http_status, char *err, size_t errlen)
{
	struct ci_exec_ctx x = {.app = app, .req = req};
	const char **hints = NULL, *sandbox_kind;
	char sandbox_scope[CI_STORE_OWNER_MAX + 130];
	bool created, lost;
	int rc, attempt;

	memset(resp, 0, sizeof(*resp));
	*http_status = 500;
	rc = ci_exec_prepare(&x, http_status, err, errlen);
	if (rc) {
		ci_exec_ctx_release(&x);
		return rc;
	}
	x.timeout_ms = choose_timeout(app->conf, req->timeout_ms);
	/* The store creates the session with the first output; most runs have none. */
	ci_nanoid(resp->session_id);
	hints = calloc((size_t)x.n_inputs + 1, sizeof(*hints));
	if (!hints) {
		rc = CI_E_NOMEM;
		goto out;
	}
	/*
	 * Container backends need an image per runtime; on the host's own
	 * toolchains one sandbox serves every language of a conversation.
	 */
	sandbox_kind = app->host_toolchains ? "host" : x.lang->runtime;
	if (req->user)
		snprintf(sandbox_scope, sizeof(sandbox_scope), "%s%c%.128s", req->principal,
			 CI_SCOPE_SEP, req->user);
	else
		snprintf(sandbox_scope, sizeof(sandbox_scope), "%s", req->principal);
	hints[0] = req->session_hint;
	for (int i = 0; i < x.n_inputs; i++)
		hints[i + 1] = x.inputs[i].info.sid;
	/* A sandbox that vanished underneath us is replaced once, transparently. */
	for (attempt = 0; attempt < 2; attempt++) {
		rc = ci_sandboxes_acquire(app->sandboxes, sandbox_scope, sandbox_kind, hints,
					  x.n_inputs + 1, req->rid, &x.sb, &created, x.err,
					  sizeof(x.err));
		if (rc)
			break;
		rc = run_in_sandbox(&x, resp, &lost);
		ci_sandboxes_release(app->sandboxes, x.sb, rc ? NULL : resp->session_id, lost);
		x.sb = NULL;
		if (!lost)
			break;
		ci_log(CI_LL_WARN, "exec.sandbox_lost", "rid=%s attempt=%d err=\"%s\"", req->rid,
		       attempt + 1, x.err);
		ci_exec_outputs_discard(&x, resp);
	}
	if (rc)
		snprintf(err, errlen, "%s", x.err[0] ? x.err : "execution failed");
	else
		ci_log(CI_LL_INFO, "exec.done",
		       "rid=%s session=%s lang=%s exit=%d signal=%d timed_out=%d wall_ms=%lld "
		       "puts=%d outputs=%d new_sandbox=%d us_sync=%lld us_run=%lld us_collect=%lld",
		       req->rid, resp->session_id, x.lang->name, resp->exit_code, resp->signal,
		       resp->timed_out, (long long)resp->wall_ms, x.n_put, resp->n_files, created,
		       (long long)x.us_sync, (long long)x.us_run, (long long)x.us_collect);
out:
	free(hints);
	ci_exec_ctx_release(&x);
	if (rc) {
		*http_status = rc == CI_E_NOMEM ? 500 : ci_rc_http_status(rc);
		ci_exec_resp_release(resp);
	}
	return rc;
}

void ci_exec_resp_release(struct ci_exec_resp *resp)
{
	free(resp->out);
	free(resp->err);
	free(resp->files);
	for (int i = 0; i < resp->n_deleted; i++)
		free(resp->deleted[i]);
	free(resp->deleted);
	memset(resp->session_id, 0, sizeof(resp->session_id));
	resp->out = resp->err = NULL;
	resp->files = NULL;
	resp->deleted = NULL;
	resp->n_files = resp->n_deleted = 0;
}
