/*
 * Daytona backend: exec through the toolbox's /process/execute.
 *
 * The daemon returns stdout and stderr interleaved in one string, only
 * after the command ended, so the program never writes into that string:
 * the first request starts a small POSIX-sh wrapper in the background that
 * runs the program under `timeout -s KILL` (which kills its whole process
 * group) with stdin, stdout and stderr on files in a fresh mktemp
 * directory, and the same request then long-polls those files. Every
 * answer ends with one frame:
 *
 *   \n<D> <status> <exit> <t0 ns> <t1 ns> <stdout size> <stderr size> <dir>\n
 *   base64(the next stdout bytes)
 *   <D>-\n
 *   base64(the next stderr bytes)
 *   <D>.\n
 *
 * D is 32 random hex digits chosen per exec. Later requests poll from the
 * offsets already delivered, returning as soon as there is new output (so
 * it streams) or the program exited; a program that ends quickly costs one
 * round trip. Whatever else the shell prints is outside the last frame and
 * ignored; program bytes are base64, so nothing a program prints can be
 * taken for the frame, and binary output survives the daemon's JSON.
 */
#define _GNU_SOURCE /* memmem */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "daytona.h"

#define DT_POLL_CHUNK	(2 << 20) /* bytes per stream per answer */
#define DT_POLL_WAIT_MS 10000	  /* longest a poll waits in the sandbox */
#define DT_POLL_STEP_MS 50	  /* its sleep between looks */
#define DT_COALESCE	4	  /* steps to wait for more output once some came */
#define DT_SINK_PIECE	(64 * 1024)

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

/* The long-poll and the frame, shared by the first script and later polls. */
static int dt_poll_tail(struct dt_buf *b, const char *D, int64_t wait_ms)
{
	int64_t max = wait_ms / DT_POLL_STEP_MS;

	return dt_buf_printf(
		b,
		"ci_w=0\nwhile :; do\n"
		"  [ -d \"$ci_d\" ] || { ci_s=G; break; }\n"
		"  if [ -f \"$ci_d/x\" ]; then ci_s=X; break; fi\n"
		"  ci_so=$(wc -c <\"$ci_d/o\"); ci_se=$(wc -c <\"$ci_d/e\")\n"
		"  if [ \"$ci_so\" -gt \"$ci_oo\" ] || [ \"$ci_se\" -gt \"$ci_eo\" ]; then\n"
		"    [ \"$ci_w\" -ge %d ] && break\n  fi\n"
		"  [ \"$ci_w\" -ge %lld ] && break\n"
		"  sleep 0.05; ci_w=$((ci_w + 1))\ndone\n"
		"if [ \"$ci_s\" = G ]; then printf '\\n%%s G 0 x x 0 0 -\\n%%s-\\n%%s.\\n' '%s' "
		"'%s' "
		"'%s'; exit 0; fi\n"
		"ci_e=0; [ \"$ci_s\" = X ] && ci_e=$(cat \"$ci_d/x\")\n"
		"ci_so=$(wc -c <\"$ci_d/o\"); ci_se=$(wc -c <\"$ci_d/e\")\n"
		"ci_no=$((ci_so - ci_oo)); [ \"$ci_no\" -gt \"$ci_co\" ] && ci_no=$ci_co\n"
		"[ \"$ci_no\" -lt 0 ] && ci_no=0\n"
		"ci_ne=$((ci_se - ci_eo)); [ \"$ci_ne\" -gt \"$ci_ce\" ] && ci_ne=$ci_ce\n"
		"[ \"$ci_ne\" -lt 0 ] && ci_ne=0\n"
		"ci_a=$(cat \"$ci_d/t0\" 2>/dev/null); ci_b=$(cat \"$ci_d/t1\" 2>/dev/null)\n"
		"printf '\\n%%s %%s %%s %%s %%s %%s %%s %%s\\n' '%s' \"$ci_s\" \"$ci_e\" "
		"\"${ci_a:-x}\" "
		"\"${ci_b:-x}\" \"$ci_so\" \"$ci_se\" \"$ci_d\"\n"
		"tail -c +$((ci_oo + 1)) \"$ci_d/o\" | head -c \"$ci_no\" | base64\n"
		"printf '%%s-\\n' '%s'\n"
		"tail -c +$((ci_eo + 1)) \"$ci_d/e\" | head -c \"$ci_ne\" | base64\n"
		"printf '%%s.\\n' '%s'\n"
		"if [ \"$ci_s\" = X ] && [ $((ci_oo + ci_no)) -ge \"$ci_so\" ] &&\n"
		"   [ $((ci_eo + ci_ne)) -ge \"$ci_se\" ]; then rm -rf \"$ci_d\"; fi\nexit 0\n",
		DT_COALESCE, (long long)max, D, D, D, D, D, D);
}

