/*
 * The loader against real .so files: every rejection path, the file and
 * directory policy, and the checks the call wrappers make after each call.
 * Test plugins are copied from TEST_PLUGIN_BUILD_DIR into a private 0700
 * directory, so the build tree's umask does not matter.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "host.h"
#include "loader.h"
#include "testutil.h"

/* Under ASan the loader keeps plugins mapped (RTLD_NODELETE). */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

static const char *const variants[] = {
	"good",	    "serial",	   "bad_major", "bad_minor",   "bad_size",
	"bad_name", "bad_version", "bad_nosym", "bad_null_op", "bad_refuse",
	"bad_init", "leak",	   "wild",
};

static char dir[256];
static struct ci_conf conf;

static void plugin_path(char *buf, size_t len, const char *d, const char *name)
{
	snprintf(buf, len, "%s/ci-backend-%s.so", d, name);
}

static int group_setup(void **state)
{
	char src[PATH_MAX], dst[PATH_MAX];

	(void)state;
	make_temp_dir(dir, sizeof(dir), "loader");
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		plugin_path(src, sizeof(src), TEST_PLUGIN_BUILD_DIR, variants[i]);
		plugin_path(dst, sizeof(dst), dir, variants[i]);
		copy_file(src, dst, 0755);
	}
	conf_from_text(&conf, "backends = {\n"
			      "  good = { greeting = \"hello from the config\"; };\n"
			      "  other = { greeting = \"not for good\"; };\n"
			      "};\n");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	ci_conf_release(&conf);
	remove_tree(dir);
	ci_host_http_cleanup();
	return 0;
}

static int setup(void **state)
{
	(void)state;
	log_start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_stop();
	return 0;
}

/* Loading `name` from dir fails with `why` in err and in the log line. */
static void expect_refusal(const char *d, const char *name, const char *why)
{
	char err[1024] = "";
	struct ci_plugin *p = ci_plugin_load(d, name, &conf, err, sizeof(err));

	assert_null(p);
	if (!strstr(err, why))
		fail_msg("err '%s' lacks '%s'", err, why);
	if (!log_line_has("error backend.load_failed", why, NULL))
		fail_msg("no backend.load_failed line with '%s' in:\n%s", why, log_text());
}

static void test_good_loads(void **state)
{
	char err[256] = "", path[PATH_MAX];
	struct ci_plugin *p;

	(void)state;
	p = ci_plugin_load(dir, "good", &conf, err, sizeof(err));
	assert_non_null(p);
	assert_string_equal(p->name, "good");
	assert_string_equal(p->version, "1.2.3");
	plugin_path(path, sizeof(path), dir, "good");
	assert_string_equal(p->path, path);
	assert_false(p->serial);
	/* the plugin saw its own config section through the host table */
	assert_true(
		log_line_has("test.init", "backend=good", "greeting=\"hello from the config\"",
			     NULL) ||
		log_line_has("test.init", "backend=good", "greeting=hello from the config", NULL));
	assert_true(
		log_line_has("info backend.loaded name=good version=1.2.3 abi=1.1", path, NULL));
	ci_plugin_unload(p);
	assert_true(log_line_has("backend.unloaded name=good", NULL));
	assert_false(log_line_has("backend.leak", NULL));
}

static void test_load_path(void **state)
{
	char err[256] = "", path[PATH_MAX];
	struct ci_plugin *p;

	(void)state;
	plugin_path(path, sizeof(path), dir, "good");
	p = ci_plugin_load_path(path, NULL, err, sizeof(err));
	assert_non_null(p);
	assert_string_equal(p->name, "good");
	/* no config: the plugin's cfg_str found nothing */
	assert_true(log_line_has("test.init", "greeting=none", NULL));
	ci_plugin_unload(p);

	snprintf(path, sizeof(path), "%s/libgood.so", dir);
	assert_null(ci_plugin_load_path(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "named ci-backend-<name>.so"));
	snprintf(path, sizeof(path), "%s/ci-backend-good.txt", dir);
	assert_null(ci_plugin_load_path(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "named ci-backend-<name>.so"));
	snprintf(path, sizeof(path), "%s/ci-backend-Good.so", dir);
	assert_null(ci_plugin_load_path(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "must match [a-z0-9_]+"));
}

