/* The HTTP core with routes of the test's own, driven over loopback with libcurl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "auth.h"
#include "http.h"
#include "log.h"

#define KEY "test-key-0123456789"

static struct ci_conf conf;
static struct ci_auth *auth;
static struct ci_http *srv;
static size_t streamed;

static void h_fast(struct ci_req *req, void *app)
{
	(void)app;
	ci_req_reply_json(req, 200, json_pack("{s:s}", "principal", ci_req_principal(req)));
}

static void h_buf(struct ci_req *req, void *app)
{
	size_t len;

	(void)app;
	ci_req_body(req, &len);
	ci_req_reply_json(req, 200, json_pack("{s:I}", "len", (json_int_t)len));
}

static void h_slow(struct ci_req *req, void *app)
{
	(void)app;
	usleep(600 * 1000);
	ci_req_reply_json(req, 200, json_pack("{s:b}", "slow", 1));
}

static void h_params(struct ci_req *req, void *app)
{
	(void)app;
	ci_req_reply_json(req, 200,
			  json_pack("{s:s,s:s,s:s?}", "a", ci_req_param(req, "a"), "b",
				    ci_req_param(req, "b"), "q", ci_req_query(req, "q")));
}

static int s_data(struct ci_req *req, const char *buf, size_t len, void *app)
{
	(void)req;
	(void)buf;
	(void)app;
	streamed += len;
	if (streamed > 100000) {
		ci_req_reply_error(req, 413, "stream too large");
		return 1;
	}
	return 0;
}

static void h_stream(struct ci_req *req, void *app)
{
	(void)app;
	ci_req_reply_json(req, 200, json_pack("{s:I}", "len", (json_int_t)streamed));
}

static const struct ci_stream_ops stream_ops = {.data = s_data};

static const struct ci_route routes[] = {
	{.method = "GET", .pattern = "/open", .fn = h_fast, .open = true},
	{.method = "GET", .pattern = "/fast", .fn = h_fast},
	{.method = "POST",
	 .pattern = "/buf",
	 .fn = h_buf,
	 .body = CI_BODY_BUFFER,
	 .max_body = 1024},
	{.method = "GET", .pattern = "/slow", .fn = h_slow, .run = CI_RUN_WORKER},
	{.method = "GET", .pattern = "/p/:a/:b", .fn = h_params},
	{.method = "POST",
	 .pattern = "/stream",
	 .fn = h_stream,
	 .run = CI_RUN_WORKER,
	 .body = CI_BODY_STREAM,
	 .stream = &stream_ops},
};

struct resp {
	long status;
	char body[4096];
	size_t len;
	char retry_after[16];
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t take = sz * n;

	if (take > sizeof(r->body) - 1 - r->len)
		take = sizeof(r->body) - 1 - r->len;
	memcpy(r->body + r->len, p, take);
	r->len += take;
	r->body[r->len] = 0;
	return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;

	if (!strncasecmp(p, "Retry-After: ", 13))
		snprintf(r->retry_after, sizeof(r->retry_after), "%.*s",
			 (int)strcspn(p + 13, "\r\n"), p + 13);
	return sz * n;
}

struct upload {
	const char *data;
	size_t len, off;
};

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t take = sz * n < u->len - u->off ? sz * n : u->len - u->off;

	memcpy(buf, u->data + u->off, take);
	u->off += take;
	return take;
}

/* One request; chunked sends the body without Content-Length. */
static void request(const char *method, const char *path, const char *header, const char *body,
		    size_t body_len, int chunked, struct resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct upload up = {body, body_len, 0};
	char url[256];

	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", ci_http_port(srv), path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (header)
		hl = curl_slist_append(hl, header);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		if (chunked) {
			hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
			curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(c, CURLOPT_READDATA, &up);
		} else {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
		}
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
}

static void start(int workers, int depth)
{
	char err[256];

	ci_conf_defaults(&conf);
	conf.port = 0;
	conf.worker_threads = workers;
	conf.queue_depth = depth;
	conf.keys[0].name = strdup("tester");
	conf.keys[0].key = strdup(KEY);
	conf.n_keys = 1;
	conf.auth_accept = CI_ACCEPT_API_KEY;
	auth = ci_auth_new(&conf, err, sizeof(err));
	assert_non_null(auth);
	srv = ci_http_start(&conf, auth, routes, sizeof(routes) / sizeof(routes[0]), NULL, err,
			    sizeof(err));
	assert_non_null(srv);
}

static int setup(void **state)
{
	(void)state;
	streamed = 0;
	start(4, 16);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ci_http_stop(srv, 2000);
	ci_auth_free(auth);
	ci_conf_release(&conf);
	return 0;
}

