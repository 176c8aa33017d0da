/*
 * Unit tests of the Daytona plugin's request building and response
 * parsing: the exec frame (incl. programs that print delimiter-like text,
 * run through real shells), both list shapes, find output, path mapping,
 * encodings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/daytona/daytona.h"

#define D "0123456789abcdef0123456789abcdef"

static const char *shells[] = {"/bin/sh", "/bin/bash", "/usr/bin/zsh", NULL};

/* Run script with SHELL -s (the daemon pipes the command on stdin too). */
static char *run_script(const char *shell, const char *script, size_t *len)
{
	char path[] = "/tmp/dt-unit-XXXXXX", cmd[256];
	int fd = mkstemp(path);
	struct dt_buf out = {0};
	char buf[4096];
	size_t n;
	FILE *p;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, script, strlen(script)), (ssize_t)strlen(script));
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s -s < %s", shell, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		assert_int_equal(dt_buf_add(&out, buf, n), 0);
	pclose(p);
	unlink(path);
	dt_buf_add(&out, "", 0);
	*len = out.len;
	return out.data;
}

static int64_t mono_ms(void *hctx)
{
	struct timespec ts;

	(void)hctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void quiet_log(void *hctx, int level, const char *fmt, ...)
{
	(void)hctx;
	(void)level;
	(void)fmt;
}

/* The exec loop's transport, run locally: the script through SHELL -s. */
static int local_shell(void *ctx, const char *script, int64_t wait_ms, struct dt_buf *result,
		       ci_call *call)
{
	size_t len;
	char *r = run_script(ctx, script, &len);

	(void)wait_ms;
	(void)call;
	assert_int_equal(dt_buf_add(result, r, len), 0);
	free(r);
	return CI_OK;
}

static ci_host uhost = {.now_ms = mono_ms, .log = quiet_log};

static int loop_run(const char *shell, struct dt_script *s, const ci_sink *sink,
		    struct dt_framed *f)
{
	struct ci_be be = {.host = &uhost};
	ci_call call = {.struct_size = sizeof(call)};
	int to = 0, rc;

	be.conf.exec_grace_ms = 3000;
	call.deadline_ms = mono_ms(NULL) + 60000;
	if (!s->max_output)
		s->max_output = 1 << 20;
	if (!s->timeout_ms)
		s->timeout_ms = 10000;
	rc = dt_exec_loop(&be, local_shell, (void *)shell, s, sink, f, &to, &call);
	if (rc)
		fail_msg("exec loop: %d %s", rc, call.err);
	return to;
}

static void framed_run(const char *shell, struct dt_script *s, struct dt_framed *f)
{
	loop_run(shell, s, NULL, f);
}

static void test_exec_split_real_shells(void **state)
{
	const char *prog = "printf 'out1\\n\\n" D " R 0 1 2 3 4\\n" D "-\\n'; "
			   "printf 'err1\\n" D ".\\n' >&2; printf 'tail-no-newline'; exit 3";
	const char *argv[] = {"sh", "-c", prog, NULL};
	int i;

	(void)state;
	for (i = 0; shells[i]; i++) {
		struct dt_script s = {.argv = argv, .cwd = "/"};
		struct dt_framed f;

		if (access(shells[i], X_OK))
			continue;
		framed_run(shells[i], &s, &f);
		assert_int_equal(f.status, 'R');
		assert_int_equal(f.exit_code, 3);
		assert_string_equal(f.out.data,
				    "out1\n\n" D " R 0 1 2 3 4\n" D "-\ntail-no-newline");
		assert_string_equal(f.err.data, "err1\n" D ".\n");
		assert_int_equal(f.out_size, (int64_t)f.out.len);
		assert_true(f.wall_ms >= 0);
		dt_framed_free(&f);
	}
}

static void test_exec_stdin_env_cwd_binary(void **state)
{
	const char *argv[] = {"sh", "-c",
			      "read x; printf '%s|%s|%s|' \"$x\" \"$FOO\" \"$(pwd)\"; "
			      "printf '\\000\\377\\n'",
			      NULL};
	const char *env[] = {"FOO=it's \"quoted\" $HOME", NULL};
	struct dt_script s = {.argv = argv,
			      .env = env,
			      .cwd = "/tmp",
			      .stdin_buf = "line one\nline two\n",
			      .stdin_len = 18};
	struct dt_framed f;
	const char want[] = "line one|it's \"quoted\" $HOME|/tmp|\0\377\n";

	(void)state;
	framed_run("/bin/sh", &s, &f);
	assert_int_equal(f.exit_code, 0);
	assert_int_equal(f.out.len, sizeof(want) - 1);
	assert_memory_equal(f.out.data, want, sizeof(want) - 1);
	assert_int_equal(f.err.len, 0);
	dt_framed_free(&f);
}

static void test_exec_missing_cwd_and_command(void **state)
{
	const char *argv[] = {"true", NULL};
	const char *argv2[] = {"no-such-program-xyz", NULL};
	struct dt_script s = {.argv = argv, .cwd = "/no/such/dir"};
	struct dt_script s2 = {.argv = argv2, .cwd = "/"};
	struct dt_framed f;

	(void)state;
	framed_run("/bin/sh", &s, &f);
	assert_int_equal(f.status, 'C');
	dt_framed_free(&f);
	framed_run("/bin/sh", &s2, &f);
	assert_int_equal(f.status, 'R');
	assert_int_equal(f.exit_code, 127);
	assert_true(f.err.len > 0);
	dt_framed_free(&f);
}

static void test_exec_timeout_kills_group(void **state)
{
	/* the background child would print after 2 s if it survived the kill */
	const char *argv[] = {"sh", "-c", "(sleep 2; echo survived) & echo started; sleep 30",
			      NULL};
	struct dt_script s = {.argv = argv, .cwd = "/", .timeout_ms = 300};
	struct dt_framed f;

	(void)state;
	framed_run("/bin/sh", &s, &f);
	assert_int_equal(f.exit_code, 137);
	assert_true(f.wall_ms >= 250 && f.wall_ms < 5000);
	assert_string_equal(f.out.data, "started\n");
	dt_framed_free(&f);
}

static void test_exec_truncation(void **state)
{
	const char *argv[] = {"sh", "-c", "head -c 5000 /dev/zero", NULL};
	struct dt_script s = {.argv = argv, .cwd = "/", .max_output = 1024};
	struct dt_framed f;

	(void)state;
	framed_run("/bin/sh", &s, &f);
	assert_int_equal(f.out.len, 1024);
	assert_int_equal(f.out_size, 5000);
	dt_framed_free(&f);
}

struct timed {
	int64_t t0, first, chunks;
	struct dt_buf out;
};

static int timed_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct timed *t = ctx;

	if (stream != CI_STREAM_STDOUT)
		return 0;
	if (t->first < 0)
		t->first = mono_ms(NULL) - t->t0;
	t->chunks++;
	return dt_buf_add(&t->out, buf, len);
}

