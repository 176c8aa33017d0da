/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <pthread.h>

#include "log.h"
#include "store_test_util.h"

#define ALICE "key:librechat|user:6650a1b2c3d4e5f6a7b8c9d0"
#define BOB   "key:librechat|user:6650a1b2c3d4e5f6a7b8c9d1"

struct fixture {
	char parent[64];
	char root[80];
	struct ci_store *st;
	struct ci_store_opts opts;
};

static int open_fixture(struct fixture *fx)
{
	char err[CI_ERR_MAX] = "";
	int rc = ci_store_open(fx->root, &fx->opts, &fx->st, err);

	if (rc)
		print_error("ci_store_open: %d %s\n", rc, err);
	return rc;
}

static int setup_opts(void **state, uint64_t max_size, uint32_t max_files)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	test_make_root(fx->parent, fx->root);
	fx->opts.max_file_size = max_size;
	fx->opts.max_files_per_session = max_files;
	*state = fx;
	return open_fixture(fx);
}

static int setup(void **state)
{
	return setup_opts(state, 0, 0);
}

static int setup_limits(void **state)
{
	return setup_opts(state, 1000, 3);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	ci_store_close(fx->st);
	test_rm_tree(fx->parent);
	free(fx);
	return 0;
}

static struct ci_store_put put_of(const char *sid, const char *owner, const char *name)
{
	struct ci_store_put p = {.sid = sid, .owner = owner, .name = name};

	return p;
}

static void test_round_trip(void **state)
{
	struct fixture *fx = *state;
	size_t len = 300 * 1024 + 17, got;
	char *data = malloc(len), *back, hex[CI_STORE_SHA_HEX], sid[CI_NANOID_SIZE];
	struct ci_store_info info, st_info, op_info;
	struct ci_store_put put;
	struct ci_store_stats stats;
	unsigned n;
	int fd;

	test_fill_random(data, len, 42);
	test_sha256_hex(data, len, hex);
	assert_int_equal(ci_store_session_new(fx->st, ALICE, sid), CI_OK);
	assert_true(ci_nanoid_is_valid(sid));
	put = put_of(sid, ALICE, "data/table.csv");
	put.kind = "user";
	put.resource_id = "6650a1b2c3d4e5f6a7b8c9d0";
	put.flags = CI_STORE_F_READ_ONLY;
	assert_int_equal(test_store_bytes(fx->st, &put, data, len, 7001, &info), CI_OK);

	assert_string_equal(info.sid, sid);
	assert_true(ci_nanoid_is_valid(info.fid));
	assert_string_not_equal(info.fid, sid);
	assert_string_equal(info.name, "data/table.csv");
	assert_string_equal(info.content_type, "text/csv; charset=utf-8");
	assert_string_equal(info.kind, "user");
	assert_string_equal(info.resource_id, "6650a1b2c3d4e5f6a7b8c9d0");
	assert_int_equal(info.flags, CI_STORE_F_READ_ONLY);
	assert_int_equal(info.size, len);
	assert_string_equal(info.sha256, hex);
	assert_true(info.created_ns > ci_store_now_ns() - 60ll * 1000000000);

	assert_int_equal(ci_store_stat(fx->st, sid, info.fid, ALICE, &st_info), CI_OK);
	assert_memory_equal(&st_info, &info, sizeof(info));
	assert_int_equal(ci_store_file_open(fx->st, sid, info.fid, ALICE, &fd, &op_info), CI_OK);
	assert_memory_equal(&op_info, &info, sizeof(info));
	back = test_read_fd(fd, &got);
	assert_int_equal(got, len);
	assert_memory_equal(back, data, len);
	free(back);

	assert_int_equal(ci_store_count(fx->st, sid, ALICE, &n), CI_OK);
	assert_int_equal(n, 1);
	ci_store_get_stats(fx->st, &stats);
	assert_int_equal(stats.files, 1);
	assert_int_equal(stats.sessions, 1);
	assert_int_equal(stats.bytes, len);
	assert_int_equal(stats.inflight, 0);
	/* Data and metadata on disk, nothing left in tmp/. */
	assert_int_equal(test_count_files(fx->root, "sessions"), 2);
	assert_int_equal(test_count_files(fx->root, "tmp"), 0);
	free(data);
}

