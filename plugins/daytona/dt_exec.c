/*
 * Daytona backend: exec through the toolbox's /process/execute.
 *
 * The daemon returns stdout and stderr interleaved in one string, so the
 * program never writes into that string at all: a small POSIX-sh wrapper
 * runs it with stdout, stderr (and stdin) redirected to files in a fresh
 * mktemp directory, under `timeout -s KILL` (which kills the program's
 * whole process group), and then prints one frame:
 *
 *   \n<D> <status> <exit> <t0 ns> <t1 ns> <stdout bytes> <stderr bytes>\n
 *   base64(first max_output bytes of stdout)
 *   <D>-\n
 *   base64(first max_output bytes of stderr)
 *   <D>.\n
 *
 * D is 32 random hex digits chosen per call. Whatever else the shell says
 * (or a program manages to write to the daemon's pipe) is outside the last
 * frame and ignored; program output is base64, so no byte it prints can be
 * mistaken for the frame, and binary output survives the daemon's JSON.
 */
#define _GNU_SOURCE /* memmem */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "daytona.h"

void dt_make_delim(char delim[DT_DELIM_LEN + 1])
{
	dt_random_hex(delim, DT_DELIM_LEN / 2);
}

static int dt_env_name_ok(const char *s, size_t n)
{
	size_t i;

	if (!n || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return 0;
	}
	return 1;
}

static int dt_script_env(struct dt_buf *b, const char *const *env, ci_call *call)
{
	size_t i;

	for (i = 0; env && env[i]; i++) {
		const char *eq = strchr(env[i], '=');

		if (!eq || !dt_env_name_ok(env[i], (size_t)(eq - env[i])))
			return ci_fail(call, CI_E_INVAL, "exec: bad env entry '%.40s'", env[i]);
		if (dt_buf_add(b, env[i], (size_t)(eq - env[i])) || dt_buf_add(b, "=", 1) ||
		    dt_buf_shquote(b, eq + 1) || dt_buf_str(b, "; export ") ||
		    dt_buf_add(b, env[i], (size_t)(eq - env[i])) || dt_buf_str(b, "\n"))
			return ci_fail(call, CI_E_NOMEM, "out of memory");
	}
	return CI_OK;
}

int dt_script_build(struct dt_buf *b, const struct dt_script *s, ci_call *call)
{
	const char *D = s->delim;
	int64_t t = s->timeout_ms > 0 ? s->timeout_ms : 1;
	size_t i;
	int bad = 0, rc;

	if (!s->argv || !s->argv[0] || !s->argv[0][0])
		return ci_fail(call, CI_E_INVAL, "exec: empty argv");
	bad |= dt_buf_printf(b,
			     "ci_d=$(mktemp -d 2>/dev/null) || "
			     "{ printf '\\n%s M 125 x x 0 0\\n%s-\\n%s.\\n'; exit 125; }\n"
			     "ci_t=$(command -v timeout)\nci_s=R\nci_e=0\n"
			     ": >\"$ci_d/o\"; : >\"$ci_d/e\"; : >\"$ci_d/i\"\n",
			     D, D, D);
	if (s->nolink_path) {
		size_t rl = strlen(s->nolink_root);

		/* refuse paths that resolve through a symlink below the root */
		bad |= dt_buf_str(b, "ci_r=$(realpath -e -- ");
		bad |= dt_buf_shquote(b, s->nolink_path);
		bad |= dt_buf_str(b, " 2>/dev/null) || ci_s=N\n"
				     "if [ \"$ci_s\" = R ]; then ci_b=$(realpath -e -- ");
		bad |= dt_buf_shquote(b, s->nolink_root);
		bad |= dt_buf_str(b, " 2>/dev/null)\n  [ \"$ci_r\" = \"$ci_b\"");
		bad |= dt_buf_shquote(b, strncmp(s->nolink_path, s->nolink_root, rl)
						 ? ""
						 : s->nolink_path + rl);
		bad |= dt_buf_str(b, " ] || ci_s=L\nfi\n");
	}
	if (s->stdin_len) {
		bad |= dt_buf_str(b, "printf '%s' '");
		bad |= dt_buf_b64(b, s->stdin_buf, s->stdin_len);
		bad |= dt_buf_str(b, "' | base64 -d >\"$ci_d/i\"\n");
	}
	bad |= dt_buf_str(b, "ci_t0=$(date +%s%N 2>/dev/null)\n"
			     "if [ \"$ci_s\" = R ]; then\n  if cd -- ");
	bad |= dt_buf_shquote(b, s->cwd ? s->cwd : "/");
	bad |= dt_buf_str(b, " 2>/dev/null; then\n  (\n");
	if (bad)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	rc = dt_script_env(b, s->env, call);
	if (rc)
		return rc;
	bad |= dt_buf_str(b, "set --");
	for (i = 0; s->argv[i]; i++) {
		bad |= dt_buf_add(b, " ", 1);
		bad |= dt_buf_shquote(b, s->argv[i]);
	}
	bad |= dt_buf_printf(b,
			     "\nif [ -n \"$ci_t\" ]; then exec \"$ci_t\" -s KILL %lld.%03lld \"$@\"; "
			     "else exec \"$@\"; fi\n"
			     "  ) <\"$ci_d/i\" >\"$ci_d/o\" 2>\"$ci_d/e\"\n  ci_e=$?\n"
			     "  else ci_s=C; ci_e=127; fi\nfi\n"
			     "ci_t1=$(date +%%s%%N 2>/dev/null)\n"
			     "printf '\\n%%s %%s %%s %%s %%s %%s %%s\\n' '%s' \"$ci_s\" \"$ci_e\" "
			     "\"${ci_t0:-x}\" \"${ci_t1:-x}\" \"$(wc -c <\"$ci_d/o\")\" "
			     "\"$(wc -c <\"$ci_d/e\")\"\n"
			     "head -c %lld \"$ci_d/o\" | base64\nprintf '%%s-\\n' '%s'\n"
			     "head -c %lld \"$ci_d/e\" | base64\nprintf '%%s.\\n' '%s'\n"
			     "rm -rf \"$ci_d\"\nexit 0\n",
			     (long long)(t / 1000), (long long)(t % 1000), D,
			     (long long)s->max_output, D, (long long)s->max_output, D);
	return bad ? ci_fail(call, CI_E_NOMEM, "out of memory") : CI_OK;
}

