/*
 * The k8s plugin against the fake API server's fault injection (run under
 * with-fake.sh): API server down, token rejected or rotated, RBAC missing,
 * pod deleted or evicted underneath, image pull errors, slow watches,
 * v4-only servers and execs that hang.
 *
 *   test_k8s_faults PATH/TO/ci-backend-k8s.so
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "fake_ctl.h"
#include "host.h"
#include "log.h"

static const char *plugin;

struct buf {
	char data[4096];
	size_t len;
};

static int buf_write(void *ctx, int stream, const void *p, size_t n)
{
	struct buf *b = ctx;

	(void)stream;
	if (b->len + n < sizeof(b->data)) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = 0;
	}
	return 0;
}

static int create(struct fk *f, const char *image, int64_t ms, char id[CI_ID_MAX], ci_call *call)
{
	ci_create_spec spec = {.struct_size = sizeof(spec),
			       .runtime = "python",
			       .image = image,
			       .owner = "ci-test-faults",
			       .session = "faults"};

	return ci_plugin_create(f->p, call, "t", ci_now_ms() + ms, &spec, id);
}

/* sh -c script; stdout into out. */
static int sh(struct fk *f, const char *id, const char *script, const char *in, struct buf *out,
	      ci_exec_result *res, ci_call *call, int64_t timeout_ms)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	ci_sink sink = {buf_write, out};
	ci_exec_spec spec = {.struct_size = sizeof(spec),
			     .argv = argv,
			     .stdin_buf = in,
			     .stdin_len = in ? strlen(in) : 0,
			     .timeout_ms = timeout_ms,
			     .out = &sink};

	memset(res, 0, sizeof(*res));
	return ci_plugin_exec(f->p, call, "t", ci_now_ms() + timeout_ms + 20000, id, &spec, res);
}

static int setup(void **state)
{
	(void)state;
	fk_control("/reset", NULL);
	return 0;
}

static void test_api_down(void **state)
{
	struct fk f = {0};
	char id[CI_ID_MAX], id2[CI_ID_MAX];
	struct buf out = {0};
	ci_exec_result res;
	ci_call call;
	int64_t t0;

	(void)state;
	assert_non_null(fk_load(&f, plugin));
	assert_int_equal(create(&f, NULL, 30000, id, &call), CI_OK);
	fk_control("/fault", "{\"down\": true}");
	t0 = ci_now_ms();
	assert_int_equal(create(&f, NULL, 30000, id2, &call), CI_E_UNAVAIL);
	assert_non_null(strstr(call.err, "unreachable"));
	assert_int_equal(sh(&f, id, "echo hi", NULL, &out, &res, &call, 5000), CI_E_UNAVAIL);
	assert_true(ci_now_ms() - t0 < 5000);
	assert_int_equal(ci_rc_http_status(CI_E_UNAVAIL), 503);
	fk_control("/fault", "{\"down\": false}");
	assert_int_equal(sh(&f, id, "echo back", NULL, &out, &res, &call, 5000), CI_OK);
	assert_string_equal(out.data, "back\n");
	assert_int_equal(ci_plugin_destroy(f.p, &call, "t", ci_now_ms() + 10000, id), CI_OK);
	fk_unload(&f);

	/* Down at start-up: init only warns, calls say unavailable. */
	fk_control("/fault", "{\"down\": true}");
	assert_non_null(fk_load(&f, plugin));
	assert_int_equal(create(&f, NULL, 10000, id, &call), CI_E_UNAVAIL);
	fk_unload(&f);
	fk_control("/fault", "{\"down\": false}");
}

static void test_token_rejected(void **state)
{
	struct fk f = {0};
	char id[CI_ID_MAX];
	ci_call call;

	(void)state;
	fk_control("/fault", "{\"tokens\": [\"somebody-else\"]}");
	assert_null(fk_load(&f, plugin));
	assert_non_null(strstr(f.err, "rejected the token (401 Unauthorized)"));
	fk_control("/reset", NULL);

	fk_control("/fault", "{\"forbid\": true}");
	assert_null(fk_load(&f, plugin));
	assert_non_null(strstr(f.err, "403 Forbidden"));
	assert_non_null(strstr(f.err, "docs/k8s.md"));
	fk_control("/reset", NULL);

	/* A token file that cannot be read is a configuration error at init. */
	{
		char conf[256], line[512], orig[512];
		FILE *in, *out;

		snprintf(orig, sizeof(orig), "%s", getenv("CI_K8S_CONF"));
		in = fopen(orig, "r");
		snprintf(conf, sizeof(conf), "%s/no-token.conf", fk_dir());
		out = fopen(conf, "w");
		assert_non_null(in);
		assert_non_null(out);
		while (fgets(line, sizeof(line), in))
			fputs(strstr(line, "token_file") ? "token_file = \"/nonexistent/token\";\n"
							 : line,
			      out);
		fclose(in);
		fclose(out);
		setenv("CI_K8S_CONF", conf, 1);
		assert_null(fk_load(&f, plugin));
		setenv("CI_K8S_CONF", orig, 1);
		assert_non_null(strstr(f.err, "cannot read token_file /nonexistent/token"));
	}

	/* Rejected later, at request time. */
	assert_non_null(fk_load(&f, plugin));
	fk_control("/fault", "{\"tokens\": [\"somebody-else\"]}");
	assert_int_equal(create(&f, NULL, 10000, id, &call), CI_E_UNAVAIL);
	assert_non_null(strstr(call.err, "rejected the token"));
	fk_unload(&f);
}

