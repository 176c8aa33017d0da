/*
 * The Daytona plugin against the fake Daytona (tests/fakes/daytona), loaded
 * through its OBJECT library with the test host of dt_test_host.c: the
 * full cycle, and every fault case of issue 6 (401, 404, 409, stuck and
 * failed creates, toolbox 5xx, slow answers, auto-stop, pagination).
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/daytona/daytona.h"
#include "dt_test_host.h"

const ci_backend *ci_backend_v1(uint32_t host_abi_version);

static ci_host host;
static const ci_backend *B;
static ci_be *be;
static struct th_cfg cfg[40];
static char api_url[256];

static void cfg_put(const char *key, char type, const char *s, int64_t i)
{
	int n;

	for (n = 0; cfg[n].key; n++)
		if (!strcmp(cfg[n].key, key))
			break;
	cfg[n].key = key;
	cfg[n].type = type;
	cfg[n].s = s;
	cfg[n].i = i;
}

static int64_t now(void)
{
	return host.now_ms(host.hctx);
}

static void ctl(const char *method, const char *path, const char *json)
{
	char *out;
	int st = th_ctl(method, path, json, &out);

	if (st < 200 || st > 299)
		fail_msg("%s %s: %d %s", method, path, st, out);
	free(out);
}

static void fault(const char *json)
{
	ctl("POST", "/__fake/faults", json);
}

static int plugin_init(ci_call *call)
{
	th_host(&host, cfg);
	th_call(&host, call, 20000);
	return B->init(&host, &be, call);
}

static int setup(void **state)
{
	ci_call call;
	const char *u = th_api_url();

	(void)state;
	if (!u)
		fail_msg("DT_FAKE_DIR does not name a running fake");
	snprintf(api_url, sizeof(api_url), "%s", u);
	memset(cfg, 0, sizeof(cfg));
	cfg_put("api_url", 's', api_url, 0);
	cfg_put("api_key", 's', "test-key", 0);
	cfg_put("retry_backoff_ms", 'i', NULL, 20);
	cfg_put("poll_initial_ms", 'i', NULL, 20);
	cfg_put("poll_max_ms", 'i', NULL, 100);
	cfg_put("create_timeout_ms", 'i', NULL, 15000);
	cfg_put("exec_grace_ms", 'i', NULL, 2000);
	ctl("POST", "/__fake/reset", NULL);
	ctl("POST", "/__fake/config",
	    "{\"api_key\":\"test-key\",\"create_outcome\":\"ok\",\"list_shape\":\"object\","
	    "\"unknown_sandbox_toolbox_status\":404,\"creating_ms\":100,\"starting_ms\":100,"
	    "\"page_limit_cap\":0}");
	th_wall_offset = 0;
	be = NULL;
	if (plugin_init(&call))
		fail_msg("init: %s", call.err);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (be)
		B->fini(be);
	be = NULL;
	ctl("DELETE", "/__fake/faults", NULL);
	return 0;
}

/* --- helpers -------------------------------------------------------------- */

struct cap {
	struct dt_buf out, err, data;
};

static int cap_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct cap *c = ctx;
	struct dt_buf *b = stream == CI_STREAM_STDOUT	? &c->out
			   : stream == CI_STREAM_STDERR ? &c->err
							: &c->data;

	assert_int_equal(dt_buf_add(b, buf, len), 0);
	return 0;
}

static void cap_free(struct cap *c)
{
	dt_buf_free(&c->out);
	dt_buf_free(&c->err);
	dt_buf_free(&c->data);
	memset(c, 0, sizeof(*c));
}

static const char *str(const struct dt_buf *b)
{
	return b->data ? b->data : "";
}

static int create(const char *owner, const char *session, char id[CI_ID_MAX])
{
	const char *env[] = {"A=1", NULL};
	ci_create_spec spec = {.struct_size = sizeof(spec),
			       .runtime = "python",
			       .owner = owner,
			       .session = session,
			       .env = env};
	ci_call call;
	int rc;

	th_call(&host, &call, 20000);
	rc = B->create(be, &spec, id, &call);
	if (rc && getenv("DT_TEST_VERBOSE"))
		fprintf(stderr, "create: %d %s\n", rc, call.err);
	return rc;
}

