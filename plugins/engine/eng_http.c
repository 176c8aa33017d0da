/*
 * Requests to the engine through host->http, error mapping, and API
 * version negotiation from GET /version.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "engine.h"

#define ENG_RESP_MAX (8u << 20) /* JSON answers; lists of many containers */
#define ENG_PROBE_MS 5000

static int resp_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct eng_buf *b = ctx;

	(void)stream;
	return eng_buf_append(b, buf, len) ? 1 : 0;
}

int eng_call(struct ci_be *be, const struct eng_req *req, struct eng_resp *resp, ci_call *call)
{
	const ci_host *h = be->host;
	struct eng_buf url = {0};
	const char *headers[4];
	ci_http_req hr = {0};
	ci_sink sink = {resp_write, &resp->body};
	ci_call sub = *call;
	int n = 0, rc;

	resp->status = 0;
	resp->body.max = ENG_RESP_MAX;
	if (eng_buf_printf(&url, "%s%s%s", be->conf.url, req->raw ? "" : be->api, req->path))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	if (req->body_json)
		headers[n++] = "Content-Type: application/json";
	else if (req->content_type)
		headers[n++] = req->content_type;
	/* No "Expect: 100-continue" round trip before uploads. */
	headers[n++] = "Expect:";
	headers[n] = NULL;

	hr.method = req->method;
	hr.url = eng_buf_str(&url);
	hr.unix_socket = be->conf.socket;
	hr.headers = headers;
	hr.ca_file = be->conf.ca_file;
	if (req->body_json) {
		hr.body = req->body_json;
		hr.body_len = strlen(req->body_json);
	}
	hr.body_src = req->body_src;
	if (req->deadline_ms && req->deadline_ms < sub.deadline_ms)
		sub.deadline_ms = req->deadline_ms;
	sub.err[0] = '\0';
	rc = h->http(h->hctx, &hr, &resp->status, req->sink ? req->sink : &sink, &sub);
	if (rc != CI_OK) {
		if (rc == CI_E_UNAVAIL)
			ci_fail(call, rc, "%s engine unreachable at %s: %s", be->prof->name,
				be->conf.socket ? be->conf.socket : be->conf.url, sub.err);
		else
			ci_fail(call, rc, "%s %s: %s", req->method, req->path, sub.err);
	}
	eng_buf_release(&url);
	return rc;
}

void eng_resp_release(struct eng_resp *resp)
{
	eng_buf_release(&resp->body);
	resp->status = 0;
}

const char *eng_err_text(struct eng_resp *resp)
{
	static __thread char msg[CI_ERR_MAX];
	json_t *j, *m;
	const char *s = eng_buf_str(&resp->body);
	size_t n;

	j = json_loadb(s, resp->body.len, 0, NULL);
	m = j ? json_object_get(j, "message") : NULL;
	if (json_is_string(m)) {
		snprintf(msg, sizeof(msg), "%s", json_string_value(m));
		json_decref(j);
		return msg;
	}
	json_decref(j);
	snprintf(msg, sizeof(msg), "%s", s[0] ? s : "(no message)");
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	return msg;
}

int eng_fail_status(struct ci_be *be, struct eng_resp *resp, ci_call *call, const char *op)
{
	int st = resp->status;
	int rc;

	(void)be;
	if (st == 404)
		rc = CI_E_NOTFOUND;
	else if (st == 409)
		rc = CI_E_EXISTS;
	else if (st == 400)
		rc = CI_E_INVAL;
	else if (st >= 500)
		rc = strstr(eng_err_text(resp), "no space left") ? CI_E_LIMIT : CI_E_UNAVAIL;
	else
		rc = CI_E_BACKEND;
	return ci_fail(call, rc, "%s: HTTP %d: %s", op, st, eng_err_text(resp));
}

/* "1.41" -> 1041; -1 when malformed. */
static long api_num(const char *v)
{
	char *end;
	long maj, min;

	if (!v)
		return -1;
	maj = strtol(v, &end, 10);
	if (end == v || *end != '.')
		return -1;
	v = end + 1;
	min = strtol(v, &end, 10);
	if (end == v || *end || maj < 0 || min < 0 || min > 999)
		return -1;
	return maj * 1000 + min;
}

