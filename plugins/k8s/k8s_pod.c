/*
 * Pods: the hardened spec, create and wait until Running (a watch from the
 * created object's resourceVersion, failing fast on image pull errors and
 * Failed pods), the usability check before each operation, delete, and the
 * sweep by owner label and age.
 */
#define _GNU_SOURCE /* strptime */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ci/backend_util.h"
#include "k8s.h"

#define CLEANUP_MS 3000

static json_t *quantity(int64_t bytes)
{
	char b[32];

	if (bytes % (1 << 20) == 0)
		snprintf(b, sizeof(b), "%lldMi", (long long)(bytes >> 20));
	else
		snprintf(b, sizeof(b), "%lld", (long long)bytes);
	return json_string(b);
}

static json_t *millis(int64_t m)
{
	char b[32];

	snprintf(b, sizeof(b), "%lldm", (long long)m);
	return json_string(b);
}

static json_t *empty_dir(const char *name, const char *medium, int64_t size)
{
	json_t *ed = json_pack("{s:o}", "sizeLimit", quantity(size));

	if (medium && medium[0])
		json_object_set_new(ed, "medium", json_string(medium));
	return json_pack("{s:s, s:o}", "name", name, "emptyDir", ed);
}

/* The pod's PID 1: a shell that sleeps and reaps (execs leave orphans). */
static const char keepalive[] = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done";