static int sh(const char *id, const char *script, int64_t timeout_ms, int64_t deadline_ms,
	      ci_exec_result *res, struct cap *c, ci_call *call)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	ci_sink sink = {cap_write, c};
	ci_exec_spec spec = {
		.struct_size = sizeof(spec), .argv = argv, .timeout_ms = timeout_ms, .out = &sink};

	memset(res, 0, sizeof(*res));
	th_call(&host, call, deadline_ms);
	return B->exec(be, id, &spec, res, call);
}

struct memsrc {
	const unsigned char *p;
	size_t n, off;
};

static ssize_t mem_read(void *ctx, void *buf, size_t cap)
{
	struct memsrc *m = ctx;
	size_t k = m->n - m->off < cap ? m->n - m->off : cap;

	memcpy(buf, m->p + m->off, k);
	m->off += k;
	return (ssize_t)k;
}

static json_t *fake_json(const char *path)
{
	char *out;
	json_t *j;

	assert_int_equal(th_ctl("GET", path, NULL, &out), 200);
	j = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(j);
	return j;
}

/* Requests the fake saw with method, path containing sub and status (0 = any). */
static int seen(const char *method, const char *sub, int status)
{
	json_t *j = fake_json("/__fake/requests"), *r;
	size_t i;
	int n = 0;

	json_array_foreach(j, i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "method")), method))
			continue;
		if (!strstr(json_string_value(json_object_get(r, "path")), sub))
			continue;
		if (status && json_integer_value(json_object_get(r, "status")) != status)
			continue;
		n++;
	}
	json_decref(j);
	return n;
}

static json_t *fake_sandbox(const char *id)
{
	json_t *j = fake_json("/__fake/sandboxes"), *s, *found = NULL;
	size_t i;

	json_array_foreach(j, i, s)
	{
		if (!strcmp(json_string_value(json_object_get(s, "id")), id))
			found = json_incref(s);
	}
	json_decref(j);
	return found;
}

/* --- the full cycle ----------------------------------------------------------- */

static int find_entry(void *ctx, const ci_entry *e)
{
	json_t *seen_map = ctx;

	json_object_set_new(seen_map, e->path,
			    json_pack("{s:i,s:I,s:i}", "type", e->type, "size", (json_int_t)e->size,
				      "mode", (int)e->mode));
	return 0;
}

