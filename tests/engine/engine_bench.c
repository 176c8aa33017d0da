/*
 * Measurements for the report, not a test (ctest does not run it):
 *
 *   engine-bench PLUGIN.so NAME SOCKET [N]
 *
 * 1. raw Engine API exec of python3 -c 'print(1)' (exec create + start +
 *    inspect with libcurl on the socket) vs the plugin's exec of the same,
 *    in the same container;
 * 2. create() without a pool and with pool.python=2 (pool hit), and the
 *    first exec after each.
 */
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_host.h"

static const ci_backend *d;

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-44s n=%-3d min %6.1f  p50 %6.1f  p90 %6.1f  max %6.1f ms\n", what, n,
	       v[0] / 1000.0, v[n / 2] / 1000.0, v[n * 9 / 10] / 1000.0, v[n - 1] / 1000.0);
}

struct body {
	char buf[4096];
	size_t len;
};

static size_t body_write(char *p, size_t s, size_t n, void *ud)
{
	struct body *b = ud;
	size_t k = s * n;

	if (b->len + k < sizeof(b->buf)) {
		memcpy(b->buf + b->len, p, k);
		b->len += k;
		b->buf[b->len] = '\0';
	}
	return k;
}

static int raw(CURL *c, const char *sock, const char *method, const char *url, const char *json,
	       struct body *b)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	long code = 0;

	b->len = 0;
	b->buf[0] = '\0';
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (json)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	return (int)code;
}

/* One raw exec; returns 0 when it printed "1" and exited 0. */
static int raw_exec(CURL *c, const char *sock, const char *id)
{
	char url[512], eid[80];
	struct body b;
	char *p;

	snprintf(url, sizeof(url), "http://d/v1.41/containers/%s/exec", id);
	if (raw(c, sock, "POST", url,
		"{\"AttachStdout\":true,\"AttachStderr\":true,\"User\":\"1000:1000\","
		"\"Cmd\":[\"python3\",\"-c\",\"print(1)\"]}",
		&b) != 201)
		return -1;
	p = strstr(b.buf, "\"Id\":\"");
	if (!p)
		return -1;
	snprintf(eid, sizeof(eid), "%.64s", p + 6);
	snprintf(url, sizeof(url), "http://d/v1.41/exec/%s/start", eid);
	if (raw(c, sock, "POST", url, "{\"Detach\":false,\"Tty\":false}", &b) != 200 ||
	    b.len < 10 || b.buf[8] != '1') {
		fprintf(stderr, "raw start: %zu bytes\n", b.len);
		return -1;
	}
	snprintf(url, sizeof(url), "http://d/v1.41/exec/%s/json", eid);
	if (raw(c, sock, "GET", url, NULL, &b) != 200 || !strstr(b.buf, "\"ExitCode\":0")) {
		fprintf(stderr, "raw inspect: %.300s\n", b.buf);
		return -1;
	}
	return 0;
}

static int null_write(void *ctx, int stream, const void *p, size_t n)
{
	(void)ctx;
	(void)stream;
	(void)p;
	(void)n;
	return 0;
}

static int plugin_exec(struct th_host *th, ci_be *be, const char *id)
{
	const char *argv[] = {"python3", "-c", "print(1)", NULL};
	ci_sink sink = {null_write, NULL};
	ci_exec_spec x = {
		.struct_size = sizeof(x), .argv = argv, .timeout_ms = 10000, .out = &sink};
	ci_exec_result r;
	ci_call c = th_call(th, 30000);

	return d->exec(be, id, &x, &r, &c) == CI_OK && r.exit_code == 0 ? 0 : -1;
}