static void test_routing_and_errors(void **state)
{
	struct resp r;

	(void)state;
	request("GET", "/open", NULL, NULL, 0, 0, &r);
	assert_int_equal(r.status, 200);
	request("GET", "/v1/p/x/y?q=z", "X-API-Key: " KEY, NULL, 0, 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"a\":\"x\",\"b\":\"y\",\"q\":\"z\"}");
	request("GET", "/nope", "X-API-Key: " KEY, NULL, 0, 0, &r);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "{\"error\":"));
	request("DELETE", "/fast", "X-API-Key: " KEY, NULL, 0, 0, &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.body, "{\"error\":\"method DELETE not allowed"));
}

static void test_auth_forms(void **state)
{
	struct resp r;

	(void)state;
	request("GET", "/fast", NULL, NULL, 0, 0, &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(r.body, "{\"error\":\"unauthorized: missing credentials\"}");
	request("GET", "/fast", "X-API-Key: wrong-key-0123456789", NULL, 0, 0, &r);
	assert_int_equal(r.status, 401);
	request("GET", "/fast", "x-api-key: " KEY, NULL, 0, 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"principal\":\"tester\"}");
	request("GET", "/fast", "Authorization: Bearer " KEY, NULL, 0, 0, &r);
	assert_int_equal(r.status, 200);
	/* base64("test-key-0123456789:") as axios sends a key-in-URL. */
	request("GET", "/fast", "Authorization: Basic dGVzdC1rZXktMDEyMzQ1Njc4OTo=", NULL, 0, 0,
		&r);
	assert_int_equal(r.status, 200);
	request("GET", "/fast", "Authorization: Basic d3Jvbmc=", NULL, 0, 0, &r);
	assert_int_equal(r.status, 401);
}

static void test_body_limits(void **state)
{
	char big[2048];
	struct resp r;

	(void)state;
	memset(big, 'x', sizeof(big));
	request("POST", "/buf", "X-API-Key: " KEY, big, 1000, 0, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"len\":1000}");
	request("POST", "/buf", "X-API-Key: " KEY, big, 1000, 1, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"len\":1000}");
	request("POST", "/buf", "X-API-Key: " KEY, big, sizeof(big), 0, &r);
	assert_int_equal(r.status, 413);
	assert_non_null(strstr(r.body, "too large"));
	request("POST", "/buf", "X-API-Key: " KEY, big, sizeof(big), 1, &r);
	assert_int_equal(r.status, 413);
	/* Unauthenticated bodies are refused before they are read. */
	request("POST", "/buf", NULL, big, sizeof(big), 0, &r);
	assert_int_equal(r.status, 401);
}

static void test_streamed_body(void **state)
{
	static char data[300000];
	struct resp r;

	(void)state;
	request("POST", "/stream", "X-API-Key: " KEY, data, 50000, 1, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"len\":50000}");
	streamed = 0;
	request("POST", "/stream", "X-API-Key: " KEY, data, sizeof(data), 1, &r);
	assert_int_equal(r.status, 413);
}

static void *slow_thread(void *arg)
{
	request("GET", "/slow", "X-API-Key: " KEY, NULL, 0, 0, arg);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_slow_never_delays_fast(void **state)
{
	struct resp slow[3], r;
	pthread_t t[3];
	double t0;

	(void)state;
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, slow_thread, &slow[i]);
	usleep(100 * 1000);
	t0 = now_s();
	request("GET", "/open", NULL, NULL, 0, 0, &r);
	assert_int_equal(r.status, 200);
	/* Answered while three slow handlers still sleep on workers. */
	assert_int_equal(ci_http_busy(srv), 3);
	assert_true(now_s() - t0 < 0.4);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(slow[i].status, 200);
	}
}

static void test_full_queue_is_429(void **state)
{
	struct resp slow[4];
	pthread_t t[4];
	int ok = 0, limited = 0;

	(void)state;
	ci_http_stop(srv, 2000);
	ci_auth_free(auth);
	ci_conf_release(&conf);
	start(1, 1);
	for (int i = 0; i < 4; i++) {
		pthread_create(&t[i], NULL, slow_thread, &slow[i]);
		usleep(50 * 1000);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (slow[i].status == 200)
			ok++;
		if (slow[i].status == 429) {
			limited++;
			assert_string_equal(
				slow[i].body,
				"{\"error\":\"rate_limited\",\"retry_after_seconds\":1}");
			assert_string_equal(slow[i].retry_after, "1");
		}
	}
	/* One running, one queued, the rest refused. */
	assert_int_equal(ok, 2);
	assert_int_equal(limited, 2);
}

static void test_stop_finishes_in_flight(void **state)
{
	struct resp r;
	pthread_t t;

	(void)state;
	pthread_create(&t, NULL, slow_thread, &r);
	usleep(150 * 1000);
	ci_http_stop(srv, 5000);
	pthread_join(t, NULL);
	assert_int_equal(r.status, 200);
	/* Restart so teardown has a server to stop. */
	ci_auth_free(auth);
	ci_conf_release(&conf);
	start(4, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routing_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streamed_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_never_delays_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_queue_is_429, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_finishes_in_flight, setup, teardown),
	};

	curl_global_init(CURL_GLOBAL_ALL);
	ci_log_set_level(CI_LL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