static void test_lifecycle(void **state)
{
	char id[CI_ID_MAX];
	ci_exec_result res;
	ci_call call;
	struct cap c = {0};
	json_t *sb, *labels, *entries;
	unsigned char *blob = malloc(1 << 20);
	struct memsrc ms = {blob, 1 << 20, 0};
	ci_source src = {mem_read, &ms, 1 << 20, -1};
	ci_sink sink = {cap_write, &c};
	size_t i;

	(void)state;
	for (i = 0; i < (1 << 20); i++)
		blob[i] = (unsigned char)(i * 31 + (i >> 8));
	assert_int_equal(create("owner-1", "sess-1", id), CI_OK);
	sb = fake_sandbox(id);
	assert_non_null(sb);
	labels = json_object_get(sb, "labels");
	assert_string_equal(json_string_value(json_object_get(labels, "ci-owner")), "owner-1");
	assert_string_equal(json_string_value(json_object_get(labels, "ci-session")), "sess-1");
	assert_string_equal(json_string_value(json_object_get(labels, "ci-runtime")), "python");
	assert_true(atoll(json_string_value(json_object_get(labels, "ci-created-at"))) > 1.7e9);
	assert_true(json_is_true(json_object_get(sb, "networkBlockAll")));
	assert_int_equal(json_integer_value(json_object_get(sb, "autoStopInterval")), 30);
	assert_int_equal(json_integer_value(json_object_get(sb, "autoDeleteInterval")), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(sb, "env"), "A")),
			    "1");
	assert_memory_equal(json_string_value(json_object_get(sb, "name")), "ci-python-", 10);
	json_decref(sb);

	assert_int_equal(sh(id, "echo out; echo err >&2; echo $A; pwd; exit 3", 10000, 20000, &res,
			    &c, &call),
			 CI_OK);
	assert_int_equal(res.exit_code, 3);
	assert_int_equal(res.timed_out, 0);
	assert_string_equal(str(&c.out), "out\n1\n/mnt/data\n");
	assert_string_equal(str(&c.err), "err\n");
	cap_free(&c);

	th_call(&host, &call, 20000);
	assert_int_equal(B->put(be, id, "/mnt/data/sub/in.bin", &src, 0644, &call), CI_OK);
	assert_true(seen("POST", "/files/bulk-upload", 200) == 1);
	th_call(&host, &call, 20000);
	assert_int_equal(B->get(be, id, "/mnt/data/sub/in.bin", &sink, &call), CI_OK);
	assert_int_equal(c.data.len, 1 << 20);
	assert_memory_equal(c.data.data, blob, 1 << 20);
	cap_free(&c);
	ms.off = 0;
	src.size = 10;
	ms.n = 10;
	th_call(&host, &call, 20000);
	assert_int_equal(B->put(be, id, "/mnt/data/run.sh", &src, 0755, &call), CI_OK);

	assert_int_equal(sh(id, "ln -s /etc/passwd link && mkdir d && ln -s /nowhere d/dangling",
			    10000, 20000, &res, &c, &call),
			 CI_OK);
	assert_int_equal(res.exit_code, 0);
	cap_free(&c);
	entries = json_object();
	th_call(&host, &call, 20000);
	assert_int_equal(B->list(be, id, "/mnt/data", find_entry, entries, &call), CI_OK);
	assert_int_equal(json_object_size(entries), 6);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(entries, "sub"), "type")),
		CI_ENTRY_DIR);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(entries, "sub/in.bin"), "size")),
		1 << 20);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(entries, "link"), "type")),
		CI_ENTRY_SYMLINK);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(entries, "d/dangling"), "type")),
		CI_ENTRY_SYMLINK);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(entries, "run.sh"), "mode")),
		0755);
	json_decref(entries);

	th_call(&host, &call, 20000);
	assert_int_equal(B->get(be, id, "/mnt/data/link", &sink, &call), CI_E_INVAL);
	th_call(&host, &call, 20000);
	assert_int_equal(B->get(be, id, "/mnt/data/missing", &sink, &call), CI_E_NOTFOUND);
	th_call(&host, &call, 20000);
	assert_int_equal(B->get(be, id, "/etc/passwd", &sink, &call), CI_E_INVAL);
	th_call(&host, &call, 20000);
	assert_int_equal(B->list(be, id, "/mnt/data/nope", find_entry, NULL, &call), CI_E_NOTFOUND);
	assert_int_equal(c.data.len, 0);

	th_call(&host, &call, 20000);
	assert_int_equal(B->destroy(be, id, &call), CI_OK);
	th_call(&host, &call, 20000);
	assert_int_equal(B->destroy(be, id, &call), CI_E_NOTFOUND);
	assert_int_equal(sh(id, "true", 1000, 20000, &res, &c, &call), CI_E_NOTFOUND);
	th_call(&host, &call, 20000);
	assert_int_equal(B->destroy(be, "no-such-sandbox", &call), CI_E_NOTFOUND);
	cap_free(&c);
	free(blob);
}

static void test_exec_delimiter_like_output(void **state)
{
	char id[CI_ID_MAX];
	ci_exec_result res;
	ci_call call;
	struct cap c = {0};
	const char *prog = "printf '\\nffffffffffffffffffffffffffffffff R 0 1 2 3 4\\n"
			   "ffffffffffffffffffffffffffffffff-\\n'; printf 'x.\\n\\001\\000' >&2; "
			   "printf 'no newline'";

	(void)state;
	assert_int_equal(create("o", "s", id), CI_OK);
	assert_int_equal(sh(id, prog, 10000, 20000, &res, &c, &call), CI_OK);
	assert_string_equal(str(&c.out), "\nffffffffffffffffffffffffffffffff R 0 1 2 3 4\n"
					 "ffffffffffffffffffffffffffffffff-\nno newline");
	assert_int_equal(c.err.len, 5);
	assert_memory_equal(c.err.data, "x.\n\001\000", 5);
	cap_free(&c);
}

