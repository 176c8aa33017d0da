#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "conf.h"

static struct ci_conf conf;
static struct ci_auth *auth;

static int setup(void **state)
{
	char err[256];

	(void)state;
	ci_conf_defaults(&conf);
	conf.auth_accept = CI_ACCEPT_API_KEY;
	conf.keys[0].name = strdup("librechat");
	conf.keys[0].key = strdup("sekret-0123456789");
	conf.keys[1].name = strdup("ops");
	conf.keys[1].key = strdup("other-key-abcdefgh");
	conf.n_keys = 2;
	auth = ci_auth_new(&conf, err, sizeof(err));
	assert_non_null(auth);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ci_auth_free(auth);
	ci_conf_release(&conf);
	return 0;
}

static int check(const char *xkey, const char *authz, char *principal)
{
	char why[128];

	return ci_auth_check(auth, xkey, authz, principal, why, sizeof(why));
}

static void test_secret_equal(void **state)
{
	(void)state;
	assert_true(ci_secret_equal("abc", 3, "abc", 3));
	assert_false(ci_secret_equal("abc", 3, "abd", 3));
	assert_false(ci_secret_equal("abc", 3, "abcd", 4));
	assert_false(ci_secret_equal("", 0, "a", 1));
	assert_true(ci_secret_equal("", 0, "", 0));
	/* Same prefix, different length: must not compare equal on the prefix. */
	assert_false(ci_secret_equal("sekret-0123456789", 17, "sekret-0123456789x", 18));
}

static void test_base64(void **state)
{
	unsigned char out[64];
	long n;

	(void)state;
	n = ci_base64_decode("a2V5Og==", 8, out, sizeof(out));
	assert_int_equal(n, 4);
	assert_memory_equal(out, "key:", 4);
	n = ci_base64_decode("a2V5", 4, out, sizeof(out));
	assert_int_equal(n, 3);
	assert_memory_equal(out, "key", 3);
	assert_int_equal(ci_base64_decode("a2V*", 4, out, sizeof(out)), -1);
	assert_int_equal(ci_base64_decode("a2V5a2V5", 8, out, 2), -1);
}

static void test_header_forms(void **state)
{
	char p[CI_PRINCIPAL_MAX];

	(void)state;
	assert_int_equal(check("sekret-0123456789", NULL, p), 0);
	assert_string_equal(p, "librechat");
	assert_int_equal(check(NULL, "Bearer other-key-abcdefgh", p), 0);
	assert_string_equal(p, "ops");
	assert_int_equal(check(NULL, "bearer   sekret-0123456789", p), 0);
	/* node-fetch v2 sends base64("KEY"); axios sends base64("KEY:"). */
	assert_int_equal(check(NULL, "Basic c2VrcmV0LTAxMjM0NTY3ODk=", p), 0);
	assert_string_equal(p, "librechat");
	assert_int_equal(check(NULL, "Basic c2VrcmV0LTAxMjM0NTY3ODk6", p), 0);
	/* "KEY:password" still takes the part before the first colon. */
	assert_int_equal(check(NULL, "Basic c2VrcmV0LTAxMjM0NTY3ODk6eHl6", p), 0);
	/* A wrong X-API-Key does not hide a right Authorization header. */
	assert_int_equal(check("nope", "Bearer sekret-0123456789", p), 0);
}

static void test_rejections(void **state)
{
	char p[CI_PRINCIPAL_MAX], why[128];

	(void)state;
	assert_int_equal(check(NULL, NULL, p), -1);
	assert_int_equal(ci_auth_check(auth, NULL, NULL, p, why, sizeof(why)), -1);
	assert_string_equal(why, "missing credentials");
	assert_int_equal(ci_auth_check(auth, "sekret-012345678", NULL, p, why, sizeof(why)), -1);
	assert_string_equal(why, "invalid API key");
	assert_int_equal(check(NULL, "Bearer ", p), -1);
	assert_int_equal(check(NULL, "Basic !!!", p), -1);
	assert_int_equal(ci_auth_check(auth, NULL, "Digest x", p, why, sizeof(why)), -1);
	assert_string_equal(why, "unsupported Authorization scheme");
	/* Base64 of "wrong" */
	assert_int_equal(check(NULL, "Basic d3Jvbmc=", p), -1);
	assert_int_equal(check("", "", p), -1);
}

static void test_mode_none(void **state)
{
	char p[CI_PRINCIPAL_MAX];

	(void)state;
	conf.auth_mode = CI_AUTH_NONE;
	assert_int_equal(check(NULL, NULL, p), 0);
	assert_string_equal(p, "anonymous");
	conf.auth_mode = CI_AUTH_KEYS;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_equal),
		cmocka_unit_test(test_base64),
		cmocka_unit_test_setup_teardown(test_header_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_none, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
