/*
 * The ci_host table: config scoping, logging, memory accounting, clocks, and
 * http against a loopback server (TCP and a unix socket).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "host.h"
#include "log.h"
#include "mini_httpd.h"
#include "testutil.h"

static char dir[80], sock_path[100], base[64];
static struct mini_httpd *tcp, *unx;

static int group_setup(void **state)
{
	(void)state;
	make_temp_dir(dir, sizeof(dir), "host");
	snprintf(sock_path, sizeof(sock_path), "%s/http.sock", dir);
	tcp = mini_httpd_start(NULL);
	unx = mini_httpd_start(sock_path);
	assert_non_null(tcp);
	assert_non_null(unx);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", mini_httpd_port(tcp));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	ci_host_http_cleanup();
	mini_httpd_stop(tcp);
	mini_httpd_stop(unx);
	remove_tree(dir);
	return 0;
}

/* ---- config, log, memory, clocks ----------------------------------------- */

static void test_cfg_scoping(void **state)
{
	struct ci_conf conf;
	struct ci_host_ctx *h, *other, *none, *noconf;
	const ci_host *t;
	const char *s;
	int64_t v;
	int b;

	(void)state;
	conf_from_text(&conf, "backends = {\n"
			      "  mine = { root = \"/srv/mine\"; n = 42; big = 5000000000L;\n"
			      "           on = true; nested = { deep = \"x\"; }; };\n"
			      "  other = { root = \"/srv/other\"; };\n"
			      "};\n");
	h = ci_host_new("mine", &conf);
	other = ci_host_new("other", &conf);
	none = ci_host_new("nobody", &conf);
	noconf = ci_host_new("mine", NULL);
	t = ci_host_table(h);
	assert_int_equal(t->struct_size, sizeof(ci_host));
	assert_int_equal(t->abi_version, CI_ABI_VERSION);
	assert_ptr_equal(t->hctx, h);

	assert_int_equal(t->cfg_str(t->hctx, "root", &s), CI_OK);
	assert_string_equal(s, "/srv/mine");
	assert_int_equal(t->cfg_int(t->hctx, "n", &v), CI_OK);
	assert_int_equal(v, 42);
	assert_int_equal(t->cfg_int(t->hctx, "big", &v), CI_OK);
	assert_true(v == 5000000000LL);
	assert_int_equal(t->cfg_bool(t->hctx, "on", &b), CI_OK);
	assert_int_equal(b, 1);
	assert_int_equal(t->cfg_str(t->hctx, "nested.deep", &s), CI_OK);
	assert_string_equal(s, "x");
	assert_int_equal(t->cfg_str(t->hctx, "n", &s), CI_E_INVAL);
	assert_int_equal(t->cfg_int(t->hctx, "root", &v), CI_E_INVAL);
	assert_int_equal(t->cfg_bool(t->hctx, "n", &b), CI_E_INVAL);
	assert_int_equal(t->cfg_str(t->hctx, "absent", &s), CI_E_NOTFOUND);
	/* each backend sees only its own section */
	t = ci_host_table(other);
	assert_int_equal(t->cfg_str(t->hctx, "root", &s), CI_OK);
	assert_string_equal(s, "/srv/other");
	assert_int_equal(t->cfg_int(t->hctx, "n", &v), CI_E_NOTFOUND);
	t = ci_host_table(none);
	assert_int_equal(t->cfg_str(t->hctx, "root", &s), CI_E_NOTFOUND);
	t = ci_host_table(noconf);
	assert_int_equal(t->cfg_str(t->hctx, "root", &s), CI_E_NOTFOUND);
	assert_int_equal(t->cfg_str(t->hctx, NULL, &s), CI_E_INVAL);

	ci_host_free(h);
	ci_host_free(other);
	ci_host_free(none);
	ci_host_free(noconf);
	ci_conf_release(&conf);
}

