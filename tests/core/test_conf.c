#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

static char conf_path[64];

static const char *write_conf(const char *text)
{
	FILE *f;

	strcpy(conf_path, "/tmp/ci-test-conf-XXXXXX");
	int fd = mkstemp(conf_path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return conf_path;
}

static void clear_env(void)
{
	static const char *const vars[] = {"CI_API_KEY",
					   "CI_BACKEND",
					   "CI_FILE_STORAGE_PATH",
					   "CI_HOST",
					   "CI_PORT",
					   "CI_SESSION_TTL_MINUTES",
					   "CI_MAX_MEMORY_MB",
					   "CI_MAX_RUN_TIMEOUT_SECONDS",
					   "CI_MAX_FILE_SIZE_BYTES",
					   "CI_MAX_FILES_PER_SESSION",
					   "CI_MAX_FILES_PER_RUN",
					   "CI_SANDBOX_SWEEP_ON_STARTUP",
					   "CI_SANDBOX_LABEL",
					   "CI_PLUGIN_DIR",
					   "CI_AUTH_MODE",
					   "CI_LOG_LEVEL",
					   "CI_DEFAULT_RUN_TIMEOUT_SECONDS",
					   NULL};

	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

static int setup(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (conf_path[0])
		unlink(conf_path);
	conf_path[0] = 0;
	clear_env();
	return 0;
}

static void test_defaults(void **state)
{
	struct ci_conf c;
	char err[256] = "";

	(void)state;
	assert_int_equal(ci_conf_load(&c, NULL, err, sizeof(err)), 0);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.port, 8080);
	assert_string_equal(c.backend, "bwrap");
	assert_int_equal(c.session_ttl_minutes, 60);
	assert_int_equal(c.session_idle_minutes, 30);
	assert_int_equal(c.file_ttl_hours, 24);
	assert_true(c.sweep_on_startup);
	/* No built-in key: a server with defaults only must refuse to run. */
	assert_int_equal(c.n_keys, 0);
	assert_int_equal(ci_conf_check_runnable(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no API key"));
	ci_conf_release(&c);
}

static void test_file_values_and_keys(void **state)
{
	struct ci_conf c;
	char err[256] = "";
	const char *p = write_conf(
		"listen = { host = \"0.0.0.0\"; port = 9000; };\n"
		"auth = { keys = ( { name = \"lc\"; key = \"0123456789abcdef\"; } ); };\n"
		"storage = { max_file_size = 1000; };\n"
		"limits = { max_run_timeout_s = 10; default_run_timeout_s = 5; };\n");

	(void)state;
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), 0);
	assert_string_equal(c.host, "0.0.0.0");
	assert_int_equal(c.port, 9000);
	assert_int_equal(c.n_keys, 1);
	assert_string_equal(c.keys[0].name, "lc");
	assert_int_equal(c.max_file_size, 1000);
	assert_int_equal(c.max_run_timeout_s, 10);
	assert_int_equal(ci_conf_check_runnable(&c, err, sizeof(err)), 0);
	ci_conf_release(&c);
}

static void test_env_overrides_file(void **state)
{
	struct ci_conf c;
	char err[256] = "";
	const char *p = write_conf("listen = { port = 9000; };\nbackend = \"docker\";\n");

	(void)state;
	setenv("CI_PORT", "9100", 1);
	setenv("CI_BACKEND", "fake", 1);
	setenv("CI_API_KEY", "env-key-0123456789", 1);
	setenv("CI_SANDBOX_SWEEP_ON_STARTUP", "false", 1);
	setenv("CI_MAX_FILES_PER_RUN", "7", 1);
	setenv("CI_MAX_RUN_TIMEOUT_SECONDS", "10", 1);
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), 0);
	/* The default run timeout (30 s) follows a lower maximum. */
	assert_int_equal(c.max_run_timeout_s, 10);
	assert_int_equal(c.default_run_timeout_s, 10);
	assert_int_equal(c.port, 9100);
	assert_string_equal(c.backend, "fake");
	assert_int_equal(c.n_keys, 1);
	assert_string_equal(c.keys[0].name, "default");
	assert_string_equal(c.keys[0].key, "env-key-0123456789");
	assert_false(c.sweep_on_startup);
	assert_int_equal(c.max_files_per_run, 7);
	ci_conf_release(&c);
}