static void test_bad_major(void **state)
{
	(void)state;
	expect_refusal(dir, "bad_major", "built for ABI 2.0, host speaks 1.1 (major differs)");
}

static void test_bad_minor(void **state)
{
	(void)state;
	expect_refusal(dir, "bad_minor", "built for ABI 1.2, newer than the host's 1.1");
}

static void test_bad_size(void **state)
{
	char why[64];

	(void)state;
	snprintf(why, sizeof(why), "descriptor size %zu < minimum %zu",
		 CI_BACKEND_MIN_SIZE - sizeof(void *), (size_t)CI_BACKEND_MIN_SIZE);
	expect_refusal(dir, "bad_size", why);
}

static void test_bad_name(void **state)
{
	(void)state;
	expect_refusal(dir, "bad_name",
		       "descriptor name 'someone_else' does not match the file stem 'bad_name'");
}

static void test_bad_version(void **state)
{
	(void)state;
	expect_refusal(dir, "bad_version", "descriptor has no version");
}

static void test_bad_nosym(void **state)
{
	(void)state;
	expect_refusal(dir, "bad_nosym", "not a ci-server backend, or built for another ABI major");
	assert_true(log_line_has("backend.load_failed", "undefined symbol: ci_backend_v1", NULL));
}

static void test_bad_null_op(void **state)
{
	(void)state;
	expect_refusal(dir, "bad_null_op", "descriptor mangled: list is NULL");
}

static void test_bad_refuse(void **state)
{
	(void)state;
	expect_refusal(dir, "bad_refuse", "plugin refused host ABI 1.1");
}

static void test_bad_init(void **state)
{
	char path[PATH_MAX];

	(void)state;
	/* its fini() aborts: reaching the asserts means it was not called */
	expect_refusal(dir, "bad_init",
		       "init failed (unavailable): daemon at /nonexistent.sock is down");
#ifndef TEST_ASAN
	/* and the object was dlclose()d */
	plugin_path(path, sizeof(path), dir, "bad_init");
	assert_null(dlopen(path, RTLD_NOW | RTLD_NOLOAD));
#else
	(void)path;
#endif
}

static void test_missing(void **state)
{
	(void)state;
	expect_refusal(dir, "absent", "ci-backend-absent.so: No such file or directory");
}

static void test_bad_names(void **state)
{
	static const char *const names[] = {"Good",   "go-od", "../good", "good.so",
					    "good/x", "",      " good",	  "g\nood"};
	char longname[80];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		expect_refusal(dir, names[i], "must match [a-z0-9_]+");
	memset(longname, 'a', 65);
	longname[65] = 0;
	expect_refusal(dir, longname, "must match [a-z0-9_]+");
}

static void test_writable_file(void **state)
{
	char path[PATH_MAX];

	(void)state;
	plugin_path(path, sizeof(path), dir, "good");
	assert_int_equal(chmod(path, 0775), 0);
	expect_refusal(dir, "good", "group- or world-writable (mode 0775): refusing to load it");
	assert_int_equal(chmod(path, 0757), 0);
	expect_refusal(dir, "good", "group- or world-writable (mode 0757)");
	assert_int_equal(chmod(path, 0755), 0);
}

static void test_writable_dir(void **state)
{
	char err[256];
	struct ci_plugin *p;

	(void)state;
	assert_int_equal(chmod(dir, 0770), 0);
	expect_refusal(dir, "good", "group- or world-writable (mode 0770): refusing to load from");
	assert_int_equal(chmod(dir, 0703), 0);
	expect_refusal(dir, "good", "plugin directory");
	assert_int_equal(chmod(dir, 0700), 0);
	p = ci_plugin_load(dir, "good", NULL, err, sizeof(err));
	assert_non_null(p);
	ci_plugin_unload(p);
}

static void test_not_regular(void **state)
{
	char path[PATH_MAX], target[PATH_MAX];

	(void)state;
	plugin_path(path, sizeof(path), dir, "linked");
	plugin_path(target, sizeof(target), dir, "good");
	assert_int_equal(symlink(target, path), 0);
	expect_refusal(dir, "linked", "not a regular file (a symlink)");
	unlink(path);
	plugin_path(path, sizeof(path), dir, "adir");
	assert_int_equal(mkdir(path, 0755), 0);
	expect_refusal(dir, "adir", "not a regular file");
	rmdir(path);
	expect_refusal("/nonexistent/plugins", "good", "plugin directory /nonexistent/plugins");
	plugin_path(path, sizeof(path), dir, "good");
	expect_refusal(path, "good", "not a directory");
}