static void test_log(void **state)
{
	struct ci_host_ctx *h = ci_host_new("docker", NULL);
	const ci_host *t = ci_host_table(h);

	(void)state;
	log_start();
	t->log(t->hctx, CI_LOG_INFO, "docker.pull image=%s ms=%d", "python:3.12", 15);
	assert_true(log_line_has(" info docker.pull backend=docker image=python:3.12 ms=15", NULL));
	t->log(t->hctx, CI_LOG_WARN, "socket \"%s\" is slow", "/run/x.sock");
	assert_true(
		log_line_has(" warn backend.log backend=docker msg=\"socket \\\"/run/x.sock\\\" "
			     "is slow\"",
			     NULL));
	t->log(t->hctx, CI_LOG_ERROR, "two\nlines");
	assert_true(log_line_has(" error backend.log backend=docker msg=\"two lines\"", NULL));
	t->log(t->hctx, 17, "way.too_verbose x=1"); /* clamped to debug */
	assert_true(log_line_has(" debug way.too_verbose backend=docker x=1", NULL));
	ci_log_set_level(CI_LL_WARN);
	t->log(t->hctx, CI_LOG_INFO, "filtered.out x=1");
	assert_false(log_line_has("filtered.out", NULL));
	log_stop();
	ci_host_free(h);
}

static void test_mem_and_clocks(void **state)
{
	struct ci_host_ctx *h = ci_host_new("m", NULL);
	const ci_host *t = ci_host_table(h);
	struct timespec ms2 = {0, 2000000};
	int64_t a, b;
	char *p, *q;

	(void)state;
	p = t->mem_alloc(t->hctx, 100);
	q = t->mem_alloc(t->hctx, 28);
	assert_non_null(p);
	assert_non_null(q);
	assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
	memset(p, 1, 100);
	assert_int_equal(ci_host_mem_in_use(h), 128);
	t->mem_free(t->hctx, p);
	assert_int_equal(ci_host_mem_in_use(h), 28);
	t->mem_free(t->hctx, q);
	t->mem_free(t->hctx, NULL);
	assert_int_equal(ci_host_mem_in_use(h), 0);

	a = t->now_ms(t->hctx);
	nanosleep(&ms2, NULL);
	b = t->now_ms(t->hctx);
	assert_true(b >= a + 2 && b < a + 1000);
	assert_true(llabs(t->wall_unix(t->hctx) - (int64_t)time(NULL)) <= 1);
	ci_host_free(h);
}

/* ---- http ---------------------------------------------------------------- */

struct got {
	char *data;
	size_t len;
	int chunks, stop_after, stream;
	int64_t bad_at; /* first byte differing from mini_byte(), or -1 */
	bool check_gen;
};

static int got_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct got *g = ctx;
	const unsigned char *b = buf;

	g->stream = stream;
	g->chunks++;
	if (g->check_gen) {
		for (size_t i = 0; i < len; i++)
			if (g->bad_at < 0 && b[i] != mini_byte((int64_t)(g->len + i)))
				g->bad_at = (int64_t)(g->len + i);
	} else {
		g->data = realloc(g->data, g->len + len + 1);
		assert_non_null(g->data);
		memcpy(g->data + g->len, buf, len);
		g->data[g->len + len] = 0;
	}
	g->len += len;
	return g->stop_after && g->chunks >= g->stop_after;
}

static int do_http(const ci_http_req *req, int *status, struct got *g, int64_t budget_ms,
		   ci_call *call)
{
	ci_sink sink = {.write = got_write, .ctx = g};

	memset(call, 0, sizeof(*call));
	call->struct_size = sizeof(*call);
	call->request_id = "test";
	call->deadline_ms = ci_now_ms() + budget_ms;
	if (g)
		g->bad_at = -1;
	return ci_host_http(req, status, g ? &sink : NULL, call);
}