static void test_exec_timeout_kills_tree(void **state)
{
	char id[CI_ID_MAX];
	ci_exec_result res;
	ci_call call;
	struct cap c = {0};
	int64_t t0;

	(void)state;
	assert_int_equal(create("o", "s", id), CI_OK);
	t0 = now();
	assert_int_equal(
		sh(id, "(sleep 2; touch /mnt/data/late) & sleep 30", 800, 20000, &res, &c, &call),
		CI_OK);
	assert_int_equal(res.timed_out, 1);
	assert_int_equal(res.exit_code, -1);
	assert_int_equal(res.signal, 9);
	assert_true(now() - t0 < 5000);
	cap_free(&c);
	sleep(3);
	assert_int_equal(sh(id, "test -e /mnt/data/late", 5000, 20000, &res, &c, &call), CI_OK);
	assert_int_equal(res.exit_code, 1);
	cap_free(&c);
}

/* --- create faults ----------------------------------------------------------------- */

static void test_create_409_after_lost_reply_adopts(void **state)
{
	char id[CI_ID_MAX];
	json_t *all;

	(void)state;
	fault("{\"method\":\"POST\",\"path_regex\":\"^/api/sandbox$\",\"times\":1,"
	      "\"status\":503,\"after_dispatch\":true}");
	assert_int_equal(create("o", "s", id), CI_OK);
	all = fake_json("/__fake/sandboxes");
	assert_int_equal(json_array_size(all), 1);
	json_decref(all);
	assert_int_equal(seen("POST", "/api/sandbox", 503), 1);
	assert_int_equal(seen("POST", "/api/sandbox", 409), 1);
}

static void test_create_error_fails_fast(void **state)
{
	char id[CI_ID_MAX];
	ci_create_spec spec = {.struct_size = sizeof(spec), .owner = "o"};
	ci_call call;
	int64_t t0 = now();
	json_t *all;

	(void)state;
	ctl("POST", "/__fake/config", "{\"create_outcome\":\"error\"}");
	th_call(&host, &call, 20000);
	assert_int_equal(B->create(be, &spec, id, &call), CI_E_BACKEND);
	assert_non_null(strstr(call.err, "runner out of capacity"));
	assert_true(now() - t0 < 5000);
	usleep(300000);
	all = fake_json("/__fake/sandboxes"); /* the failed one was deleted */
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
}

static void test_create_stuck_times_out(void **state)
{
	char id[CI_ID_MAX];
	ci_call call;
	int64_t t0;

	(void)state;
	B->fini(be);
	cfg_put("create_timeout_ms", 'i', NULL, 1500);
	assert_int_equal(plugin_init(&call), CI_OK);
	ctl("POST", "/__fake/config", "{\"create_outcome\":\"stuck\"}");
	t0 = now();
	assert_int_equal(create("o", "s", id), CI_E_TIMEOUT);
	assert_true(now() - t0 >= 1400 && now() - t0 < 10000);
}

static void test_create_rate_limited_and_dropped(void **state)
{
	char id[CI_ID_MAX];

	(void)state;
	fault("{\"method\":\"POST\",\"path_regex\":\"^/api/sandbox$\",\"times\":1,\"status\":429,"
	      "\"headers\":{\"Retry-After-sandbox-create\":\"1\"},"
	      "\"body\":{\"statusCode\":429,\"message\":\"Rate limit exceeded\"}}");
	fault("{\"method\":\"GET\",\"path_regex\":\"^/api/sandbox/[^/]+$\",\"times\":1,"
	      "\"drop_connection\":true}");
	assert_int_equal(create("o", "s", id), CI_OK);
	assert_int_equal(seen("POST", "/api/sandbox", 429), 1);
}

static void test_bad_snapshot_is_backend_error(void **state)
{
	char id[CI_ID_MAX];
	ci_call call;

	(void)state;
	B->fini(be);
	cfg_put("snapshot", 's', "no-such-snapshot", 0);
	assert_int_equal(plugin_init(&call), CI_OK);
	assert_int_equal(create("o", "s", id), CI_E_BACKEND);
}

static void test_image_per_runtime_builds(void **state)
{
	char id[CI_ID_MAX];
	ci_call call;
	json_t *sb;

	(void)state;
	B->fini(be);
	cfg_put("images.python", 's', "python:3.12-slim", 0);
	cfg_put("cpu", 'i', NULL, 2);
	assert_int_equal(plugin_init(&call), CI_OK);
	assert_int_equal(create("o", "s", id), CI_OK);
	sb = fake_sandbox(id);
	assert_string_equal(json_string_value(json_object_get(json_object_get(sb, "buildInfo"),
							      "dockerfileContent")),
			    "FROM python:3.12-slim\n");
	assert_int_equal(json_integer_value(json_object_get(sb, "cpu")), 2);
	assert_null(json_object_get(sb, "snapshot"));
	json_decref(sb);
}

