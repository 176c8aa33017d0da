/*
 * exec: POST /containers/{id}/exec, POST /exec/{eid}/start read as a plain
 * HTTP body and demultiplexed into the sinks while it streams, then
 * GET /exec/{eid}/json for the exit code.
 *
 * Closing the connection does not stop the process (both engines), so the
 * time limit is enforced inside the container by a small sh wrapper:
 * `timeout -s KILL` runs the program in its own process group and kills that
 * group at the deadline; afterwards the wrapper kills every remaining process
 * of the sandbox user (kill -9 -1 as uid 1000 spares the container's
 * keep-alive, which runs as another uid), so nothing started by the program
 * survives the exec or keeps the stream open. If the stream still outlives
 * the deadline plus a grace period, the connection is dropped, a second exec
 * kills the user's processes, and as a last resort the container is killed
 * (the next call then reports CI_E_NOTFOUND and the core recreates it).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ci/backend_util.h"
#include "engine.h"

#define RESERVE_MS 1500 /* kept back from the call for inspect and clean-up */
#define KILL_MS	   2000

/* $1 timeout (s), $2 stdin mode n|b|f, $3 stdin data or file, $4... argv */
static const char wrapper[] =
	"t=$1 m=$2 a=$3; shift 3\n"
	"case $m in\n"
	"n) timeout -s KILL \"$t\" \"$@\" </dev/null & ;;\n"
	"b) printf %s \"$a\" | base64 -d | timeout -s KILL \"$t\" \"$@\" & ;;\n"
	"f) exec 5<\"$a\" || exit 125; rm -f -- \"$a\"\n"
	"   timeout -s KILL \"$t\" \"$@\" <&5 5<&- & ;;\n"
	"esac\n"
	"wait $!; r=$?; exec 5<&-\n"
	"i=0; while kill -9 -1 2>/dev/null && [ $i -lt 100 ]; do i=$((i+1)); done\n"
	"exit $r\n";