static void creates(const char *label, const char *const *cfg, int n, bool pool)
{
	struct th_host th;
	ci_create_spec spec = {.struct_size = sizeof(spec),
			       .runtime = "python",
			       .image = "ci-sandbox-python",
			       .owner = "engine-bench"};
	int64_t *tc = calloc((size_t)n, sizeof(*tc)), *te = calloc((size_t)n, sizeof(*te)), t0;
	char id[CI_ID_MAX], name[96];
	ci_be *be;
	ci_call c;
	int i;

	th_init(&th, true, cfg);
	c = th_call(&th, 10000);
	if (d->init(&th.host, &be, &c)) {
		fprintf(stderr, "init: %s\n", c.err);
		exit(1);
	}
	if (pool) { /* teach the pool its owner, let it fill */
		c = th_call(&th, 60000);
		d->create(be, &spec, id, &c);
		c = th_call(&th, 10000);
		d->destroy(be, id, &c);
		sleep(3);
	}
	for (i = 0; i < n; i++) {
		t0 = now_us();
		c = th_call(&th, 60000);
		if (d->create(be, &spec, id, &c)) {
			fprintf(stderr, "create: %s\n", c.err);
			exit(1);
		}
		tc[i] = now_us() - t0;
		t0 = now_us();
		if (plugin_exec(&th, be, id))
			fprintf(stderr, "first exec failed\n");
		te[i] = now_us() - t0;
		c = th_call(&th, 10000);
		d->destroy(be, id, &c);
		if (pool)
			sleep(2); /* refill: measure pool hits */
	}
	snprintf(name, sizeof(name), "create, %s", label);
	report(name, tc, n);
	snprintf(name, sizeof(name), "first exec after create, %s", label);
	report(name, te, n);
	d->fini(be);
	free(tc);
	free(te);
}

int main(int argc, char **argv)
{
	static const char *const cfg_plain[] = {NULL};
	static const char *const cfg_pool[] = {"pool.python=2", NULL};
	struct th_host th;
	ci_create_spec spec = {.struct_size = sizeof(spec),
			       .runtime = "python",
			       .image = "ci-sandbox-python",
			       .owner = "engine-bench"};
	int n = argc > 4 ? atoi(argv[4]) : 30;
	int64_t *raw_t, *plug_t, t0;
	char id[CI_ID_MAX];
	void *so;
	ci_be *be;
	ci_call c;
	CURL *curl;
	int i;

	if (argc < 4) {
		fprintf(stderr, "usage: %s PLUGIN.so NAME SOCKET [N]\n", argv[0]);
		return 2;
	}
	so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	d = so ? ((ci_entry_fn *)dlsym(so, CI_ENTRY_SYMBOL))(CI_ABI_VERSION) : NULL;
	if (!d || strcmp(d->name, argv[2]))
		return 1;
	raw_t = calloc((size_t)n, sizeof(*raw_t));
	plug_t = calloc((size_t)n, sizeof(*plug_t));
	th_init(&th, true, cfg_plain);
	c = th_call(&th, 10000);
	if (d->init(&th.host, &be, &c) || (c = th_call(&th, 60000), d->create(be, &spec, id, &c))) {
		fprintf(stderr, "%s\n", c.err);
		return 1;
	}
	curl = curl_easy_init();
	/* warm up both paths, then interleave them */
	raw_exec(curl, argv[3], id);
	plugin_exec(&th, be, id);
	for (i = 0; i < n; i++) {
		t0 = now_us();
		if (raw_exec(curl, argv[3], id))
			fprintf(stderr, "raw exec failed\n");
		raw_t[i] = now_us() - t0;
		t0 = now_us();
		if (plugin_exec(&th, be, id))
			fprintf(stderr, "plugin exec failed\n");
		plug_t[i] = now_us() - t0;
	}
	printf("%s: python3 -c 'print(1)' in one warm container\n", argv[2]);
	report("raw Engine API exec (create+start+inspect)", raw_t, n);
	report("plugin exec (wrapper, demux, inspect)", plug_t, n);
	c = th_call(&th, 10000);
	d->destroy(be, id, &c);
	d->fini(be);
	curl_easy_cleanup(curl);
	creates("pool off", cfg_plain, 8, false);
	creates("pool on (pool.python=2, hit)", cfg_pool, 8, true);
	return 0;
}