static void test_leak_reported(void **state)
{
	char err[256];
	struct ci_plugin *p;

	(void)state;
	p = ci_plugin_load(dir, "leak", &conf, err, sizeof(err));
	assert_non_null(p);
	ci_plugin_unload(p);
	assert_true(log_line_has("warn backend.leak name=leak bytes=5", NULL)); /* "none" + NUL */
}

/* Every wrapper validates what came back. */
static void test_wild_results(void **state)
{
	const char *argv[] = {"true", NULL};
	ci_exec_spec es = {.struct_size = sizeof(es), .argv = argv};
	ci_create_spec cs = {.struct_size = sizeof(cs)};
	ci_source src = {.size = 0, .fd = -1};
	char err[256], id[CI_ID_MAX];
	ci_exec_result res;
	struct ci_plugin *p;
	unsigned n;
	ci_call call;

	(void)state;
	p = ci_plugin_load(dir, "wild", &conf, err, sizeof(err));
	assert_non_null(p);

	assert_int_equal(ci_plugin_create(p, &call, "r1", 0, &cs, id), CI_E_INTERNAL);
	assert_string_equal(id, "");
	assert_non_null(strstr(call.err, "empty or unterminated sandbox id"));
	assert_true(log_line_has("warn backend.call_failed rid=r1 backend=wild op=create",
				 "rc=internal", NULL));

	assert_int_equal(ci_plugin_exec(p, &call, "r2", 0, "box1", &es, &res), CI_E_INTERNAL);
	assert_non_null(strstr(call.err, "exec returned 42, not a ci_rc"));
	assert_true(log_line_has("rid=r2", "op=exec", "id=box1", "rc=internal", NULL));

	assert_int_equal(ci_plugin_put(p, &call, NULL, 0, "box1", "/mnt/data/x", &src, 0644),
			 CI_E_INTERNAL);
	assert_non_null(strstr(call.err, "put returned -1, not a ci_rc"));
	assert_true(log_line_has("rid=-", "op=put", NULL));

	assert_int_equal(ci_plugin_get(p, &call, "r4", 0, "box1", "/mnt/data/x", NULL),
			 CI_E_INTERNAL);
	assert_non_null(memchr(call.err, 0, sizeof(call.err)));
	assert_non_null(strstr(call.err, "left call->err without a terminating NUL"));

	assert_int_equal(ci_plugin_list(p, &call, "r5", 0, "box1", "/mnt/data", NULL, NULL),
			 CI_E_NOTFOUND);
	assert_string_equal(call.err, "backend wild: list failed (not_found)");
	assert_true(log_line_has("info backend.call_failed rid=r5", "rc=not_found", NULL));

	assert_int_equal(ci_plugin_destroy(p, &call, "r6", 0, "box1"), CI_E_INTERNAL);
	assert_non_null(strstr(call.err, "returned 11, not a ci_rc"));

	assert_int_equal(ci_plugin_sweep(p, &call, "r7", 0, "owner", 0, &n), CI_OK);
	assert_int_equal(n, 3);
	assert_string_equal(call.err, "");
	ci_plugin_unload(p);
}

static void test_call_fields(void **state)
{
	ci_create_spec cs = {.struct_size = sizeof(cs)};
	char err[256], id[CI_ID_MAX];
	struct ci_plugin *p;
	int64_t before;
	ci_call call;

	(void)state;
	p = ci_plugin_load(dir, "good", &conf, err, sizeof(err));
	assert_non_null(p);
	memset(&call, 0x55, sizeof(call));
	before = ci_now_ms();
	assert_int_equal(ci_plugin_create(p, &call, "rid-1", 0, &cs, id), CI_OK);
	assert_string_equal(id, "box1");
	assert_int_equal(call.struct_size, sizeof(ci_call));
	assert_string_equal(call.request_id, "rid-1");
	assert_true(call.deadline_ms >= before + CI_PLUGIN_DEFAULT_TIMEOUT_MS);
	assert_true(call.deadline_ms <= ci_now_ms() + CI_PLUGIN_DEFAULT_TIMEOUT_MS);
	assert_string_equal(call.err, "");
	assert_int_equal(ci_plugin_destroy(p, &call, "rid-2", before + 5000, "nope"),
			 CI_E_NOTFOUND);
	assert_int_equal(call.deadline_ms, before + 5000);
	assert_string_equal(call.err, "no sandbox nope");
	ci_plugin_unload(p);
}

