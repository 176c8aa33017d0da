/* See fake_ctl.h. */
#include "fake_ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

struct grow {
	char *p;
	size_t n;
};

static int grow_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct grow *g = ctx;
	char *np = realloc(g->p, g->n + len + 1);

	(void)stream;
	if (!np)
		return 1;
	memcpy(np + g->n, buf, len);
	g->n += len;
	np[g->n] = 0;
	g->p = np;
	return 0;
}

static char *control(const char *method, const char *path, const char *json)
{
	const char *base = getenv("FAKE_K8S_CONTROL");
	const char *hdrs[] = {"Content-Type: application/json", NULL};
	char url[256];
	struct grow g = {0};
	ci_sink sink = {grow_write, &g};
	ci_http_req req = {.method = method, .url = url, .headers = hdrs};
	ci_call call = {.struct_size = sizeof(call), .request_id = "test"};
	int status = 0, rc;

	if (!base) {
		fprintf(stderr, "FAKE_K8S_CONTROL is not set: run under tests/k8s/with-fake.sh\n");
		abort();
	}
	snprintf(url, sizeof(url), "%s%s", base, path);
	if (json) {
		req.body = json;
		req.body_len = strlen(json);
	}
	call.deadline_ms = ci_now_ms() + 10000;
	rc = ci_host_http(&req, &status, &sink, &call);
	if (rc != CI_OK || status != 200) {
		fprintf(stderr, "fake control %s %s: rc=%d status=%d %s %s\n", method, path, rc,
			status, call.err, g.p ? g.p : "");
		abort();
	}
	return g.p;
}

void fk_control(const char *path, const char *json)
{
	free(control("POST", path, json ? json : "{}"));
}

json_t *fk_state(void)
{
	char *s = control("GET", "/state", NULL);
	json_t *j = json_loads(s, 0, NULL);

	free(s);
	if (!j)
		abort();
	return j;
}

int fk_pod_count(void)
{
	json_t *j = fk_state();
	int n = (int)json_array_size(json_object_get(j, "pods"));

	json_decref(j);
	return n;
}

int64_t fk_stat(const char *key)
{
	json_t *j = fk_state();
	json_t *v = json_object_get(json_object_get(j, "stats"), key);
	int64_t n = json_is_integer(v) ? json_integer_value(v) : -1;

	json_decref(j);
	return n;
}

const char *fk_dir(void)
{
	const char *d = getenv("FAKE_K8S_DIR");

	if (!d)
		abort();
	return d;
}

struct ci_plugin *fk_load(struct fk *f, const char *plugin_path)
{
	const char *conf = getenv("CI_K8S_CONF");

	f->err[0] = 0;
	if (!conf || ci_conf_load(&f->conf, conf, f->err, sizeof(f->err))) {
		fprintf(stderr, "cannot load %s: %s\n", conf ? conf : "$CI_K8S_CONF", f->err);
		abort();
	}
	f->p = ci_plugin_load_path(plugin_path, &f->conf, f->err, sizeof(f->err));
	if (!f->p)
		ci_conf_release(&f->conf);
	return f->p;
}

void fk_unload(struct fk *f)
{
	if (f->p) {
		ci_plugin_unload(f->p);
		ci_conf_release(&f->conf);
	}
	f->p = NULL;
}