static char *b64(const void *data, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = tab[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		*o++ = tab[p[i + 2] & 63];
	}
	if (i < len) {
		*o++ = tab[p[i] >> 2];
		if (i + 1 < len) {
			*o++ = tab[(p[i] & 3) << 4 | p[i + 1] >> 4];
			*o++ = tab[(p[i + 1] & 15) << 2];
		} else {
			*o++ = tab[(p[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

void eng_cmd_free(char **cmd)
{
	char **p;

	if (!cmd)
		return;
	for (p = cmd; *p; p++)
		free(*p);
	free(cmd);
}

char **eng_wrap_cmd(const char *const *argv, int64_t timeout_ms, const char *stdin_mode,
		    const char *stdin_arg)
{
	size_t n = 0, i, k = 0;
	char **cmd, t[32];

	while (argv[n])
		n++;
	cmd = calloc(n + 8, sizeof(*cmd));
	if (!cmd)
		return NULL;
	if (timeout_ms > 0)
		snprintf(t, sizeof(t), "%lld.%03lld", (long long)(timeout_ms / 1000),
			 (long long)(timeout_ms % 1000));
	else
		snprintf(t, sizeof(t), "0");
	cmd[k++] = strdup("/bin/sh");
	cmd[k++] = strdup("-c");
	cmd[k++] = strdup(wrapper);
	cmd[k++] = strdup("ci-exec");
	cmd[k++] = strdup(t);
	cmd[k++] = strdup(stdin_mode);
	cmd[k++] = strdup(stdin_arg ? stdin_arg : "");
	for (i = 0; i < n; i++)
		cmd[k++] = strdup(argv[i]);
	for (i = 0; i < k; i++) {
		if (!cmd[i]) {
			eng_cmd_free(cmd);
			return NULL;
		}
	}
	return cmd;
}

void eng_status_to_result(int status, bool timed_out, ci_exec_result *res)
{
	res->timed_out = timed_out;
	if (timed_out) {
		res->exit_code = -1;
		res->signal = 9;
	} else if (status > 128 && status <= 128 + 64) {
		/* sh reports a signal death as 128+n */
		res->exit_code = -1;
		res->signal = status - 128;
	} else {
		res->exit_code = status;
		res->signal = 0;
	}
}

static int64_t now_ms(struct ci_be *be)
{
	return be->host->now_ms(be->host->hctx);
}

/* POST /containers/{id}/exec; *eid gets the exec id. */
static int exec_create(struct ci_be *be, const char *id, const char *const *cmd,
		       const struct eng_exec *x, char *eid, size_t eid_cap, ci_call *call)
{
	struct eng_req req = {.method = "POST"};
	struct eng_resp resp = {0};
	char path[CI_ID_MAX + 32];
	json_t *b, *jcmd, *jenv, *j = NULL;
	const char *s;
	char *body;
	int rc;

	jcmd = json_array();
	for (; *cmd; cmd++)
		json_array_append_new(jcmd, json_string(*cmd));
	jenv = json_array();
	for (const char *const *e = x->env; e && *e; e++)
		json_array_append_new(jenv, json_string(*e));
	b = json_pack("{s:b, s:b, s:b, s:b, s:o, s:o, s:s, s:s}", "AttachStdin", 0, "AttachStdout",
		      1, "AttachStderr", 1, "Tty", 0, "Cmd", jcmd, "Env", jenv, "WorkingDir",
		      x->cwd ? x->cwd : ENG_DATA_DIR, "User", x->user);
	body = b ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	if (!body)
		return ci_fail(call, CI_E_NOMEM, "exec: building the request failed");
	snprintf(path, sizeof(path), "/containers/%s/exec", id);
	req.path = path;
	req.body_json = body;
	rc = eng_call(be, &req, &resp, call);
	free(body);
	if (rc != CI_OK)
		goto out;
	if (resp.status == 404 || resp.status == 409) {
		/* Vanished or stopped: the core recreates the sandbox. */
		rc = ci_fail(call, CI_E_NOTFOUND, "sandbox %.12s is gone: %s", id,
			     eng_err_text(&resp));
		goto out;
	}
	if (resp.status != 201) {
		rc = eng_fail_status(be, &resp, call, "exec create");
		goto out;
	}
	j = json_loadb(eng_buf_str(&resp.body), resp.body.len, 0, NULL);
	s = json_string_value(json_object_get(j, "Id"));
	if (!s || eng_id_check(s, call) != CI_OK || strlen(s) >= eid_cap) {
		rc = ci_fail(call, CI_E_BACKEND, "exec create: no exec id in the answer");
		goto out;
	}
	snprintf(eid, eid_cap, "%s", s);
out:
	json_decref(j);
	eng_resp_release(&resp);
	return rc;
}

static int demux_write(void *ctx, int stream, const void *buf, size_t len)
{
	(void)stream;
	return eng_demux_feed(ctx, buf, len) ? 1 : 0;
}

/* GET /exec/{eid}/json: *running, *status. */
static int exec_inspect(struct ci_be *be, const char *eid, bool *running, int *status,
			ci_call *call)
{
	struct eng_req req = {.method = "GET"};
	struct eng_resp resp = {0};
	char path[CI_ID_MAX + 32];
	json_t *j;
	int rc;

	snprintf(path, sizeof(path), "/exec/%s/json", eid);
	req.path = path;
	rc = eng_call(be, &req, &resp, call);
	if (rc == CI_OK && resp.status != 200)
		rc = eng_fail_status(be, &resp, call, "exec inspect");
	if (rc == CI_OK) {
		j = json_loadb(eng_buf_str(&resp.body), resp.body.len, 0, NULL);
		*running = json_is_true(json_object_get(j, "Running"));
		*status = (int)json_integer_value(json_object_get(j, "ExitCode"));
		if (!j)
			rc = ci_fail(call, CI_E_BACKEND, "exec inspect: bad JSON");
		json_decref(j);
	}
	eng_resp_release(&resp);
	return rc;
}

/* Kill every process of the sandbox user through a second, short exec. */
static int kill_user_procs(struct ci_be *be, const char *id, const char *user, ci_call *call)
{
	static const char *const cmd[] = {"/bin/sh", "-c", "kill -9 -1; exit 0", NULL};
	struct eng_exec x = {.argv = cmd, .user = user};
	struct eng_req req = {.method = "POST", .body_json = "{\"Detach\":false,\"Tty\":false}"};
	struct eng_resp resp = {0};
	char eid[CI_ID_MAX], path[CI_ID_MAX + 32];
	ci_call sub = *call;
	int rc;

	sub.deadline_ms = now_ms(be) + KILL_MS;
	rc = exec_create(be, id, cmd, &x, eid, sizeof(eid), &sub);
	if (rc != CI_OK)
		return rc;
	snprintf(path, sizeof(path), "/exec/%s/start", eid);
	req.path = path;
	rc = eng_call(be, &req, &resp, &sub);
	eng_resp_release(&resp);
	return rc;
}

static int stdin_file(struct ci_be *be, const char *id, const struct eng_exec *x, char *path,
		      size_t cap, ci_call *call);

int eng_exec_run(struct ci_be *be, const char *id, const struct eng_exec *x, struct eng_exec_res *r,
		 ci_call *call)
{
	struct eng_demux dm;
	ci_sink dsink = {demux_write, &dm};
	struct eng_req req = {.method = "POST", .body_json = "{\"Detach\":false,\"Tty\":false}"};
	struct eng_resp resp = {0};
	char eid[CI_ID_MAX], path[CI_ID_MAX + 32], sfile[96] = "";
	char **cmd = NULL, *sarg = NULL;
	const char *mode = "n";
	int64_t t0 = now_ms(be), left, prog_ms, stream_end;
	bool running = false, gone = false;
	int rc, i;

	memset(r, 0, sizeof(*r));
	left = call->deadline_ms - t0;
	if (left <= 0)
		return ci_fail(call, CI_E_TIMEOUT, "exec: deadline already passed");

	/* The program's limit, clipped so that clean-up fits in the call. */
	prog_ms = x->timeout_ms > 0 ? x->timeout_ms : INT64_MAX;
	if (prog_ms > left - RESERVE_MS)
		prog_ms = left - RESERVE_MS > left / 2 ? left - RESERVE_MS : left / 2;
	if (prog_ms < 1)
		prog_ms = 1;
	stream_end = t0 + prog_ms + be->conf.exec_grace_ms;
	if (stream_end > call->deadline_ms - RESERVE_MS / 3)
		stream_end = call->deadline_ms - RESERVE_MS / 3;

	if (x->wrap) {
		if (x->stdin_len > ENG_STDIN_INLINE_MAX) {
			rc = stdin_file(be, id, x, sfile, sizeof(sfile), call);
			if (rc != CI_OK)
				return rc;
			mode = "f";
		} else if (x->stdin_len) {
			sarg = b64(x->stdin_buf, x->stdin_len);
			if (!sarg)
				return ci_fail(call, CI_E_NOMEM, "out of memory");
			mode = "b";
		}
		cmd = eng_wrap_cmd(x->argv, prog_ms, mode, sfile[0] ? sfile : sarg);
		free(sarg);
		if (!cmd)
			return ci_fail(call, CI_E_NOMEM, "out of memory");
	}
	rc = exec_create(be, id, cmd ? (const char *const *)cmd : x->argv, x, eid, sizeof(eid),
			 call);
	eng_cmd_free(cmd);
	if (rc != CI_OK)
		return rc;

	eng_demux_init(&dm, x->out);
	snprintf(path, sizeof(path), "/exec/%s/start", eid);
	req.path = path;
	req.sink = &dsink;
	req.deadline_ms = stream_end;
	rc = eng_call(be, &req, &resp, call);
	r->wall_ms = now_ms(be) - t0;
	if (rc == CI_OK && (resp.status == 404 || resp.status == 409)) {
		rc = ci_fail(call, CI_E_NOTFOUND, "sandbox %.12s is gone (exec start: HTTP %d)", id,
			     resp.status);
		goto out;
	}
	if (rc == CI_OK && resp.status != 200) {
		rc = ci_fail(call, CI_E_BACKEND, "exec start: HTTP %d", resp.status);
		goto out;
	}
	if (rc == CI_OK && dm.bad) {
		rc = ci_fail(call, CI_E_BACKEND, "exec start: malformed output stream");
		goto out;
	}
	if (rc != CI_OK && rc != CI_E_TIMEOUT)
		goto out;

	if (rc == CI_OK) {
		/* The stream ended: the process has exited (inspect may lag a hair). */
		for (i = 0; i < 20; i++) {
			rc = exec_inspect(be, eid, &running, &r->status, call);
			if (rc != CI_OK || !running)
				break;
			nanosleep(&(struct timespec){0, 5 * 1000000}, NULL);
		}
		if (rc != CI_OK)
			goto out;
	}
	if (rc == CI_E_TIMEOUT || running) {
		/* Stream outlived the deadline: kill from inside, then from outside. */
		ci_call sub = *call;

		be->host->log(be->host->hctx, CI_LOG_WARN,
			      "%s: exec in %.12s outlived its deadline; killing its processes",
			      be->prof->name, id);
		bool stopped = false;

		sub.deadline_ms = now_ms(be) + KILL_MS;
		if (kill_user_procs(be, id, x->user, &sub) == CI_OK) {
			sub.deadline_ms = now_ms(be) + KILL_MS;
			for (i = 0; i < 10 && !stopped; i++) {
				if (exec_inspect(be, eid, &running, &r->status, &sub) != CI_OK)
					break;
				stopped = !running;
				if (running)
					nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
			}
		} else {
			/* The kill exec failed: is the program perhaps done anyway? */
			stopped = exec_inspect(be, eid, &running, &r->status, &sub) == CI_OK &&
				  !running;
		}
		if (!stopped) {
			sub.deadline_ms = now_ms(be) + KILL_MS;
			be->host->log(be->host->hctx, CI_LOG_WARN,
				      "%s: killing container %.12s (exec would not stop)",
				      be->prof->name, id);
			eng_container_kill(be, id, &sub);
			gone = true;
		}
		r->timed_out = true;
		r->status = 137;
		rc = CI_OK;
		call->err[0] = '\0';
	}
	r->wall_ms = now_ms(be) - t0;
	/* timeout -s KILL dies by SIGKILL, so sh reports 137. */
	if (x->wrap && r->status == 137 && r->wall_ms >= prog_ms)
		r->timed_out = true;
	if (gone)
		be->host->log(be->host->hctx, CI_LOG_INFO,
			      "%s: sandbox %.12s killed; it will be recreated", be->prof->name, id);
out:
	eng_resp_release(&resp);
	return rc;
}

/* Large stdin goes in as a file that the wrapper opens and unlinks at once. */
struct mem_src {
	const unsigned char *p;
	size_t left;
};

static ssize_t mem_read(void *ctx, void *buf, size_t cap)
{
	struct mem_src *m = ctx;
	size_t n = m->left < cap ? m->left : cap;

	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

static int stdin_file(struct ci_be *be, const char *id, const struct eng_exec *x, char *path,
		      size_t cap, ci_call *call)
{
	struct mem_src m = {x->stdin_buf, x->stdin_len};
	ci_source src = {mem_read, &m, (int64_t)x->stdin_len, -1};
	unsigned char rnd[8];
	int i, n;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return ci_fail(call, CI_E_INTERNAL, "getrandom failed");
	n = snprintf(path, cap, ENG_DATA_DIR "/.ci-stdin-");
	for (i = 0; i < 8 && (size_t)n + 2 < cap; i++)
		n += snprintf(path + n, cap - (size_t)n, "%02x", rnd[i]);
	return eng_put(be, id, path, &src, 0600, call);
}