static void test_empty_file_and_content_type(void **state)
{
	struct fixture *fx = *state;
	struct ci_store_info info;
	char sid[CI_NANOID_SIZE], hex[CI_STORE_SHA_HEX];
	struct ci_store_put put;

	ci_nanoid(sid);
	test_sha256_hex("", 0, hex);
	put = put_of(sid, ALICE, "empty.bin");
	assert_int_equal(test_store_bytes(fx->st, &put, "", 0, 1, &info), CI_OK);
	assert_int_equal(info.size, 0);
	assert_string_equal(info.sha256, hex);
	assert_string_equal(info.content_type, "application/octet-stream");

	put = put_of(sid, ALICE, "plot.png");
	put.content_type = "image/x-custom";
	assert_int_equal(test_store_bytes(fx->st, &put, "x", 1, 1, &info), CI_OK);
	assert_string_equal(info.content_type, "image/x-custom");

	/* A header-injecting type is replaced by the guess from the name. */
	put.content_type = "image/png\r\nSet-Cookie: a=b";
	assert_int_equal(test_store_bytes(fx->st, &put, "x", 1, 1, &info), CI_OK);
	assert_string_equal(info.content_type, "image/png");
}

static void test_invalid_puts(void **state)
{
	struct fixture *fx = *state;
	struct ci_store_writer *w = (void *)1;
	char sid[CI_NANOID_SIZE], err[CI_ERR_MAX];
	struct ci_store_put put;

	ci_nanoid(sid);
	put = put_of("short", ALICE, "a.txt");
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_INVAL);
	assert_null(w);
	assert_non_null(strstr(err, "session id"));
	put = put_of(sid, ALICE, "../x");
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_INVAL);
	assert_non_null(strstr(err, "bad file name"));
	put = put_of(sid, ALICE, "/etc/passwd");
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_INVAL);
	put = put_of(sid, ALICE, NULL);
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_INVAL);
	put = put_of(sid, "", "a.txt");
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_INVAL);
	assert_non_null(strstr(err, "owner"));
	put = put_of(sid, "a\nb", "a.txt");
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_INVAL);
	put = put_of(sid, ALICE, "a.txt");
	put.kind = "us er";
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_INVAL);
	put.kind = "user";
	put.resource_id = "not/valid";
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_INVAL);
	assert_int_equal(ci_store_begin(fx->st, NULL, &w, err), CI_E_INVAL);
	assert_int_equal(ci_store_session_new(fx->st, "", sid), CI_E_INVAL);
	/* Nothing was created by any of these. */
	assert_int_equal(test_count_entries(fx->root, "sessions"), 0);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
}

static void test_size_limit(void **state)
{
	struct fixture *fx = *state; /* max_file_size 1000 */
	struct ci_store_writer *w;
	struct ci_store_stats stats;
	struct ci_store_info info;
	char buf[600] = {0}, sid[CI_NANOID_SIZE], err[CI_ERR_MAX];
	struct ci_store_put put;
	unsigned n;

	ci_nanoid(sid);
	put = put_of(sid, ALICE, "big.bin");
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_OK);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 1);
	assert_int_equal(ci_store_write(w, buf, 600, err), CI_OK);
	assert_int_equal(ci_store_write(w, buf, 600, err), CI_E_LIMIT);
	assert_non_null(strstr(err, "limit"));
	assert_int_equal(ci_store_write(w, buf, 1, err), CI_E_LIMIT); /* stays dead */
	ci_store_abort(w);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
	assert_int_equal(test_count_entries(fx->root, "sessions"), 0);
	assert_int_equal(ci_store_count(fx->st, sid, ALICE, &n), CI_E_NOTFOUND);
	ci_store_get_stats(fx->st, &stats);
	assert_int_equal(stats.inflight, 0);
	assert_int_equal(stats.sessions, 0);

	/* Exactly the limit is fine; one byte more is not, and leaves nothing. */
	{
		char big[1001];

		memset(big, 'z', sizeof(big));
		assert_int_equal(test_store_bytes(fx->st, &put, big, 1000, 333, &info), CI_OK);
		assert_int_equal(info.size, 1000);
		assert_int_equal(test_store_bytes(fx->st, &put, big, 1001, 1001, NULL), CI_E_LIMIT);
		/* A per-write limit below the store's. */
		put.max_size = 10;
		assert_int_equal(test_store_bytes(fx->st, &put, big, 11, 4, NULL), CI_E_LIMIT);
		assert_int_equal(test_store_bytes(fx->st, &put, big, 10, 4, NULL), CI_OK);
	}
	assert_int_equal(ci_store_count(fx->st, sid, ALICE, &n), CI_OK);
	assert_int_equal(n, 2);
	assert_int_equal(test_count_files(fx->root, "sessions"), 4);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
}