static void test_http_tcp_get(void **state)
{
	char url[128];
	ci_http_req req = {.method = "GET", .url = url};
	struct got g = {0};
	ci_call call;
	int status;

	(void)state;
	snprintf(url, sizeof(url), "%s/hello", base);
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_OK);
	assert_int_equal(status, 200);
	assert_int_equal(g.len, 5);
	assert_string_equal(g.data, "hello");
	assert_int_equal(g.stream, CI_STREAM_DATA);
	free(g.data);

	snprintf(url, sizeof(url), "%s/status/418", base);
	memset(&g, 0, sizeof(g));
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_OK);
	assert_int_equal(status, 418);
	free(g.data);
}

static void test_http_unix_socket(void **state)
{
	ci_http_req req = {
		.method = "GET", .url = "http://localhost/hello", .unix_socket = sock_path};
	struct got g = {0};
	ci_call call;
	int status, before = mini_httpd_accepted(unx);

	(void)state;
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_OK);
	assert_int_equal(status, 200);
	assert_string_equal(g.data, "hello");
	assert_true(mini_httpd_accepted(unx) > before);
	free(g.data);
}

static void test_http_headers_bearer(void **state)
{
	static const char *const hdrs[] = {"X-Test: one", "Accept: text/plain", NULL};
	char url[128];
	ci_http_req req = {.method = "GET", .url = url, .headers = hdrs, .bearer = "tok3n"};
	struct got g = {0};
	ci_call call;
	int status;

	(void)state;
	snprintf(url, sizeof(url), "%s/headers", base);
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_OK);
	assert_int_equal(status, 200);
	assert_non_null(strstr(g.data, "GET /headers HTTP/1.1\r\n"));
	assert_non_null(strstr(g.data, "\r\nX-Test: one\r\n"));
	assert_non_null(strstr(g.data, "\r\nAuthorization: Bearer tok3n\r\n"));
	assert_null(strstr(g.data, "Expect:"));
	free(g.data);

	/* header injection is refused before anything is sent */
	req.headers = (const char *const[]){"X-Bad: a\r\nX-Evil: b", NULL};
	memset(&g, 0, sizeof(g));
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_E_INVAL);
	assert_int_equal(g.len, 0);
	req.headers = NULL;
	req.bearer = "a\nb";
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_E_INVAL);
}

static void expect_sum(const struct got *g, const void *body, size_t len)
{
	char want[64];

	snprintf(want, sizeof(want), "len=%zu sum=%08x", len, mini_fnv(MINI_FNV_INIT, body, len));
	assert_string_equal(g->data, want);
}

static void test_http_post_buffer(void **state)
{
	static const char body[] = "{\"Image\":\"python\"}";
	char url[128];
	ci_http_req req = {
		.method = "POST", .url = url, .body = body, .body_len = sizeof(body) - 1};
	struct got g = {0};
	ci_call call;
	int status;

	(void)state;
	snprintf(url, sizeof(url), "%s/sum", base);
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_OK);
	assert_int_equal(status, 200);
	expect_sum(&g, body, sizeof(body) - 1);
	free(g.data);
	/* POST without a body sends Content-Length: 0 */
	req.body = NULL;
	req.body_len = 0;
	memset(&g, 0, sizeof(g));
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_OK);
	expect_sum(&g, "", 0);
	free(g.data);
}

struct gen_src {
	int64_t off, size;
	int reads;
};

static ssize_t gen_read(void *ctx, void *buf, size_t cap)
{
	struct gen_src *s = ctx;
	unsigned char *b = buf;
	size_t n = (size_t)(s->size - s->off) < cap ? (size_t)(s->size - s->off) : cap;

	for (size_t i = 0; i < n; i++)
		b[i] = mini_byte(s->off + (int64_t)i);
	s->off += (int64_t)n;
	s->reads++;
	return (ssize_t)n;
}