static void test_exec_streams_while_running(void **state)
{
	const char *argv[] = {"sh", "-c",
			      "echo first; sleep 1.5; echo second; head -c 300000 "
			      "/dev/zero",
			      NULL};
	struct dt_script s = {.argv = argv, .cwd = "/"};
	struct timed t = {.first = -1};
	ci_sink sink = {timed_write, &t};
	struct dt_framed f;

	(void)state;
	t.t0 = mono_ms(NULL);
	loop_run("/bin/sh", &s, &sink, &f);
	assert_true(t.first >= 0 && t.first < 1000);
	assert_true(mono_ms(NULL) - t.t0 >= 1500);
	assert_int_equal(t.out.len, 13 + 300000);
	assert_memory_equal(t.out.data, "first\nsecond\n", 13);
	assert_true(t.chunks >= 3); /* streamed, and big slices cut in pieces */
	assert_int_equal(f.exit_code, 0);
	dt_buf_free(&t.out);
	dt_framed_free(&f);
}

static int stop_after_one(void *ctx, int stream, const void *buf, size_t len)
{
	int *n = ctx;

	(void)buf;
	(void)len;
	if (stream == CI_STREAM_STDOUT)
		(*n)++;
	return stream == CI_STREAM_STDOUT;
}

static void test_exec_sink_declines(void **state)
{
	/* the sink declines stdout at once; the program still runs to its end */
	const char *argv[] = {"sh", "-c", "echo a; sleep 0.5; echo b; echo done >&2; exit 4", NULL};
	struct dt_script s = {.argv = argv, .cwd = "/"};
	int n = 0;
	ci_sink sink = {stop_after_one, &n};
	struct dt_framed f;

	(void)state;
	loop_run("/bin/sh", &s, &sink, &f);
	assert_int_equal(n, 1);
	assert_int_equal(f.exit_code, 4);
	dt_framed_free(&f);
}