static void test_put_fd_limit(void **state)
{
	struct fixture *fx = *state; /* max_file_size 1000 */
	char path[128], sid[CI_NANOID_SIZE], err[CI_ERR_MAX], hex[CI_STORE_SHA_HEX];
	char data[1500];
	struct ci_store_info info;
	struct ci_store_put put;
	int fd;

	test_fill_random(data, sizeof(data), 7);
	snprintf(path, sizeof(path), "%s/src", fx->parent);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));
	ci_nanoid(sid);
	put = put_of(sid, ALICE, "out/result.json");
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(ci_store_put_fd(fx->st, &put, fd, &info, err), CI_E_LIMIT);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
	assert_int_equal(test_count_entries(fx->root, "sessions"), 0);
	assert_int_equal(ftruncate(fd, 900), 0);
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(ci_store_put_fd(fx->st, &put, fd, &info, err), CI_OK);
	test_sha256_hex(data, 900, hex);
	assert_string_equal(info.sha256, hex);
	assert_int_equal(info.size, 900);
	assert_string_equal(info.content_type, "application/json");
	close(fd);
}

/* The fid of the only writer in flight, read from its temp file name "w-<fid>.tmp". */
static void inflight_fid(const char *root, char fid[CI_NANOID_SIZE])
{
	char path[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/tmp", root);
	d = opendir(path);
	assert_non_null(d);
	fid[0] = '\0';
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "w-", 2) && strlen(de->d_name) == 2 + CI_NANOID_LEN + 4)
			snprintf(fid, CI_NANOID_SIZE, "%.21s", de->d_name + 2);
	closedir(d);
	assert_true(ci_nanoid_is_valid(fid));
}

/* Make <root>/sessions/<sid>/<fid><suffix> a non-empty directory, so a rename onto it fails. */
static void block_path(const char *root, const char *sid, const char *fid, const char *suffix)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/sessions/%s", root, sid);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/sessions/%s/%s%s", root, sid, fid, suffix);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/sessions/%s/%s%s/x", root, sid, fid, suffix);
	close(open(path, O_CREAT | O_WRONLY, 0600));
}

static void test_failed_commit_leaves_nothing(void **state)
{
	struct fixture *fx = *state;
	char sid[CI_NANOID_SIZE], fid[CI_NANOID_SIZE], err[CI_ERR_MAX], path[256];
	struct ci_store_writer *w;
	struct ci_store_stats stats;
	struct ci_store_put put;
	struct stat sb;
	unsigned n;

	ci_nanoid(sid);
	put = put_of(sid, ALICE, "a.txt");
	/* 1: the metadata cannot be renamed into place, after the data was. */
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_OK);
	assert_int_equal(ci_store_write(w, "data", 4, err), CI_OK);
	inflight_fid(fx->root, fid);
	block_path(fx->root, sid, fid, ".json");
	assert_int_not_equal(ci_store_commit(w, NULL, err), CI_OK);
	assert_non_null(strstr(err, "metadata"));
	snprintf(path, sizeof(path), "%s/sessions/%s/%s.data", fx->root, sid, fid);
	assert_int_equal(lstat(path, &sb), -1);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
	assert_int_equal(ci_store_count(fx->st, sid, ALICE, &n), CI_E_NOTFOUND);

	/* 2: the data itself cannot be renamed into place. */
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_OK);
	assert_int_equal(ci_store_write(w, "data", 4, err), CI_OK);
	inflight_fid(fx->root, fid);
	block_path(fx->root, sid, fid, ".data");
	assert_int_not_equal(ci_store_commit(w, NULL, err), CI_OK);
	assert_non_null(strstr(err, "rename"));
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);

	ci_store_get_stats(fx->st, &stats);
	assert_int_equal(stats.inflight, 0);
	assert_int_equal(stats.files, 0);
	/* Only the two blocking directories we made remain on disk. */
	assert_int_equal(test_count_files(fx->root, "sessions"), 2);
}