static void test_token_rotated(void **state)
{
	char path[512], tok[128], orig[256] = "";
	struct fk f = {0};
	struct buf out = {0};
	char id[CI_ID_MAX];
	ci_exec_result res;
	ci_call call;
	FILE *fp;

	(void)state;
	assert_non_null(fk_load(&f, plugin));
	assert_int_equal(create(&f, NULL, 30000, id, &call), CI_OK);
	/* The kubelet writes a new token and the old one stops working. */
	snprintf(tok, sizeof(tok), "rotated-token-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/token", fk_dir());
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(orig, sizeof(orig), fp));
	fclose(fp);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", tok);
	fclose(fp);
	{
		char json[256];

		snprintf(json, sizeof(json), "{\"tokens\": [\"%s\"]}", tok);
		fk_control("/fault", json);
	}
	/* The first call gets a 401, re-reads the file and retries. */
	assert_int_equal(sh(&f, id, "echo rotated", NULL, &out, &res, &call, 5000), CI_OK);
	assert_string_equal(out.data, "rotated\n");
	assert_int_equal(ci_plugin_destroy(f.p, &call, "t", ci_now_ms() + 10000, id), CI_OK);
	fk_unload(&f);
	fp = fopen(path, "w"); /* the token the fake accepts after /reset */
	assert_non_null(fp);
	fputs(orig, fp);
	fclose(fp);
}

static void test_pod_gone(void **state)
{
	struct fk f = {0};
	char id[CI_ID_MAX], json[256];
	struct buf out = {0};
	ci_exec_result res;
	ci_call call;

	(void)state;
	assert_non_null(fk_load(&f, plugin));
	assert_int_equal(create(&f, NULL, 30000, id, &call), CI_OK);
	snprintf(json, sizeof(json), "{\"namespace\": \"ci-test\", \"delete\": \"%s\"}", id);
	fk_control("/fault", json);
	assert_int_equal(sh(&f, id, "echo hi", NULL, &out, &res, &call, 5000), CI_E_NOTFOUND);
	assert_int_equal(ci_rc_http_status(CI_E_NOTFOUND), 404);
	/* what the core does next: a new sandbox, which works */
	assert_int_equal(create(&f, NULL, 30000, id, &call), CI_OK);
	assert_int_equal(sh(&f, id, "echo again", NULL, &out, &res, &call, 5000), CI_OK);
	assert_string_equal(out.data, "again\n");

	/* Evicted: the pod object stays, Failed; the plugin says gone and deletes it. */
	snprintf(json, sizeof(json), "{\"namespace\": \"ci-test\", \"evict\": \"%s\"}", id);
	fk_control("/fault", json);
	out.len = 0;
	assert_int_equal(sh(&f, id, "echo hi", NULL, &out, &res, &call, 5000), CI_E_NOTFOUND);
	assert_non_null(strstr(call.err, "Evicted"));
	assert_int_equal(fk_pod_count(), 0);
	fk_unload(&f);
}

static void test_image_pull_error(void **state)
{
	struct fk f = {0};
	char id[CI_ID_MAX];
	ci_call call;
	int64_t t0;

	(void)state;
	assert_non_null(fk_load(&f, plugin));
	t0 = ci_now_ms();
	assert_int_equal(create(&f, "registry.example/no-such-image:1", 60000, id, &call),
			 CI_E_BACKEND);
	assert_true(ci_now_ms() - t0 < 5000); /* fast, not at the deadline */
	assert_non_null(strstr(call.err, "ErrImagePull"));
	assert_non_null(strstr(call.err, "no-such-image"));
	assert_string_equal(id, "");
	assert_int_equal(ci_rc_http_status(CI_E_BACKEND), 502);
	assert_int_equal(fk_pod_count(), 0); /* nothing left behind */
	fk_unload(&f);
}

static void test_slow_watch(void **state)
{
	struct fk f = {0};
	char id[CI_ID_MAX];
	ci_call call;
	int64_t t0, took;

	(void)state;
	assert_non_null(fk_load(&f, plugin));
	/* events held back 20 s: our 2 s deadline wins */
	fk_control("/fault", "{\"watch_delay_ms\": 20000}");
	t0 = ci_now_ms();
	assert_int_equal(create(&f, NULL, 2000, id, &call), CI_E_TIMEOUT);
	took = ci_now_ms() - t0;
	assert_true(took >= 1900 && took < 3500);
	fk_control("/fault", "{\"watch_delay_ms\": 0, \"ready_delay_ms\": 60000}");
	t0 = ci_now_ms();
	assert_int_equal(create(&f, NULL, 1500, id, &call), CI_E_TIMEOUT);
	took = ci_now_ms() - t0;
	assert_true(took >= 1400 && took < 3000);
	assert_non_null(strstr(call.err, "not Running"));
	sleep(1);
	assert_int_equal(fk_pod_count(), 0); /* both cleaned up */
	fk_unload(&f);
}