/* --- destroy, auth, gone ---------------------------------------------------------------- */

static void test_destroy_retries_409(void **state)
{
	char url[300], *out;
	json_t *j;
	ci_call call;
	int64_t t0;

	(void)state;
	ctl("POST", "/__fake/config", "{\"creating_ms\":1200}");
	snprintf(url, sizeof(url), "%s/sandbox", api_url);
	assert_int_equal(th_request("POST", url, "test-key", "{}", &out), 200);
	j = json_loads(out, 0, NULL);
	free(out);
	t0 = now();
	th_call(&host, &call, 20000);
	assert_int_equal(B->destroy(be, json_string_value(json_object_get(j, "id")), &call), CI_OK);
	assert_true(now() - t0 >= 900);
	assert_true(seen("DELETE", "/api/sandbox/", 409) >= 1);
	json_decref(j);
}

static void test_unauthorized(void **state)
{
	char id[CI_ID_MAX];
	ci_exec_result res;
	ci_call call;
	struct cap c = {0};

	(void)state;
	assert_int_equal(create("o", "s", id), CI_OK);
	ctl("POST", "/__fake/config", "{\"api_key\":\"rotated\"}");
	assert_int_equal(sh(id, "true", 1000, 20000, &res, &c, &call), CI_E_UNAVAIL);
	assert_non_null(strstr(call.err, "API key"));
	assert_int_equal(create("o", "s", id), CI_E_UNAVAIL);
	/* at init the same is a configuration error */
	B->fini(be);
	be = NULL;
	assert_int_equal(plugin_init(&call), CI_E_INVAL);
	assert_non_null(strstr(call.err, "api_key"));
	ctl("POST", "/__fake/config", "{\"api_key\":\"test-key\"}");
	cfg_put("api_url", 's', "http://127.0.0.1:1/api", 0);
	assert_int_equal(plugin_init(&call), CI_E_UNAVAIL);
	cfg_put("api_url", 's', api_url, 0);
	cfg_put("api_key", 's', "", 0);
	unsetenv("DAYTONA_API_KEY");
	assert_int_equal(plugin_init(&call), CI_E_INVAL);
	cfg_put("api_key", 's', "test-key", 0);
	cap_free(&c);
}

static void test_sandbox_gone(void **state)
{
	char id[CI_ID_MAX], path[256];
	ci_exec_result res;
	ci_call call;
	struct cap c = {0};
	ci_sink sink = {cap_write, &c};
	int round;

	(void)state;
	for (round = 0; round < 2; round++) {
		ctl("POST", "/__fake/config",
		    round ? "{\"unknown_sandbox_toolbox_status\":401}"
			  : "{\"unknown_sandbox_toolbox_status\":404}");
		assert_int_equal(create("o", "s", id), CI_OK);
		snprintf(path, sizeof(path), "/__fake/sandbox/%s/destroy", id);
		ctl("POST", path, NULL);
		assert_int_equal(sh(id, "true", 1000, 20000, &res, &c, &call), CI_E_NOTFOUND);
		th_call(&host, &call, 20000);
		assert_int_equal(B->get(be, id, "/mnt/data/x", &sink, &call), CI_E_NOTFOUND);
		th_call(&host, &call, 20000);
		assert_int_equal(B->list(be, id, "/mnt/data", find_entry, NULL, &call),
				 CI_E_NOTFOUND);
	}
	cap_free(&c);
}

