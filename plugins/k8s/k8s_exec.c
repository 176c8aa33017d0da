/*
 * exec: every program runs under a small sh wrapper in the pod, because
 * pods/exec has no env, cwd or time limit of its own and closing the
 * WebSocket does not stop the process:
 *   - exports the env, changes to cwd;
 *   - `timeout -s KILL` runs the program in its own process group and kills
 *     the group at the limit;
 *   - stdin: none (</dev/null), counted (`head -c N`: the program sees EOF
 *     even on a v4 server, which cannot close stdin) or raw;
 *   - afterwards `kill -9 -1` removes every process the program left
 *     (everything of the sandbox user but the pod's PID 1, which kill(-1)
 *     spares), so nothing outlives the exec or holds its streams open.
 * Backstops: the connection is closed by the program's deadline plus a
 * grace period; then a second exec kills the user's processes, and if even
 * that fails the pod is deleted (the next call says CI_E_NOTFOUND and the
 * core recreates the sandbox).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "k8s.h"

#define RESERVE_MS 1500 /* kept back from the call for the status and clean-up */
#define KILL_MS	   3000

/* $1 timeout (s), $2 stdin: - | r | byte count, $3 cwd, $4 env count, env..., argv... */
static const char wrapper[] =
	"t=$1 m=$2 d=$3 n=$4; shift 4\n"
	"while [ \"$n\" -gt 0 ]; do export \"$1\" || exit 125; shift; n=$((n-1)); done\n"
	"cd -- \"$d\" || exit 125\n"
	"case $m in\n"
	"-) timeout -s KILL \"$t\" \"$@\" </dev/null ;;\n"
	"r) timeout -s KILL \"$t\" \"$@\" ;;\n"
	"*) head -c \"$m\" | timeout -s KILL \"$t\" \"$@\" ;;\n"
	"esac\n"
	"r=$?\n"
	"i=0; while kill -9 -1 2>/dev/null && [ $i -lt 100 ]; do i=$((i+1)); done\n"
	"exit $r\n";

static int arg(struct k8s_buf *q, const char *s)
{
	if (q->len && k8s_buf_add(q, "&", 1))
		return -1;
	return k8s_buf_add(q, "command=", 8) || k8s_url_escape(q, s);
}

int k8s_exec_query(struct k8s_buf *q, const struct k8s_exec *x, int64_t prog_ms)
{
	char t[32], m[32], n[16];
	size_t ne = 0;
	int rc = 0;

	for (const char *const *e = x->env; e && *e; e++)
		ne++;
	if (prog_ms > 0)
		snprintf(t, sizeof(t), "%lld.%03lld", (long long)(prog_ms / 1000),
			 (long long)(prog_ms % 1000));
	else
		snprintf(t, sizeof(t), "0");
	if (x->stdin_kind == K8S_STDIN_COUNTED && x->in)
		snprintf(m, sizeof(m), "%lld", (long long)x->in->size);
	else
		snprintf(m, sizeof(m), "%s", x->stdin_kind == K8S_STDIN_RAW && x->in ? "r" : "-");
	snprintf(n, sizeof(n), "%zu", ne);
	rc |= arg(q, "/bin/sh");
	rc |= arg(q, "-c");
	rc |= arg(q, wrapper);
	rc |= arg(q, "ci-exec");
	rc |= arg(q, t);
	rc |= arg(q, m);
	rc |= arg(q, x->cwd ? x->cwd : K8S_DATA_DIR);
	rc |= arg(q, n);
	for (const char *const *e = x->env; e && *e; e++)
		rc |= arg(q, *e);
	for (const char *const *a = x->argv; *a; a++)
		rc |= arg(q, *a);
	rc |= k8s_buf_printf(q,
			     "&container=" K8S_CONTAINER "&stdin=%s&stdout=true&stderr=true"
			     "&tty=false",
			     x->in && x->stdin_kind != K8S_STDIN_NONE ? "true" : "false");
	return rc ? -1 : 0;
}