static void test_abort_leaves_nothing(void **state)
{
	struct fixture *fx = *state;
	struct ci_store_writer *w1, *w2;
	char sid[CI_NANOID_SIZE], err[CI_ERR_MAX];
	struct ci_store_stats stats;
	struct ci_store_put put;
	unsigned n;

	assert_int_equal(ci_store_session_new(fx->st, ALICE, sid), CI_OK);
	put = put_of(sid, ALICE, "a.txt");
	assert_int_equal(ci_store_begin(fx->st, &put, &w1, err), CI_OK);
	assert_int_equal(ci_store_begin(fx->st, &put, &w2, err), CI_OK);
	assert_int_equal(ci_store_write(w1, "hello", 5, err), CI_OK);
	ci_store_get_stats(fx->st, &stats);
	assert_int_equal(stats.inflight, 2);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 2);
	ci_store_abort(w1);
	ci_store_abort(w2);
	ci_store_abort(NULL);
	ci_store_get_stats(fx->st, &stats);
	assert_int_equal(stats.inflight, 0);
	assert_int_equal(stats.files, 0);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
	assert_int_equal(test_count_entries(fx->root, "sessions"), 0);
	/* The reserved session itself survives (it was made by session_new). */
	assert_int_equal(ci_store_count(fx->st, sid, ALICE, &n), CI_OK);
	assert_int_equal(n, 0);
}

struct collect {
	struct ci_store *st;
	const char *owner;
	struct ci_store_info seen[8];
	int n;
	int stop_after;
};

static int collect_cb(void *ctx, const struct ci_store_info *info)
{
	struct collect *c = ctx;
	struct ci_store_info again;

	/* Callbacks may call back into the store (no lock is held). */
	assert_int_equal(ci_store_stat(c->st, info->sid, info->fid, c->owner, &again), CI_OK);
	c->seen[c->n++] = *info;
	return c->n == c->stop_after;
}

static void test_owner_mismatch_is_not_found(void **state)
{
	struct fixture *fx = *state;
	struct ci_store_info info, other;
	struct ci_store_writer *w = NULL;
	char sid[CI_NANOID_SIZE], unknown[CI_NANOID_SIZE], err[CI_ERR_MAX];
	struct collect c = {.st = fx->st, .owner = BOB};
	struct ci_store_put put;
	unsigned n = 99;
	int fd = 123;

	assert_int_equal(ci_store_session_new(fx->st, ALICE, sid), CI_OK);
	ci_nanoid(unknown);
	put = put_of(sid, ALICE, "secret.txt");
	assert_int_equal(test_store_bytes(fx->st, &put, "s3cret", 6, 6, &info), CI_OK);

	/* Every operation answers the wrong owner exactly as an unknown id. */
	assert_int_equal(ci_store_stat(fx->st, sid, info.fid, BOB, &other), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(fx->st, unknown, info.fid, ALICE, &other), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(fx->st, sid, unknown, ALICE, &other), CI_E_NOTFOUND);
	assert_int_equal(ci_store_file_open(fx->st, sid, info.fid, BOB, &fd, NULL), CI_E_NOTFOUND);
	assert_int_equal(fd, -1);
	assert_int_equal(ci_store_find(fx->st, info.fid, BOB, &other), CI_E_NOTFOUND);
	assert_int_equal(ci_store_list(fx->st, sid, BOB, collect_cb, &c), CI_E_NOTFOUND);
	assert_int_equal(ci_store_list(fx->st, unknown, ALICE, collect_cb, &c), CI_E_NOTFOUND);
	assert_int_equal(c.n, 0);
	assert_int_equal(ci_store_count(fx->st, sid, BOB, &n), CI_E_NOTFOUND);
	assert_int_equal(ci_store_count(fx->st, unknown, ALICE, &n), CI_E_NOTFOUND);
	assert_int_equal(ci_store_delete(fx->st, sid, info.fid, BOB), CI_E_NOTFOUND);
	put = put_of(sid, BOB, "mine.txt");
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_E_NOTFOUND);
	assert_null(w);
	/* An owner that is a prefix of the real one is another owner. */
	assert_int_equal(ci_store_stat(fx->st, sid, info.fid, "key:librechat", &other),
			 CI_E_NOTFOUND);
	/* NULL ids and owners are simply unknown. */
	assert_int_equal(ci_store_stat(fx->st, NULL, info.fid, ALICE, &other), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(fx->st, sid, NULL, ALICE, &other), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(fx->st, sid, info.fid, NULL, &other), CI_E_NOTFOUND);

	/* Alice still has her file, and finds it by id alone. */
	assert_int_equal(ci_store_stat(fx->st, sid, info.fid, ALICE, &other), CI_OK);
	assert_int_equal(ci_store_find(fx->st, info.fid, ALICE, &other), CI_OK);
	assert_string_equal(other.sid, sid);
}

