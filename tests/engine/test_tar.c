/*
 * Tar handling: the on-the-fly tar source of put (exact size, parents,
 * ownership, long and non-ASCII names, short sources) and the single-member
 * extraction of get (ustar, pax and GNU long names; symlinks and
 * directories refused).
 */
#include <archive.h>
#include <archive_entry.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"

struct mem_src {
	const unsigned char *p;
	size_t left;
	size_t max_read;  /* return at most this much per read */
	bool fail_at_end; /* -1 instead of the last bytes */
};

static ssize_t mem_read(void *ctx, void *buf, size_t cap)
{
	struct mem_src *m = ctx;
	size_t n = m->left < cap ? m->left : cap;

	if (n > m->max_read)
		n = m->max_read;
	if (m->fail_at_end && n == m->left && n)
		return -1;
	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

/* Drain a ci_source in reads of varying size; returns bytes, -1 on error. */
static ssize_t drain(const ci_source *s, unsigned char *out, size_t cap)
{
	size_t len = 0, want = 1;
	ssize_t n;

	for (;;) {
		want = want * 7 % 5000 + 1;
		if (len + want > cap)
			want = cap - len;
		n = s->read(s->ctx, out + len, want);
		if (n < 0)
			return -1;
		if (n == 0 && want)
			return (ssize_t)len;
		len += (size_t)n;
		if (len == cap)
			return (ssize_t)len;
	}
}

static unsigned char *data;
static const size_t data_len = 300001;

static void check_put(const char *rel, const char *const *parents, int nparents)
{
	struct mem_src m = {data, data_len, 777, false};
	ci_source src = {mem_read, &m, (int64_t)data_len, -1}, tsrc;
	struct eng_tar_src *ts;
	ci_call call = {.struct_size = sizeof(call)};
	size_t cap = data_len + 64 * 1024;
	unsigned char *tar = malloc(cap), *got = malloc(data_len);
	struct archive *a;
	struct archive_entry *e;
	char want[512];
	ssize_t len;
	int i;

	assert_int_equal(
		eng_tar_src_new(rel, 0640, 1700000000, 1000, 1001, &src, &ts, &tsrc, &call), CI_OK);
	len = drain(&tsrc, tar, cap);
	assert_int_equal(len, tsrc.size); /* the announced size is exact */
	assert_int_equal(eng_tar_src_status(ts, &call), CI_OK);
	eng_tar_src_free(ts);

	a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, tar, (size_t)len), ARCHIVE_OK);
	for (i = 0; i < nparents; i++) {
		assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
		snprintf(want, sizeof(want), "%s/", parents[i]); /* libarchive marks dirs */
		assert_string_equal(archive_entry_pathname(e), want);
		assert_int_equal(archive_entry_filetype(e), AE_IFDIR);
		assert_int_equal(archive_entry_perm(e), 0755);
		assert_int_equal(archive_entry_uid(e), 1000);
	}
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	assert_string_equal(archive_entry_pathname(e), rel);
	assert_int_equal(archive_entry_filetype(e), AE_IFREG);
	assert_int_equal(archive_entry_perm(e), 0640);
	assert_int_equal(archive_entry_uid(e), 1000);
	assert_int_equal(archive_entry_gid(e), 1001);
	assert_int_equal(archive_entry_mtime(e), 1700000000);
	assert_int_equal(archive_entry_size(e), data_len);
	assert_int_equal(archive_read_data(a, got, data_len), data_len);
	assert_memory_equal(got, data, data_len);
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_EOF);
	archive_read_free(a);
	free(tar);
	free(got);
}

static void test_put_simple(void **state)
{
	const char *parents[] = {"a", "a/b"};

	(void)state;
	check_put("f.bin", NULL, 0);
	check_put("a/b/c d.txt", parents, 2);
}

static void test_put_long_names(void **state)
{
	char name[600], dir[300];
	const char *parents[1] = {dir};

	(void)state;
	memset(dir, 'd', 250);
	dir[250] = '\0';
	snprintf(name, sizeof(name), "%s/%s", dir,
		 "a-file-name-that-is-long-enough-to-need-pax-headers-by-itself-"
		 "because-ustar-only-has-a-hundred-bytes-for-it.csv");
	check_put(name, parents, 1);
	check_put("r\xc3\xa9sum\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac.txt", NULL, 0);
}

