/* exec: exit status, streams, stdin, env, cwd, sinks, and the timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kit.h"
#include "loader.h"

#define TIMEOUT_MS   1000
#define TIMEOUT_LATE 2000 /* how late a timed-out exec may return */
#define STDIN_SIZE   (100 * 1024)

static void report(const struct kit_run *r)
{
	kit_diag("rc=%s err=%s exit=%d signal=%d timed_out=%d wall=%lldms call=%lldms",
		 kit_rc(r->rc), r->err, r->res.exit_code, r->res.signal, r->res.timed_out,
		 (long long)r->res.wall_ms, (long long)r->call_ms);
	if (r->err_out.len)
		kit_diag("stderr: %.*s", (int)(r->err_out.len < 300 ? r->err_out.len : 300),
			 r->err_out.data);
}

/* sh -c script; true when it ran and exited with `exit`. */
static bool sh_run(struct kit *k, const char *script, const char *const *env, const char *cwd,
		   struct kit_run *r)
{
	const char *argv[] = {"sh", "-c", script, NULL};

	kit_exec(k, k->id, argv, env, cwd, NULL, 0, KIT_EXEC_MS, r);
	return r->rc == CI_OK;
}

static void check_status(struct kit *k)
{
	const char *t[] = {"true", NULL};
	struct kit_run r = {0};

	kit_exec(k, k->id, t, NULL, NULL, NULL, 0, KIT_EXEC_MS, &r);
	if (!kit_ok(k, r.rc == CI_OK && r.res.exit_code == 0 && !r.res.signal && !r.res.timed_out,
		    "exec true: exit 0, no signal, not timed out"))
		report(&r);
	kit_run_free(&r);

	sh_run(k, "exit 3", NULL, NULL, &r);
	if (!kit_ok(k, r.rc == CI_OK && r.res.exit_code == 3, "exec reports exit code 3"))
		report(&r);
	kit_run_free(&r);

	sh_run(k, "kill -KILL $$", NULL, NULL, &r);
	if (!kit_ok(k, r.rc == CI_OK && r.res.exit_code == -1 && r.res.signal == 9,
		    "a program killed by SIGKILL: exit_code -1, signal 9"))
		report(&r);
	kit_run_free(&r);
}

static void check_streams(struct kit *k)
{
	const char *pf[] = {"printf", "%s|", "a b", "", "c\"d'e", NULL};
	struct kit_run r = {0};

	sh_run(k, "printf out; printf err >&2; printf more", NULL, NULL, &r);
	if (!kit_ok(k,
		    r.rc == CI_OK && kit_buf_is(&r.out, "outmore", 7) &&
			    kit_buf_is(&r.err_out, "err", 3),
		    "stdout and stderr arrive separately"))
		report(&r);
	kit_run_free(&r);

	kit_exec(k, k->id, pf, NULL, NULL, NULL, 0, KIT_EXEC_MS, &r);
	if (!kit_ok(k, r.rc == CI_OK && kit_buf_is(&r.out, "a b||c\"d'e|", 11),
		    "argv reaches the program verbatim (no shell in between)"))
		report(&r);
	kit_run_free(&r);

	sh_run(k, "head -c 4000000 /dev/zero", NULL, NULL, &r);
	if (!kit_ok(k, r.rc == CI_OK && r.out.total == 4000000 && r.out.chunks > 1,
		    "4 MB of stdout arrive whole, in several chunks (%d)", r.out.chunks))
		report(&r);
	kit_run_free(&r);

	sh_run(k, "echo first; sleep 2; echo second", NULL, NULL, &r);
	if (!kit_ok(k, r.rc == CI_OK && r.first_out_ms >= 0 && r.first_out_ms < r.call_ms - 1000,
		    "output is streamed while the program runs (first byte at %lld of %lld ms)",
		    (long long)r.first_out_ms, (long long)r.call_ms))
		report(&r);
	kit_run_free(&r);

	/* ~200 KB on stdout: more than any pipe holds, so a plugin that stopped
	 * reading would block the program */
	r.stop_stdout_after = 1;
	sh_run(k,
	       "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; "
	       "echo done >&2; exit 7",
	       NULL, NULL, &r);
	if (!kit_ok(k, r.rc == CI_OK && r.res.exit_code == 7 && !r.res.timed_out,
		    "a sink that stops stdout does not stop the program"))
		report(&r);
	kit_ok(k, r.out_after_stop == 0, "no stdout is delivered after the sink said stop (%d)",
	       r.out_after_stop);
	kit_ok(k, kit_buf_is(&r.err_out, "done\n", 5), "stderr is still delivered after that");
	kit_run_free(&r);
}

static void check_stdin(struct kit *k)
{
	const char *cat[] = {"cat", NULL};
	unsigned char *in;
	struct kit_run r = {0};

	if (!(k->p->desc.caps & CI_CAP_STDIN)) {
		kit_skip(k, "backend lacks CI_CAP_STDIN", "stdin reaches the program");
	} else {
		in = malloc(STDIN_SIZE);
		if (!in)
			abort();
		for (int i = 0; i < STDIN_SIZE; i++)
			in[i] = (unsigned char)(i * 31 + (i >> 9));
		kit_exec(k, k->id, cat, NULL, NULL, in, STDIN_SIZE, KIT_EXEC_MS, &r);
		if (!kit_ok(k,
			    r.rc == CI_OK && r.res.exit_code == 0 &&
				    kit_buf_is(&r.out, in, STDIN_SIZE),
			    "100 KiB of binary stdin reach the program"))
			report(&r);
		kit_run_free(&r);
		free(in);
	}
	kit_exec(k, k->id, cat, NULL, NULL, NULL, 0, 5000, &r);
	if (!kit_ok(k, r.rc == CI_OK && !r.res.timed_out && r.res.exit_code == 0 && !r.out.total,
		    "no stdin means EOF at once (cat returns)"))
		report(&r);
	kit_run_free(&r);
}