static void test_duplicate_names_and_list(void **state)
{
	struct fixture *fx = *state;
	struct ci_store_info a, b, c3;
	char sid[CI_NANOID_SIZE];
	struct collect c = {.owner = ALICE};
	struct ci_store_put put;
	size_t len;
	char *back;
	int fd;

	c.st = fx->st;
	ci_nanoid(sid);
	put = put_of(sid, ALICE, "docs/two.md");
	assert_int_equal(test_store_bytes(fx->st, &put, "first", 5, 5, &a), CI_OK);
	assert_int_equal(test_store_bytes(fx->st, &put, "second!", 7, 3, &b), CI_OK);
	put = put_of(sid, ALICE, "three.txt");
	assert_int_equal(test_store_bytes(fx->st, &put, "3", 1, 1, &c3), CI_OK);
	assert_string_not_equal(a.fid, b.fid);
	assert_string_equal(a.name, b.name);

	assert_int_equal(ci_store_file_open(fx->st, sid, a.fid, ALICE, &fd, NULL), CI_OK);
	back = test_read_fd(fd, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(back, "first", 5);
	free(back);
	assert_int_equal(ci_store_file_open(fx->st, sid, b.fid, ALICE, &fd, NULL), CI_OK);
	back = test_read_fd(fd, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(back, "second!", 7);
	free(back);

	/* Listed oldest first. */
	assert_int_equal(ci_store_list(fx->st, sid, ALICE, collect_cb, &c), CI_OK);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.seen[0].fid, a.fid);
	assert_string_equal(c.seen[1].fid, b.fid);
	assert_string_equal(c.seen[2].fid, c3.fid);
	assert_string_equal(c.seen[2].name, "three.txt");
	/* A callback can stop the walk. */
	c.n = 0;
	c.stop_after = 2;
	assert_int_equal(ci_store_list(fx->st, sid, ALICE, collect_cb, &c), CI_OK);
	assert_int_equal(c.n, 2);
}

static void test_files_per_session(void **state)
{
	struct fixture *fx = *state; /* max 3 files per session */
	struct ci_store_writer *w, *w2;
	char sid[CI_NANOID_SIZE], sid2[CI_NANOID_SIZE], err[CI_ERR_MAX];
	struct ci_store_info info;
	struct ci_store_put put;

	ci_nanoid(sid);
	put = put_of(sid, ALICE, "f.txt");
	assert_int_equal(test_store_bytes(fx->st, &put, "1", 1, 1, &info), CI_OK);
	assert_int_equal(test_store_bytes(fx->st, &put, "2", 1, 1, NULL), CI_OK);
	/* A write in flight holds the last slot. */
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_OK);
	assert_int_equal(ci_store_begin(fx->st, &put, &w2, err), CI_E_LIMIT);
	assert_non_null(strstr(err, "too many files"));
	ci_store_abort(w);
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_OK);
	assert_int_equal(ci_store_commit(w, NULL, err), CI_OK);
	assert_int_equal(test_store_bytes(fx->st, &put, "4", 1, 1, NULL), CI_E_LIMIT);
	/* Other sessions are not affected; deleting frees a slot. */
	ci_nanoid(sid2);
	put.sid = sid2;
	assert_int_equal(test_store_bytes(fx->st, &put, "x", 1, 1, NULL), CI_OK);
	put.sid = sid;
	assert_int_equal(ci_store_delete(fx->st, sid, info.fid, ALICE), CI_OK);
	assert_int_equal(test_store_bytes(fx->st, &put, "5", 1, 1, NULL), CI_OK);
}

