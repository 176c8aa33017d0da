/* The exec stream demultiplexer: frames split at every possible point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"

struct cap {
	char out[100000], err[1000];
	size_t olen, elen;
	int stop_out_after; /* return "stop" after this many stdout writes; 0 never */
	int out_writes;
};

static int cap_write(void *ctx, int stream, const void *p, size_t n)
{
	struct cap *c = ctx;

	if (stream == CI_STREAM_STDOUT) {
		assert_true(c->olen + n <= sizeof(c->out));
		memcpy(c->out + c->olen, p, n);
		c->olen += n;
		return c->stop_out_after && ++c->out_writes >= c->stop_out_after;
	}
	assert_int_equal(stream, CI_STREAM_STDERR);
	assert_true(c->elen + n <= sizeof(c->err));
	memcpy(c->err + c->elen, p, n);
	c->elen += n;
	return 0;
}

static size_t frame(unsigned char *dst, int stream, const void *p, uint32_t n)
{
	dst[0] = (unsigned char)stream;
	dst[1] = dst[2] = dst[3] = 0;
	dst[4] = (unsigned char)(n >> 24);
	dst[5] = (unsigned char)(n >> 16);
	dst[6] = (unsigned char)(n >> 8);
	dst[7] = (unsigned char)n;
	memcpy(dst + 8, p, n);
	return 8 + n;
}

static unsigned char stream[90000];
static size_t stream_len;
static char big[70000];

static void build(void)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('A' + i % 23);
	n += frame(stream + n, 1, "hello ", 6);
	n += frame(stream + n, 2, "err1\n", 5);
	n += frame(stream + n, 0, "stdin-echo", 10);
	n += frame(stream + n, 1, "", 0);
	n += frame(stream + n, 1, big, sizeof(big));
	n += frame(stream + n, 2, "err2\n", 5);
	n += frame(stream + n, 1, "end\n", 4);
	stream_len = n;
}

static void check(struct cap *c)
{
	assert_int_equal(c->olen, 6 + sizeof(big) + 4);
	assert_memory_equal(c->out, "hello ", 6);
	assert_memory_equal(c->out + 6, big, sizeof(big));
	assert_memory_equal(c->out + 6 + sizeof(big), "end\n", 4);
	assert_int_equal(c->elen, 10);
	assert_memory_equal(c->err, "err1\nerr2\n", 10);
}

static void test_chunk_sizes(void **state)
{
	static struct cap c;
	ci_sink sink = {cap_write, &c};
	struct eng_demux d;

	(void)state;
	for (size_t chunk = 1; chunk <= 19; chunk++) {
		memset(&c, 0, sizeof(c));
		eng_demux_init(&d, &sink);
		for (size_t off = 0; off < stream_len; off += chunk) {
			size_t n = stream_len - off < chunk ? stream_len - off : chunk;

			assert_int_equal(eng_demux_feed(&d, stream + off, n), 0);
		}
		assert_true(eng_demux_complete(&d));
		check(&c);
		assert_int_equal(d.bytes[0], 10); /* the stdin echo was seen, not delivered */
	}
}

static void test_every_split_point(void **state)
{
	static struct cap c;
	ci_sink sink = {cap_write, &c};
	struct eng_demux d;

	(void)state;
	/* Two reads, split at every byte of the first 120 (all header positions). */
	for (size_t cut = 0; cut <= 120; cut++) {
		memset(&c, 0, sizeof(c));
		eng_demux_init(&d, &sink);
		assert_int_equal(eng_demux_feed(&d, stream, cut), 0);
		assert_int_equal(eng_demux_feed(&d, stream + cut, stream_len - cut), 0);
		assert_true(eng_demux_complete(&d));
		check(&c);
	}
}

static void test_truncated(void **state)
{
	static struct cap c;
	ci_sink sink = {cap_write, &c};
	struct eng_demux d;

	(void)state;
	memset(&c, 0, sizeof(c));
	eng_demux_init(&d, &sink);
	assert_int_equal(eng_demux_feed(&d, stream, 12), 0); /* header + 4 of "hello " */
	assert_false(eng_demux_complete(&d));
	assert_int_equal(c.olen, 4);
	eng_demux_init(&d, &sink);
	assert_int_equal(eng_demux_feed(&d, stream, 5), 0); /* inside a header */
	assert_false(eng_demux_complete(&d));
}

static void test_stop_one_stream(void **state)
{
	static struct cap c;
	ci_sink sink = {cap_write, &c};
	struct eng_demux d;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.stop_out_after = 1;
	eng_demux_init(&d, &sink);
	assert_int_equal(eng_demux_feed(&d, stream, stream_len), 0);
	/* stdout got its first write only; stderr kept flowing. */
	assert_int_equal(c.olen, 6);
	assert_int_equal(c.elen, 10);
	assert_true(d.stop_out);
	assert_false(d.stop_err);
	assert_int_equal(d.bytes[1], 6 + sizeof(big) + 4);
}

static void test_not_a_stream(void **state)
{
	static struct cap c;
	ci_sink sink = {cap_write, &c};
	const char *json = "{\"message\":\"No such exec instance\"}";
	unsigned char bad[8] = {1, 0, 1, 0, 0, 0, 0, 1};
	struct eng_demux d;

	(void)state;
	memset(&c, 0, sizeof(c));
	eng_demux_init(&d, &sink);
	assert_int_equal(eng_demux_feed(&d, json, strlen(json)), -1);
	assert_int_equal(eng_demux_feed(&d, stream, stream_len), -1); /* stays failed */
	assert_int_equal(c.olen + c.elen, 0);
	assert_false(eng_demux_complete(&d));
	eng_demux_init(&d, &sink);
	assert_int_equal(eng_demux_feed(&d, bad, sizeof(bad)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_sizes),  cmocka_unit_test(test_every_split_point),
		cmocka_unit_test(test_truncated),    cmocka_unit_test(test_stop_one_stream),
		cmocka_unit_test(test_not_a_stream),
	};

	build();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
