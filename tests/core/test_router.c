#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "router.h"

static const struct ci_route routes[] = {
	{.method = "GET", .pattern = "/health"},
	{.method = "GET", .pattern = "/files/:session_id"},
	{.method = "DELETE", .pattern = "/files/:session_id/:file_id"},
	{.method = "GET", .pattern = "/download/:session_id/:file_id"},
	{.method = "POST", .pattern = "/upload"},
	{.method = "POST", .pattern = "/upload/batch"},
};
#define N (sizeof(routes) / sizeof(routes[0]))

static const struct ci_route *match(const char *m, const char *path, struct ci_params *p,
				    bool *known)
{
	return ci_router_match(routes, N, m, path, p, known);
}

static void test_static_and_v1(void **state)
{
	struct ci_params p = {0};
	bool known;

	(void)state;
	assert_ptr_equal(match("GET", "/health", &p, &known), &routes[0]);
	assert_ptr_equal(match("GET", "/v1/health", &p, &known), &routes[0]);
	assert_ptr_equal(match("GET", "/health/", &p, &known), &routes[0]);
	assert_ptr_equal(match("HEAD", "/health", &p, &known), &routes[0]);
	assert_null(match("GET", "/v1", &p, &known));
	assert_null(match("GET", "/v2/health", &p, &known));
	assert_false(known);
	assert_null(match("GET", "/healthx", &p, &known));
	assert_null(match("GET", "/v1health", &p, &known));
	assert_ptr_equal(match("POST", "/upload/batch", &p, &known), &routes[5]);
	assert_ptr_equal(match("POST", "/v1/upload", &p, &known), &routes[4]);
}

static void test_params(void **state)
{
	struct ci_params p = {0};
	bool known;

	(void)state;
	assert_ptr_equal(match("GET", "/v1/download/abc/def", &p, &known), &routes[3]);
	assert_string_equal(ci_params_get(&p, "session_id"), "abc");
	assert_string_equal(ci_params_get(&p, "file_id"), "def");
	assert_null(ci_params_get(&p, "session"));
	ci_params_clear(&p);
	assert_ptr_equal(match("GET", "/files/S1", &p, &known), &routes[1]);
	assert_string_equal(ci_params_get(&p, "session_id"), "S1");
	ci_params_clear(&p);
	/* Empty segments never bind a parameter. */
	assert_null(match("GET", "/download//def", &p, &known));
	assert_null(match("GET", "/download/abc/def/extra", &p, &known));
	assert_int_equal(p.n, 0);
}

static void test_method_not_allowed(void **state)
{
	struct ci_params p = {0};
	bool known;

	(void)state;
	assert_null(match("POST", "/health", &p, &known));
	assert_true(known);
	assert_null(match("GET", "/files/a/b", &p, &known));
	assert_true(known);
	assert_null(match("PUT", "/nothing", &p, &known));
	assert_false(known);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static_and_v1),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_method_not_allowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
