/*
 * Files and housekeeping through a scripted engine: path rules, the list
 * parser (records split across reads), list/get/put requests and answers,
 * and the sweep (only our owner's old containers, then labelled volumes).
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

#include <cmocka.h>

#include "engine.h"
#include "test_host.h"

#define CID "c0ffee0123456789"
#define EID "e1e1e1e1e1e1e1e1"

static const struct eng_profile prof = {"docker", "/test/docker.sock", NULL};
static const char *const cfg[] = {NULL};

struct fx {
	struct th_host th;
	ci_be *be;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	ci_call c;

	th_init(&f->th, false, cfg);
	th_expect(&f->th, "GET", "/version", 200, "{\"ApiVersion\":\"1.41\"}");
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_init(&prof, &f->th.host, &f->be, &c), CI_OK);
	th_release(&f->th);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->th.unexpected, 0);
	eng_be_fini(f->be);
	th_release(&f->th);
	free(f);
	return 0;
}

static void test_paths(void **state)
{
	static const struct {
		const char *in, *out;
		int rc;
	} cases[] = {
		{"/mnt/data", "/mnt/data", CI_OK},
		{"/mnt/data/", "/mnt/data", CI_OK},
		{"/mnt//data/./a//b/", "/mnt/data/a/b", CI_OK},
		{"/mnt/data/a b/c", "/mnt/data/a b/c", CI_OK},
		{"/mnt/data/..", NULL, CI_E_INVAL},
		{"/mnt/data/a/../../etc", NULL, CI_E_INVAL},
		{"/mnt/database", NULL, CI_E_INVAL},
		{"/etc/passwd", NULL, CI_E_INVAL},
		{"mnt/data/x", NULL, CI_E_INVAL},
		{"/", NULL, CI_E_INVAL},
		{"", NULL, CI_E_INVAL},
	};
	ci_call c = {.struct_size = sizeof(c)};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		assert_int_equal(eng_path_check(cases[i].in, out, sizeof(out), &c), cases[i].rc);
		if (cases[i].out)
			assert_string_equal(out, cases[i].out);
	}
	assert_int_equal(
		eng_path_check("/mnt/data/this-is-far-too-long-for-the-buffer-given", out, 32, &c),
		CI_E_INVAL);
}

struct seen {
	int n;
	ci_entry e[8];
	char paths[8][64];
	int stop_after;
};

static int seen_cb(void *ctx, const ci_entry *e)
{
	struct seen *s = ctx;

	s->e[s->n] = *e;
	snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", e->path);
	s->e[s->n].path = s->paths[s->n];
	s->n++;
	return s->stop_after && s->n >= s->stop_after;
}

static const char records[] = "d 4096 1700000000.5000000000 755 sub\0"
			      "f 12 1700000001.123456789012 640 sub/a file\nwith newline\0"
			      "l 11 1700000002 777 link\0"
			      "p 0 1700000003.0 644 fifo";

static void test_list_parser(void **state)
{
	struct seen s;
	struct eng_listp p;
	size_t len = sizeof(records); /* includes the final NUL */

	(void)state;
	for (size_t chunk = 1; chunk <= 13; chunk++) {
		memset(&s, 0, sizeof(s));
		memset(&p, 0, sizeof(p));
		p.cb = seen_cb;
		p.ctx = &s;
		for (size_t off = 0; off < len; off += chunk)
			assert_int_equal(eng_listp_feed(&p, records + off,
							len - off < chunk ? len - off : chunk),
					 0);
		assert_int_equal(s.n, 4);
		assert_int_equal(s.e[0].type, CI_ENTRY_DIR);
		assert_int_equal(s.e[0].size, 0);
		assert_int_equal(s.e[0].mtime_ns, 1700000000500000000LL);
		assert_int_equal(s.e[0].mode, 0755);
		assert_int_equal(s.e[1].type, CI_ENTRY_FILE);
		assert_int_equal(s.e[1].size, 12);
		assert_int_equal(s.e[1].mtime_ns, 1700000001123456789LL);
		assert_string_equal(s.paths[1], "sub/a file\nwith newline");
		assert_int_equal(s.e[2].type, CI_ENTRY_SYMLINK);
		assert_int_equal(s.e[2].size, 0);
		assert_int_equal(s.e[3].type, CI_ENTRY_OTHER);
		eng_buf_release(&p.rec);
	}
	/* Garbage is refused; a callback can stop the listing. */
	memset(&s, 0, sizeof(s));
	memset(&p, 0, sizeof(p));
	p.cb = seen_cb;
	p.ctx = &s;
	assert_int_equal(eng_listp_feed(&p, "f x y z\0", 8), -1);
	eng_buf_release(&p.rec);
	memset(&p, 0, sizeof(p));
	p.cb = seen_cb;
	p.ctx = &s;
	s.stop_after = 1;
	assert_int_equal(eng_listp_feed(&p, records, sizeof(records)), 0);
	assert_true(p.stopped);
	assert_int_equal(s.n, 1);
	eng_buf_release(&p.rec);
}