char *k8s_pod_json(const struct k8s_conf *c, const char *name, const char *image,
		   const char *runtime, const char *owner, const char *session,
		   const char *const *env, const struct k8s_limits *l, int64_t now_unix, char *err,
		   size_t errlen)
{
	char created[32], owner_lv[K8S_NAME_MAX + 1], sess_lv[K8S_NAME_MAX + 1];
	json_t *pod, *labels, *ann, *jenv, *ctr, *spec;
	char *s;

	snprintf(created, sizeof(created), "%lld", (long long)now_unix);
	k8s_label_value(owner ? owner : "", owner_lv);
	k8s_label_value(session ? session : "", sess_lv);
	labels = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", K8S_LABEL_PREFIX "sandbox", "1",
			   K8S_LABEL_PREFIX "backend", "k8s", K8S_LABEL_PREFIX "owner", owner_lv,
			   K8S_LABEL_PREFIX "session", sess_lv, K8S_LABEL_PREFIX "runtime",
			   runtime && k8s_label_value_ok(runtime) ? runtime : "",
			   K8S_LABEL_PREFIX "created", created);
	/* The exact owner and session, whatever their characters. */
	ann = json_pack("{s:s, s:s}", K8S_LABEL_PREFIX "owner", owner ? owner : "",
			K8S_LABEL_PREFIX "session", session ? session : "");
	if (!labels || !ann)
		goto out_nomem;
	for (size_t i = 0; i < c->n_labels; i++)
		json_object_set_new(labels, c->labels[i].key, json_string(c->labels[i].value));
	for (size_t i = 0; i < c->n_annotations; i++)
		json_object_set_new(ann, c->annotations[i].key,
				    json_string(c->annotations[i].value));

	jenv = json_array();
	for (; env && *env; env++) {
		const char *eq = strchr(*env, '=');
		char key[256];

		if (!eq || eq == *env || (size_t)(eq - *env) >= sizeof(key)) {
			snprintf(err, errlen, "create: env entry '%.40s' is not KEY=VALUE", *env);
			json_decref(jenv);
			json_decref(labels);
			json_decref(ann);
			return NULL;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - *env), *env);
		json_array_append_new(jenv, json_pack("{s:s, s:s}", "name", key, "value", eq + 1));
	}
	ctr = json_pack(
		"{s:s, s:s, s:s, s:[s,s,s], s:s, s:o, s:b, s:b, "
		"s:{s:b, s:b, s:b, s:b, s:I, s:I, s:{s:[s]}}, "
		"s:{s:{s:o, s:o}, s:{s:o, s:o}}, "
		"s:[{s:s, s:s}, {s:s, s:s}]}",
		"name", K8S_CONTAINER, "image", image, "imagePullPolicy", c->pull_policy, "command",
		"/bin/sh", "-c", keepalive, "workingDir", K8S_DATA_DIR, "env", jenv, "stdin", 0,
		"tty", 0, "securityContext", "allowPrivilegeEscalation", 0, "privileged", 0,
		"readOnlyRootFilesystem", 1, "runAsNonRoot", 1, "runAsUser", (json_int_t)c->uid,
		"runAsGroup", (json_int_t)c->gid, "capabilities", "drop", "ALL", "resources",
		"limits", "cpu", millis(l->cpu_millis), "memory", quantity(l->mem_bytes),
		"requests", "cpu", millis(c->cpu_request_millis), "memory",
		quantity(c->mem_request_bytes < l->mem_bytes ? c->mem_request_bytes : l->mem_bytes),
		"volumeMounts", "name", "data", "mountPath", K8S_DATA_DIR, "name", "tmp",
		"mountPath", "/tmp");
	spec = json_pack("{s:s, s:b, s:b, s:I, s:I, s:b, s:b, s:b, "
			 "s:{s:b, s:I, s:I, s:I, s:{s:s}}, s:[o], s:[o,o]}",
			 "restartPolicy", "Never", "automountServiceAccountToken", 0,
			 "enableServiceLinks", 0, "terminationGracePeriodSeconds", (json_int_t)0,
			 "activeDeadlineSeconds", (json_int_t)c->active_deadline_s, "hostNetwork",
			 0, "hostPID", 0, "hostIPC", 0, "securityContext", "runAsNonRoot", 1,
			 "runAsUser", (json_int_t)c->uid, "runAsGroup", (json_int_t)c->gid,
			 "fsGroup", (json_int_t)c->gid, "seccompProfile", "type", "RuntimeDefault",
			 "containers", ctr, "volumes",
			 empty_dir("data", c->data_medium, l->disk_bytes),
			 empty_dir("tmp", c->data_medium, c->tmp_bytes));
	if (spec && c->runtime_class)
		json_object_set_new(spec, "runtimeClassName", json_string(c->runtime_class));
	pod = json_pack("{s:s, s:s, s:{s:s, s:o, s:o}, s:o}", "apiVersion", "v1", "kind", "Pod",
			"metadata", "name", name, "labels", labels, "annotations", ann, "spec",
			spec);
	if (!pod)
		goto out_nomem_quiet;
	s = json_dumps(pod, JSON_COMPACT);
	json_decref(pod);
	if (!s)
		snprintf(err, errlen, "out of memory");
	return s;
out_nomem:
	json_decref(labels);
	json_decref(ann);
out_nomem_quiet:
	snprintf(err, errlen, "create: building the pod failed (bad image name or out of memory)");
	return NULL;
}

int64_t k8s_parse_time(const char *s)
{
	struct tm tm = {0};
	char *end;

	if (!s)
		return -1;
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (*end != 'Z' && *end != '.' && *end != '+'))
		return -1;
	return (int64_t)timegm(&tm);
}

static enum k8s_pod_state state_of(json_t *pod, char *why, size_t cap)
{
	json_t *st = json_object_get(pod, "status"), *cs;
	const char *phase = json_string_value(json_object_get(st, "phase"));
	const char *reason = json_string_value(json_object_get(st, "reason"));
	const char *msg = json_string_value(json_object_get(st, "message"));
	bool running = false;
	size_t i;