int dt_script_build(struct dt_buf *b, const struct dt_script *s, int64_t chunk, int64_t wait_ms,
		    ci_call *call)
{
	const char *D = s->delim;
	int64_t t = s->timeout_ms > 0 ? s->timeout_ms : 1;
	size_t i;
	int bad = 0, rc;

	if (!s->argv || !s->argv[0] || !s->argv[0][0])
		return ci_fail(call, CI_E_INVAL, "exec: empty argv");
	bad |= dt_buf_printf(b,
			     "ci_d=$(mktemp -d 2>/dev/null) || { printf '\\n%%s M 125 x x 0 0 -\\n"
			     "%%s-\\n%%s.\\n' '%s' '%s' '%s'; exit 0; }\n"
			     "ci_t=$(command -v timeout)\nci_s=R\n"
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
		bad |= dt_buf_shquote(
			b, strncmp(s->nolink_path, s->nolink_root, rl) ? "" : s->nolink_path + rl);
		bad |= dt_buf_str(b, " ] || ci_s=L\nfi\n");
	}
	if (s->stdin_len) {
		bad |= dt_buf_str(b, "printf '%s' '");
		bad |= dt_buf_b64(b, s->stdin_buf, s->stdin_len);
		bad |= dt_buf_str(b, "' | base64 -d >\"$ci_d/i\"\n");
	}
	bad |= dt_buf_str(b, "if [ \"$ci_s\" = R ]; then\n  if cd -- ");
	bad |= dt_buf_shquote(b, s->cwd ? s->cwd : "/");
	/* the whole job lets go of the daemon's pipes, so this request can return */
	bad |= dt_buf_str(b, " 2>/dev/null; then\n  (\n"
			     "    date +%s%N >\"$ci_d/t0\" 2>/dev/null\n    (\n");
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
	bad |= dt_buf_printf(
		b,
		"\nif [ -n \"$ci_t\" ]; then exec \"$ci_t\" -s KILL %lld.%03lld \"$@\"; "
		"else exec \"$@\"; fi\n"
		"    ) <\"$ci_d/i\" >\"$ci_d/o\" 2>\"$ci_d/e\"\n"
		"    echo $? >\"$ci_d/x.t\"\n    date +%%s%%N >\"$ci_d/t1\" 2>/dev/null\n"
		"    mv -f \"$ci_d/x.t\" \"$ci_d/x\"\n"
		"  ) </dev/null >/dev/null 2>&1 &\n"
		"  else ci_s=C; fi\nfi\n"
		"if [ \"$ci_s\" != R ]; then printf '\\n%%s %%s 0 x x 0 0 -\\n%%s-\\n%%s.\\n' '%s' "
		"\"$ci_s\" '%s' '%s'; rm -rf \"$ci_d\"; exit 0; fi\n"
		"ci_oo=0; ci_eo=0; ci_co=%lld; ci_ce=%lld\n",
		(long long)(t / 1000), (long long)(t % 1000), D, D, D, (long long)chunk,
		(long long)chunk);
	bad |= dt_poll_tail(b, D, wait_ms);
	return bad ? ci_fail(call, CI_E_NOMEM, "out of memory") : CI_OK;
}

int dt_poll_build(struct dt_buf *b, const char *delim, const char *dir, const int64_t off[2],
		  const int64_t chunk[2], int64_t wait_ms)
{
	if (dt_buf_str(b, "ci_d=") || dt_buf_shquote(b, dir) ||
	    dt_buf_printf(b, "\nci_s=R; ci_oo=%lld; ci_eo=%lld; ci_co=%lld; ci_ce=%lld\n",
			  (long long)off[0], (long long)off[1], (long long)chunk[0],
			  (long long)chunk[1]) ||
	    dt_poll_tail(b, delim, wait_ms))
		return -1;
	return 0;
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
	char line[512], t0[64], t1[64], st;
	const char *h, *eol, *m, *e, *body;
	long long osz, esz;
	int ec;

	memset(f, 0, sizeof(*f));
	if (!res)
		return -1;
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
	if (sscanf(line, "%c %d %63s %63s %lld %lld %255s", &st, &ec, t0, t1, &osz, &esz, f->dir) !=
	    7)
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
	f->wall_ms =
		(dt_ns(t0) > 0 && dt_ns(t1) >= dt_ns(t0)) ? (dt_ns(t1) - dt_ns(t0)) / 1000000 : -1;
	if (dt_buf_add(&f->out, "", 0) || dt_buf_add(&f->err, "", 0) ||
	    dt_b64_decode(body, (size_t)(m - body), &f->out) ||
	    dt_b64_decode(m + strlen(mid), (size_t)(e - m - strlen(mid)), &f->err)) {
		dt_framed_free(f);
		return -1;
	}
	return 0;
}