static void test_nolink_check(void **state)
{
	char root[] = "/tmp/dt-root-XXXXXX", p[300], q[300];
	const char *argv[] = {"true", NULL};
	struct dt_framed f;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/real", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(q, sizeof(q), "%s/link", root);
	assert_int_equal(symlink("/etc", q), 0);
	{
		struct dt_script s = {
			.argv = argv, .cwd = "/", .nolink_path = p, .nolink_root = root};

		framed_run("/bin/sh", &s, &f);
		assert_int_equal(f.status, 'R');
		dt_framed_free(&f);
	}
	{
		char lp[320];
		struct dt_script s = {
			.argv = argv, .cwd = "/", .nolink_path = lp, .nolink_root = root};

		snprintf(lp, sizeof(lp), "%s/link/passwd", root);
		framed_run("/bin/sh", &s, &f);
		assert_int_equal(f.status, 'L');
		dt_framed_free(&f);
		snprintf(lp, sizeof(lp), "%s/missing", root);
		framed_run("/bin/sh", &s, &f);
		assert_int_equal(f.status, 'N');
		dt_framed_free(&f);
	}
	unlink(q);
	rmdir(p);
	rmdir(root);
}

static void test_frame_parse_edges(void **state)
{
	struct dt_framed f;
	/* shell noise, then an injected frame, then the real (last) one */
	const char res[] = "sh: noise\n" D " X 9 x x 1 1 /tmp/a\naGk=\n" D "-\n\n" D ".\n"
			   "\n" D " X 4 100 3000100 2 0 /tmp/b\naGk=\n" D "-\n\n" D ".\n";
	const char bad1[] = "\n" D " X 0 1 2 0 0 /t\n" D "-\n"; /* no end */
	const char bad2[] = "\n" D " X zero\n" D "-\n" D ".\n"; /* bad header */
	const char bad3[] = "\n" D " X 0 1 2 0 0 /t\n!!!\n" D "-\n" D ".\n";

	(void)state;
	assert_int_equal(dt_framed_parse(res, sizeof(res) - 1, D, &f), 0);
	assert_int_equal(f.exit_code, 4);
	assert_int_equal(f.wall_ms, 3);
	assert_string_equal(f.dir, "/tmp/b");
	assert_string_equal(f.out.data, "hi");
	assert_int_equal(f.err.len, 0);
	dt_framed_free(&f);
	assert_int_equal(dt_framed_parse(bad1, sizeof(bad1) - 1, D, &f), -1);
	assert_int_equal(dt_framed_parse(bad2, sizeof(bad2) - 1, D, &f), -1);
	assert_int_equal(dt_framed_parse(bad3, sizeof(bad3) - 1, D, &f), -1);
	assert_int_equal(
		dt_framed_parse(res, sizeof(res) - 1, "ffffffffffffffffffffffffffffffff", &f), -1);
}

static void test_list_shapes(void **state)
{
	const char *cur;
	json_t *items, *j;

	(void)state;
	j = json_loads("{\"items\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"nextCursor\":\"Mg==\"}", 0,
		       NULL);
	assert_int_equal(dt_parse_list(j, &items, &cur), 0);
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(cur, "Mg==");
	json_decref(j);
	j = json_loads("{\"items\":[],\"nextCursor\":null}", 0, NULL);
	assert_int_equal(dt_parse_list(j, &items, &cur), 0);
	assert_null(cur);
	json_decref(j);
	j = json_loads("[{\"id\":\"a\"}]", 0, NULL);
	assert_int_equal(dt_parse_list(j, &items, &cur), 0);
	assert_int_equal(json_array_size(items), 1);
	assert_null(cur);
	json_decref(j);
	j = json_loads("{\"items\":[{\"id\":\"a\"}],\"total\":1,\"page\":1,\"totalPages\":1}", 0,
		       NULL);
	assert_int_equal(dt_parse_list(j, &items, &cur), 0);
	assert_null(cur);
	json_decref(j);
	j = json_loads("{\"statusCode\":401}", 0, NULL);
	assert_int_equal(dt_parse_list(j, &items, &cur), -1);
	json_decref(j);
	assert_int_equal(dt_parse_iso("2026-11-21T22:31:11.662Z"), 1795300271);
	assert_int_equal(dt_parse_iso("garbage"), -1);
}

struct seen {
	int n;
	ci_entry e[8];
	char paths[8][64];
};

static int collect(void *ctx, const ci_entry *e)
{
	struct seen *s = ctx;

	if (s->n >= 8)
		return 1;
	s->e[s->n] = *e;
	snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", e->path);
	s->n++;
	return 0;
}

