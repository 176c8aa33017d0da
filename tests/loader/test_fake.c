/*
 * The fake backend as the core's test seam, loaded through the real loader:
 * scripted faults and delays (file and config), the call log, the sandbox
 * layout, argv/HOME mapping, and its temporary root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
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

static char dir[256], plugins[300], root[300];
static char script[300], calls[300];

static int group_setup(void **state)
{
	char so[PATH_MAX + 64];

	(void)state;
	make_temp_dir(dir, sizeof(dir), "fake");
	snprintf(plugins, sizeof(plugins), "%s/plugins", dir);
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(script, sizeof(script), "%s/script", dir);
	snprintf(calls, sizeof(calls), "%s/calls.log", dir);
	assert_int_equal(mkdir(plugins, 0755), 0);
	snprintf(so, sizeof(so), "%s/ci-backend-fake.so", plugins);
	copy_file(FAKE_SO, so, 0755);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	remove_tree(dir);
	ci_host_http_cleanup();
	return 0;
}

static int setup(void **state)
{
	(void)state;
	unlink(script);
	unlink(calls);
	setenv("CI_FAKE_SCRIPT", script, 1);
	setenv("CI_FAKE_LOG", calls, 1);
	log_start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unsetenv("CI_FAKE_SCRIPT");
	unsetenv("CI_FAKE_LOG");
	log_stop();
	return 0;
}

static struct ci_plugin *load(struct ci_conf *conf, const char *extra)
{
	char text[PATH_MAX + 512], err[512] = "";
	struct ci_plugin *p;

	snprintf(text, sizeof(text), "backends = { fake = { root = \"%s\"; %s }; };\n", root,
		 extra ? extra : "");
	conf_from_text(conf, text);
	p = ci_plugin_load(plugins, "fake", conf, err, sizeof(err));
	if (!p)
		fail_msg("load: %s", err);
	return p;
}

static int create(struct ci_plugin *p, char id[CI_ID_MAX], ci_call *call)
{
	ci_create_spec cs = {
		.struct_size = sizeof(cs), .runtime = "python", .owner = "me", .session = "s1"};

	return ci_plugin_create(p, call, "rid-c", 0, &cs, id);
}

static void test_layout_and_call_log(void **state)
{
	struct ci_conf conf;
	struct ci_plugin *p = load(&conf, NULL);
	char id[CI_ID_MAX], path[PATH_MAX * 2], *log, *meta;
	ci_source src = {.fd = -1, .size = 0};
	struct stat st;
	ci_call call;

	(void)state;
	assert_true(log_line_has("warn fake.init backend=fake", "sandboxed=NO", NULL));
	assert_int_equal(create(p, id, &call), CI_OK);
	assert_int_equal(strncmp(id, "fk", 2), 0);
	snprintf(path, sizeof(path), "%s/%s/data", root, id);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(path, sizeof(path), "%s/%s/meta", root, id);
	meta = read_text(path);
	assert_non_null(meta);
	assert_non_null(strstr(meta, "owner=me\nsession=s1\nruntime=python\n"));
	free(meta);
	assert_int_equal(ci_plugin_put(p, &call, "rid-p", 0, id, "/mnt/data/a/b.txt", &src, 0640),
			 CI_OK);
	assert_int_equal(ci_plugin_destroy(p, &call, "rid-d", 0, id), CI_OK);
	snprintf(path, sizeof(path), "%s/%s", root, id);
	assert_int_equal(stat(path, &st), -1);

	log = read_text(calls);
	assert_non_null(log);
	snprintf(path, sizeof(path),
		 "create rid=rid-c id=%s runtime=python owner=me session=s1 "
		 "rc=ok\n",
		 id);
	assert_non_null(strstr(log, path));
	snprintf(path, sizeof(path),
		 "put rid=rid-p id=%s path=/mnt/data/a/b.txt size=0 "
		 "mode=0640 rc=ok\n",
		 id);
	assert_non_null(strstr(log, path));
	snprintf(path, sizeof(path), "destroy rid=rid-d id=%s rc=ok\n", id);
	assert_non_null(strstr(log, path));
	free(log);
	ci_plugin_unload(p);
	/* a configured root outlives the plugin */
	assert_int_equal(stat(root, &st), 0);
	assert_false(log_line_has("backend.leak", NULL));
	ci_conf_release(&conf);
}