	why[0] = '\0';
	if (!json_is_object(pod))
		return K8S_POD_GONE;
	if (json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp")) {
		snprintf(why, cap, "pod is being deleted");
		return K8S_POD_GONE;
	}
	if (phase && (!strcmp(phase, "Failed") || !strcmp(phase, "Succeeded"))) {
		snprintf(why, cap, "pod %s%s%s%s", phase, reason ? " (" : "", reason ? reason : "",
			 reason ? ")" : "");
		if (msg)
			snprintf(why + strlen(why), cap - strlen(why), ": %s", msg);
		return K8S_POD_BROKEN;
	}
	json_array_foreach(json_object_get(st, "containerStatuses"), i, cs)
	{
		json_t *state = json_object_get(cs, "state");
		json_t *w = json_object_get(state, "waiting");
		json_t *t = json_object_get(state, "terminated");
		const char *wr = json_string_value(json_object_get(w, "reason"));
		const char *wm = json_string_value(json_object_get(w, "message"));
		const char *image = json_string_value(json_object_get(cs, "image"));

		if (wr && (!strcmp(wr, "ErrImagePull") || !strcmp(wr, "ImagePullBackOff") ||
			   !strcmp(wr, "InvalidImageName") || !strcmp(wr, "ErrImageNeverPull") ||
			   !strcmp(wr, "CreateContainerConfigError") ||
			   !strcmp(wr, "CreateContainerError") ||
			   !strcmp(wr, "RunContainerError") || !strcmp(wr, "CrashLoopBackOff"))) {
			snprintf(why, cap, "%s for image %s%s%s", wr, image ? image : "?",
				 wm ? ": " : "", wm ? wm : "");
			return K8S_POD_BROKEN;
		}
		if (t) {
			snprintf(why, cap, "container terminated (%s, exit %lld)",
				 json_string_value(json_object_get(t, "reason"))
					 ? json_string_value(json_object_get(t, "reason"))
					 : "?",
				 (long long)json_integer_value(json_object_get(t, "exitCode")));
			return K8S_POD_BROKEN;
		}
		if (json_object_get(state, "running"))
			running = true;
	}
	if (phase && !strcmp(phase, "Running") && running)
		return K8S_POD_RUNNING;
	snprintf(why, cap, "pod %s", phase ? phase : "without a phase");
	return K8S_POD_PENDING;
}

enum k8s_pod_state k8s_pod_state_of(const char *json, size_t len, char *why, size_t cap)
{
	json_t *j = json_loadb(json, len, 0, NULL);
	enum k8s_pod_state s = state_of(j, why, cap);

	json_decref(j);
	return s;
}

static int64_t now_ms(struct ci_be *be)
{
	return be->host->now_ms(be->host->hctx);
}

/* ---- the watch ---------------------------------------------------------- */

struct watch {
	struct k8s_buf line;
	enum k8s_pod_state state;
	char why[CI_ERR_MAX];
	char rv[32];
	bool gone, error, bad;
};

static int watch_line(struct watch *w, const char *s, size_t n)
{
	json_t *j = json_loadb(s, n, 0, NULL), *obj = json_object_get(j, "object");
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *rv = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	int stop = 0;

	if (!type) {
		w->bad = true;
		stop = 1;
	} else if (!strcmp(type, "ERROR")) {
		/* 410 Gone: our resourceVersion is too old; start again. */
		w->error = true;
		stop = 1;
	} else if (!strcmp(type, "DELETED")) {
		w->gone = true;
		stop = 1;
	} else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		if (rv)
			snprintf(w->rv, sizeof(w->rv), "%s", rv);
		w->state = state_of(obj, w->why, sizeof(w->why));
		stop = w->state != K8S_POD_PENDING;
	}
	json_decref(j);
	return stop;
}

static int watch_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct watch *w = ctx;
	const char *p = buf, *nl;

	(void)stream;
	while (len) {
		nl = memchr(p, '\n', len);
		if (!nl)
			return k8s_buf_add(&w->line, p, len) ? 1 : 0;
		if (k8s_buf_add(&w->line, p, (size_t)(nl - p)))
			return 1;
		if (w->line.len && watch_line(w, k8s_buf_str(&w->line), w->line.len))
			return 1; /* seen enough: end the request */
		w->line.len = 0;
		len -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	return 0;
}

