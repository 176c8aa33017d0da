#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "exec_priv.h"

#define NONCE "AbCdEfGhIjKlMnOpQrStU"

struct seen {
	int n;
	char paths[8][64];
	int types[8];
	int64_t sizes[8], mtimes[8];
};

static int collect(void *ctx, const ci_entry *e)
{
	struct seen *s = ctx;

	snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", e->path);
	s->types[s->n] = e->type;
	s->sizes[s->n] = e->size;
	s->mtimes[s->n] = e->mtime_ns;
	s->n++;
	return 0;
}

/* stderr of a run: program output, then the runner's block. */
static size_t make(char *buf, const char *program_err, const char *records, size_t rlen, int status)
{
	size_t n = (size_t)sprintf(buf, "%s\n" NONCE "\n", program_err);

	memcpy(buf + n, records, rlen);
	n += rlen;
	n += (size_t)sprintf(buf + n, NONCE "-end %d\n", status);
	return n;
}

static void test_parse_records(void **state)
{
	static const char rec[] = "f 12 1700000000.5000000000 644 out.csv\0"
				  "d 4096 1700000001.0 755 sub dir\0"
				  "f 3 1700000002.25 600 sub dir/new\nline.txt\0"
				  "l 9 1700000003 777 link\0";
	char buf[1024];
	const char *body;
	size_t len = make(buf, "Traceback: oops", rec, sizeof(rec) - 1, 0), start, blen;
	struct seen s = {0};
	bool complete;

	(void)state;
	assert_true(ci_exec_manifest_find(buf, len, NONCE, &start, &body, &blen, &complete));
	assert_true(complete);
	/* The block starts right after the program's own stderr. */
	assert_int_equal(start, strlen("Traceback: oops"));
	assert_int_equal(ci_exec_manifest_each(body, blen, collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.paths[0], "out.csv");
	assert_int_equal(s.types[0], CI_ENTRY_FILE);
	assert_int_equal(s.sizes[0], 12);
	assert_int_equal(s.mtimes[0], 1700000000500000000LL);
	assert_string_equal(s.paths[1], "sub dir");
	assert_int_equal(s.types[1], CI_ENTRY_DIR);
	assert_int_equal(s.sizes[1], 0);
	assert_string_equal(s.paths[2], "sub dir/new\nline.txt");
	assert_int_equal(s.mtimes[2], 1700000002250000000LL);
	assert_int_equal(s.types[3], CI_ENTRY_SYMLINK);
}

static void test_empty_and_failed_listing(void **state)
{
	char buf[256];
	const char *body;
	size_t len, start, blen;
	bool complete;

	(void)state;
	len = make(buf, "", "", 0, 0);
	assert_true(ci_exec_manifest_find(buf, len, NONCE, &start, &body, &blen, &complete));
	assert_true(complete);
	assert_int_equal(blen, 0);
	/* find failed: the block is still cut off stderr, but not trusted. */
	len = make(buf, "x", "", 0, 1);
	assert_true(ci_exec_manifest_find(buf, len, NONCE, &start, &body, &blen, &complete));
	assert_false(complete);
}

static void test_missing_or_forged(void **state)
{
	char buf[512];
	const char *body;
	size_t len, start, blen;
	bool complete;

	(void)state;
	/* Killed at the timeout: no block at all. */
	strcpy(buf, "partial output\n");
	assert_false(
		ci_exec_manifest_find(buf, strlen(buf), NONCE, &start, &body, &blen, &complete));
	/* Something wrote after the end marker (a daemonised child): not trusted. */
	len = make(buf, "", "f 1 1 644 a\0", 12, 0);
	len += (size_t)sprintf(buf + len, "late output\n");
	assert_false(ci_exec_manifest_find(buf, len, NONCE, &start, &body, &blen, &complete));
	/* Another nonce (a program guessing): not ours. */
	len = make(buf, "", "f 1 1 644 a\0", 12, 0);
	assert_false(ci_exec_manifest_find(buf, len, "zzzzzzzzzzzzzzzzzzzzz", &start, &body, &blen,
					   &complete));
	/* A malformed record makes the caller fall back to the backend's list. */
	assert_int_equal(ci_exec_manifest_each("f x 1 644 a", 12, collect, &(struct seen){0}), -1);
	assert_int_equal(ci_exec_manifest_each("f 1 1 644 a", 11, collect, &(struct seen){0}), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_records),
		cmocka_unit_test(test_empty_and_failed_listing),
		cmocka_unit_test(test_missing_or_forged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
