/*
 * The remotecommand channel protocol (v4/v5.channel.k8s.io) on the
 * receiving side: every WebSocket message starts with one channel byte;
 * 1 stdout and 2 stderr go to the sink as they arrive (frame by frame, a
 * message need not be whole), 3 carries a metav1.Status that says how the
 * command ended. Empty messages (the server's greeting on each channel)
 * are fine.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "k8s.h"

#define STATUS_MAX (64u << 10)

void k8s_chan_init(struct k8s_chan *c, const ci_sink *out)
{
	memset(c, 0, sizeof(*c));
	c->out = out;
	c->ch = -1;
	c->status.max = STATUS_MAX;
}

void k8s_chan_release(struct k8s_chan *c)
{
	k8s_buf_release(&c->status);
}

void k8s_chan_msg_start(struct k8s_chan *c)
{
	c->in_msg = true;
	c->ch = -1;
}

void k8s_chan_data(struct k8s_chan *c, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	bool *stop;
	int stream;

	if (!c->in_msg || !len)
		return;
	if (c->ch < 0) {
		c->ch = p[0];
		p++;
		len--;
		if (c->ch == K8S_CH_ERROR)
			c->status.len = 0; /* a status message replaces the greeting */
	}
	if (!len)
		return;
	switch (c->ch) {
	case K8S_CH_STDOUT:
	case K8S_CH_STDERR:
		stream = c->ch == K8S_CH_STDOUT ? CI_STREAM_STDOUT : CI_STREAM_STDERR;
		stop = c->ch == K8S_CH_STDOUT ? &c->stop_out : &c->stop_err;
		c->bytes[c->ch] += len;
		if (!*stop && c->out && c->out->write &&
		    c->out->write(c->out->ctx, stream, p, len) != 0)
			*stop = true;
		break;
	case K8S_CH_ERROR:
		if (k8s_buf_add(&c->status, p, len))
			c->bad = true;
		break;
	case K8S_CH_RESIZE:
	case K8S_CH_CLOSE:
		break;
	default:
		c->bad = true;
	}
}

void k8s_chan_msg_end(struct k8s_chan *c)
{
	if (c->in_msg && c->ch == K8S_CH_ERROR && c->status.len)
		c->have_status = true;
	c->in_msg = false;
	c->ch = -1;
}

int k8s_exit_status(const char *json, size_t len, int *exit_code, char *err, size_t errlen)
{
	json_t *j = json_loadb(json, len, 0, NULL), *c;
	const char *st = json_string_value(json_object_get(j, "status"));
	const char *reason = json_string_value(json_object_get(j, "reason"));
	const char *msg = json_string_value(json_object_get(j, "message"));
	size_t i;
	int rc = CI_E_BACKEND;

	*exit_code = -1;
	if (!st) {
		snprintf(err, errlen, "exec: unreadable status: %.100s", json);
	} else if (!strcmp(st, "Success")) {
		*exit_code = 0;
		rc = CI_OK;
	} else if (reason && !strcmp(reason, "NonZeroExitCode")) {
		json_array_foreach(json_object_get(json_object_get(j, "details"), "causes"), i, c)
		{
			const char *cr = json_string_value(json_object_get(c, "reason"));
			const char *cm = json_string_value(json_object_get(c, "message"));
			char *end;
			long v;

			if (!cr || strcmp(cr, "ExitCode") || !cm)
				continue;
			v = strtol(cm, &end, 10);
			if (end != cm && !*end && v >= 0 && v <= 255) {
				*exit_code = (int)v;
				rc = CI_OK;
			}
			break;
		}
		if (rc != CI_OK)
			snprintf(err, errlen, "exec: NonZeroExitCode without an exit code: %s",
				 msg ? msg : "?");
	} else {
		snprintf(err, errlen, "exec failed: %s%s%s", reason ? reason : "Failure",
			 msg ? ": " : "", msg ? msg : "");
	}
	json_decref(j);
	return rc;
}
