/*
 * exec through a scripted engine: request building, the streamed and
 * demultiplexed output, exit codes, vanished containers, an unreachable
 * engine, and the kill fallbacks when the stream outlives the deadline.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "test_host.h"

#define CID "c0ffee0123456789"
#define EID "e1e1e1e1e1e1e1e1"
#define KID "abcabcabcabcabca"

static const struct eng_profile prof = {"docker", "/test/docker.sock", NULL};
static const char version[] = "{\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\"}";
static const char *const cfg[] = {"exec_grace_ms=500", NULL};

struct out {
	char o[256], e[256];
	size_t ol, el;
};

static int out_write(void *ctx, int stream, const void *p, size_t n)
{
	struct out *x = ctx;

	if (stream == CI_STREAM_STDOUT) {
		memcpy(x->o + x->ol, p, n);
		x->ol += n;
	} else {
		memcpy(x->e + x->el, p, n);
		x->el += n;
	}
	return 0;
}

struct fx {
	struct th_host th;
	ci_be *be;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	ci_call c;

	th_init(&f->th, false, cfg);
	th_expect(&f->th, "GET", "/version", 200, version);
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_init(&prof, &f->th.host, &f->be, &c), CI_OK);
	assert_string_equal(f->th.steps[0].url, "http://localhost/version");
	th_release(&f->th);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->th.unexpected, 0);
	eng_be_fini(f->be);
	th_release(&f->th);
	free(f);
	return 0;
}

static int run(struct fx *f, ci_exec_result *r, struct out *o, const char *stdin_buf)
{
	const char *argv[] = {"python3", "-c", "print(1)", NULL};
	const char *env[] = {"FOO=1", NULL};
	ci_sink sink = {out_write, o};
	ci_exec_spec x = {.struct_size = sizeof(x),
			  .argv = argv,
			  .env = env,
			  .stdin_buf = stdin_buf,
			  .stdin_len = stdin_buf ? strlen(stdin_buf) : 0,
			  .timeout_ms = 5000,
			  .out = &sink};
	ci_call c = th_call(&f->th, 30000);

	memset(o, 0, sizeof(*o));
	memset(r, 0, sizeof(*r));
	return eng_be_exec(f->be, CID, &x, r, &c);
}

static void test_exec_ok(void **state)
{
	struct fx *f = *state;
	static const unsigned char stream[] = {1, 0, 0, 0, 0, 0, 0, 2,	 '1', '\n', 2,
					       0, 0, 0, 0, 0, 0, 3, 'e', 'r', 'r'};
	struct th_step *st, *create;
	ci_exec_result r;
	struct out o;
	json_t *b, *cmd;

	create = th_expect(&f->th, "POST", "/v1.41/containers/" CID "/exec", 201,
			   "{\"Id\":\"" EID "\"}");
	st = th_expect(&f->th, "POST", "/v1.41/exec/" EID "/start", 200, (const char *)stream);
	st->body_len = sizeof(stream);
	th_expect(&f->th, "GET", "/v1.41/exec/" EID "/json", 200,
		  "{\"Running\":false,\"ExitCode\":7}");
	assert_int_equal(run(f, &r, &o, "hi\n"), CI_OK);
	assert_int_equal(f->th.next, 3);
	assert_int_equal(o.ol, 2);
	assert_memory_equal(o.o, "1\n", 2);
	assert_int_equal(o.el, 3);
	assert_int_equal(r.exit_code, 7);
	assert_int_equal(r.timed_out, 0);

	b = json_loads(create->req_body, 0, NULL);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "User")), "1000:1000");
	assert_string_equal(json_string_value(json_object_get(b, "WorkingDir")), "/mnt/data");
	assert_string_equal(json_string_value(json_array_get(json_object_get(b, "Env"), 0)),
			    "FOO=1");
	assert_true(json_is_false(json_object_get(b, "Tty")));
	cmd = json_object_get(b, "Cmd");
	assert_string_equal(json_string_value(json_array_get(cmd, 0)), "/bin/sh");
	assert_non_null(strstr(json_string_value(json_array_get(cmd, 2)), "timeout -s KILL"));
	assert_non_null(strstr(json_string_value(json_array_get(cmd, 2)), "kill -9 -1"));
	assert_string_equal(json_string_value(json_array_get(cmd, 4)), "5.000");
	assert_string_equal(json_string_value(json_array_get(cmd, 5)), "b");
	assert_string_equal(json_string_value(json_array_get(cmd, 6)), "aGkK"); /* "hi\n" */
	assert_string_equal(json_string_value(json_array_get(cmd, 7)), "python3");
	assert_string_equal(json_string_value(json_array_get(cmd, 9)), "print(1)");
	assert_int_equal(json_array_size(cmd), 10);
	json_decref(b);
	th_release(&f->th);
}

static void test_gone(void **state)
{
	struct fx *f = *state;
	ci_exec_result r;
	struct out o;

	th_expect(&f->th, "POST", "/containers/" CID "/exec", 404,
		  "{\"message\":\"No such container: " CID "\"}");
	assert_int_equal(run(f, &r, &o, NULL), CI_E_NOTFOUND);
	th_release(&f->th);
	th_expect(&f->th, "POST", "/containers/" CID "/exec", 409,
		  "{\"message\":\"Container " CID " is not running\"}");
	assert_int_equal(run(f, &r, &o, NULL), CI_E_NOTFOUND);
	th_release(&f->th);
}