int eng_api_cmp(const char *a, const char *b)
{
	long x = api_num(a), y = api_num(b);

	return x < y ? -1 : x > y;
}

static bool is_podman(json_t *v)
{
	json_t *comps = json_object_get(v, "Components"), *c;
	size_t i;

	json_array_foreach(comps, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "Name"));

		if (name && strstr(name, "Podman"))
			return true;
	}
	return false;
}

int eng_version_pick(const char *json, size_t len, const char *pin, char api[16],
		     enum eng_kind *kind, char *err, size_t errlen)
{
	json_t *v;
	const char *max, *min, *use;
	int rc = CI_OK;

	v = json_loadb(json, len, 0, NULL);
	max = v ? json_string_value(json_object_get(v, "ApiVersion")) : NULL;
	if (!max || api_num(max) < 0) {
		snprintf(err, errlen, "GET /version: no ApiVersion in the answer");
		json_decref(v);
		return CI_E_BACKEND;
	}
	min = json_string_value(json_object_get(v, "MinAPIVersion"));
	if (!min || api_num(min) < 0)
		min = "1.12"; /* engines before MinAPIVersion existed */
	*kind = is_podman(v) ? ENG_KIND_PODMAN : ENG_KIND_DOCKER;

	if (pin) {
		if (api_num(pin) < 0) {
			snprintf(err, errlen, "api_version '%s' is not like 1.41", pin);
			rc = CI_E_INVAL;
		} else if (eng_api_cmp(pin, min) < 0 || eng_api_cmp(pin, max) > 0) {
			snprintf(err, errlen, "api_version %s outside the engine's %s..%s", pin,
				 min, max);
			rc = CI_E_UNAVAIL;
		}
		use = pin;
	} else {
		use = eng_api_cmp(max, ENG_API_MAX) < 0 ? max : ENG_API_MAX;
		if (eng_api_cmp(use, ENG_API_MIN) < 0) {
			snprintf(err, errlen, "engine API %s is too old (need >= %s)", max,
				 ENG_API_MIN);
			rc = CI_E_UNAVAIL;
		} else if (eng_api_cmp(min, use) > 0) {
			snprintf(err, errlen, "engine requires API >= %s, this plugin speaks <= %s",
				 min, ENG_API_MAX);
			rc = CI_E_UNAVAIL;
		}
	}
	if (rc == CI_OK)
		snprintf(api, 16, "/v%s", use);
	json_decref(v);
	return rc;
}

int eng_ready(struct ci_be *be, ci_call *call)
{
	struct eng_req req = {.method = "GET", .path = "/version", .raw = true};
	struct eng_resp resp = {0};
	char api[16], err[CI_ERR_MAX];
	enum eng_kind kind;
	int rc;

	pthread_mutex_lock(&be->lock);
	if (be->api[0]) {
		pthread_mutex_unlock(&be->lock);
		return CI_OK;
	}
	pthread_mutex_unlock(&be->lock);

	req.deadline_ms = be->host->now_ms(be->host->hctx) + ENG_PROBE_MS;
	rc = eng_call(be, &req, &resp, call);
	if (rc != CI_OK)
		goto out;
	if (resp.status != 200) {
		rc = ci_fail(call, CI_E_UNAVAIL, "%s engine: GET /version: HTTP %d: %s",
			     be->prof->name, resp.status, eng_err_text(&resp));
		goto out;
	}
	rc = eng_version_pick(eng_buf_str(&resp.body), resp.body.len, be->conf.api_pin, api, &kind,
			      err, sizeof(err));
	if (rc != CI_OK) {
		ci_fail(call, rc, "%s engine: %s", be->prof->name, err);
		goto out;
	}
	pthread_mutex_lock(&be->lock);
	if (!be->api[0]) {
		memcpy(be->api, api, sizeof(api));
		be->kind = kind;
		be->host->log(be->host->hctx, CI_LOG_INFO, "%s engine: %s API %s", be->prof->name,
			      kind == ENG_KIND_PODMAN ? "podman" : "docker", api + 2);
	}
	pthread_mutex_unlock(&be->lock);
out:
	eng_resp_release(&resp);
	return rc;
}