void dt_framed_free(struct dt_framed *f)
{
	dt_buf_free(&f->out);
	dt_buf_free(&f->err);
}

static const char *dt_memmem_last(const char *h, size_t hl, const char *n, size_t nl)
{
	const char *last = NULL, *p = h;

	while (hl >= nl) {
		const char *q = memmem(p, hl, n, nl);

		if (!q)
			break;
		last = q;
		hl -= (size_t)(q - p) + 1;
		p = q + 1;
	}
	return last;
}

static int64_t dt_ns(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	return (*s && !*end && v > 0) ? v : -1;
}

int dt_framed_parse(const char *res, size_t len, const char *delim, struct dt_framed *f)
{
	char head[DT_DELIM_LEN + 3], mid[DT_DELIM_LEN + 3], end[DT_DELIM_LEN + 3];
	char line[256], t0[64], t1[64], st;
	const char *h, *eol, *m, *e, *body;
	long long osz, esz;
	int ec;

	memset(f, 0, sizeof(*f));
	snprintf(head, sizeof(head), "\n%s ", delim);
	snprintf(mid, sizeof(mid), "%s-\n", delim);
	snprintf(end, sizeof(end), "%s.\n", delim);
	h = dt_memmem_last(res, len, head, strlen(head));
	if (!h)
		return -1;
	body = h + strlen(head);
	eol = memchr(body, '\n', len - (size_t)(body - res));
	if (!eol || (size_t)(eol - body) >= sizeof(line))
		return -1;
	memcpy(line, body, (size_t)(eol - body));
	line[eol - body] = '\0';
	if (sscanf(line, "%c %d %63s %63s %lld %lld", &st, &ec, t0, t1, &osz, &esz) != 6)
		return -1;
	body = eol + 1;
	m = memmem(body, len - (size_t)(body - res), mid, strlen(mid));
	if (!m)
		return -1;
	e = memmem(m, len - (size_t)(m - res), end, strlen(end));
	if (!e)
		return -1;
	f->status = st;
	f->exit_code = ec;
	f->out_size = osz;
	f->err_size = esz;
	f->wall_ms = (dt_ns(t0) > 0 && dt_ns(t1) >= dt_ns(t0)) ? (dt_ns(t1) - dt_ns(t0)) / 1000000
							       : -1;
	if (dt_buf_add(&f->out, "", 0) || dt_buf_add(&f->err, "", 0) ||
	    dt_b64_decode(body, (size_t)(m - body), &f->out) ||
	    dt_b64_decode(m + strlen(mid), (size_t)(e - m - strlen(mid)), &f->err)) {
		dt_framed_free(f);
		return -1;
	}
	return 0;
}