static void test_auto_stopped_sandbox_restarts(void **state)
{
	char id[CI_ID_MAX], path[256];
	ci_exec_result res;
	ci_call call;
	struct cap c = {0};

	(void)state;
	/* the default auto_delete_minutes = 0 makes a stop a delete: gone, recreate */
	assert_int_equal(create("o", "s", id), CI_OK);
	snprintf(path, sizeof(path), "/__fake/sandbox/%s/state", id);
	ctl("POST", path, "{\"state\":\"stopped\"}");
	assert_int_equal(sh(id, "echo back", 5000, 20000, &res, &c, &call), CI_E_NOTFOUND);
	/* kept when stopped: started again on the next call */
	B->fini(be);
	cfg_put("auto_delete_minutes", 'i', NULL, 60);
	assert_int_equal(plugin_init(&call), CI_OK);
	assert_int_equal(create("o", "s", id), CI_OK);
	snprintf(path, sizeof(path), "/__fake/sandbox/%s/state", id);
	ctl("POST", path, "{\"state\":\"stopped\"}");
	assert_int_equal(sh(id, "echo back", 5000, 20000, &res, &c, &call), CI_OK);
	assert_string_equal(str(&c.out), "back\n");
	assert_true(seen("POST", "/start", 200) >= 1);
	cap_free(&c);
}

/* --- toolbox 5xx and slowness ----------------------------------------------------------------- */

static void test_toolbox_5xx(void **state)
{
	char id[CI_ID_MAX];
	ci_exec_result res;
	ci_call call;
	struct cap c = {0};
	ci_sink sink = {cap_write, &c};
	struct memsrc ms = {(const unsigned char *)"hello", 5, 0};
	ci_source src = {mem_read, &ms, 5, -1};

	(void)state;
	assert_int_equal(create("o", "s", id), CI_OK);
	th_call(&host, &call, 20000);
	assert_int_equal(B->put(be, id, "/mnt/data/h.txt", &src, 0644, &call), CI_OK);
	fault("{\"method\":\"GET\",\"path_regex\":\"/files/download$\",\"times\":1,\"status\":500,"
	      "\"body\":{\"statusCode\":500,\"message\":\"daemon exploded\","
	      "\"code\":\"INTERNAL_SERVER_ERROR\"}}");
	th_call(&host, &call, 20000);
	assert_int_equal(B->get(be, id, "/mnt/data/h.txt", &sink, &call), CI_OK);
	assert_string_equal(str(&c.data), "hello");
	cap_free(&c);
	fault("{\"method\":\"GET\",\"path_regex\":\"/files/download$\",\"times\":-1,\"status\":503,"
	      "\"empty_body\":true}");
	th_call(&host, &call, 20000);
	assert_int_equal(B->get(be, id, "/mnt/data/h.txt", &sink, &call), CI_E_BACKEND);
	assert_int_equal(c.data.len, 0);
	ctl("DELETE", "/__fake/faults", NULL);

	/* exec: a 502 never reached the daemon (retried), a 500 may have run (not retried) */
	fault("{\"method\":\"POST\",\"path_regex\":\"/process/execute$\",\"times\":1,"
	      "\"status\":502,\"empty_body\":true}");
	assert_int_equal(sh(id, "echo ok", 5000, 20000, &res, &c, &call), CI_OK);
	assert_string_equal(str(&c.out), "ok\n");
	cap_free(&c);
	ctl("DELETE", "/__fake/requests", NULL);
	fault("{\"method\":\"POST\",\"path_regex\":\"/process/execute$\",\"times\":1,"
	      "\"status\":500,\"body\":{\"statusCode\":500,\"message\":\"daemon exploded\"}}");
	assert_int_equal(sh(id, "echo once >> /mnt/data/count", 5000, 20000, &res, &c, &call),
			 CI_E_BACKEND);
	assert_non_null(strstr(call.err, "daemon exploded"));
	assert_int_equal(seen("POST", "/process/execute", 0), 1);
	cap_free(&c);
}