static void test_http_streamed_request(void **state)
{
	const int64_t size = 20 << 20;
	struct gen_src gs = {.size = size};
	ci_source src = {.read = gen_read, .ctx = &gs, .size = size, .fd = -1};
	char url[128], want[64];
	ci_http_req req = {.method = "PUT", .url = url, .body_src = &src};
	struct got g = {0};
	uint32_t h = MINI_FNV_INIT;
	ci_call call;
	int status;

	(void)state;
	for (int64_t i = 0; i < size; i++) {
		unsigned char c = mini_byte(i);

		h = mini_fnv(h, &c, 1);
	}
	snprintf(url, sizeof(url), "%s/sum", base);
	assert_int_equal(do_http(&req, &status, &g, 30000, &call), CI_OK);
	assert_int_equal(status, 200);
	snprintf(want, sizeof(want), "len=%lld sum=%08x", (long long)size, h);
	assert_string_equal(g.data, want);
	assert_true(gs.reads > 1);
	free(g.data);

	/* POST with a source that also has an fd, over the unix socket */
	{
		char tmpl[] = "/tmp/ci-test-src-XXXXXX";
		int fd = mkstemp(tmpl);
		ci_source fsrc = {.read = NULL, .size = 11, .fd = fd};
		ci_http_req ureq = {.method = "POST",
				    .url = "http://x/sum",
				    .unix_socket = sock_path,
				    .body_src = &fsrc};

		assert_true(fd >= 0);
		unlink(tmpl);
		assert_int_equal(write(fd, "hello world", 11), 11);
		memset(&g, 0, sizeof(g));
		assert_int_equal(do_http(&ureq, &status, &g, 5000, &call), CI_OK);
		expect_sum(&g, "hello world", 11);
		free(g.data);
		close(fd);
	}

	/* a source that ends early fails the request, it does not hang */
	gs = (struct gen_src){.size = 1000};
	src.size = 5000;
	memset(&g, 0, sizeof(g));
	assert_int_equal(do_http(&req, &status, &g, 5000, &call), CI_E_INTERNAL);
	assert_non_null(strstr(call.err, "request body ended before its announced size"));
	free(g.data);
}

static void test_http_streamed_response(void **state)
{
	const int64_t size = 8 << 20;
	char url[128];
	ci_http_req req = {.method = "GET", .url = url};
	struct got g = {.check_gen = true};
	ci_call call;
	int status;

	(void)state;
	snprintf(url, sizeof(url), "%s/big/%lld", base, (long long)size);
	assert_int_equal(do_http(&req, &status, &g, 30000, &call), CI_OK);
	assert_int_equal(status, 200);
	assert_int_equal(g.len, size);
	assert_int_equal(g.bad_at, -1);
	assert_true(g.chunks > 1);

	/* the sink says stop: the transfer ends cleanly, status kept */
	memset(&g, 0, sizeof(g));
	g.check_gen = true;
	g.stop_after = 1;
	assert_int_equal(do_http(&req, &status, &g, 30000, &call), CI_OK);
	assert_int_equal(status, 200);
	assert_int_equal(g.chunks, 1);
	assert_true(g.len < (size_t)size);
}

static void test_http_timeout(void **state)
{
	char url[128];
	ci_http_req req = {.method = "GET", .url = url};
	struct got g = {0};
	int64_t t0;
	ci_call call;
	int status;

	(void)state;
	snprintf(url, sizeof(url), "%s/slow", base);
	t0 = ci_now_ms();
	assert_int_equal(do_http(&req, &status, &g, 300, &call), CI_E_TIMEOUT);
	assert_true(ci_now_ms() - t0 < 1500);
	assert_int_equal(status, 0);
	assert_non_null(strstr(call.err, "no answer within"));
	/* a deadline already past: no request at all */
	snprintf(url, sizeof(url), "%s/hello", base);
	assert_int_equal(do_http(&req, &status, &g, -1, &call), CI_E_TIMEOUT);
	assert_non_null(strstr(call.err, "deadline passed before the request"));
}

