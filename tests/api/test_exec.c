/*
 * The exec pipeline through HTTP with the fake backend (real host programs):
 * output detection, input sync and sandbox reuse, timeouts, caps, plot
 * capture, lost sandboxes, backend failures, session deletion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "fixture.h"
#include "log.h"

static char fake_log[128];

/* POST /exec with a body built from a json_t (stolen). */
static json_t *exec_json(const char *key, json_t *body, long want)
{
	char *text = json_dumps(body, 0);
	json_t *r;

	json_decref(body);
	r = fx_post_json(key, "/v1/exec", text, want);
	free(text);
	return r;
}

static json_t *run_py(const char *code, long want)
{
	return exec_json(KEY_A, json_pack("{s:s,s:s}", "lang", "py", "code", code), want);
}

static json_t *file_named(json_t *resp, const char *name)
{
	size_t i;
	json_t *f;

	json_array_foreach(
		json_object_get(resp, "files"), i,
		f) if (!strcmp(json_string_value(json_object_get(f, "name")), name)) return f;
	return NULL;
}

static char *download(const char *sid, const char *fid)
{
	char path[128];
	struct tresp rs;
	char *body;

	snprintf(path, sizeof(path), "/download/%s/%s", sid, fid);
	json_decref(fx_call("GET", KEY_A, path, 200, &rs));
	body = strdup(rs.body);
	tresp_free(&rs);
	return body;
}

static int count_log(const char *needle)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen(fake_log, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void tune_small_output(struct ci_conf *c)
{
	c->max_output_bytes = 2048;
}

static int setup(void **state)
{
	(void)state;
	fx_setup(NULL, tune_small_output);
	snprintf(fake_log, sizeof(fake_log), "%s/fake.log", fx_root);
	setenv("CI_FAKE_LOG", fake_log, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unsetenv("CI_FAKE_LOG");
	unsetenv("CI_FAKE_SCRIPT");
	fx_teardown();
	return 0;
}

static void test_run_and_fail(void **state)
{
	json_t *r;

	(void)state;
	r = run_py("import sys\nprint('out', sys.argv[1:])\nprint('err', file=sys.stderr)", 200);
	assert_string_equal(fx_str(r, "stdout"), "out []\n");
	assert_string_equal(fx_str(r, "stderr"), "err\n");
	assert_string_equal(fx_str(r, "status"), "ok");
	assert_int_equal(json_integer_value(json_object_get(r, "code")), 0);
	assert_int_equal(strlen(fx_str(r, "session_id")), 21);
	assert_int_equal(json_array_size(json_object_get(r, "files")), 0);
	json_decref(r);
	/* A failing program is still a 200 with its exit code and stderr. */
	r = run_py("import sys\nsys.stderr.write('boom')\nsys.exit(3)", 200);
	assert_int_equal(json_integer_value(json_object_get(r, "code")), 3);
	assert_string_equal(fx_str(r, "status"), "error");
	assert_string_equal(fx_str(r, "stderr"), "boom");
	json_decref(r);
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:[s,s]}", "lang", "bash", "code", "echo \"$1|$2\"",
				"args", "a b", "c"),
		      200);
	assert_string_equal(fx_str(r, "stdout"), "a b|c\n");
	json_decref(r);
}

static void test_outputs_detected_and_stored(void **state)
{
	json_t *r, *f;
	char *body, sid[32];

	(void)state;
	r = run_py("import os\nopen('out.csv','w').write('x,y\\n1,2\\n')\n"
		   "open('blob.bin','wb').write(b'\\0\\1')\n"
		   "os.makedirs('sub/dir')\nopen('sub/dir/r.json','w').write('{}')\n"
		   "os.symlink('/etc/passwd', 'link.txt')",
		   200);
	snprintf(sid, sizeof(sid), "%s", fx_str(r, "session_id"));
	assert_int_equal(json_array_size(json_object_get(r, "files")), 2);
	f = file_named(r, "out.csv");
	assert_non_null(f);
	/* Outputs live under the exec's own session and are downloadable at once. */
	assert_string_equal(json_string_value(json_object_get(f, "storage_session_id")), sid);
	body = download(sid, json_string_value(json_object_get(f, "id")));
	assert_string_equal(body, "x,y\n1,2\n");
	free(body);
	assert_non_null(file_named(r, "sub/dir/r.json"));
	/* Not allowlisted, and symlinks: never outputs. */
	assert_null(file_named(r, "blob.bin"));
	assert_null(file_named(r, "link.txt"));
	json_decref(r);
}