static void test_unreachable(void **state)
{
	struct fx *f = *state;
	ci_exec_result r;
	struct out o;
	struct th_step *st;
	const char *argv[] = {"true", NULL};
	ci_exec_spec x = {.struct_size = sizeof(x), .argv = argv, .timeout_ms = 1000};
	ci_call c = th_call(&f->th, 10000);

	st = th_expect(&f->th, "POST", "/containers/" CID "/exec", 0, NULL);
	st->rc = CI_E_UNAVAIL;
	assert_int_equal(eng_be_exec(f->be, CID, &x, &r, &c), CI_E_UNAVAIL);
	assert_non_null(strstr(c.err, "docker engine unreachable at /test/docker.sock"));
	th_release(&f->th);
	(void)o;
}

static void test_deadline_fallbacks(void **state)
{
	struct fx *f = *state;
	ci_exec_result r;
	struct out o;
	struct th_step *st;

	/* 1: the stream outlives the deadline; a second exec kills the user's processes. */
	th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
	st = th_expect(&f->th, "POST", "/exec/" EID "/start", 0, NULL);
	st->rc = CI_E_TIMEOUT;
	th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" KID "\"}");
	th_expect(&f->th, "POST", "/exec/" KID "/start", 200, "");
	th_expect(&f->th, "GET", "/exec/" EID "/json", 200, "{\"Running\":false,\"ExitCode\":0}");
	assert_int_equal(run(f, &r, &o, NULL), CI_OK);
	assert_int_equal(f->th.next, 5);
	assert_non_null(strstr(f->th.steps[2].req_body, "kill -9 -1"));
	assert_int_equal(r.timed_out, 1);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 9);
	th_release(&f->th);

	/* 2: that fails too; the container itself is killed (recreated later). */
	th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
	st = th_expect(&f->th, "POST", "/exec/" EID "/start", 0, NULL);
	st->rc = CI_E_TIMEOUT;
	th_expect(&f->th, "POST", "/containers/" CID "/exec", 500, "{\"message\":\"pids limit\"}");
	th_expect(&f->th, "GET", "/exec/" EID "/json", 200, "{\"Running\":true,\"ExitCode\":0}");
	th_expect(&f->th, "POST", "/containers/" CID "/kill?signal=SIGKILL", 204, "");
	assert_int_equal(run(f, &r, &o, NULL), CI_OK);
	assert_int_equal(f->th.next, 5);
	assert_int_equal(r.timed_out, 1);
	th_release(&f->th);
}

static void test_bad_stream(void **state)
{
	struct fx *f = *state;
	ci_exec_result r;
	struct out o;

	th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
	th_expect(&f->th, "POST", "/exec/" EID "/start", 200, "{\"message\":\"oops\"}");
	assert_int_equal(run(f, &r, &o, NULL), CI_E_BACKEND);
	assert_int_equal(o.ol + o.el, 0);
	th_release(&f->th);
}

static void test_args(void **state)
{
	struct fx *f = *state;
	const char *empty[] = {NULL};
	ci_exec_spec x = {.struct_size = sizeof(x), .argv = empty};
	ci_exec_result r;
	ci_call c = th_call(&f->th, 1000);

	assert_int_equal(eng_be_exec(f->be, CID, &x, &r, &c), CI_E_INVAL);
	x.argv = (const char *[]){"true", NULL};
	x.cwd = "relative";
	assert_int_equal(eng_be_exec(f->be, CID, &x, &r, &c), CI_E_INVAL);
	x.cwd = NULL;
	assert_int_equal(eng_be_exec(f->be, "../../etc", &x, &r, &c), CI_E_NOTFOUND);
	assert_int_equal(f->th.next, 0); /* nothing reached the engine */
}

static void test_status_mapping(void **state)
{
	ci_exec_result r;
	char **cmd;
	const char *argv[] = {"x", NULL};

	(void)state;
	eng_status_to_result(0, false, &r);
	assert_int_equal(r.exit_code, 0);
	eng_status_to_result(3, false, &r);
	assert_int_equal(r.exit_code, 3);
	assert_int_equal(r.signal, 0);
	eng_status_to_result(139, false, &r);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 11);
	eng_status_to_result(255, false, &r);
	assert_int_equal(r.exit_code, 255);
	eng_status_to_result(137, true, &r);
	assert_int_equal(r.timed_out, 1);
	assert_int_equal(r.signal, 9);
	cmd = eng_wrap_cmd(argv, 0, "n", NULL);
	assert_string_equal(cmd[4], "0");
	assert_string_equal(cmd[6], "");
	assert_string_equal(cmd[7], "x");
	assert_null(cmd[8]);
	eng_cmd_free(cmd);
	cmd = eng_wrap_cmd(argv, 61250, "f", "/mnt/data/.ci-stdin-1");
	assert_string_equal(cmd[4], "61.250");
	eng_cmd_free(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exec_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline_fallbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_args, setup, teardown),
		cmocka_unit_test(test_status_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