static void test_put_retry_needs_rewindable_source(void **state)
{
	char id[CI_ID_MAX], tmpl[] = "/tmp/dt-put-XXXXXX";
	ci_call call;
	struct cap c = {0};
	ci_sink sink = {cap_write, &c};
	size_t n = 5u << 20, i;
	unsigned char *blob = malloc(n);
	int fd = mkstemp(tmpl);
	struct memsrc ms = {blob, n, 0};
	ci_source fsrc = {NULL, NULL, (int64_t)n, fd};
	ci_source msrc = {mem_read, &ms, (int64_t)n, -1};

	(void)state;
	for (i = 0; i < n; i++)
		blob[i] = (unsigned char)(i ^ (i >> 11));
	assert_int_equal(write(fd, blob, n), (ssize_t)n);
	unlink(tmpl);
	assert_int_equal(create("o", "s", id), CI_OK);
	fault("{\"method\":\"POST\",\"path_regex\":\"/files/bulk-upload$\",\"times\":1,"
	      "\"status\":500}");
	th_call(&host, &call, 30000);
	assert_int_equal(B->put(be, id, "/mnt/data/big.bin", &fsrc, 0644, &call), CI_OK);
	th_call(&host, &call, 30000);
	assert_int_equal(B->get(be, id, "/mnt/data/big.bin", &sink, &call), CI_OK);
	assert_int_equal(c.data.len, n);
	assert_memory_equal(c.data.data, blob, n);
	fault("{\"method\":\"POST\",\"path_regex\":\"/files/bulk-upload$\",\"times\":1,"
	      "\"status\":500}");
	th_call(&host, &call, 30000);
	assert_int_equal(B->put(be, id, "/mnt/data/big2.bin", &msrc, 0644, &call), CI_E_BACKEND);
	close(fd);
	free(blob);
	cap_free(&c);
}

static void test_slow_answers_lose_to_our_deadline(void **state)
{
	char id[CI_ID_MAX];
	ci_exec_result res;
	ci_call call;
	struct cap c = {0};
	int64_t t0;

	(void)state;
	assert_int_equal(create("o", "s", id), CI_OK);
	fault("{\"method\":\"POST\",\"path_regex\":\"/process/execute$\",\"times\":1,"
	      "\"delay_ms\":4000}");
	t0 = now();
	assert_int_equal(sh(id, "echo slow", 10000, 1500, &res, &c, &call), CI_E_TIMEOUT);
	assert_true(now() - t0 < 3000);
	fault("{\"method\":\"DELETE\",\"path_regex\":\"^/api/sandbox/\",\"times\":1,"
	      "\"delay_ms\":4000}");
	t0 = now();
	th_call(&host, &call, 1000);
	assert_int_equal(B->destroy(be, id, &call), CI_E_TIMEOUT);
	assert_true(now() - t0 < 3000);
	cap_free(&c);
}

/* --- sweep ---------------------------------------------------------------------------------- */

static void sweep_round(const char *shape)
{
	char id[CI_ID_MAX], young[CI_ID_MAX], other[CI_ID_MAX], cfgjs[128];
	unsigned n = 0;
	ci_call call;
	json_t *all;
	int i;

	ctl("POST", "/__fake/reset", NULL);
	snprintf(cfgjs, sizeof(cfgjs), "{\"list_shape\":\"%s\",\"page_limit_cap\":2}", shape);
	ctl("POST", "/__fake/config", cfgjs);
	th_wall_offset = -1000;
	for (i = 0; i < 3; i++)
		assert_int_equal(create("sweeper", "s", id), CI_OK);
	assert_int_equal(create("other", "s", other), CI_OK);
	th_wall_offset = 0;
	assert_int_equal(create("sweeper", "s", young), CI_OK);
	th_call(&host, &call, 30000);
	assert_int_equal(B->sweep(be, "sweeper", host.wall_unix(host.hctx) - 500, &n, &call),
			 CI_OK);
	assert_int_equal(n, 3);
	usleep(300000);
	all = fake_json("/__fake/sandboxes");
	assert_int_equal(json_array_size(all), 2);
	json_decref(all);
	all = fake_sandbox(young);
	assert_non_null(all);
	json_decref(all);
	all = fake_sandbox(other);
	assert_non_null(all);
	json_decref(all);
}

static void test_sweep_pages_and_shapes(void **state)
{
	(void)state;
	sweep_round("object");
	assert_true(seen("GET", "/api/sandbox", 200) >= 3); /* 5 sandboxes, pages of 2 */
	sweep_round("array");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_delimiter_like_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_timeout_kills_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_409_after_lost_reply_adopts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_create_error_fails_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_stuck_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_rate_limited_and_dropped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_snapshot_is_backend_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_image_per_runtime_builds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_retries_409, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unauthorized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sandbox_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_stopped_sandbox_restarts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_toolbox_5xx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_retry_needs_rewindable_source, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_slow_answers_lose_to_our_deadline, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sweep_pages_and_shapes, setup, teardown),
	};

	B = ci_backend_v1(CI_ABI_VERSION);
	if (getenv("DT_TEST_FILTER"))
		cmocka_set_test_filter(getenv("DT_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