static void frame(struct th_step *st, const char *payload, size_t n)
{
	unsigned char *b = malloc(n + 8);

	b[0] = 1;
	b[1] = b[2] = b[3] = 0;
	b[4] = (unsigned char)(n >> 24);
	b[5] = (unsigned char)(n >> 16);
	b[6] = (unsigned char)(n >> 8);
	b[7] = (unsigned char)n;
	memcpy(b + 8, payload, n);
	st->body = b;
	st->body_len = n + 8;
}

static void test_list_flow(void **state)
{
	struct fx *f = *state;
	struct seen s = {0};
	struct th_step *create, *st;
	ci_call c = th_call(&f->th, 10000);

	create = th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
	st = th_expect(&f->th, "POST", "/exec/" EID "/start", 200, NULL);
	frame(st, records, sizeof(records));
	th_expect(&f->th, "GET", "/exec/" EID "/json", 200, "{\"Running\":false,\"ExitCode\":0}");
	assert_int_equal(eng_be_list(f->be, CID, "/mnt/data/", seen_cb, &s, &c), CI_OK);
	assert_int_equal(s.n, 4);
	assert_non_null(strstr(create->req_body, "find . -mindepth 1"));
	assert_non_null(strstr(create->req_body, "\"/mnt/data\"]")); /* normalised */
	free((void *)st->body);
	th_release(&f->th);

	/* Exit codes of the list script. */
	for (int code = 3; code <= 4; code++) {
		char inspect[64];

		snprintf(inspect, sizeof(inspect), "{\"Running\":false,\"ExitCode\":%d}", code);
		th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
		th_expect(&f->th, "POST", "/exec/" EID "/start", 200, "");
		th_expect(&f->th, "GET", "/exec/" EID "/json", 200, inspect);
		c = th_call(&f->th, 10000);
		assert_int_equal(eng_be_list(f->be, CID, "/mnt/data/x", seen_cb, &s, &c),
				 code == 3 ? CI_E_NOTFOUND : CI_E_INVAL);
		th_release(&f->th);
	}
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_list(f->be, CID, "/etc", seen_cb, &s, &c), CI_E_INVAL);
}

struct col {
	char buf[70000];
	size_t len;
};

static int col_write(void *ctx, int stream, const void *p, size_t n)
{
	struct col *c = ctx;

	assert_int_equal(stream, CI_STREAM_DATA);
	assert_true(c->len + n <= sizeof(c->buf));
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	return 0;
}