struct exec_arg {
	struct ci_plugin *p;
	int most;
};

static void *exec_thread(void *arg)
{
	const char *argv[] = {"true", NULL};
	ci_exec_spec es = {.struct_size = sizeof(es), .argv = argv};
	struct exec_arg *a = arg;
	ci_exec_result res;
	ci_call call;

	if (ci_plugin_exec(a->p, &call, "t", 0, "box1", &es, &res) == CI_OK)
		a->most = res.exit_code;
	return NULL;
}

/* Highest number of execs the plugin saw at once, over 4 threads. */
static int concurrency(const char *name)
{
	struct exec_arg a[4];
	pthread_t t[4];
	char err[256];
	struct ci_plugin *p = ci_plugin_load(dir, name, &conf, err, sizeof(err));
	int most = 0;

	assert_non_null(p);
	assert_int_equal(p->serial, !strcmp(name, "serial"));
	for (int i = 0; i < 4; i++) {
		a[i] = (struct exec_arg){.p = p, .most = -1};
		assert_int_equal(pthread_create(&t[i], NULL, exec_thread, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_true(a[i].most >= 1);
		if (a[i].most > most)
			most = a[i].most;
	}
	ci_plugin_unload(p);
	return most;
}

static void test_serial_lock(void **state)
{
	(void)state;
	assert_int_equal(concurrency("serial"), 1);
	/* the same code without CI_CAP_SERIAL does run concurrently */
	assert_true(concurrency("good") > 1);
}

static void test_rc_table(void **state)
{
	static const int http[CI_RC_COUNT] = {
		[CI_OK] = 200,	      [CI_E_INVAL] = 400,    [CI_E_NOTFOUND] = 404,
		[CI_E_EXISTS] = 409,  [CI_E_NOMEM] = 500,    [CI_E_LIMIT] = 413,
		[CI_E_TIMEOUT] = 504, [CI_E_UNAVAIL] = 503,  [CI_E_UNSUPPORTED] = 501,
		[CI_E_BACKEND] = 502, [CI_E_INTERNAL] = 500,
	};

	(void)state;
	assert_string_equal(ci_rc_name(CI_OK), "ok");
	assert_string_equal(ci_rc_name(CI_E_NOTFOUND), "not_found");
	assert_string_equal(ci_rc_name(CI_E_UNAVAIL), "unavailable");
	assert_string_equal(ci_rc_name(-1), "internal");
	assert_string_equal(ci_rc_name(CI_RC_COUNT), "internal");
	for (int rc = 0; rc < CI_RC_COUNT; rc++) {
		assert_int_equal(ci_rc_http_status(rc), http[rc]);
		for (int other = 0; other < rc; other++)
			assert_string_not_equal(ci_rc_name(rc), ci_rc_name(other));
	}
	assert_int_equal(ci_rc_http_status(99), 500);
}

static void test_plugin_dir(void **state)
{
	char exe[PATH_MAX], want[PATH_MAX + 16];
	ssize_t n;
	char *d;

	(void)state;
	d = ci_plugin_dir("/opt/ci/plugins");
	assert_string_equal(d, "/opt/ci/plugins");
	free(d);
	/* the test binary lives in the build tree, next to plugins/ */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	snprintf(want, sizeof(want), "%s/plugins", exe);
	d = ci_plugin_dir(NULL);
	assert_string_equal(d, want);
	free(d);
	d = ci_plugin_dir("");
	assert_string_equal(d, want);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_major, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_minor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_nosym, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_null_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_refuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leak_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wild_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serial_lock, setup, teardown),
		cmocka_unit_test(test_rc_table),
		cmocka_unit_test(test_plugin_dir),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