static void test_delete(void **state)
{
	struct fixture *fx = *state;
	struct ci_store_info a, b;
	char sid[CI_NANOID_SIZE];
	struct ci_store_put put;
	size_t len;
	char *back;
	int fd;
	unsigned n;

	ci_nanoid(sid);
	put = put_of(sid, ALICE, "a.txt");
	assert_int_equal(test_store_bytes(fx->st, &put, "aaaa", 4, 4, &a), CI_OK);
	assert_int_equal(test_store_bytes(fx->st, &put, "bb", 2, 2, &b), CI_OK);
	assert_int_equal(ci_store_file_open(fx->st, sid, a.fid, ALICE, &fd, NULL), CI_OK);
	assert_int_equal(ci_store_delete(fx->st, sid, a.fid, ALICE), CI_OK);
	assert_int_equal(ci_store_delete(fx->st, sid, a.fid, ALICE), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(fx->st, sid, a.fid, ALICE, NULL), CI_E_NOTFOUND);
	/* A download already under way still reads the bytes. */
	back = test_read_fd(fd, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(back, "aaaa", 4);
	free(back);
	assert_int_equal(ci_store_count(fx->st, sid, ALICE, &n), CI_OK);
	assert_int_equal(n, 1);
	assert_int_equal(test_count_files(fx->root, "sessions"), 2);
	assert_int_equal(ci_store_stat(fx->st, sid, b.fid, ALICE, NULL), CI_OK);
}

static void test_find_across_sessions(void **state)
{
	struct fixture *fx = *state;
	char s1[CI_NANOID_SIZE], s2[CI_NANOID_SIZE], s3[CI_NANOID_SIZE];
	struct ci_store_info a, b, c, found;
	struct ci_store_put put;

	ci_nanoid(s1);
	ci_nanoid(s2);
	ci_nanoid(s3);
	put = put_of(s1, ALICE, "a.txt");
	assert_int_equal(test_store_bytes(fx->st, &put, "a", 1, 1, &a), CI_OK);
	put = put_of(s2, ALICE, "b.txt");
	assert_int_equal(test_store_bytes(fx->st, &put, "b", 1, 1, &b), CI_OK);
	put = put_of(s3, BOB, "c.txt");
	assert_int_equal(test_store_bytes(fx->st, &put, "c", 1, 1, &c), CI_OK);
	assert_int_equal(ci_store_find(fx->st, b.fid, ALICE, &found), CI_OK);
	assert_string_equal(found.sid, s2);
	assert_string_equal(found.name, "b.txt");
	assert_int_equal(ci_store_find(fx->st, a.fid, ALICE, &found), CI_OK);
	assert_string_equal(found.sid, s1);
	assert_int_equal(ci_store_find(fx->st, c.fid, ALICE, &found), CI_E_NOTFOUND);
	assert_int_equal(ci_store_find(fx->st, c.fid, BOB, &found), CI_OK);
	assert_int_equal(ci_store_find(fx->st, NULL, BOB, &found), CI_E_NOTFOUND);
}

static void test_expire(void **state)
{
	struct fixture *fx = *state;
	char s_old[CI_NANOID_SIZE], s_mix[CI_NANOID_SIZE], s_new[CI_NANOID_SIZE];
	char s_pending[CI_NANOID_SIZE], s_reserved[CI_NANOID_SIZE], err[CI_ERR_MAX];
	struct ci_store_info o1, o2, m_old, m_new, n1, info;
	struct ci_store_writer *w;
	struct ci_store_stats stats;
	struct ci_store_put put;
	int64_t cutoff;
	unsigned removed = 99, n;
	size_t len;
	char *back;
	int fd;

	ci_nanoid(s_old);
	ci_nanoid(s_mix);
	ci_nanoid(s_new);
	ci_nanoid(s_pending);
	assert_int_equal(ci_store_session_new(fx->st, ALICE, s_reserved), CI_OK);
	put = put_of(s_old, ALICE, "o.txt");
	assert_int_equal(test_store_bytes(fx->st, &put, "o1", 2, 2, &o1), CI_OK);
	assert_int_equal(test_store_bytes(fx->st, &put, "o2", 2, 2, &o2), CI_OK);
	put.sid = s_mix;
	assert_int_equal(test_store_bytes(fx->st, &put, "mo", 2, 2, &m_old), CI_OK);
	/* An old, empty session with a write in flight must survive. */
	put.sid = s_pending;
	assert_int_equal(ci_store_begin(fx->st, &put, &w, err), CI_OK);
	assert_int_equal(ci_store_write(w, "p", 1, err), CI_OK);

	cutoff = ci_store_now_ns() + 1;
	while (ci_store_now_ns() <= cutoff)
		;
	put.sid = s_mix;
	assert_int_equal(test_store_bytes(fx->st, &put, "mn", 2, 2, &m_new), CI_OK);
	put.sid = s_new;
	assert_int_equal(test_store_bytes(fx->st, &put, "n1", 2, 2, &n1), CI_OK);
	assert_true(m_new.created_ns >= cutoff);
	assert_true(o2.created_ns < cutoff);

	assert_int_equal(ci_store_file_open(fx->st, s_old, o1.fid, ALICE, &fd, NULL), CI_OK);
	assert_int_equal(ci_store_expire(fx->st, cutoff, &removed), CI_OK);
	assert_int_equal(removed, 3);
	assert_int_equal(ci_store_stat(fx->st, s_old, o1.fid, ALICE, &info), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(fx->st, s_old, o2.fid, ALICE, &info), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(fx->st, s_mix, m_old.fid, ALICE, &info), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(fx->st, s_mix, m_new.fid, ALICE, &info), CI_OK);
	assert_int_equal(ci_store_stat(fx->st, s_new, n1.fid, ALICE, &info), CI_OK);
	/* The emptied old session and the idle reservation are gone; the others stay. */
	assert_int_equal(ci_store_count(fx->st, s_old, ALICE, &n), CI_E_NOTFOUND);
	assert_int_equal(ci_store_count(fx->st, s_reserved, ALICE, &n), CI_E_NOTFOUND);
	assert_int_equal(ci_store_count(fx->st, s_mix, ALICE, &n), CI_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ci_store_count(fx->st, s_pending, ALICE, &n), CI_OK);
	assert_int_equal(n, 0);
	ci_store_get_stats(fx->st, &stats);
	assert_int_equal(stats.sessions, 3);
	assert_int_equal(stats.files, 2);
	assert_int_equal(test_count_files(fx->root, "sessions"), 4);
	assert_int_equal(test_count_entries(fx->root, "sessions"), 2);
	/* An fd opened before expiry still reads. */
	back = test_read_fd(fd, &len);
	assert_int_equal(len, 2);
	assert_memory_equal(back, "o1", 2);
	free(back);

	/* The pending writer still commits into its session. */
	assert_int_equal(ci_store_commit(w, &info, err), CI_OK);
	assert_int_equal(ci_store_stat(fx->st, s_pending, info.fid, ALICE, NULL), CI_OK);

	/* Expire everything. */
	assert_int_equal(ci_store_expire(fx->st, ci_store_now_ns() + 1, &removed), CI_OK);
	assert_int_equal(removed, 3);
	ci_store_get_stats(fx->st, &stats);
	assert_int_equal(stats.sessions, 0);
	assert_int_equal(stats.files, 0);
	assert_int_equal(stats.bytes, 0);
	assert_int_equal(test_count_entries(fx->root, "sessions"), 0);
}

static void test_second_open_refused(void **state)
{
	struct fixture *fx = *state;
	struct ci_store *other = NULL;
	char err[CI_ERR_MAX] = "";

	assert_int_equal(ci_store_open(fx->root, NULL, &other, err), CI_E_UNAVAIL);
	assert_null(other);
	assert_non_null(strstr(err, "in use"));
	assert_int_equal(ci_store_open("", NULL, &other, err), CI_E_INVAL);
	assert_int_equal(ci_store_open("/nonexistent-dir/x/y", NULL, &other, err), CI_E_INTERNAL);
}

/* Concurrency: writers in private and shared sessions, readers, deleters and expiry at once. */
#define THREADS		 6
#define FILES_PER_THREAD 40

struct worker {
	struct ci_store *st;
	const char *shared_sid;
	int id;
	int failures;
	char sid[CI_NANOID_SIZE];
	struct ci_store_info info[FILES_PER_THREAD];
	char data[FILES_PER_THREAD][2048];
	size_t len[FILES_PER_THREAD];
};

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	char name[32];

	ci_nanoid(wk->sid);
	for (int i = 0; i < FILES_PER_THREAD; i++) {
		struct ci_store_put put = {
			.sid = i % 2 ? wk->shared_sid : wk->sid, .owner = ALICE, .name = name};
		struct ci_store_info got;

		snprintf(name, sizeof(name), "t%d/f%d.bin", wk->id, i);
		wk->len[i] = 1 + (size_t)(wk->id * 131 + i * 37) % sizeof(wk->data[i]);
		test_fill_random(wk->data[i], wk->len[i], (unsigned)(wk->id * 1000 + i));
		if (test_store_bytes(wk->st, &put, wk->data[i], wk->len[i], 100, &wk->info[i])) {
			wk->failures++;
			continue;
		}
		/* Read back something written earlier while others write. */
		if (ci_store_stat(wk->st, wk->info[i / 2].sid, wk->info[i / 2].fid, ALICE, &got))
			wk->failures++;
		/* Every fourth file is aborted instead. */
		if (i % 4 == 3) {
			struct ci_store_writer *w;

			if (ci_store_begin(wk->st, &put, &w, NULL) ||
			    ci_store_write(w, "zz", 2, NULL))
				wk->failures++;
			else
				ci_store_abort(w);
		}
	}
	return NULL;
}