static void test_inputs_sync_and_reuse(void **state)
{
	const char *names[] = {"data.txt", NULL}, *datas[] = {"hello", NULL};
	char up_sid[32], up_fid[32], s1[32], state_fid[32];
	json_t *up, *r, *f, *sessions;
	char *body;
	int puts_before;

	(void)state;
	up = fx_upload(KEY_A, "/upload", names, datas, NULL, NULL, 200);
	snprintf(up_sid, sizeof(up_sid), "%s", fx_str(up, "session_id"));
	snprintf(up_fid, sizeof(up_fid), "%s", fx_str(up, "files.0.fileId"));
	json_decref(up);
	/* Legacy ref shape: session_id. */
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:[{s:s,s:s,s:s}]}", "lang", "py", "code",
				"d=open('data.txt').read()\nprint(d)\n"
				"open('state.json','w').write('{\"n\":1}')",
				"files", "id", up_fid, "session_id", up_sid, "name", "data.txt"),
		      200);
	assert_string_equal(fx_str(r, "stdout"), "hello\n");
	/* The unchanged input is not reported back. */
	assert_null(file_named(r, "data.txt"));
	f = file_named(r, "state.json");
	assert_non_null(f);
	snprintf(s1, sizeof(s1), "%s", fx_str(r, "session_id"));
	snprintf(state_fid, sizeof(state_fid), "%s", json_string_value(json_object_get(f, "id")));
	json_decref(r);
	puts_before = count_log("put ");

	/* Current ref shape, as ToolNode sends it; the sandbox is found again. */
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:[{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s}]}", "lang", "py",
				"code",
				"import os\nopen('state.json','w').write('{\"n\":2}')\n"
				"os.remove('data.txt')",
				"files", "id", up_fid, "storage_session_id", up_sid, "name",
				"data.txt", "kind", "user", "id", state_fid, "storage_session_id",
				s1, "name", "state.json", "kind", "user"),
		      200);
	/* Only the program text was copied in: both inputs were already there. */
	assert_int_equal(count_log("put ") - puts_before, 1);
	f = file_named(r, "state.json");
	assert_non_null(f);
	assert_string_equal(fx_str(f, "modified_from.id"), state_fid);
	assert_string_equal(fx_str(f, "modified_from.storage_session_id"), s1);
	body = download(fx_str(r, "session_id"), json_string_value(json_object_get(f, "id")));
	assert_string_equal(body, "{\"n\":2}");
	free(body);
	assert_string_equal(fx_str(r, "deleted_files.0"), "data.txt");
	json_decref(r);
	sessions = fx_call("GET", KEY_A, "/v1/librechat/sessions", 200, NULL);
	assert_int_equal(json_array_size(json_object_get(sessions, "sessions")), 1);
	assert_int_equal(
		json_integer_value(json_object_get(
			json_array_get(json_object_get(sessions, "sessions"), 0), "execs")),
		2);
	json_decref(sessions);
	/* Bob sees none of Alice's sandboxes. */
	sessions = fx_call("GET", KEY_B, "/v1/librechat/sessions", 200, NULL);
	assert_int_equal(json_array_size(json_object_get(sessions, "sessions")), 0);
	json_decref(sessions);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_timeout_keeps_partial_output(void **state)
{
	double t0 = now_s();
	json_t *r;

	(void)state;
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:i}", "lang", "py", "code",
				"import time\nprint('before', flush=True)\ntime.sleep(30)",
				"timeout", 1000),
		      200);
	assert_true(now_s() - t0 < 10);
	assert_string_equal(fx_str(r, "status"), "timeout");
	assert_string_equal(fx_str(r, "stdout"), "before\n");
	assert_non_null(strstr(fx_str(r, "stderr"), "timed out after 1 seconds"));
	json_decref(r);
}

static void test_output_caps(void **state)
{
	json_t *r;

	(void)state;
	r = run_py("print('x' * 10000)", 200);
	assert_true(strlen(fx_str(r, "stdout")) < 2200);
	assert_non_null(strstr(fx_str(r, "stdout"), "[output truncated: 7953 more bytes"));
	json_decref(r);
	/* At most max_files_per_run (3 here) outputs are kept, and that is said. */
	r = run_py("for i in range(5):\n    open('f%d.txt' % i, 'w').write(str(i))", 200);
	assert_int_equal(json_array_size(json_object_get(r, "files")), 3);
	assert_non_null(strstr(fx_str(r, "stderr"), "2 generated files were not kept"));
	json_decref(r);
}