struct dt_loop {
	const ci_sink *sink;
	struct dt_framed *f;
	int64_t off[2], got[2], size[2], cap;
	int want[2];
};

/* Hand a slice to the sink in pieces, or keep it (capped) without a sink. */
static void dt_take(struct dt_loop *L, int i, const struct dt_buf *b)
{
	struct dt_buf *keep = i ? &L->f->err : &L->f->out;
	size_t n = b->len, at = 0;

	L->off[i] += (int64_t)n;
	if (!L->want[i] || !n)
		return;
	if ((int64_t)n > L->cap - L->got[i])
		n = (size_t)(L->cap - L->got[i]);
	L->got[i] += (int64_t)n;
	if (!L->sink) {
		if (dt_buf_add(keep, b->data, n))
			L->want[i] = 0;
		return;
	}
	while (at < n) {
		size_t piece = n - at < DT_SINK_PIECE ? n - at : DT_SINK_PIECE;

		if (L->sink->write(L->sink->ctx, i ? CI_STREAM_STDERR : CI_STREAM_STDOUT,
				   b->data + at, piece)) {
			L->want[i] = 0; /* no more wanted: the program keeps running */
			return;
		}
		at += piece;
	}
}

int dt_exec_loop(ci_be *be, dt_shell_fn shell, void *sctx, struct dt_script *s, const ci_sink *sink,
		 struct dt_framed *f, int *timed_out, ci_call *call)
{
	struct dt_loop L = {.sink = sink, .f = f, .cap = s->max_output, .want = {1, 1}};
	struct dt_buf script = {0}, result = {0};
	int64_t start = dt_now(be), T = s->timeout_ms > 0 ? s->timeout_ms : 1;
	int64_t give_up = start + T + be->conf.exec_grace_ms;
	struct dt_framed fr = {0};
	int first = 1, exited = 0, rc = CI_OK, i;

	memset(f, 0, sizeof(*f));
	f->wall_ms = -1;
	*timed_out = 0;
	dt_make_delim(s->delim);
	for (;;) {
		int64_t now = dt_now(be), wait, chunk[2], off[2];

		wait = exited ? 0 : start + T - now + 500;
		wait = wait < 0 ? 0 : wait > DT_POLL_WAIT_MS ? DT_POLL_WAIT_MS : wait;
		for (i = 0; i < 2; i++) {
			int64_t room = L.cap - L.got[i];

			chunk[i] = !L.want[i] || room <= 0 ? 0
				   : room < DT_POLL_CHUNK  ? room
							   : DT_POLL_CHUNK;
			/* unwanted bytes are skipped, never fetched */
			off[i] = chunk[i] ? L.off[i] : L.size[i] > L.off[i] ? L.size[i] : L.off[i];
			L.off[i] = off[i];
		}
		script.len = 0;
		if (first)
			rc = dt_script_build(&script, s, chunk[0], wait, call);
		else if (dt_poll_build(&script, s->delim, f->dir, off, chunk, wait))
			rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		if (rc)
			break;
		result.len = 0;
		rc = shell(sctx, script.data, wait, &result, call);
		if (rc == CI_E_TIMEOUT && dt_now(be) >= give_up && dt_now(be) < call->deadline_ms) {
			/* the sandbox kept quiet past the program's limit + grace */
			*timed_out = 1;
			rc = CI_OK;
			break;
		}
		if (rc)
			break;
		if (dt_framed_parse(result.data, result.len, s->delim, &fr)) {
			rc = ci_fail(call, CI_E_BACKEND,
				     "exec: no output frame from the sandbox: %.120s",
				     result.data ? result.data : "");
			break;
		}
		if (first) {
			first = 0;
			snprintf(f->dir, sizeof(f->dir), "%s", fr.dir);
			if (fr.status != 'R' && fr.status != 'X') {
				f->status = fr.status;
				f->exit_code = fr.exit_code;
				break;
			}
		}
		if (fr.status == 'G') {
			rc = ci_fail(call, CI_E_BACKEND, "exec: its state in the sandbox vanished");
			break;
		}
		dt_take(&L, 0, &fr.out);
		dt_take(&L, 1, &fr.err);
		L.size[0] = f->out_size = fr.out_size;
		L.size[1] = f->err_size = fr.err_size;
		if (fr.status == 'X') {
			exited = 1;
			f->exit_code = fr.exit_code;
			f->wall_ms = fr.wall_ms;
			/* done once all is read; skipped bytes take one more (cleanup) poll */
			if (L.off[0] >= L.size[0] && L.off[1] >= L.size[1]) {
				f->status = 'R';
				break;
			}
		} else if (dt_now(be) >= give_up) {
			*timed_out = 1; /* `timeout` should have ended it: stop waiting */
			break;
		}
		dt_framed_free(&fr);
	}
	dt_framed_free(&fr);
	dt_buf_free(&script);
	dt_buf_free(&result);
	if (rc) {
		dt_framed_free(f);
	} else if (!f->status) {
		f->status = 'R';
	}
	if (!sink && !rc) {
		dt_buf_add(&f->out, "", 0);
		dt_buf_add(&f->err, "", 0);
	}
	return rc;
}