static void test_get(void **state)
{
	struct fx *f = *state;
	static char data[60000], tar[80000];
	static struct col col;
	ci_sink sink = {col_write, &col};
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	struct th_step *st;
	size_t used;
	ci_call c;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i % 251);
	archive_write_set_format_pax_restricted(a);
	archive_write_open_memory(a, tar, sizeof(tar), &used);
	archive_entry_set_pathname(e, "out put.bin");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, sizeof(data));
	archive_write_header(a, e);
	archive_write_data(a, data, sizeof(data));
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);

	/* The tar arrives in 7-byte pieces and is parsed as it comes. */
	f->th.chunk = 7;
	st = th_expect(&f->th, "GET", "/containers/" CID "/archive?path=/mnt/data/out%20put.bin",
		       200, tar);
	st->body_len = used;
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_get(f->be, CID, "/mnt/data/out put.bin", &sink, &c), CI_OK);
	assert_int_equal(col.len, sizeof(data));
	assert_memory_equal(col.buf, data, sizeof(data));
	th_release(&f->th);

	/* A nested path is read by an exec that refuses symlinks on the way. */
	col.len = 0;
	st = th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
	frame(th_expect(&f->th, "POST", "/exec/" EID "/start", 200, NULL), "nested", 6);
	th_expect(&f->th, "GET", "/exec/" EID "/json", 200, "{\"Running\":false,\"ExitCode\":0}");
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_get(f->be, CID, "/mnt/data/d/x", &sink, &c), CI_OK);
	assert_int_equal(col.len, 6);
	assert_memory_equal(col.buf, "nested", 6);
	assert_non_null(strstr(st->req_body, "realpath -e"));
	free((void *)f->th.steps[1].body);
	th_release(&f->th);
	th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
	th_expect(&f->th, "POST", "/exec/" EID "/start", 200, "");
	th_expect(&f->th, "GET", "/exec/" EID "/json", 200, "{\"Running\":false,\"ExitCode\":4}");
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_get(f->be, CID, "/mnt/data/link/passwd", &sink, &c), CI_E_INVAL);
	assert_non_null(strstr(c.err, "symlink"));
	th_release(&f->th);

	col.len = 0;
	th_expect(&f->th, "GET", "/archive?path=/mnt/data/nope", 404,
		  "{\"message\":\"Could not find the file /mnt/data/nope in container x\"}");
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_get(f->be, CID, "/mnt/data/nope", &sink, &c), CI_E_NOTFOUND);
	assert_non_null(strstr(c.err, "Could not find the file"));
	assert_int_equal(col.len, 0);
	th_release(&f->th);
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_get(f->be, CID, "/mnt/data", &sink, &c), CI_E_INVAL);
}

struct mem_src {
	const char *p;
	size_t left;
};