static void test_plot_capture(void **state)
{
	json_t *r;

	(void)state;
	r = run_py("import matplotlib.pyplot as plt\nimport seaborn as sns\n"
		   "plt.plot([1, 2, 3])\nplt.show()\n"
		   "plt.figure()\nsns.barplot(x=['a', 'b'], y=[1, 2])\nplt.savefig('bars.png')\n"
		   "plt.figure()\nplt.plot([3, 2, 1])\n",
		   200);
	/* show() -> plot_1.png; savefig as named (not twice); the open one at exit. */
	assert_string_equal(fx_str(r, "stdout"), "");
	assert_non_null(file_named(r, "plot_1.png"));
	assert_non_null(file_named(r, "bars.png"));
	assert_non_null(file_named(r, "plot_2.png"));
	assert_int_equal(json_array_size(json_object_get(r, "files")), 3);
	json_decref(r);
	/* Code that never plots pays nothing and prints nothing extra. */
	r = run_py("import sys\nprint('matplotlib' in sys.modules)", 200);
	assert_string_equal(fx_str(r, "stdout"), "False\n");
	json_decref(r);
}

static void test_r_graphics_become_png(void **state)
{
	json_t *r;

	(void)state;
	/* R's default device would write Rplots.pdf: the prelude makes PNGs, one per page. */
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s}", "lang", "r", "code",
				"plot(1:10)\nhist(c(1, 2, 2, 3, 3, 3))\ncat('ok\\n')"),
		      200);
	assert_string_equal(fx_str(r, "stdout"), "ok\n");
	assert_non_null(file_named(r, "plot_1.png"));
	assert_non_null(file_named(r, "plot_2.png"));
	assert_null(file_named(r, "Rplots.pdf"));
	json_decref(r);
}

static void test_lost_sandbox_is_recreated(void **state)
{
	char cmd[160], sid[32];
	json_t *r;

	(void)state;
	r = run_py("open('a.txt','w').write('1')", 200);
	snprintf(sid, sizeof(sid), "%s", fx_str(r, "session_id"));
	json_decref(r);
	/* The backend loses every sandbox behind our back. */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/sandboxes/*", fx_root);
	assert_int_equal(system(cmd), 0);
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:s}", "lang", "py", "code", "print('again')",
				"session_id", sid),
		      200);
	assert_string_equal(fx_str(r, "stdout"), "again\n");
	json_decref(r);
}

static void test_backend_failure_is_json_5xx(void **state)
{
	char script[128];
	FILE *f;
	json_t *r;

	(void)state;
	snprintf(script, sizeof(script), "%s/faults", fx_root);
	f = fopen(script, "w");
	fputs("create=unavail\ncreate.msg=engine down\n", f);
	fclose(f);
	setenv("CI_FAKE_SCRIPT", script, 1);
	r = run_py("print(1)", 503);
	assert_non_null(strstr(fx_str(r, "error"), "engine down"));
	json_decref(r);
	/* /health says which backend is down, and why. */
	r = fx_call("GET", NULL, "/health", 503, NULL);
	assert_string_equal(fx_str(r, "backend"), "fake");
	assert_string_equal(fx_str(r, "backend_status"), "down");
	assert_non_null(strstr(fx_str(r, "error"), "engine down"));
	json_decref(r);
	unsetenv("CI_FAKE_SCRIPT");
	r = run_py("print(1)", 200);
	json_decref(r);
	r = fx_call("GET", NULL, "/health", 200, NULL);
	assert_string_equal(fx_str(r, "backend_status"), "up");
	json_decref(r);
}

static void test_delete_session(void **state)
{
	char path[128], sid[32];
	json_t *r;

	(void)state;
	r = run_py("print(1)", 200);
	snprintf(sid, sizeof(sid), "%s", fx_str(r, "session_id"));
	json_decref(r);
	snprintf(path, sizeof(path), "/v1/librechat/sessions/%s", sid);
	json_decref(fx_call("DELETE", KEY_B, path, 404, NULL));
	json_decref(fx_call("DELETE", KEY_A, path, 200, NULL));
	json_decref(fx_call("DELETE", KEY_A, path, 404, NULL));
	r = fx_call("GET", KEY_A, "/v1/librechat/sessions", 200, NULL);
	assert_int_equal(json_array_size(json_object_get(r, "sessions")), 0);
	json_decref(r);
	assert_int_equal(count_log("destroy "), 1);
}