static void *expirer_main(void *arg)
{
	struct ci_store *st = arg;

	/* A cutoff in the past: it must remove nothing, while taking the locks. */
	for (int i = 0; i < 200; i++)
		ci_store_expire(st, 1, NULL);
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	struct fixture *fx = *state;
	struct worker *wk = calloc(THREADS, sizeof(*wk));
	pthread_t th[THREADS], ex;
	char shared[CI_NANOID_SIZE], hex[CI_STORE_SHA_HEX];
	struct ci_store_stats stats;
	unsigned n;

	assert_int_equal(ci_store_session_new(fx->st, ALICE, shared), CI_OK);
	for (int t = 0; t < THREADS; t++) {
		wk[t].st = fx->st;
		wk[t].shared_sid = shared;
		wk[t].id = t;
		assert_int_equal(pthread_create(&th[t], NULL, worker_main, &wk[t]), 0);
	}
	assert_int_equal(pthread_create(&ex, NULL, expirer_main, fx->st), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_join(ex, NULL);

	ci_store_get_stats(fx->st, &stats);
	assert_int_equal(stats.files, THREADS * FILES_PER_THREAD);
	assert_int_equal(stats.sessions, THREADS + 1);
	assert_int_equal(stats.inflight, 0);
	assert_int_equal(ci_store_count(fx->st, shared, ALICE, &n), CI_OK);
	assert_int_equal(n, THREADS * FILES_PER_THREAD / 2);
	for (int t = 0; t < THREADS; t++) {
		assert_int_equal(wk[t].failures, 0);
		for (int i = 0; i < FILES_PER_THREAD; i++) {
			size_t len;
			char *back;
			int fd;

			test_sha256_hex(wk[t].data[i], wk[t].len[i], hex);
			assert_string_equal(wk[t].info[i].sha256, hex);
			assert_int_equal(ci_store_file_open(fx->st, wk[t].info[i].sid,
							    wk[t].info[i].fid, ALICE, &fd, NULL),
					 CI_OK);
			back = test_read_fd(fd, &len);
			assert_int_equal(len, wk[t].len[i]);
			assert_memory_equal(back, wk[t].data[i], len);
			free(back);
		}
	}
	assert_int_equal(test_count_files(fx->root, "sessions"), 2 * THREADS * FILES_PER_THREAD);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
	free(wk);
}

/* Racing writers on one session with a file cap: exactly the cap is committed. */
struct racer {
	struct ci_store *st;
	const char *sid;
	int ok, limited;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct ci_store_put put = {.sid = r->sid, .owner = ALICE, .name = "r.txt"};

	for (int i = 0; i < 10; i++) {
		int rc = test_store_bytes(r->st, &put, "r", 1, 1, NULL);

		if (rc == CI_OK)
			r->ok++;
		else if (rc == CI_E_LIMIT)
			r->limited++;
	}
	return NULL;
}

static void test_concurrent_cap(void **state)
{
	struct fixture *fx = *state; /* max 3 files per session */
	struct racer r[4];
	pthread_t th[4];
	char sid[CI_NANOID_SIZE];
	int ok = 0, limited = 0;
	unsigned n;

	ci_nanoid(sid);
	for (int t = 0; t < 4; t++) {
		r[t] = (struct racer){.st = fx->st, .sid = sid};
		assert_int_equal(pthread_create(&th[t], NULL, racer_main, &r[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		ok += r[t].ok;
		limited += r[t].limited;
	}
	assert_int_equal(ok, 3);
	assert_int_equal(limited, 37);
	assert_int_equal(ci_store_count(fx->st, sid, ALICE, &n), CI_OK);
	assert_int_equal(n, 3);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file_and_content_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_puts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limit, setup_limits, teardown),
		cmocka_unit_test_setup_teardown(test_put_fd_limit, setup_limits, teardown),
		cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_commit_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_mismatch_is_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_names_and_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_per_session, setup_limits, teardown),
		cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_across_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_cap, setup_limits, teardown),
	};

	ci_log_set_level(CI_LL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
