/* API version negotiation from GET /version bodies of real engines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"

static const char docker20[] =
	"{\"Platform\":{\"Name\":\"\"},\"Components\":[{\"Name\":\"Engine\",\"Version\":"
	"\"20.10.24+dfsg1\",\"Details\":{\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\"}},"
	"{\"Name\":\"containerd\",\"Version\":\"1.6.20~ds1\"}],\"Version\":\"20.10.24+dfsg1\","
	"\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\",\"Os\":\"linux\"}";
static const char docker29[] =
	"{\"Components\":[{\"Name\":\"Engine\",\"Version\":\"29.0.1\"}],\"Version\":\"29.0.1\","
	"\"ApiVersion\":\"1.52\",\"MinAPIVersion\":\"1.44\"}";
static const char podman43[] =
	"{\"Platform\":{\"Name\":\"linux/amd64/debian-12\"},\"Components\":[{\"Name\":\"Podman "
	"Engine\",\"Version\":\"4.3.1\",\"Details\":{\"APIVersion\":\"4.3.1\",\"MinAPIVersion\":"
	"\"4.0.0\"}},{\"Name\":\"Conmon\"}],\"Version\":\"4.3.1\",\"ApiVersion\":\"1.41\","
	"\"MinAPIVersion\":\"1.24\"}";

static int pick(const char *json, const char *pin, char api[16], enum eng_kind *kind, char *err)
{
	return eng_version_pick(json, strlen(json), pin, api, kind, err, CI_ERR_MAX);
}

static void test_engines(void **state)
{
	char api[16], err[CI_ERR_MAX];
	enum eng_kind kind;

	(void)state;
	assert_int_equal(pick(docker20, NULL, api, &kind, err), CI_OK);
	assert_string_equal(api, "/v1.41");
	assert_int_equal(kind, ENG_KIND_DOCKER);
	/* Newer than we speak: our maximum, which 29's minimum 1.44 accepts. */
	assert_int_equal(pick(docker29, NULL, api, &kind, err), CI_OK);
	assert_string_equal(api, "/v" ENG_API_MAX);
	assert_int_equal(kind, ENG_KIND_DOCKER);
	assert_int_equal(pick(podman43, NULL, api, &kind, err), CI_OK);
	assert_string_equal(api, "/v1.41");
	assert_int_equal(kind, ENG_KIND_PODMAN);
}

static void test_out_of_range(void **state)
{
	char api[16] = "", err[CI_ERR_MAX];
	enum eng_kind kind;

	(void)state;
	assert_int_equal(
		pick("{\"ApiVersion\":\"1.30\",\"MinAPIVersion\":\"1.12\"}", NULL, api, &kind, err),
		CI_E_UNAVAIL);
	assert_non_null(strstr(err, "too old"));
	assert_int_equal(
		pick("{\"ApiVersion\":\"1.60\",\"MinAPIVersion\":\"1.50\"}", NULL, api, &kind, err),
		CI_E_UNAVAIL);
	assert_non_null(strstr(err, "requires API >= 1.50"));
	assert_string_equal(api, "");
	/* No MinAPIVersion (very old engines): assumed low. */
	assert_int_equal(pick("{\"ApiVersion\":\"1.40\"}", NULL, api, &kind, err), CI_OK);
	assert_string_equal(api, "/v1.40");
}

static void test_garbage(void **state)
{
	char api[16], err[CI_ERR_MAX];
	enum eng_kind kind;

	(void)state;
	assert_int_equal(pick("not json", NULL, api, &kind, err), CI_E_BACKEND);
	assert_int_equal(pick("{\"ApiVersion\":\"one\"}", NULL, api, &kind, err), CI_E_BACKEND);
	assert_int_equal(pick("{\"ApiVersion\":141}", NULL, api, &kind, err), CI_E_BACKEND);
	assert_int_equal(pick("[]", NULL, api, &kind, err), CI_E_BACKEND);
}

static void test_pin(void **state)
{
	char api[16], err[CI_ERR_MAX];
	enum eng_kind kind;

	(void)state;
	assert_int_equal(pick(docker20, "1.40", api, &kind, err), CI_OK);
	assert_string_equal(api, "/v1.40");
	assert_int_equal(pick(docker20, "1.44", api, &kind, err), CI_E_UNAVAIL);
	assert_int_equal(pick(docker29, "1.41", api, &kind, err), CI_E_UNAVAIL);
	assert_int_equal(pick(docker20, "v1.4", api, &kind, err), CI_E_INVAL);
}

static void test_cmp(void **state)
{
	(void)state;
	assert_true(eng_api_cmp("1.41", "1.41") == 0);
	assert_true(eng_api_cmp("1.9", "1.41") < 0); /* numeric, not lexical */
	assert_true(eng_api_cmp("1.100", "1.99") > 0);
	assert_true(eng_api_cmp("2.0", "1.99") > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engines), cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_garbage), cmocka_unit_test(test_pin),
		cmocka_unit_test(test_cmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