static int get_pod(struct ci_be *be, const char *name, struct k8s_resp *resp, ci_call *call)
{
	struct k8s_buf path = {0};
	struct k8s_req req = {.method = "GET"};
	int rc;

	if (k8s_buf_printf(&path, "/api/v1/namespaces/%s/pods/%s", be->conf.ns, name))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	req.path = k8s_buf_str(&path);
	rc = k8s_call(be, &req, resp, call);
	k8s_buf_release(&path);
	return rc;
}

/*
 * Wait for Running: GET the pod (its state and resourceVersion), then watch
 * from there until the state changes; a watch that ends early (server
 * timeout, 410) starts over. Our deadline bounds every request, so a slow
 * watch returns CI_E_TIMEOUT.
 */
static int wait_running(struct ci_be *be, const char *name, const char *rv0, int64_t deadline,
			ci_call *call)
{
	struct watch w = {.state = K8S_POD_PENDING, .line = {.max = 4u << 20}};
	struct k8s_resp resp = {0};
	struct k8s_buf path = {0};
	ci_sink sink = {watch_write, &w};
	int rc, rounds = 0;

	snprintf(w.rv, sizeof(w.rv), "%s", rv0 ? rv0 : "");
	for (;;) {
		int64_t left = deadline - now_ms(be);

		if (left <= 0) {
			rc = ci_fail(call, CI_E_TIMEOUT, "create: pod %s not Running in time (%s)",
				     name, w.why[0] ? w.why : "no status yet");
			break;
		}
		if (!w.rv[0] || w.error) {
			ci_call sub = *call;

			sub.deadline_ms = deadline;
			k8s_resp_release(&resp);
			rc = get_pod(be, name, &resp, &sub);
			if (rc != CI_OK) {
				ci_fail(call, rc, "create: reading pod %s: %s", name, sub.err);
				break;
			}
			if (resp.status == 404) {
				rc = ci_fail(call, CI_E_BACKEND,
					     "create: pod %s vanished while "
					     "starting",
					     name);
				break;
			}
			if (resp.status != 200) {
				rc = k8s_fail_status(&resp, call, "create: read pod");
				break;
			}
			json_t *j = json_loadb(k8s_buf_str(&resp.body), resp.body.len, 0, NULL);
			const char *rv = json_string_value(
				json_object_get(json_object_get(j, "metadata"), "resourceVersion"));

			snprintf(w.rv, sizeof(w.rv), "%s", rv ? rv : "0");
			w.state = state_of(j, w.why, sizeof(w.why));
			json_decref(j);
			w.error = false;
		}
		if (w.state != K8S_POD_PENDING || w.gone || w.bad)
			goto decided;
		path.len = 0;
		k8s_buf_printf(
			&path,
			"/api/v1/namespaces/%s/pods?watch=true&fieldSelector=metadata.name%%3D%s"
			"&resourceVersion=%s&timeoutSeconds=%lld&allowWatchBookmarks=false",
			be->conf.ns, name, w.rv, (long long)(left / 1000 + 1));
		k8s_resp_release(&resp);
		w.line.len = 0;
		rc = k8s_call(be,
			      &(struct k8s_req){.method = "GET",
						.path = k8s_buf_str(&path),
						.sink = &sink,
						.deadline_ms = deadline},
			      &resp, call);
		if (rc == CI_E_TIMEOUT) {
			rc = ci_fail(call, CI_E_TIMEOUT,
				     "create: pod %s not Running before the deadline (%s)", name,
				     w.why[0] ? w.why : "the watch reported nothing");
			break;
		}
		if (rc != CI_OK)
			break;
		if (resp.status != 200) {
			rc = k8s_fail_status(&resp, call, "create: watch pod");
			break;
		}
		rounds++;
	decided:
		if (w.bad) {
			rc = ci_fail(call, CI_E_BACKEND, "create: malformed watch event");
			break;
		}
		if (w.gone) {
			rc = ci_fail(call, CI_E_BACKEND,
				     "create: pod %s was deleted while starting", name);
			break;
		}
		if (w.state == K8S_POD_RUNNING) {
			rc = CI_OK;
			break;
		}
		if (w.state == K8S_POD_BROKEN) {
			rc = ci_fail(call, CI_E_BACKEND, "create: pod %s: %s", name, w.why);
			break;
		}
		if (rounds > 1000) {
			rc = ci_fail(call, CI_E_BACKEND, "create: the watch keeps ending");
			break;
		}
	}
	k8s_buf_release(&w.line);
	k8s_buf_release(&path);
	k8s_resp_release(&resp);
	return rc;
}