static void test_find_output(void **state)
{
	const char data[] = "f 11 1700000000.5 644 a b.txt\0d 4096 1700000001.0000000000 755 dir\0"
			    "l 4 1700000002 777 dir/link\0f 3 1700000003.25 600 dir/new\nline\0";
	struct seen s = {0};

	(void)state;
	assert_int_equal(dt_list_parse(data, sizeof(data) - 1, collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.paths[0], "a b.txt");
	assert_int_equal(s.e[0].type, CI_ENTRY_FILE);
	assert_int_equal(s.e[0].size, 11);
	assert_int_equal(s.e[0].mtime_ns, 1700000000500000000LL);
	assert_int_equal(s.e[0].mode, 0644);
	assert_int_equal(s.e[1].type, CI_ENTRY_DIR);
	assert_int_equal(s.e[1].size, 0);
	assert_int_equal(s.e[2].type, CI_ENTRY_SYMLINK);
	assert_string_equal(s.paths[3], "dir/new\nline");
	assert_int_equal(dt_list_parse("f 1 2 644 x", 11, collect, &s), -1);
}

static void test_map_path(void **state)
{
	char dd[] = "/home/daytona/data";
	struct ci_be be = {0};
	struct dt_buf b = {0};
	ci_call call = {0};

	(void)state;
	be.conf.data_dir = dd;
	assert_int_equal(dt_map_path(&be, "/mnt/data/a//b.txt", 0, &b, &call), CI_OK);
	assert_string_equal(b.data, "/home/daytona/data/a/b.txt");
	b.len = 0;
	assert_int_equal(dt_map_path(&be, "/mnt/data/", 1, &b, &call), CI_OK);
	assert_string_equal(b.data, "/home/daytona/data");
	b.len = 0;
	assert_int_equal(dt_map_path(&be, "/mnt/data", 0, &b, &call), CI_E_INVAL);
	b.len = 0;
	assert_int_equal(dt_map_path(&be, "/mnt/data/../etc/passwd", 0, &b, &call), CI_E_INVAL);
	b.len = 0;
	assert_int_equal(dt_map_path(&be, "/mnt/database", 1, &b, &call), CI_E_INVAL);
	b.len = 0;
	assert_int_equal(dt_map_path(&be, "mnt/data/x", 1, &b, &call), CI_E_INVAL);
	b.len = 0;
	assert_int_equal(dt_map_path(&be, "/mnt/data/./x", 1, &b, &call), CI_E_INVAL);
	dt_buf_free(&b);
}

static void test_encodings(void **state)
{
	unsigned char raw[300];
	struct dt_buf e = {0}, d = {0}, u = {0};
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)(i * 7 + 3);
	for (n = 0; n < 7; n++) {
		e.len = d.len = 0;
		assert_int_equal(dt_buf_b64(&e, raw, sizeof(raw) - n), 0);
		assert_int_equal(dt_b64_decode(e.data, e.len, &d), 0);
		assert_int_equal(d.len, sizeof(raw) - n);
		assert_memory_equal(d.data, raw, d.len);
	}
	assert_int_equal(dt_b64_decode("aGk=\naGk=", 9, &d), -1);
	assert_int_equal(dt_buf_urlenc(&u, "/home/daytona/in x?&=\xc3\xa9"), 0);
	assert_string_equal(u.data, "%2Fhome%2Fdaytona%2Fin%20x%3F%26%3D%C3%A9");
	u.len = 0;
	assert_int_equal(dt_buf_shquote(&u, "it's"), 0);
	assert_string_equal(u.data, "'it'\\''s'");
	dt_buf_free(&e);
	dt_buf_free(&d);
	dt_buf_free(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_split_real_shells),
		cmocka_unit_test(test_exec_stdin_env_cwd_binary),
		cmocka_unit_test(test_exec_missing_cwd_and_command),
		cmocka_unit_test(test_exec_timeout_kills_group),
		cmocka_unit_test(test_exec_truncation),
		cmocka_unit_test(test_exec_streams_while_running),
		cmocka_unit_test(test_exec_sink_declines),
		cmocka_unit_test(test_nolink_check),
		cmocka_unit_test(test_frame_parse_edges),
		cmocka_unit_test(test_list_shapes),
		cmocka_unit_test(test_find_output),
		cmocka_unit_test(test_map_path),
		cmocka_unit_test(test_encodings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
