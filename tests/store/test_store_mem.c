/*
 * Memory of the index: 1,000 storage sessions x 10 files must cost well
 * under 16 MiB of heap, both when built by writes and when rebuilt by
 * recovery at open. Prints the measured figures.
 */
/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <malloc.h>
#include <time.h>

#include "log.h"
#include "store_priv.h"
#include "store_test_util.h"

#ifdef __SANITIZE_ADDRESS__
/* From the ASan runtime (sanitizer/allocator_interface.h, not always installed). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define SESSIONS 1000
#define FILES	 10
#define LIMIT	 (16u << 20)

static size_t heap_in_use(void)
{
#ifdef __SANITIZE_ADDRESS__
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#endif
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_thousand_sessions(void **state)
{
	struct ci_store_opts opts = {.no_fsync = true, .max_files_per_session = 50};
	char parent[64], root[80], err[CI_ERR_MAX], name[64], data[64];
	size_t heap0, heap1, heap2, idx_bytes;
	struct ci_store_stats stats;
	struct ci_store *st;
	long rss0, rss1;
	double t0, t1;

	(void)state;
	test_make_root(parent, root);
	memset(data, 'd', sizeof(data));
	/* Warm up: libcrypto and libc allocate lazily on first use. */
	assert_int_equal(ci_store_open(root, &opts, &st, err), CI_OK);
	{
		char sid[CI_NANOID_SIZE];
		struct ci_store_put put = {.sid = sid, .owner = "warm", .name = "w"};

		ci_nanoid(sid);
		assert_int_equal(test_store_bytes(st, &put, data, 1, 1, NULL), CI_OK);
		assert_int_equal(ci_store_expire(st, ci_store_now_ns() + 1, NULL), CI_OK);
	}
	ci_store_close(st);
	heap0 = heap_in_use();
	rss0 = rss_kib();
	assert_int_equal(ci_store_open(root, &opts, &st, err), CI_OK);
	t0 = now_s();
	for (int s = 0; s < SESSIONS; s++) {
		char sid[CI_NANOID_SIZE];

		assert_int_equal(ci_store_session_new(
					 st, "key:librechat|user:6650a1b2c3d4e5f6a7b8c9d0", sid),
				 CI_OK);
		for (int f = 0; f < FILES; f++) {
			struct ci_store_put put = {
				.sid = sid,
				.owner = "key:librechat|user:6650a1b2c3d4e5f6a7b8c9d0",
				.name = name,
				.kind = "user",
				.resource_id = "6650a1b2c3d4e5f6a7b8c9d0",
			};

			snprintf(name, sizeof(name), "outputs/session_%04d/plot_%d.png", s, f);
			assert_int_equal(
				test_store_bytes(st, &put, data, sizeof(data), sizeof(data), NULL),
				CI_OK);
		}
	}
	t1 = now_s();
	heap1 = heap_in_use();
	rss1 = rss_kib();
	idx_bytes = ci_sindex_heap_bytes(&st->idx);
	ci_store_get_stats(st, &stats);
	assert_int_equal(stats.sessions, SESSIONS);
	assert_int_equal(stats.files, SESSIONS * FILES);
	ci_store_close(st);
	printf("store.mem writes: %d sessions x %d files in %.2f s; heap +%zu KiB "
	       "(index estimate %zu KiB); RSS +%ld KiB\n",
	       SESSIONS, FILES, t1 - t0, (heap1 - heap0) / 1024, idx_bytes / 1024, rss1 - rss0);
	assert_true(heap1 - heap0 < LIMIT);
	assert_true(idx_bytes < LIMIT);
	/* Everything the index held is freed by close. */
	assert_true(heap_in_use() <= heap0 + 64 * 1024);

	/* Rebuilt from disk by recovery. */
	heap0 = heap_in_use();
	t0 = now_s();
	assert_int_equal(ci_store_open(root, &opts, &st, err), CI_OK);
	t1 = now_s();
	heap2 = heap_in_use();
	ci_store_get_stats(st, &stats);
	assert_int_equal(stats.files, SESSIONS * FILES);
	printf("store.mem reopen: recovered %llu files in %.2f s; heap +%zu KiB\n",
	       (unsigned long long)stats.files, t1 - t0, (heap2 - heap0) / 1024);
	assert_true(heap2 - heap0 < LIMIT);
	ci_store_close(st);
	test_rm_tree(parent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thousand_sessions),
	};

	ci_log_set_level(CI_LL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