void k8s_status_to_result(int status, bool timed_out, ci_exec_result *res)
{
	res->timed_out = timed_out;
	if (timed_out) {
		res->exit_code = -1;
		res->signal = 9;
	} else if (status > 128 && status <= 128 + 64) {
		/* sh (and the kubelet) report a signal death as 128+n */
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

/* Kill every process of the sandbox user through a second, short exec. */
static int kill_user_procs(struct ci_be *be, const char *name, ci_call *call)
{
	struct k8s_buf q = {0};
	struct k8s_chan ch;
	struct k8s_ws_io io = {.chan = &ch};
	ci_call sub = *call;
	int rc;

	k8s_chan_init(&ch, NULL);
	sub.deadline_ms = now_ms(be) + KILL_MS;
	io.deadline_ms = sub.deadline_ms;
	k8s_buf_printf(&q, "command=/bin/sh&command=-c&command=kill%%20-9%%20-1%%3B%%20exit%%200"
			   "&container=" K8S_CONTAINER "&stdout=true&stderr=true&tty=false");
	rc = k8s_ws_exec(be, name, k8s_buf_str(&q), &io, &sub);
	if (rc == CI_OK && !ch.have_status)
		rc = CI_E_BACKEND;
	k8s_chan_release(&ch);
	k8s_buf_release(&q);
	return rc;
}

/* The stream outlived the deadline: stop the program, from inside or by force. */
static void stop_program(struct ci_be *be, const char *name, ci_call *call)
{
	ci_call sub = *call;

	be->host->log(be->host->hctx, CI_LOG_WARN,
		      "k8s: exec in %s outlived its deadline; killing its processes", name);
	if (kill_user_procs(be, name, &sub) == CI_OK)
		return;
	sub = *call;
	sub.deadline_ms = now_ms(be) + KILL_MS;
	be->host->log(be->host->hctx, CI_LOG_WARN,
		      "k8s: deleting pod %s (its exec would not stop); it will be recreated", name);
	k8s_pod_delete(be, name, &sub);
}

int k8s_exec_run(struct ci_be *be, const char *name, const struct k8s_exec *x,
		 struct k8s_exec_res *r, ci_call *call)
{
	struct k8s_buf q = {0};
	struct k8s_chan ch;
	struct k8s_ws_io io = {.chan = &ch, .in = x->stdin_kind != K8S_STDIN_NONE ? x->in : NULL};
	int64_t t0 = now_ms(be), left, prog_ms;
	char err[CI_ERR_MAX];
	int rc;

	memset(r, 0, sizeof(*r));
	left = call->deadline_ms - t0;
	if (left <= 0)
		return ci_fail(call, CI_E_TIMEOUT, "exec: deadline already passed");
	/* The program's limit, clipped so that the status and clean-up fit. */
	prog_ms = x->timeout_ms > 0 ? x->timeout_ms : INT64_MAX;
	if (prog_ms > left - RESERVE_MS)
		prog_ms = left - RESERVE_MS > left / 2 ? left - RESERVE_MS : left / 2;
	if (prog_ms < 1)
		prog_ms = 1;
	io.deadline_ms = t0 + prog_ms + be->conf.exec_grace_ms;
	if (io.deadline_ms > call->deadline_ms - RESERVE_MS / 3)
		io.deadline_ms = call->deadline_ms - RESERVE_MS / 3;

	if (k8s_exec_query(&q, x, prog_ms))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	k8s_chan_init(&ch, x->out);
	rc = k8s_ws_exec(be, name, k8s_buf_str(&q), &io, call);
	r->wall_ms = now_ms(be) - t0;
	if (rc == CI_E_TIMEOUT && r->wall_ms >= prog_ms) {
		stop_program(be, name, call);
		r->timed_out = true;
		r->status = 137;
		call->err[0] = '\0';
		rc = CI_OK;
		goto out;
	}
	if (rc != CI_OK)
		goto out;
	if (ch.bad) {
		rc = ci_fail(call, CI_E_BACKEND, "exec: malformed channel stream");
		goto out;
	}
	if (!ch.have_status) {
		/* Closed without a status: is the pod still there? */
		ci_call sub = *call;

		sub.deadline_ms = now_ms(be) + KILL_MS;
		rc = k8s_pod_usable(be, name, &sub);
		if (rc == CI_OK)
			rc = ci_fail(call, CI_E_BACKEND,
				     "exec: the stream ended without an exit status");
		else
			rc = ci_fail(call, rc, "%s", sub.err);
		goto out;
	}
	rc = k8s_exit_status(k8s_buf_str(&ch.status), ch.status.len, &r->status, err, sizeof(err));
	if (rc != CI_OK) {
		ci_fail(call, rc, "%s", err);
		goto out;
	}
	/* timeout -s KILL takes its own group down with the program: 137. */
	if ((r->status == 137 || r->status == 124) && r->wall_ms >= prog_ms)
		r->timed_out = true;
out:
	k8s_chan_release(&ch);
	k8s_buf_release(&q);
	return rc;
}