static void test_v4_server(void **state)
{
	static const char data[] = "stdin on a server that cannot close it\n";
	struct fk f = {0};
	char id[CI_ID_MAX];
	struct buf out = {0};
	ci_exec_result res;
	ci_call call;
	int64_t v4_before, closes_before;
	json_t *st;

	(void)state;
	fk_control("/fault", "{\"exec_protocols\": [\"v4.channel.k8s.io\"]}");
	assert_non_null(fk_load(&f, plugin));
	assert_int_equal(create(&f, NULL, 30000, id, &call), CI_OK);
	closes_before = fk_stat("stdin_closes");
	st = fk_state();
	v4_before = json_integer_value(
		json_object_get(json_object_get(json_object_get(st, "stats"), "exec_protocols"),
				"v4.channel.k8s.io"));
	json_decref(st);
	assert_int_equal(sh(&f, id, "cat; exit 4", data, &out, &res, &call, 10000), CI_OK);
	assert_string_equal(out.data, data);
	assert_int_equal(res.exit_code, 4);
	{
		struct {
			const char *p;
			size_t left;
		} m = {"tar on v4", 9};
		ci_source src = {.read = NULL, .ctx = &m, .size = 9, .fd = -1};
		struct buf got = {0};
		ci_sink sink = {buf_write, &got};
		char tmpl[] = "/tmp/ci-k8s-v4-XXXXXX";
		int fd = mkstemp(tmpl);

		assert_true(fd >= 0);
		unlink(tmpl);
		assert_int_equal(write(fd, "tar on v4", 9), 9);
		src.fd = fd;
		assert_int_equal(ci_plugin_put(f.p, &call, "t", ci_now_ms() + 20000, id,
					       "/mnt/data/v4/file.txt", &src, 0640),
				 CI_OK);
		close(fd);
		assert_int_equal(ci_plugin_get(f.p, &call, "t", ci_now_ms() + 20000, id,
					       "/mnt/data/v4/file.txt", &sink),
				 CI_OK);
		assert_string_equal(got.data, "tar on v4");
	}
	st = fk_state();
	assert_true(json_integer_value(json_object_get(
			    json_object_get(json_object_get(st, "stats"), "exec_protocols"),
			    "v4.channel.k8s.io")) >= v4_before + 3);
	json_decref(st);
	assert_int_equal(fk_stat("stdin_closes"), closes_before); /* v4 never closes */
	assert_int_equal(ci_plugin_destroy(f.p, &call, "t", ci_now_ms() + 10000, id), CI_OK);
	fk_unload(&f);
}

static void test_exec_hangs(void **state)
{
	struct fk f = {0};
	char id[CI_ID_MAX];
	struct buf out = {0};
	ci_exec_result res;
	ci_call call;
	int64_t t0, took;
	int rc;

	(void)state;
	assert_non_null(fk_load(&f, plugin));
	assert_int_equal(create(&f, NULL, 30000, id, &call), CI_OK);
	fk_control("/fault", "{\"exec_stall\": true}");
	t0 = ci_now_ms();
	rc = sh(&f, id, "echo never", NULL, &out, &res, &call, 1000);
	took = ci_now_ms() - t0;
	/* 1 s program + 2 s grace + the kill exec's 3 s, then the pod goes */
	assert_int_equal(rc, CI_OK);
	assert_int_equal(res.timed_out, 1);
	assert_true(took < 8000);
	fk_control("/fault", "{\"exec_stall\": false}");
	assert_int_equal(fk_pod_count(), 0); /* deleted as the last resort */
	assert_int_equal(sh(&f, id, "echo hi", NULL, &out, &res, &call, 5000), CI_E_NOTFOUND);
	fk_unload(&f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_api_down, setup),
		cmocka_unit_test_setup(test_token_rejected, setup),
		cmocka_unit_test_setup(test_token_rotated, setup),
		cmocka_unit_test_setup(test_pod_gone, setup),
		cmocka_unit_test_setup(test_image_pull_error, setup),
		cmocka_unit_test_setup(test_slow_watch, setup),
		cmocka_unit_test_setup(test_v4_server, setup),
		cmocka_unit_test_setup(test_exec_hangs, setup),
	};
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH/TO/ci-backend-k8s.so (under with-fake.sh)\n",
			argv[0]);
		return 2;
	}
	plugin = argv[1];
	ci_log_set_level(CI_LL_ERROR);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	ci_host_http_cleanup();
	return rc;
}