struct dt_http_shell {
	ci_be *be;
	const char *id;
	int calls;
};

/* One /process/execute: the first starts the program (never resent after a
 * possible delivery), later ones only read and may be retried. */
static int dt_shell_http(void *ctx, const char *script, int64_t wait_ms, struct dt_buf *result,
			 ci_call *call)
{
	struct dt_http_shell *hs = ctx;
	ci_be *be = hs->be;
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "POST", .ctype = "application/json"};
	int64_t grace = be->conf.exec_grace_ms;
	json_t *body, *j = NULL, *r;
	char *js;
	int rc;

	req.flags = hs->calls++ ? DT_IDEMPOTENT : DT_EXEC_RETRY;
	body = json_pack("{s:s, s:I}", "command", script, "timeout",
			 (json_int_t)((wait_ms + grace + 999) / 1000 + 2));
	js = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!js)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	req.body = js;
	req.body_len = strlen(js);
	req.deadline_ms = dt_now(be) + wait_ms + grace + 1000;
	req.max_resp = (size_t)DT_POLL_CHUNK * 3 + (1u << 20);
	rc = dt_toolbox(be, hs->id, "/process/execute", &req, &resp, call);
	if (rc == CI_OK && resp.status != 200) {
		rc = dt_http_fail(be, &resp, 1, "exec", call);
		if (rc == CI_E_NOTFOUND || rc == CI_E_EXISTS || rc == CI_E_TIMEOUT)
			rc = CI_E_BACKEND; /* the sandbox is there; the toolbox failed */
	}
	if (rc == CI_OK) {
		j = dt_json(&resp);
		r = json_object_get(j, "result");
		if (!json_is_string(r) ||
		    dt_buf_add(result, json_string_value(r), json_string_length(r)))
			rc = ci_fail(call, CI_E_BACKEND, "exec: answer without result");
	}
	json_decref(j);
	free(js);
	dt_resp_free(&resp);
	return rc;
}

int dt_run_framed(ci_be *be, const char *id, struct dt_script *s, struct dt_framed *f,
		  int *timed_out, ci_call *call)
{
	struct dt_http_shell hs = {be, id, 0};

	return dt_exec_loop(be, dt_shell_http, &hs, s, NULL, f, timed_out, call);
}

int dt_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res, ci_call *call)
{
	struct dt_http_shell hs = {be, id, 0};
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
	rc = dt_exec_loop(be, dt_shell_http, &hs, &s, spec->out, &f, &to, call);
	dt_buf_free(&cwd);
	if (rc)
		return rc;
	if (f.status == 'C' || f.status == 'M') {
		dt_framed_free(&f);
		return f.status == 'C' ? ci_fail(call, CI_E_INVAL,
						 "exec: cwd %s does not exist in the sandbox",
						 spec->cwd ? spec->cwd : DT_DATA_ROOT)
				       : ci_fail(call, CI_E_BACKEND,
						 "exec: mktemp failed in the "
						 "sandbox");
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
	if (f.out_size > s.max_output || f.err_size > s.max_output)
		be->host->log(be->host->hctx, CI_LOG_WARN,
			      "daytona: exec output truncated to %lld bytes per stream",
			      (long long)s.max_output);
	dt_framed_free(&f);
	return CI_OK;
}