static void test_users_never_share_a_sandbox(void **state)
{
	char sid[32];
	json_t *r;

	(void)state;
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:s}", "lang", "py", "code",
				"open('mine.txt','w').write('u1 secret')", "user_id", "user1"),
		      200);
	snprintf(sid, sizeof(sid), "%s", fx_str(r, "session_id"));
	json_decref(r);
	/* Another user of the same principal names u1's session: a fresh sandbox. */
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:s,s:s}", "lang", "py", "code",
				"import os\nprint(os.path.exists('mine.txt'))", "user_id", "user2",
				"session_id", sid),
		      200);
	assert_string_equal(fx_str(r, "stdout"), "False\n");
	json_decref(r);
	/* The same user gets its sandbox back. */
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:s,s:s}", "lang", "py", "code",
				"import os\nprint(os.path.exists('mine.txt'))", "user_id", "user1",
				"session_id", sid),
		      200);
	assert_string_equal(fx_str(r, "stdout"), "True\n");
	json_decref(r);
	/* The principal sees (and may delete) all its users' sandboxes. */
	r = fx_call("GET", KEY_A, "/v1/librechat/sessions", 200, NULL);
	assert_int_equal(json_array_size(json_object_get(r, "sessions")), 2);
	json_decref(r);
}

static void tune_rate(struct ci_conf *c)
{
	c->principal_execs_per_minute = 2;
	c->principal_concurrent_execs = 1;
}

static int setup_rate(void **state)
{
	(void)state;
	fx_setup(NULL, tune_rate);
	return 0;
}

static void *slow_exec(void *arg)
{
	(void)arg;
	json_decref(
		exec_json(KEY_B, json_pack("{s:s,s:s}", "lang", "bash", "code", "sleep 2"), 200));
	return NULL;
}

static void test_rate_limits_per_principal(void **state)
{
	pthread_t t;
	json_t *r;

	(void)state;
	json_decref(run_py("print(1)", 200));
	json_decref(run_py("print(2)", 200));
	/* Two a minute: the third waits, and is told for how long. */
	r = run_py("print(3)", 429);
	assert_string_equal(fx_str(r, "error"), "rate_limited");
	assert_true(json_integer_value(json_object_get(r, "retry_after_seconds")) >= 1);
	assert_true(json_integer_value(json_object_get(r, "retry_after_seconds")) <= 30);
	json_decref(r);
	/* Another principal is not affected; one at a time for it too. */
	pthread_create(&t, NULL, slow_exec, NULL);
	usleep(700 * 1000);
	r = exec_json(KEY_B, json_pack("{s:s,s:s}", "lang", "bash", "code", "echo hi"), 429);
	assert_int_equal(json_integer_value(json_object_get(r, "retry_after_seconds")), 1);
	json_decref(r);
	pthread_join(t, NULL);
	json_decref(
		exec_json(KEY_B, json_pack("{s:s,s:s}", "lang", "bash", "code", "echo hi"), 200));
}

static void test_read_only_and_duplicate_names(void **state)
{
	const char *n1[] = {"ro.txt", NULL}, *d1[] = {"original", NULL};
	const char *n2[] = {"same.txt", "same.txt", NULL}, *d2[] = {"first", "second", NULL};
	json_t *up, *r;

	(void)state;
	up = fx_upload(KEY_A, "/upload/batch", n1, d1, "read_only", "true", 200);
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:[{s:s,s:s,s:s}]}", "lang", "py", "code",
				"open('ro.txt','w').write('changed')", "files", "id",
				fx_str(up, "files.0.fileId"), "storage_session_id",
				fx_str(up, "storage_session_id"), "name", "ro.txt"),
		      200);
	/* A read-only input is never reported as an output. */
	assert_int_equal(json_array_size(json_object_get(r, "files")), 0);
	json_decref(r);
	json_decref(up);
	/* Two uploads with one name (LibreChat issue 15443): the later wins, nothing breaks. */
	up = fx_upload(KEY_A, "/upload", n2, d2, NULL, NULL, 200);
	r = exec_json(KEY_A,
		      json_pack("{s:s,s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:s}]}", "lang", "py", "code",
				"print(open('same.txt').read())", "files", "id",
				fx_str(up, "files.0.fileId"), "session_id",
				fx_str(up, "session_id"), "name", "same.txt", "id",
				fx_str(up, "files.1.fileId"), "session_id",
				fx_str(up, "session_id"), "name", "same.txt"),
		      200);
	assert_string_equal(fx_str(r, "stdout"), "second\n");
	json_decref(r);
	json_decref(up);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_and_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outputs_detected_and_stored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inputs_sync_and_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_keeps_partial_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plot_capture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_r_graphics_become_png, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_sandbox_is_recreated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_failure_is_json_5xx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users_never_share_a_sandbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limits_per_principal, setup_rate,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_only_and_duplicate_names, setup,
						teardown),
	};

	curl_global_init(CURL_GLOBAL_ALL);
	ci_log_set_level(CI_LL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
