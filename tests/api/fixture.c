#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "app.h"
#include "conf.h"
#include "http.h"

char fx_root[64];
struct ci_conf fx_conf;
static struct ci_app app;
static char base[64];
static char conf_path[128];
static void (*fx_tune)(struct ci_conf *conf);

void fx_start(void)
{
	char err[512] = "";

	if (ci_conf_load(&fx_conf, conf_path, err, sizeof(err)))
		fail_msg("config: %s", err);
	if (fx_tune)
		fx_tune(&fx_conf);
	if (ci_app_start(&app, &fx_conf, err, sizeof(err)))
		fail_msg("app start: %s", err);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", ci_http_port(app.http));
}

const char *fx_base(void)
{
	return base;
}

void fx_stop(void)
{
	ci_app_stop(&app, 5000);
	ci_conf_release(&fx_conf);
}

void fx_setup(const char *extra_conf, void (*tune)(struct ci_conf *conf))
{
	FILE *f;

	strcpy(fx_root, "/tmp/ci-test-api-XXXXXX");
	assert_non_null(mkdtemp(fx_root));
	snprintf(conf_path, sizeof(conf_path), "%s/ci.conf", fx_root);
	f = fopen(conf_path, "w");
	assert_non_null(f);
	fprintf(f,
		"listen = { port = 0; };\n"
		"auth = { keys = ( { name = \"alice\"; key = \"%s\"; },"
		" { name = \"bob\"; key = \"%s\"; } ); };\n"
		"backend = \"fake\";\nplugin_dir = \"%s\";\n"
		"storage = { path = \"%s/files\"; max_file_size = 1000; max_files_per_run = 3; };\n"
		"sessions = { sweep_on_startup = false; };\n"
		"backends = { fake = { root = \"%s/sandboxes\"; }; };\n%s\n",
		KEY_A, KEY_B, CI_TEST_PLUGIN_DIR, fx_root, fx_root, extra_conf ? extra_conf : "");
	fclose(f);
	fx_tune = tune;
	fx_start();
}

void fx_teardown(void)
{
	char cmd[128];

	fx_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx_root);
	assert_int_equal(system(cmd), 0);
}

json_t *fx_call(const char *method, const char *key, const char *path, long want,
		struct tresp *keep)
{
	char url[512], hdr[96];
	struct treq rq = {.method = method, .url = url};
	struct tresp rs;
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", base, path);
	if (key) {
		snprintf(hdr, sizeof(hdr), "X-API-Key: %s", key);
		rq.headers[0] = hdr;
	}
	assert_int_equal(tclient_do(&rq, &rs), 0);
	if (rs.status != want)
		fail_msg("%s %s: status %ld, want %ld: %s", method, path, rs.status, want, rs.body);
	j = json_loads(rs.body, JSON_DECODE_ANY, NULL);
	if (keep)
		*keep = rs;
	else
		tresp_free(&rs);
	return j;
}

json_t *fx_post_json(const char *key, const char *path, const char *body, long want)
{
	char url[256], hdr[96];
	struct treq rq = {.method = "POST", .url = url, .body = body, .body_len = strlen(body)};
	struct tresp rs;
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", base, path);
	snprintf(hdr, sizeof(hdr), "X-API-Key: %s", key);
	rq.headers[0] = hdr;
	rq.headers[1] = "Content-Type: application/json";
	assert_int_equal(tclient_do(&rq, &rs), 0);
	if (rs.status != want)
		fail_msg("POST %s: status %ld, want %ld: %s", path, rs.status, want, rs.body);
	j = json_loads(rs.body, 0, NULL);
	tresp_free(&rs);
	assert_non_null(j);
	return j;
}

json_t *fx_upload(const char *key, const char *path, const char *const *names,
		  const char *const *datas, const char *field, const char *value, long want)
{
	char url[256], hdr[96];
	struct treq rq = {.method = "POST", .url = url, .chunked = 1};
	struct tresp rs;
	int n = 0;
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", base, path);
	snprintf(hdr, sizeof(hdr), "X-API-Key: %s", key);
	rq.headers[0] = hdr;
	rq.headers[1] = "User-Id: 6650a1b2c3d4e5f6a7b8c9d0";
	if (field) {
		rq.form_names[n] = field;
		rq.form_values[n++] = value;
	}
	for (int i = 0; names[i]; i++, n++) {
		rq.form_names[n] = "file";
		rq.form_values[n] = datas[i];
		rq.form_lens[n] = strlen(datas[i]);
		rq.form_filenames[n] = names[i];
	}
	assert_int_equal(tclient_do(&rq, &rs), 0);
	if (rs.status != want)
		fail_msg("upload: status %ld, want %ld: %s", rs.status, want, rs.body);
	j = json_loads(rs.body, 0, NULL);
	tresp_free(&rs);
	assert_non_null(j);
	return j;
}

const char *fx_str(json_t *o, const char *path)
{
	json_t *v = o;
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
		v = (*k >= '0' && *k <= '9') ? json_array_get(v, (size_t)atoi(k))
					     : json_object_get(v, k);
	return json_string_value(v);
}