int dt_run_framed(ci_be *be, const char *id, struct dt_script *s, struct dt_framed *f,
		  int *timed_out, ci_call *call)
{
	struct dt_buf script = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "POST", .ctype = "application/json", .flags = DT_EXEC_RETRY};
	int64_t start = dt_now(be), local;
	json_t *body = NULL, *j = NULL;
	const char *result;
	char *js = NULL;
	int rc;

	memset(f, 0, sizeof(*f));
	*timed_out = 0;
	dt_make_delim(s->delim);
	rc = dt_script_build(&script, s, call);
	if (rc)
		goto out;
	/* the daemon's own limit is a backstop behind `timeout` in the script */
	body = json_pack("{s:s, s:I}", "command", script.data, "timeout",
			 (json_int_t)((s->timeout_ms + 999) / 1000 +
				      (be->conf.exec_grace_ms + 999) / 1000 + 1));
	js = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!js) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	local = start + s->timeout_ms + be->conf.exec_grace_ms;
	req.body = js;
	req.body_len = strlen(js);
	req.deadline_ms = local;
	req.max_resp = (size_t)(s->max_output / 3 * 4 + 1024) * 2 + (1u << 20);
	rc = dt_toolbox(be, id, "/process/execute", &req, &resp, call);
	if (rc == CI_E_TIMEOUT && local < call->deadline_ms && dt_now(be) >= local) {
		/* Daytona kept quiet past timeout + grace: the program ran out of time */
		*timed_out = 1;
		f->status = 'T';
		f->exit_code = -1;
		f->wall_ms = dt_now(be) - start;
		rc = CI_OK;
		goto out;
	}
	if (rc)
		goto out;
	if (resp.status == 408) {
		*timed_out = 1;
		f->status = 'T';
		f->exit_code = -1;
		f->wall_ms = dt_now(be) - start;
		goto out;
	}
	if (resp.status != 200) {
		rc = dt_http_fail(be, &resp, 1, "exec", call);
		if (rc == CI_E_NOTFOUND || rc == CI_E_EXISTS)
			rc = CI_E_BACKEND;
		goto out;
	}
	j = dt_json(&resp);
	result = json_string_value(json_object_get(j, "result"));
	if (!result || dt_framed_parse(result, json_string_length(json_object_get(j, "result")),
				       s->delim, f)) {
		rc = ci_fail(call, CI_E_BACKEND, "exec: no output frame from the sandbox: %.120s",
			     result ? result : "(no result)");
		goto out;
	}
	if (f->status == 'M')
		rc = ci_fail(call, CI_E_BACKEND, "exec: mktemp failed in the sandbox");
out:
	if (rc)
		dt_framed_free(f);
	json_decref(j);
	json_decref(body);
	free(js);
	dt_resp_free(&resp);
	dt_buf_free(&script);
	return rc;
}

static void dt_deliver(const ci_sink *out, int stream, const struct dt_buf *b)
{
	if (out && out->write && b->len)
		out->write(out->ctx, stream, b->data, b->len);
}

int dt_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
	    ci_call *call)
{
	struct dt_script s = {0};
	struct dt_framed f;
	struct dt_buf cwd = {0};
	int64_t start = dt_now(be);
	int rc, to;

	rc = dt_check_id(id, call);
	if (rc)
		return rc == CI_E_INVAL ? CI_E_NOTFOUND : rc;
	if (!spec->argv || !spec->argv[0] || !spec->argv[0][0])
		return ci_fail(call, CI_E_INVAL, "exec: empty argv");
	if (spec->cwd && spec->cwd[0] != '/')
		return ci_fail(call, CI_E_INVAL, "exec: cwd must be absolute");
	if (!spec->cwd || !strcmp(spec->cwd, DT_DATA_ROOT) ||
	    !strncmp(spec->cwd, DT_DATA_ROOT "/", strlen(DT_DATA_ROOT) + 1)) {
		rc = dt_map_path(be, spec->cwd ? spec->cwd : DT_DATA_ROOT, 1, &cwd, call);
		if (rc)
			return rc;
	} else if (dt_buf_str(&cwd, spec->cwd)) {
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	}
	s.argv = spec->argv;
	s.env = spec->env;
	s.cwd = cwd.data;
	s.stdin_buf = spec->stdin_buf;
	s.stdin_len = spec->stdin_buf ? spec->stdin_len : 0;
	s.timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : ci_call_left_ms(be->host, call);
	s.max_output = be->conf.max_output_bytes;
	rc = dt_run_framed(be, id, &s, &f, &to, call);
	dt_buf_free(&cwd);
	if (rc)
		return rc;
	if (f.status == 'C') {
		dt_framed_free(&f);
		return ci_fail(call, CI_E_INVAL, "exec: cwd %s does not exist in the sandbox",
			       spec->cwd ? spec->cwd : DT_DATA_ROOT);
	}
	res->wall_ms = f.wall_ms >= 0 ? f.wall_ms : dt_now(be) - start;
	/* timeout -s KILL: 137 once the limit has passed; KILL is also what we report */
	if (!to && f.exit_code == 128 + SIGKILL && res->wall_ms >= s.timeout_ms)
		to = 1;
	res->timed_out = to;
	if (to) {
		res->exit_code = -1;
		res->signal = SIGKILL;
	} else if (f.exit_code > 128 && f.exit_code <= 128 + 64) {
		res->exit_code = -1;
		res->signal = f.exit_code - 128;
	} else {
		res->exit_code = f.exit_code;
		res->signal = 0;
	}
	dt_deliver(spec->out, CI_STREAM_STDOUT, &f.out);
	dt_deliver(spec->out, CI_STREAM_STDERR, &f.err);
	if (f.out_size > (int64_t)f.out.len || f.err_size > (int64_t)f.err.len)
		be->host->log(be->host->hctx, CI_LOG_WARN,
			      "daytona: exec output truncated to %lld bytes per stream",
			      (long long)s.max_output);
	dt_framed_free(&f);
	return CI_OK;
}