static void test_script_faults(void **state)
{
	struct ci_conf conf;
	struct ci_plugin *p = load(&conf, NULL);
	char id[CI_ID_MAX], *log;
	ci_call call;

	(void)state;
	write_text(script, "# faults\ncreate=unavail\ncreate.msg=docker daemon gone\n"
			   "destroy=notfound\n");
	assert_int_equal(create(p, id, &call), CI_E_UNAVAIL);
	assert_string_equal(call.err, "fake: docker daemon gone");
	assert_true(log_line_has("backend.call_failed", "op=create", "rc=unavailable", NULL));
	/* re-read at every call */
	write_text(script, "put=limit\n");
	assert_int_equal(create(p, id, &call), CI_OK);
	{
		ci_source src = {.fd = -1, .size = 1};

		assert_int_equal(ci_plugin_put(p, &call, "r", 0, id, "/mnt/data/x", &src, 0644),
				 CI_E_LIMIT);
		assert_string_equal(call.err, "fake: scripted failure");
	}
	write_text(script, "destroy=not_found\nsweep=bogus\n");
	assert_int_equal(ci_plugin_destroy(p, &call, "r", 0, id), CI_E_NOTFOUND);
	{
		unsigned n;

		assert_int_equal(ci_plugin_sweep(p, &call, "r", 0, "me", 0, &n), CI_E_INTERNAL);
		assert_true(log_line_has("fake.script", "unknown code 'bogus'", NULL));
	}
	unlink(script);
	assert_int_equal(ci_plugin_destroy(p, &call, "r", 0, id), CI_OK);
	log = read_text(calls);
	assert_non_null(strstr(log, "create rid=rid-c id=- runtime=python owner=me session=s1 "
				    "rc=unavail\n"));
	free(log);
	ci_plugin_unload(p);
	ci_conf_release(&conf);
}

static void test_delays(void **state)
{
	const char *argv[] = {"true", NULL};
	ci_exec_spec es = {.struct_size = sizeof(es), .argv = argv, .timeout_ms = 5000};
	struct ci_conf conf;
	struct ci_plugin *p = load(&conf, NULL);
	char id[CI_ID_MAX];
	ci_exec_result res;
	int64_t t0;
	ci_call call;

	(void)state;
	assert_int_equal(create(p, id, &call), CI_OK);
	write_text(script, "exec.delay_ms=300\n");
	t0 = ci_now_ms();
	assert_int_equal(ci_plugin_exec(p, &call, "r", 0, id, &es, &res), CI_OK);
	assert_true(ci_now_ms() - t0 >= 300);
	/* a delay past the call's deadline ends at the deadline */
	t0 = ci_now_ms();
	assert_int_equal(ci_plugin_exec(p, &call, "r", t0 + 100, id, &es, &res), CI_E_TIMEOUT);
	assert_true(ci_now_ms() - t0 < 290);
	assert_non_null(strstr(call.err, "ran past the deadline"));
	unlink(script);
	assert_int_equal(ci_plugin_destroy(p, &call, "r", 0, id), CI_OK);
	ci_plugin_unload(p);
	ci_conf_release(&conf);
}

static void test_config_faults(void **state)
{
	struct ci_conf conf;
	struct ci_plugin *p = load(&conf, "fail = { destroy = \"backend\"; };");
	char id[CI_ID_MAX];
	ci_call call;

	(void)state;
	assert_int_equal(create(p, id, &call), CI_OK);
	assert_int_equal(ci_plugin_destroy(p, &call, "r", 0, id), CI_E_BACKEND);
	/* the script overrides the config */
	write_text(script, "destroy=ok\n");
	assert_int_equal(ci_plugin_destroy(p, &call, "r", 0, id), CI_OK);
	ci_plugin_unload(p);
	ci_conf_release(&conf);
}

static void test_init_fault(void **state)
{
	struct ci_conf conf;
	char err[512] = "";

	(void)state;
	write_text(script, "init=unavail\n");
	conf_from_text(&conf, "backends = { fake = { }; };\n");
	assert_null(ci_plugin_load(plugins, "fake", &conf, err, sizeof(err)));
	assert_non_null(strstr(err, "init failed (unavailable): fake: scripted failure"));
	ci_conf_release(&conf);
}