/*
 * The image: backends.k8s.image.<runtime> when set (the operator's word
 * wins), else the core's spec->image, else image_format with the runtime;
 * the last two get image_prefix (a registry, "registry.example/ci/").
 */
static int image_for(struct ci_be *be, const ci_create_spec *spec, char *out, size_t cap,
		     ci_call *call)
{
	const char *img = NULL, *rt = spec->runtime;
	char key[96], name[400];
	int n;

	if (rt && rt[0]) {
		for (const char *p = rt; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
			      *p == '-' || *p == '+'))
				return ci_fail(call, CI_E_INVAL, "bad runtime name '%s'", rt);
		if (strlen(rt) > 48)
			return ci_fail(call, CI_E_INVAL, "runtime name too long");
		snprintf(key, sizeof(key), "image.%s", rt);
		if (be->host->cfg_str(be->host->hctx, key, &img) != CI_OK)
			img = NULL;
	}
	if (img) {
		n = snprintf(out, cap, "%s", img);
	} else {
		if (spec->image && spec->image[0]) {
			n = snprintf(name, sizeof(name), "%s", spec->image);
		} else if (rt && rt[0]) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			n = snprintf(name, sizeof(name), be->conf.image_fmt, rt); /* one %s */
#pragma GCC diagnostic pop
		} else {
			return ci_fail(call, CI_E_INVAL, "create: neither image nor runtime given");
		}
		if (n < 0 || (size_t)n >= sizeof(name))
			return ci_fail(call, CI_E_INVAL, "image name too long");
		n = snprintf(out, cap, "%s%s", be->conf.image_prefix, name);
	}
	if (n < 0 || (size_t)n >= cap)
		return ci_fail(call, CI_E_INVAL, "image name too long");
	for (const char *p = out; *p; p++)
		if ((unsigned char)*p <= ' ')
			return ci_fail(call, CI_E_INVAL, "image name '%s' holds a space", out);
	return CI_OK;
}

static ci_call cleanup_call(struct ci_be *be, const ci_call *call)
{
	ci_call c = *call;
	int64_t min = now_ms(be) + CLEANUP_MS;

	if (c.deadline_ms < min)
		c.deadline_ms = min;
	c.err[0] = '\0';
	return c;
}