static void test_put_short_source(void **state)
{
	struct mem_src m = {data, 1000, 4096, false};
	ci_source src = {mem_read, &m, 5000, -1}, tsrc; /* promises more than it has */
	struct eng_tar_src *ts;
	ci_call call = {.struct_size = sizeof(call)};
	unsigned char buf[20000];

	(void)state;
	assert_int_equal(eng_tar_src_new("x", 0644, 0, 1000, 1000, &src, &ts, &tsrc, &call), CI_OK);
	assert_int_equal(drain(&tsrc, buf, sizeof(buf)), -1);
	assert_int_equal(eng_tar_src_status(ts, &call), CI_E_INVAL);
	assert_non_null(strstr(call.err, "short"));
	eng_tar_src_free(ts);

	m = (struct mem_src){data, 1000, 4096, true}; /* read error */
	src.size = 1000;
	assert_int_equal(eng_tar_src_new("x", 0644, 0, 1000, 1000, &src, &ts, &tsrc, &call), CI_OK);
	assert_int_equal(drain(&tsrc, buf, sizeof(buf)), -1);
	assert_int_not_equal(eng_tar_src_status(ts, &call), CI_OK);
	eng_tar_src_free(ts);

	assert_int_equal(eng_tar_src_new("/abs", 0644, 0, 1000, 1000, &src, &ts, &tsrc, &call),
			 CI_E_INVAL);
}

/* Write a tar with libarchive in a given format to a temp file; return its fd. */
static int make_tar(int format, const char *name, int type, const char *link, size_t size)
{
	char path[] = "/tmp/ci-test-tar-XXXXXX";
	int fd = mkstemp(path);
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	unlink(path);
	archive_write_set_format(a, format);
	archive_write_open_fd(a, fd);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, (unsigned)type);
	archive_entry_set_perm(e, 0644);
	if (link)
		archive_entry_set_symlink(e, link);
	archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)size : 0);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (type == AE_IFREG)
		assert_int_equal(archive_write_data(a, data, size), (la_ssize_t)size);
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

struct col {
	unsigned char *buf;
	size_t len, cap, stop_at;
};

static int col_write(void *ctx, int stream, const void *p, size_t n)
{
	struct col *c = ctx;

	assert_int_equal(stream, CI_STREAM_DATA);
	assert_true(c->len + n <= c->cap);
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	return c->stop_at && c->len >= c->stop_at;
}

static void test_extract_formats(void **state)
{
	const int formats[] = {ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED,
			       ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE, ARCHIVE_FORMAT_TAR_GNUTAR};
	char longname[200];
	struct col c = {malloc(data_len), 0, data_len, 0};
	ci_sink sink = {col_write, &c};
	ci_call call = {.struct_size = sizeof(call)};
	bool stopped;

	(void)state;
	memset(longname, 'n', 150);
	strcpy(longname + 150, ".data");
	for (size_t i = 0; i < sizeof(formats) / sizeof(*formats); i++) {
		const char *name = formats[i] == ARCHIVE_FORMAT_TAR_USTAR ? "plain.bin" : longname;
		int fd = make_tar(formats[i], name, AE_IFREG, NULL, data_len);

		c.len = 0;
		assert_int_equal(eng_tar_extract_one(fd, name, &sink, &stopped, &call), CI_OK);
		assert_false(stopped);
		assert_int_equal(c.len, data_len);
		assert_memory_equal(c.buf, data, data_len);
		close(fd);
	}
	/* The sink can stop early. */
	{
		int fd = make_tar(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, "x", AE_IFREG, NULL, data_len);

		c.len = 0;
		c.stop_at = 1000;
		assert_int_equal(eng_tar_extract_one(fd, "x", &sink, &stopped, &call), CI_OK);
		assert_true(stopped);
		assert_true(c.len < data_len);
		close(fd);
	}
	free(c.buf);
}

static void test_extract_refuses(void **state)
{
	struct col c = {malloc(16), 0, 16, 0};
	ci_sink sink = {col_write, &c};
	ci_call call = {.struct_size = sizeof(call)};
	bool stopped;
	int fd;

	(void)state;
	fd = make_tar(ARCHIVE_FORMAT_TAR_GNUTAR, "link", AE_IFLNK, "/etc/passwd", 0);
	assert_int_equal(eng_tar_extract_one(fd, "link", &sink, &stopped, &call), CI_E_INVAL);
	assert_non_null(strstr(call.err, "symlink"));
	close(fd);
	fd = make_tar(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, "dir", AE_IFDIR, NULL, 0);
	assert_int_equal(eng_tar_extract_one(fd, "dir", &sink, &stopped, &call), CI_E_INVAL);
	close(fd);
	fd = make_tar(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, "other", AE_IFREG, NULL, 10);
	assert_int_equal(eng_tar_extract_one(fd, "wanted", &sink, &stopped, &call), CI_E_BACKEND);
	close(fd);
	/* Not a tar at all (an error body). */
	{
		int p[2];

		assert_int_equal(pipe(p), 0);
		assert_int_equal(write(p[1], "{\"message\":\"nope\"}", 18), 18);
		close(p[1]);
		assert_int_equal(eng_tar_extract_one(p[0], "x", &sink, &stopped, &call),
				 CI_E_BACKEND);
		close(p[0]);
	}
	assert_int_equal(c.len, 0);
	free(c.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_simple),	 cmocka_unit_test(test_put_long_names),
		cmocka_unit_test(test_put_short_source), cmocka_unit_test(test_extract_formats),
		cmocka_unit_test(test_extract_refuses),
	};
	int rc;

	data = malloc(data_len);
	for (size_t i = 0; i < data_len; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 11);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(data);
	return rc;
}