static ssize_t mem_read(void *ctx, void *buf, size_t cap)
{
	struct mem_src *m = ctx;
	size_t n = m->left < cap ? m->left : cap;

	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

static void test_put(void **state)
{
	struct fx *f = *state;
	struct mem_src m = {"hello world", 11};
	ci_source src = {mem_read, &m, 11, -1};
	struct archive *a;
	struct archive_entry *e;
	struct th_step *st;
	char got[16];
	ci_call c = th_call(&f->th, 10000);

	/* The parents of a nested path are checked first. */
	st = th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
	th_expect(&f->th, "POST", "/exec/" EID "/start", 200, "");
	th_expect(&f->th, "GET", "/exec/" EID "/json", 200, "{\"Running\":false,\"ExitCode\":0}");
	assert_non_null(st);
	st = th_expect(&f->th, "PUT", "/containers/" CID "/archive?path=/mnt/data", 200, "");
	assert_int_equal(eng_be_put(f->be, CID, "/mnt/data/sub/f.txt", &src, 0600, &c), CI_OK);
	assert_non_null(strstr(f->th.steps[0].req_body, "[ -L"));
	a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, st->req_body, st->req_len), ARCHIVE_OK);
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	assert_string_equal(archive_entry_pathname(e), "sub/");
	assert_int_equal(archive_entry_uid(e), 1000);
	assert_int_equal(archive_read_next_header(a, &e), ARCHIVE_OK);
	assert_string_equal(archive_entry_pathname(e), "sub/f.txt");
	assert_int_equal(archive_entry_perm(e), 0600);
	assert_int_equal(archive_read_data(a, got, sizeof(got)), 11);
	assert_memory_equal(got, "hello world", 11);
	archive_read_free(a);
	th_release(&f->th);

	/* ... and a symlinked parent is refused before anything is written. */
	m = (struct mem_src){"hello world", 11};
	th_expect(&f->th, "POST", "/containers/" CID "/exec", 201, "{\"Id\":\"" EID "\"}");
	th_expect(&f->th, "POST", "/exec/" EID "/start", 200, "");
	th_expect(&f->th, "GET", "/exec/" EID "/json", 200, "{\"Running\":false,\"ExitCode\":4}");
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_put(f->be, CID, "/mnt/data/link/f", &src, 0644, &c), CI_E_INVAL);
	assert_int_equal(f->th.next, 3);
	th_release(&f->th);

	th_expect(&f->th, "PUT", "/archive?path=/mnt/data", 500,
		  "{\"message\":\"write /mnt/data/f: no space left on device\"}");
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_put(f->be, CID, "/mnt/data/f", &src, 0644, &c), CI_E_LIMIT);
	th_release(&f->th);
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_put(f->be, CID, "/mnt/data/../x", &src, 0644, &c), CI_E_INVAL);
	assert_int_equal(eng_be_put(f->be, CID, "/mnt/data", &src, 0644, &c), CI_E_INVAL);
}

static void test_sweep(void **state)
{
	struct fx *f = *state;
	struct th_step *list;
	unsigned n = 99;
	ci_call c = th_call(&f->th, 10000);

	list = th_expect(&f->th, "GET", "/containers/json?all=1&filters=", 200,
			 "[{\"Id\":\"aaaaaaaaaaaaaaaa\",\"Created\":50,\"Labels\":{\"ci.owner\":"
			 "\"owner-1\",\"ci.created\":\"100\"}},"
			 "{\"Id\":\"bbbbbbbbbbbbbbbb\",\"Labels\":{\"ci.owner\":\"owner-1\","
			 "\"ci.created\":\"5000\"}},"
			 "{\"Id\":\"cccccccccccccccc\",\"Labels\":{\"ci.owner\":\"someone-else\","
			 "\"ci.created\":\"1\"}},"
			 "{\"Id\":\"dddddddddddddddd\",\"Created\":10,\"Labels\":{\"ci.owner\":"
			 "\"owner-1\"}}]");
	th_expect(&f->th, "DELETE", "/containers/aaaaaaaaaaaaaaaa?force=1&v=1", 204, "");
	th_expect(&f->th, "DELETE", "/containers/dddddddddddddddd?force=1&v=1", 404,
		  "{\"message\":\"gone already\"}");
	th_expect(&f->th, "GET", "/volumes?filters=", 200,
		  "{\"Volumes\":[{\"Name\":\"v-old\",\"Labels\":{\"ci.created\":\"10\"}},"
		  "{\"Name\":\"v-new\",\"Labels\":{\"ci.created\":\"9000\"}}]}");
	th_expect(&f->th, "DELETE", "/volumes/v-old", 204, "");
	assert_int_equal(eng_be_sweep(f->be, "owner-1", 1000, &n, &c), CI_OK);
	assert_int_equal(n, 1);
	assert_int_equal(f->th.next, 5);
	assert_non_null(strstr(list->url, "%22ci.owner%3Downer-1%22"));
	assert_non_null(strstr(list->url, "%22ci.sandbox%3D1%22"));
	th_release(&f->th);
	c = th_call(&f->th, 10000);
	assert_int_equal(eng_be_sweep(f->be, "", 1000, &n, &c), CI_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_list_parser),
		cmocka_unit_test_setup_teardown(test_list_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