static void check_env_cwd(struct kit *k)
{
	static const char *const env[] = {"CI_KIT_VAR=hello world", "CI_KIT_EMPTY=", NULL};
	const char *ls[] = {"./mode.sh", NULL};
	struct kit_buf b = {0};
	struct kit_run r = {0};
	char err[CI_ERR_MAX];
	int rc;

	sh_run(k, "printf '%s|%s|%s' \"$CI_KIT_VAR\" \"${CI_KIT_EMPTY-unset}\" \"$CI_KIT_CREATE\"",
	       env, NULL, &r);
	if (!kit_ok(k, r.rc == CI_OK && kit_buf_is(&r.out, "hello world||from-create", 24),
		    "exec env and create env reach the program"))
		report(&r);
	kit_run_free(&r);

	rc = kit_put(k, k->id, "/mnt/data/cwd/here/marker.txt", "marker", 6, 0644, false, err);
	if (!kit_ok(k, rc == CI_OK, "put a marker for the cwd checks"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	sh_run(k, "cat cwd/here/marker.txt", NULL, NULL, &r);
	if (!kit_ok(k, r.rc == CI_OK && kit_buf_is(&r.out, "marker", 6),
		    "the default cwd is /mnt/data"))
		report(&r);
	kit_run_free(&r);
	sh_run(k, "cat marker.txt", NULL, "/mnt/data/cwd/here", &r);
	if (!kit_ok(k, r.rc == CI_OK && kit_buf_is(&r.out, "marker", 6),
		    "cwd /mnt/data/cwd/here is honoured"))
		report(&r);
	kit_run_free(&r);

	kit_exec(k, k->id, ls, NULL, NULL, NULL, 0, KIT_EXEC_MS, &r);
	if (!kit_ok(k, r.rc == CI_OK && kit_buf_is(&r.out, "hi\n", 3),
		    "a file put with mode 0755 is executable"))
		report(&r);
	kit_run_free(&r);

	sh_run(k, "printf made > made-by-exec.txt", NULL, NULL, &r);
	kit_run_free(&r);
	rc = kit_get(k, k->id, "/mnt/data/made-by-exec.txt", &b, err);
	if (!kit_ok(k, rc == CI_OK && kit_buf_is(&b, "made", 4),
		    "a file written by the program can be fetched with get"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	kit_buf_free(&b);
}

static void check_bad_spec(struct kit *k)
{
	const char *none[] = {NULL};
	const char *empty[] = {"", NULL};
	struct kit_run r = {0};

	kit_exec(k, k->id, none, NULL, NULL, NULL, 0, KIT_EXEC_MS, &r);
	kit_ok(k, r.rc == CI_E_INVAL, "exec with an empty argv is invalid (%s)", kit_rc(r.rc));
	kit_run_free(&r);
	kit_exec(k, k->id, empty, NULL, NULL, NULL, 0, KIT_EXEC_MS, &r);
	kit_ok(k, r.rc == CI_E_INVAL, "exec with argv[0] = \"\" is invalid (%s)", kit_rc(r.rc));
	kit_run_free(&r);
}

void kit_check_exec(struct kit *k)
{
	check_status(k);
	check_streams(k);
	check_stdin(k);
	check_env_cwd(k);
	check_bad_spec(k);
}

void kit_check_timeout(struct kit *k)
{
	const char *argv[] = {
		"sh", "-c", "echo early; (sleep 2; echo leaked > leak.txt) & exec sleep 30", NULL};
	struct timespec wait = {.tv_sec = 2, .tv_nsec = 500000000};
	struct kit_run r = {0};
	struct kit_buf b = {0};
	char err[CI_ERR_MAX];
	int rc;

	kit_exec(k, k->id, argv, NULL, NULL, NULL, 0, TIMEOUT_MS, &r);
	if (!kit_ok(k, r.rc == CI_OK && r.res.timed_out == 1,
		    "a program past its timeout is killed: rc ok, timed_out 1"))
		report(&r);
	if (!kit_ok(k, r.call_ms <= TIMEOUT_MS + TIMEOUT_LATE,
		    "exec returns by the timeout + %d ms (took %lld ms)", TIMEOUT_LATE,
		    (long long)r.call_ms))
		report(&r);
	kit_ok(k, kit_buf_is(&r.out, "early\n", 6), "output written before the kill is delivered");
	kit_run_free(&r);
	/* the background subshell would write leak.txt 2 s after it started */
	nanosleep(&wait, NULL);
	rc = kit_get(k, k->id, "/mnt/data/leak.txt", &b, err);
	kit_ok(k, rc == CI_E_NOTFOUND, "the whole process tree died at the timeout (%s)",
	       rc == CI_OK ? "leak.txt was written" : kit_rc(rc));
	kit_buf_free(&b);
}