int k8s_pod_create(struct ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call)
{
	struct k8s_limits l = {
		.mem_bytes = spec->mem_bytes > 0 ? spec->mem_bytes : be->conf.mem_bytes,
		.cpu_millis = spec->cpu_millis > 0 ? spec->cpu_millis : be->conf.cpu_millis,
		.disk_bytes = spec->disk_bytes > 0 ? spec->disk_bytes : be->conf.disk_bytes,
	};
	struct k8s_resp resp = {0};
	struct k8s_buf path = {0};
	unsigned char rnd[8];
	char name[32], image[512], err[CI_ERR_MAX] = "", *body;
	const char *rv;
	json_t *j = NULL;
	int64_t deadline;
	ci_call cc;
	int rc;

	id[0] = '\0';
	if (spec->network)
		return ci_fail(call, CI_E_UNSUPPORTED, "k8s: sandboxes have no network");
	if ((rc = image_for(be, spec, image, sizeof(image), call)) != CI_OK)
		return rc;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return ci_fail(call, CI_E_INTERNAL, "getrandom failed");
	snprintf(name, sizeof(name), "ci-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	body = k8s_pod_json(&be->conf, name, image, spec->runtime, spec->owner, spec->session,
			    spec->env, &l, be->host->wall_unix(be->host->hctx), err, sizeof(err));
	if (!body)
		return ci_fail(call, err[0] && strstr(err, "env") ? CI_E_INVAL : CI_E_NOMEM, "%s",
			       err);
	k8s_buf_printf(&path, "/api/v1/namespaces/%s/pods", be->conf.ns);
	rc = k8s_call(
		be,
		&(struct k8s_req){.method = "POST", .path = k8s_buf_str(&path), .body_json = body},
		&resp, call);
	free(body);
	if (rc != CI_OK)
		goto out;
	if (resp.status != 201 && resp.status != 200) {
		rc = k8s_fail_status(&resp, call, "create pod");
		if (rc == CI_E_NOTFOUND || rc == CI_E_EXISTS)
			rc = CI_E_BACKEND;
		goto out;
	}
	j = json_loadb(k8s_buf_str(&resp.body), resp.body.len, 0, NULL);
	rv = json_string_value(json_object_get(json_object_get(j, "metadata"), "resourceVersion"));
	deadline = now_ms(be) + be->conf.start_timeout_ms;
	if (deadline > call->deadline_ms)
		deadline = call->deadline_ms;
	rc = wait_running(be, name, rv, deadline, call);
	if (rc != CI_OK) {
		/* Never leave a pod that will not be used. */
		cc = cleanup_call(be, call);
		if (k8s_pod_delete(be, name, &cc) != CI_OK && cc.err[0])
			be->host->log(be->host->hctx, CI_LOG_WARN,
				      "k8s: could not delete pod %s after a failed start: %s (the "
				      "sweep will)",
				      name, cc.err);
		goto out;
	}
	snprintf(id, CI_ID_MAX, "%s", name);
out:
	json_decref(j);
	k8s_buf_release(&path);
	k8s_resp_release(&resp);
	return rc;
}

int k8s_pod_fetch(struct ci_be *be, const char *name, enum k8s_pod_state *st, char *why, size_t cap,
		  ci_call *call)
{
	struct k8s_resp resp = {0};
	int rc;

	if (!k8s_name_ok(name))
		return ci_fail(call, CI_E_NOTFOUND, "no such sandbox '%.64s'", name ? name : "");
	rc = get_pod(be, name, &resp, call);
	if (rc == CI_OK && resp.status == 404)
		rc = ci_fail(call, CI_E_NOTFOUND, "sandbox %s is gone (no such pod)", name);
	else if (rc == CI_OK && resp.status != 200)
		rc = k8s_fail_status(&resp, call, "read pod");
	else if (rc == CI_OK)
		*st = k8s_pod_state_of(k8s_buf_str(&resp.body), resp.body.len, why, cap);
	k8s_resp_release(&resp);
	return rc;
}

int k8s_pod_usable(struct ci_be *be, const char *name, ci_call *call)
{
	enum k8s_pod_state st;
	char why[CI_ERR_MAX];
	int rc = k8s_pod_fetch(be, name, &st, why, sizeof(why), call);

	if (rc != CI_OK || st == K8S_POD_RUNNING)
		return rc;
	rc = ci_fail(call, CI_E_NOTFOUND, "sandbox %s is not usable: %s", name, why);
	if (st == K8S_POD_BROKEN) {
		/* Evicted, deadline exceeded...: the core recreates; free the slot. */
		ci_call cc = cleanup_call(be, call);

		k8s_pod_delete(be, name, &cc);
	}
	return rc;
}