struct out {
	char buf[8192];
	size_t len;
};

static int out_write(void *ctx, int stream, const void *p, size_t n)
{
	struct out *o = ctx;

	if (stream == CI_STREAM_STDOUT && o->len + n < sizeof(o->buf)) {
		memcpy(o->buf + o->len, p, n);
		o->len += n;
		o->buf[o->len] = 0;
	}
	return 0;
}

static void test_exec_mapping(void **state)
{
	const char *cat[] = {"cat", "/mnt/data/in/x.txt", NULL};
	const char *home[] = {"sh", "-c", "printf '%s|%s' \"$HOME\" \"$(pwd -P)\"", NULL};
	const char *leak[] = {"sh", "-c", "printf '%s' \"${CI_FAKE_LOG-unset}\"", NULL};
	struct out o = {0};
	ci_sink sink = {.write = out_write, .ctx = &o};
	ci_exec_spec es = {
		.struct_size = sizeof(es), .argv = cat, .timeout_ms = 5000, .out = &sink};
	struct ci_conf conf;
	struct ci_plugin *p = load(&conf, NULL);
	char id[CI_ID_MAX], want[PATH_MAX * 3], real[PATH_MAX];
	struct mini {
		const char *s;
		size_t off;
	} m = {"mapped", 0};
	ci_source src = {.fd = -1, .size = 6, .ctx = &m};
	ci_exec_result res;
	ci_call call;

	(void)state;
	src.read = NULL;
	assert_int_equal(create(p, id, &call), CI_OK);
	/* a source without read() and fd is refused */
	assert_int_equal(ci_plugin_put(p, &call, "r", 0, id, "/mnt/data/in/x.txt", &src, 0644),
			 CI_E_INVAL);
	{
		char tmpl[] = "/tmp/ci-test-src-XXXXXX";
		int fd = mkstemp(tmpl);

		assert_true(fd >= 0);
		unlink(tmpl);
		assert_int_equal(write(fd, "mapped", 6), 6);
		src.fd = fd;
		assert_int_equal(
			ci_plugin_put(p, &call, "r", 0, id, "/mnt/data/in/x.txt", &src, 0644),
			CI_OK);
		close(fd);
	}
	assert_int_equal(ci_plugin_exec(p, &call, "r", 0, id, &es, &res), CI_OK);
	assert_int_equal(res.exit_code, 0);
	assert_string_equal(o.buf, "mapped");

	snprintf(want, sizeof(want), "%s/%s/data", root, id);
	assert_non_null(realpath(want, real));
	snprintf(want, sizeof(want), "%s/%s/data|%s", root, id, real);
	o.len = 0;
	o.buf[0] = 0;
	es.argv = home;
	assert_int_equal(ci_plugin_exec(p, &call, "r", 0, id, &es, &res), CI_OK);
	assert_string_equal(o.buf, want);
	/* nothing leaks from the host environment */
	o.len = 0;
	es.argv = leak;
	assert_int_equal(ci_plugin_exec(p, &call, "r", 0, id, &es, &res), CI_OK);
	assert_string_equal(o.buf, "unset");
	assert_int_equal(ci_plugin_destroy(p, &call, "r", 0, id), CI_OK);
	ci_plugin_unload(p);
	ci_conf_release(&conf);
}

static void test_temp_root_removed(void **state)
{
	char err[512], tmp[PATH_MAX + 16], id[CI_ID_MAX];
	const char *text, *at;
	struct ci_plugin *p;
	struct stat st;
	ci_call call;

	(void)state;
	p = ci_plugin_load(plugins, "fake", NULL, err, sizeof(err));
	assert_non_null(p);
	assert_int_equal(create(p, id, &call), CI_OK);
	text = log_text();
	at = strstr(text, "fake.init backend=fake root=");
	assert_non_null(at);
	at += strlen("fake.init backend=fake root=");
	snprintf(tmp, sizeof(tmp), "%.*s", (int)strcspn(at, " "), at);
	assert_int_equal(stat(tmp, &st), 0);
	ci_plugin_unload(p);
	assert_int_equal(stat(tmp, &st), -1);
	assert_int_equal(errno, ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout_and_call_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_script_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_temp_root_removed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