static void test_bad_env(void **state)
{
	struct ci_conf c;
	char err[256] = "";

	(void)state;
	setenv("CI_PORT", "80x", 1);
	assert_int_equal(ci_conf_load(&c, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "CI_PORT"));
	ci_conf_release(&c);
	unsetenv("CI_PORT");
	setenv("CI_API_KEY", "short", 1);
	assert_int_equal(ci_conf_load(&c, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too short"));
	ci_conf_release(&c);
}

static void test_errors_have_file_and_line(void **state)
{
	struct ci_conf c;
	char err[256] = "", want[96];
	const char *p = write_conf("listen = {\n  port = \"eighty\";\n};\n");

	(void)state;
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2:", p);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "port must be an integer"));
	ci_conf_release(&c);

	p = write_conf("listen = { port = 1 \n");
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, p));
	ci_conf_release(&c);

	p = write_conf("auth = { mode = \"maybe\"; };\n");
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "auth.mode"));
	ci_conf_release(&c);

	p = write_conf("backend = \"../evil\";\n");
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "[a-z0-9_]+"));
	ci_conf_release(&c);
}

static void test_backend_section(void **state)
{
	struct ci_conf c;
	char err[256] = "";
	const char *s = NULL;
	int64_t i = 0;
	int b = 0;
	const char *p =
		write_conf("auth = { mode = \"none\"; };\n"
			   "backends = { docker = { socket = \"/x.sock\"; pool = { python = 2; };"
			   " tls = true; }; };\n");

	(void)state;
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), 0);
	assert_int_equal(c.auth_mode, CI_AUTH_NONE);
	assert_int_equal(ci_conf_check_runnable(&c, err, sizeof(err)), 0);
	assert_int_equal(ci_conf_backend_str(&c, "docker", "socket", &s), 0);
	assert_string_equal(s, "/x.sock");
	assert_int_equal(ci_conf_backend_int(&c, "docker", "pool.python", &i), 0);
	assert_int_equal(i, 2);
	assert_int_equal(ci_conf_backend_bool(&c, "docker", "tls", &b), 0);
	assert_int_equal(b, 1);
	/* Scoped: another backend's section is invisible, wrong types say so. */
	assert_int_equal(ci_conf_backend_str(&c, "podman", "socket", &s), 1);
	assert_int_equal(ci_conf_backend_int(&c, "docker", "socket", &i), -1);
	ci_conf_release(&c);
}

static void test_languages(void **state)
{
	struct ci_conf c;
	char err[256] = "";
	const char *names[] = {"py", "js", "ts", "c",	"cpp", "java", "php",
			       "rs", "go", "d",	 "f90", "r",   "bash"};
	const char *p =
		write_conf("languages = ( { name = \"py\"; run = \"python3 -X utf8 main.py\"; },\n"
			   "  { name = \"lua\"; aliases = [\"lua5.4\"]; runtime = \"lua\";"
			   " source_file = \"main.lua\"; run = \"lua5.4 main.lua\"; } );\n");

	(void)state;
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_non_null(ci_conf_find_lang(&c, names[i]));
	assert_string_equal(ci_conf_find_lang(&c, "Python")->name, "py");
	assert_string_equal(ci_conf_find_lang(&c, "node")->name, "js");
	assert_string_equal(ci_conf_find_lang(&c, "sh")->name, "bash");
	assert_string_equal(ci_conf_find_lang(&c, "rust")->name, "rs");
	assert_string_equal(ci_conf_find_lang(&c, "fortran")->name, "f90");
	assert_string_equal(ci_conf_find_lang(&c, "py")->run, "python3 -X utf8 main.py");
	assert_string_equal(ci_conf_find_lang(&c, "py")->source_file, "main.py");
	assert_string_equal(ci_conf_find_lang(&c, "lua5.4")->name, "lua");
	assert_null(ci_conf_find_lang(&c, "cobol"));
	ci_conf_release(&c);

	p = write_conf("languages = ( { name = \"zig\"; } );\n");
	assert_int_equal(ci_conf_load(&c, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs runtime"));
	ci_conf_release(&c);
}

static void test_sample_config_is_valid(void **state)
{
	struct ci_conf c;
	char err[256] = "";

	(void)state;
	assert_int_equal(ci_conf_load(&c, CI_SOURCE_DIR "/conf/ci.conf", err, sizeof(err)), 0);
	assert_string_equal(c.backend, "bwrap");
	ci_conf_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_values_and_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_have_file_and_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_languages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample_config_is_valid, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