int k8s_pod_delete(struct ci_be *be, const char *name, ci_call *call)
{
	struct k8s_resp resp = {0};
	struct k8s_buf path = {0};
	int rc;

	if (!k8s_name_ok(name))
		return ci_fail(call, CI_E_NOTFOUND, "no such sandbox '%.64s'", name ? name : "");
	k8s_buf_printf(&path, "/api/v1/namespaces/%s/pods/%s?gracePeriodSeconds=0", be->conf.ns,
		       name);
	rc = k8s_call(be,
		      &(struct k8s_req){.method = "DELETE",
					.path = k8s_buf_str(&path),
					.body_json =
						"{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
						"\"gracePeriodSeconds\":0,"
						"\"propagationPolicy\":\"Background\"}"},
		      &resp, call);
	if (rc == CI_OK && resp.status == 404)
		rc = ci_fail(call, CI_E_NOTFOUND, "no such sandbox %s (pod gone)", name);
	else if (rc == CI_OK && resp.status != 200 && resp.status != 202)
		rc = k8s_fail_status(&resp, call, "delete pod");
	k8s_buf_release(&path);
	k8s_resp_release(&resp);
	return rc;
}

int k8s_pod_sweep(struct ci_be *be, const char *owner, int64_t older_than, unsigned *n,
		  ci_call *call)
{
	char lv[K8S_NAME_MAX + 1];
	struct k8s_resp resp = {0};
	struct k8s_buf path = {0}, sel = {0};
	json_t *j = NULL, *p;
	size_t i;
	int rc;

	*n = 0;
	k8s_label_value(owner, lv);
	k8s_buf_printf(&sel, K8S_LABEL_PREFIX "sandbox=1," K8S_LABEL_PREFIX "owner=%s", lv);
	k8s_buf_printf(&path, "/api/v1/namespaces/%s/pods?labelSelector=", be->conf.ns);
	if (k8s_url_escape(&path, k8s_buf_str(&sel))) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	rc = k8s_call(be, &(struct k8s_req){.method = "GET", .path = k8s_buf_str(&path)}, &resp,
		      call);
	if (rc == CI_OK && resp.status != 200)
		rc = k8s_fail_status(&resp, call, "sweep: list pods");
	if (rc != CI_OK)
		goto out;
	j = json_loadb(k8s_buf_str(&resp.body), resp.body.len, 0, NULL);
	if (!json_is_array(json_object_get(j, "items"))) {
		rc = ci_fail(call, CI_E_BACKEND, "sweep: the pod list has no items");
		goto out;
	}
	json_array_foreach(json_object_get(j, "items"), i, p)
	{
		json_t *meta = json_object_get(p, "metadata");
		const char *name = json_string_value(json_object_get(meta, "name"));
		json_t *labels = json_object_get(meta, "labels");
		const char *o = json_string_value(json_object_get(
			json_object_get(meta, "annotations"), K8S_LABEL_PREFIX "owner"));
		const char *cl =
			json_string_value(json_object_get(labels, K8S_LABEL_PREFIX "created"));
		int64_t created = cl ? strtoll(cl, NULL, 10) : 0;
		ci_call sub = *call;
		int drc;

		/* The server filtered on the label; the annotation holds the exact owner. */
		if (!name || !o || strcmp(o, owner) != 0 || !k8s_name_ok(name))
			continue;
		if (created <= 0)
			created = k8s_parse_time(
				json_string_value(json_object_get(meta, "creationTimestamp")));
		if (created < 0 || created >= older_than)
			continue;
		drc = k8s_pod_delete(be, name, &sub);
		if (drc == CI_OK)
			(*n)++;
		else if (drc != CI_E_NOTFOUND)
			be->host->log(be->host->hctx, CI_LOG_WARN, "k8s sweep: %s: %s", name,
				      sub.err);
	}
out:
	json_decref(j);
	k8s_buf_release(&sel);
	k8s_buf_release(&path);
	k8s_resp_release(&resp);
	return rc;
}
