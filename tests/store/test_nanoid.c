/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdlib.h>
#include <string.h>

#include "nanoid.h"

#define DRAWS 20000

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, CI_NANOID_SIZE);
}

static void test_alphabet_length_uniqueness(void **state)
{
	char(*ids)[CI_NANOID_SIZE] = malloc(DRAWS * sizeof(*ids));
	unsigned counts[64] = {0};

	(void)state;
	assert_non_null(ids);
	for (int i = 0; i < DRAWS; i++) {
		memset(ids[i], 'x', CI_NANOID_SIZE);
		ci_nanoid(ids[i]);
		assert_int_equal(strlen(ids[i]), CI_NANOID_LEN);
		assert_true(ci_nanoid_is_valid(ids[i]));
		for (int j = 0; j < CI_NANOID_LEN; j++) {
			const char *p = strchr(alphabet, ids[i][j]);

			assert_non_null(p);
			counts[p - alphabet]++;
		}
	}
	/* Every symbol appears, and none is far from the mean (420000/64 = 6562). */
	for (int k = 0; k < 64; k++) {
		assert_in_range(counts[k], 5900, 7250);
	}
	qsort(ids, DRAWS, sizeof(*ids), cmp_id);
	for (int i = 1; i < DRAWS; i++)
		assert_int_not_equal(memcmp(ids[i - 1], ids[i], CI_NANOID_SIZE), 0);
	free(ids);
}

static void test_nanoid_validation(void **state)
{
	(void)state;
	assert_true(ci_nanoid_is_valid("LNX7DNfKca2v-vTx1VPCO"));
	assert_true(ci_nanoid_is_valid("_____________________"));
	assert_false(ci_nanoid_is_valid(NULL));
	assert_false(ci_nanoid_is_valid(""));
	assert_false(ci_nanoid_is_valid("LNX7DNfKca2v-vTx1VPC"));   /* 20 */
	assert_false(ci_nanoid_is_valid("LNX7DNfKca2v-vTx1VPCOO")); /* 22 */
	assert_false(ci_nanoid_is_valid("LNX7DNfKca2v-vTx1VPC."));
	assert_false(ci_nanoid_is_valid("LNX7DNfKca2v/vTx1VPCO"));
	assert_false(ci_nanoid_is_valid("LNX7DNfKca2v vTx1VPCO"));
	assert_false(ci_nanoid_is_valid("LNX7DNfKca2v\xc3\xa9TxVPCO"));
	assert_false(ci_nanoid_is_valid("../../../../etc/passw"));
}

static void test_resource_id_validation(void **state)
{
	char buf[140];

	(void)state;
	assert_true(ci_resource_id_is_valid("6650a1b2c3d4e5f6a7b8c9d0"));
	assert_true(ci_resource_id_is_valid("agent_abc-DEF"));
	assert_true(ci_resource_id_is_valid("x"));
	assert_false(ci_resource_id_is_valid(NULL));
	assert_false(ci_resource_id_is_valid(""));
	assert_false(ci_resource_id_is_valid("a b"));
	assert_false(ci_resource_id_is_valid("a/b"));
	assert_false(ci_resource_id_is_valid("a.b"));
	memset(buf, 'a', 128);
	buf[128] = '\0';
	assert_true(ci_resource_id_is_valid(buf));
	buf[128] = 'a';
	buf[129] = '\0';
	assert_false(ci_resource_id_is_valid(buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alphabet_length_uniqueness),
		cmocka_unit_test(test_nanoid_validation),
		cmocka_unit_test(test_resource_id_validation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
