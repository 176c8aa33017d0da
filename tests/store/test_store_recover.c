/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <sys/wait.h>

#include "log.h"
#include "store_test_util.h"

#define ALICE "principal-a"
#define BOB   "principal-b"

struct fixture {
	char parent[64];
	char root[80];
	FILE *log;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	test_make_root(fx->parent, fx->root);
	fx->log = tmpfile();
	ci_log_set_stream(fx->log);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	ci_log_set_stream(NULL);
	fclose(fx->log);
	test_rm_tree(fx->parent);
	free(fx);
	return 0;
}

static struct ci_store *open_store(const char *root)
{
	struct ci_store *st = NULL;
	char err[CI_ERR_MAX] = "";
	int rc = ci_store_open(root, NULL, &st, err);

	if (rc)
		fail_msg("ci_store_open: %d %s", rc, err);
	return st;
}

static void write_file(const char *root, const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static bool exists(const char *root, const char *rel)
{
	char path[512];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return lstat(path, &sb) == 0;
}

static char *read_log(FILE *log)
{
	long n;
	char *buf;

	fflush(log);
	n = ftell(log);
	buf = calloc(1, (size_t)n + 1);
	rewind(log);
	assert_int_equal(fread(buf, 1, (size_t)n, log), (size_t)n);
	return buf;
}

/* A child that dies in the middle of an upload: a real interrupted write. */
static void crash_during_write(const char *root, const char *sid)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ci_store_put put = {.sid = sid, .owner = ALICE, .name = "partial.bin"};
		struct ci_store_writer *w;
		struct ci_store *st;

		if (ci_store_open(root, NULL, &st, NULL) || ci_store_begin(st, &put, &w, NULL) ||
		    ci_store_write(w, "half of it", 10, NULL))
			_exit(2);
		_exit(0); /* no commit, no abort, no close */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_restart_recovery(void **state)
{
	struct fixture *fx = *state;
	struct ci_store_info a1, a2, b1, info;
	char sa[CI_NANOID_SIZE], sb[CI_NANOID_SIZE], se[CI_NANOID_SIZE], orphan[CI_NANOID_SIZE];
	char ghost[CI_NANOID_SIZE], rel[256], rel2[512], hex[CI_STORE_SHA_HEX];
	struct ci_store_stats stats;
	struct ci_store_put put;
	struct ci_store *st;
	char *log, *back;
	size_t len;
	unsigned n;
	int fd;

	st = open_store(fx->root);
	ci_nanoid(sa);
	ci_nanoid(sb);
	put = (struct ci_store_put){.sid = sa,
				    .owner = ALICE,
				    .name = "docs/two.md",
				    .kind = "user",
				    .resource_id = "u1",
				    .flags = CI_STORE_F_READ_ONLY};
	assert_int_equal(test_store_bytes(st, &put, "# two\n", 6, 6, &a1), CI_OK);
	put.name = "docs/two.md"; /* same name again */
	put.flags = 0;
	assert_int_equal(test_store_bytes(st, &put, "# two v2\n", 9, 4, &a2), CI_OK);
	put = (struct ci_store_put){.sid = sb, .owner = BOB, .name = "b.csv"};
	assert_int_equal(test_store_bytes(st, &put, "x,y\n1,2\n", 8, 8, &b1), CI_OK);
	ci_store_close(st);

	/* Leftovers of crashes and corruption. */
	crash_during_write(fx->root, sa);
	assert_int_equal(test_count_entries(fx->root, "tmp"), 1);
	write_file(fx->root, "tmp/m-whatever.tmp", "{");
	ci_nanoid(orphan);
	snprintf(rel, sizeof(rel), "sessions/%s/%s.data", sa, orphan);
	write_file(fx->root, rel, "orphan data"); /* data without metadata */
	ci_nanoid(ghost);			  /* metadata without data */
	snprintf(rel, sizeof(rel), "sessions/%s/%s.json", sb, ghost);
	snprintf(rel2, sizeof(rel2),
		 "{\"v\":1,\"sid\":\"%s\",\"fid\":\"%s\",\"owner\":\"%s\",\"name\":\"g.txt\","
		 "\"content_type\":\"text/plain\",\"size\":3,\"sha256\":\"%s\","
		 "\"created_ns\":1,\"read_only\":false,\"kind\":\"\",\"resource_id\":\"\"}",
		 sb, ghost, BOB, b1.sha256);
	write_file(fx->root, rel, rel2);
	/* b1's metadata corrupted: b1 must be dropped with its data. */
	snprintf(rel, sizeof(rel), "sessions/%s/%s.json", sb, b1.fid);
	write_file(fx->root, rel, "{\"v\":1,\"sid\":");
	/* a2's data truncated: its size no longer matches. */
	snprintf(rel, sizeof(rel), "%s/sessions/%s/%s.data", fx->root, sa, a2.fid);
	assert_int_equal(truncate(rel, 3), 0);
	/* An empty session directory, a stray file and a stray file in a session. */
	ci_nanoid(se);
	snprintf(rel, sizeof(rel), "%s/sessions/%s", fx->root, se);
	assert_int_equal(mkdir(rel, 0700), 0);
	write_file(fx->root, "sessions/README", "junk");
	snprintf(rel, sizeof(rel), "sessions/%s/notes.txt", sa);
	write_file(fx->root, rel, "junk");
	/* An unexpected directory is reported and kept. */
	snprintf(rel, sizeof(rel), "%s/sessions/lost+found", fx->root);
	assert_int_equal(mkdir(rel, 0700), 0);

	st = open_store(fx->root);
	ci_store_get_stats(st, &stats);
	assert_int_equal(stats.files, 1);
	assert_int_equal(stats.sessions, 1);
	assert_int_equal(stats.bytes, 6);
	assert_int_equal(ci_store_stat(st, sa, a1.fid, ALICE, &info), CI_OK);
	assert_memory_equal(&info, &a1, sizeof(info)); /* every field survived */
	assert_int_equal(ci_store_file_open(st, sa, a1.fid, ALICE, &fd, NULL), CI_OK);
	back = test_read_fd(fd, &len);
	test_sha256_hex(back, len, hex);
	assert_string_equal(hex, a1.sha256);
	free(back);
	assert_int_equal(ci_store_stat(st, sa, a2.fid, ALICE, &info), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(st, sb, b1.fid, BOB, &info), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(st, sb, ghost, BOB, &info), CI_E_NOTFOUND);
	assert_int_equal(ci_store_count(st, sb, BOB, &n), CI_E_NOTFOUND);
	/* Owner still enforced after reload. */
	assert_int_equal(ci_store_stat(st, sa, a1.fid, BOB, &info), CI_E_NOTFOUND);

	/* On disk: exactly a1's pair, the kept directory and the lock file. */
	assert_int_equal(test_count_entries(fx->root, "tmp"), 0);
	assert_int_equal(test_count_files(fx->root, "sessions"), 2);
	snprintf(rel, sizeof(rel), "sessions/%s/%s.data", sa, a1.fid);
	assert_true(exists(fx->root, rel));
	snprintf(rel, sizeof(rel), "sessions/%s", sb);
	assert_false(exists(fx->root, rel));
	snprintf(rel, sizeof(rel), "sessions/%s", se);
	assert_false(exists(fx->root, rel));
	assert_true(exists(fx->root, "sessions/lost+found"));
	assert_false(exists(fx->root, "sessions/README"));

	log = read_log(fx->log);
	assert_non_null(strstr(log, "store.recover "));
	assert_non_null(strstr(log, "loaded=1 sessions=1 tmp_removed=2 orphans_removed=1 "
				    "bad_removed=3 junk_removed=2 dirs_removed=2"));
	assert_non_null(strstr(log, "data without metadata"));
	assert_non_null(strstr(log, "data file missing"));
	assert_non_null(strstr(log, "lost+found"));
	free(log);

	/* The store keeps working after recovery. */
	put = (struct ci_store_put){.sid = sa, .owner = ALICE, .name = "new.txt"};
	assert_int_equal(test_store_bytes(st, &put, "new", 3, 3, &info), CI_OK);
	assert_int_equal(ci_store_count(st, sa, ALICE, &n), CI_OK);
	assert_int_equal(n, 2);
	ci_store_close(st);

	/* A clean reopen changes nothing. */
	st = open_store(fx->root);
	ci_store_get_stats(st, &stats);
	assert_int_equal(stats.files, 2);
	ci_store_close(st);
}

static void test_tampered_metadata(void **state)
{
	struct fixture *fx = *state;
	char sa[CI_NANOID_SIZE], rel[256], path[512], doc[1024];
	struct ci_store_info a1, a2, a3;
	struct ci_store_stats stats;
	struct ci_store_put put;
	struct ci_store *st;
	FILE *f;
	size_t n;

	st = open_store(fx->root);
	ci_nanoid(sa);
	put = (struct ci_store_put){.sid = sa, .owner = ALICE, .name = "a.txt"};
	assert_int_equal(test_store_bytes(st, &put, "aaa", 3, 3, &a1), CI_OK);
	assert_int_equal(test_store_bytes(st, &put, "bbb", 3, 3, &a2), CI_OK);
	assert_int_equal(test_store_bytes(st, &put, "ccc", 3, 3, &a3), CI_OK);
	ci_store_close(st);

	/* a2 claims another owner inside Alice's session; a3 carries an unsafe name. */
	snprintf(path, sizeof(path), "%s/sessions/%s/%s.json", fx->root, sa, a2.fid);
	f = fopen(path, "r");
	n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = '\0';
	assert_non_null(strstr(doc, "\"owner\":\"" ALICE "\""));
	memcpy(strstr(doc, ALICE), BOB, strlen(BOB));
	snprintf(rel, sizeof(rel), "sessions/%s/%s.json", sa, a2.fid);
	write_file(fx->root, rel, doc);

	snprintf(path, sizeof(path), "%s/sessions/%s/%s.json", fx->root, sa, a3.fid);
	f = fopen(path, "r");
	n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = '\0';
	memcpy(strstr(doc, "\"a.txt\""), "\"/a.tx\"", 7);
	snprintf(rel, sizeof(rel), "sessions/%s/%s.json", sa, a3.fid);
	write_file(fx->root, rel, doc);

	st = open_store(fx->root);
	ci_store_get_stats(st, &stats);
	/* a1 and a2 are loaded in directory order; whichever came second is dropped. */
	assert_int_equal(stats.files, 1);
	assert_int_equal(ci_store_stat(st, sa, a3.fid, ALICE, NULL), CI_E_NOTFOUND);
	assert_int_equal(ci_store_stat(st, sa, a3.fid, BOB, NULL), CI_E_NOTFOUND);
	assert_true(ci_store_stat(st, sa, a1.fid, ALICE, NULL) == CI_OK ||
		    ci_store_stat(st, sa, a2.fid, BOB, NULL) == CI_OK);
	ci_store_close(st);
	assert_int_equal(test_count_files(fx->root, "sessions"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_restart_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_metadata, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
