/*
 * REST calls to the API server through host->http, and metav1.Status
 * error mapping.
 *
 * The bearer token goes in as an "Authorization:" header line built here
 * rather than through ci_http_req.bearer: service account tokens (JWTs)
 * can be longer than the host's fixed bearer buffer.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "k8s.h"

#define RESP_MAX  (16u << 20) /* JSON answers: pod lists */
#define TOKEN_CAP 16384

static int resp_write(void *ctx, int stream, const void *buf, size_t len)
{
	(void)stream;
	return k8s_buf_add(ctx, buf, len) ? 1 : 0;
}

static int call_once(struct ci_be *be, const struct k8s_req *req, struct k8s_resp *resp,
		     ci_call *call, const char *auth)
{
	const ci_host *h = be->host;
	struct k8s_buf url = {0};
	const char *headers[4];
	ci_http_req hr = {0};
	ci_sink sink = {resp_write, &resp->body};
	ci_call sub = *call;
	int n = 0, rc;

	resp->status = 0;
	resp->body.len = 0;
	resp->body.max = RESP_MAX;
	if (k8s_buf_printf(&url, "%s%s", be->conf.url, req->path))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	headers[n++] = auth;
	headers[n++] = "Accept: application/json";
	if (req->body_json)
		headers[n++] = "Content-Type: application/json";
	headers[n] = NULL;
	hr.method = req->method;
	hr.url = k8s_buf_str(&url);
	hr.headers = headers;
	hr.ca_file = be->conf.ca_file;
	if (req->body_json) {
		hr.body = req->body_json;
		hr.body_len = strlen(req->body_json);
	}
	if (req->deadline_ms && req->deadline_ms < sub.deadline_ms)
		sub.deadline_ms = req->deadline_ms;
	sub.err[0] = '\0';
	rc = h->http(h->hctx, &hr, &resp->status, req->sink ? req->sink : &sink, &sub);
	if (rc == CI_E_UNAVAIL)
		ci_fail(call, rc, "k8s API server unreachable at %s: %s", be->conf.url, sub.err);
	else if (rc != CI_OK)
		ci_fail(call, rc, "k8s %s %s: %s", req->method, req->path, sub.err);
	k8s_buf_release(&url);
	return rc;
}

int k8s_call(struct ci_be *be, const struct k8s_req *req, struct k8s_resp *resp, ci_call *call)
{
	struct k8s_buf auth = {0};
	char *tok = malloc(TOKEN_CAP);
	int rc, tries = be->conf.token_file && !req->sink ? 2 : 1;

	if (!tok)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	do {
		rc = k8s_token(be, tok, TOKEN_CAP, call);
		if (rc != CI_OK)
			break;
		auth.len = 0;
		if (k8s_buf_printf(&auth, "Authorization: Bearer %s", tok)) {
			rc = ci_fail(call, CI_E_NOMEM, "out of memory");
			break;
		}
		rc = call_once(be, req, resp, call, k8s_buf_str(&auth));
		if (rc != CI_OK || resp->status != 401)
			break;
		/* A rotated token: read the file again now, and retry once. */
		k8s_token_stale(be);
	} while (--tries > 0);
	k8s_buf_release(&auth);
	memset(tok, 0, TOKEN_CAP);
	free(tok);
	return rc;
}

void k8s_resp_release(struct k8s_resp *r)
{
	k8s_buf_release(&r->body);
	r->status = 0;
}

void k8s_status_text(const char *body, size_t len, char *out, size_t cap, char *reason, size_t rcap)
{
	json_t *j = json_loadb(body, len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));
	const char *r = json_string_value(json_object_get(j, "reason"));
	size_t n;

	if (reason && rcap)
		snprintf(reason, rcap, "%s", r ? r : "");
	if (m) {
		snprintf(out, cap, "%s", m);
	} else {
		snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), len ? body : "");
		if (!out[0])
			snprintf(out, cap, "(no message)");
	}
	json_decref(j);
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
}

int k8s_fail_status(struct k8s_resp *r, ci_call *call, const char *op)
{
	char msg[CI_ERR_MAX], reason[64];
	int st = r->status, rc;

	k8s_status_text(k8s_buf_str(&r->body), r->body.len, msg, sizeof(msg), reason,
			sizeof(reason));
	if (st == 404)
		rc = CI_E_NOTFOUND;
	else if (st == 409)
		rc = CI_E_EXISTS;
	else if (st == 401)
		/* The token may be mid-rotation: the call can work again later. */
		return ci_fail(call, CI_E_UNAVAIL,
			       "%s: HTTP 401 Unauthorized: the API server rejected the token "
			       "(check backends.k8s.token / token_file)",
			       op);
	else if (st == 403)
		return ci_fail(call, CI_E_BACKEND,
			       "%s: HTTP 403 Forbidden: %s (the service account needs the Role in "
			       "docs/k8s.md)",
			       op, msg);
	else if (st == 400 || st == 422)
		rc = CI_E_BACKEND;
	else if (st == 429 || st >= 500)
		rc = CI_E_UNAVAIL;
	else
		rc = CI_E_BACKEND;
	return ci_fail(call, rc, "%s: HTTP %d%s%s: %s", op, st, reason[0] ? " " : "", reason, msg);
}