static void test_http_unreachable(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(in);
	char url[128], missing[PATH_MAX + 16];
	ci_http_req req = {.method = "GET", .url = url};
	ci_call call;
	int status, fd;

	(void)state;
	/* a port that was just free: nobody listens there */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", ntohs(in.sin_port));
	assert_int_equal(do_http(&req, &status, NULL, 5000, &call), CI_E_UNAVAIL);
	assert_non_null(strstr(call.err, "cannot connect to http://127.0.0.1:"));

	snprintf(missing, sizeof(missing), "%s/missing.sock", dir);
	req.unix_socket = missing;
	snprintf(url, sizeof(url), "http://localhost/hello");
	assert_int_equal(do_http(&req, &status, NULL, 5000, &call), CI_E_UNAVAIL);
	assert_non_null(strstr(call.err, "via unix:"));
	assert_non_null(strstr(call.err, "missing.sock"));

	req.unix_socket = NULL;
	req.url = "gopher://127.0.0.1/";
	assert_int_equal(do_http(&req, &status, NULL, 5000, &call), CI_E_INVAL);
	req.method = NULL;
	assert_int_equal(do_http(&req, &status, NULL, 5000, &call), CI_E_INVAL);
}

static void test_http_reuses_connections(void **state)
{
	char url[128];
	ci_http_req req = {.method = "GET", .url = url};
	ci_call call;
	int status, before;

	(void)state;
	snprintf(url, sizeof(url), "%s/hello", base);
	assert_int_equal(do_http(&req, &status, NULL, 5000, &call), CI_OK);
	before = mini_httpd_accepted(tcp);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(do_http(&req, &status, NULL, 5000, &call), CI_OK);
		assert_int_equal(status, 200);
	}
	assert_int_equal(mini_httpd_accepted(tcp), before);
}

static void *http_thread(void *arg)
{
	char url[128];
	ci_http_req req = {.method = "GET", .url = url};
	int *ok = arg, status;
	ci_call call;

	snprintf(url, sizeof(url), "%s/hello", base);
	for (int i = 0; i < 20; i++) {
		struct got g = {0};

		if (do_http(&req, &status, &g, 5000, &call) == CI_OK && status == 200 &&
		    g.len == 5 && !memcmp(g.data, "hello", 5))
			(*ok)++;
		free(g.data);
	}
	return NULL;
}

static void test_http_concurrent(void **state)
{
	pthread_t t[4];
	int ok[4] = {0};

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, http_thread, &ok[i]), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(ok[i], 20);
	}
}

/* The same service through a host table, as a plugin calls it. */
static void test_http_through_table(void **state)
{
	struct ci_host_ctx *h = ci_host_new("x", NULL);
	const ci_host *t = ci_host_table(h);
	char url[128];
	ci_http_req req = {.method = "GET", .url = url};
	ci_call call = {.struct_size = sizeof(call), .request_id = "r"};
	int status = 0;

	(void)state;
	snprintf(url, sizeof(url), "%s/hello", base);
	call.deadline_ms = t->now_ms(t->hctx) + 5000;
	assert_true(CI_HOST_HAS(t, http));
	assert_int_equal(t->http(t->hctx, &req, &status, NULL, &call), CI_OK);
	assert_int_equal(status, 200);
	ci_host_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cfg_scoping),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_mem_and_clocks),
		cmocka_unit_test(test_http_tcp_get),
		cmocka_unit_test(test_http_unix_socket),
		cmocka_unit_test(test_http_headers_bearer),
		cmocka_unit_test(test_http_post_buffer),
		cmocka_unit_test(test_http_streamed_request),
		cmocka_unit_test(test_http_streamed_response),
		cmocka_unit_test(test_http_timeout),
		cmocka_unit_test(test_http_unreachable),
		cmocka_unit_test(test_http_reuses_connections),
		cmocka_unit_test(test_http_concurrent),
		cmocka_unit_test(test_http_through_table),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
