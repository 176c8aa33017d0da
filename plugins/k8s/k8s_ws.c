/*
 * pods/exec over WebSocket: the HTTP/1.1 Upgrade on the raw stream the host
 * opens (host->http_connect, ABI 1.1), then RFC 6455 framing by libwslay
 * (event API, unbuffered: output reaches the sink frame by frame) and the
 * channel protocol of k8s_chan.c.
 *
 * One thread drives everything: it queues stdin messages one at a time
 * (never more than one message of stdin in memory), and waits on the stream
 * for whatever wslay wants next. The connection is closed by io->deadline
 * whatever the server does: the caller then deals with the program.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "ci/backend_util.h"
#include "k8s.h"

#define WS_GUID	  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HEAD_MAX  16384
#define BODY_MAX  65536
#define STDIN_MSG (64u << 10) /* stdin bytes per message */
#define TICK_MS	  200
#define TOKEN_CAP 16384

static const char v5[] = "v5.channel.k8s.io", v4[] = "v4.channel.k8s.io";

void k8s_ws_accept(const char *key, char out[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char in[128];

	snprintf(in, sizeof(in), "%s" WS_GUID, key);
	EVP_Digest(in, strlen(in), md, &n, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)n); /* 20 bytes -> 28 chars + NUL */
}

static void trim_copy(char *out, size_t cap, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
		n--;
	snprintf(out, cap, "%.*s", (int)n, v);
}

int k8s_http_head(const char *head, size_t len, int *status, char *proto, size_t pcap, char *accept,
		  size_t acap, int64_t *content_length)
{
	const char *p = head, *end = head + len, *eol, *colon;
	char upgrade[32] = "";
	size_t n;

	*status = 0;
	proto[0] = accept[0] = '\0';
	*content_length = -1;
	if (len < 12 || strncmp(head, "HTTP/1.", 7) || head[8] != ' ')
		return -1;
	*status = atoi(head + 9);
	if (*status < 100 || *status > 599)
		return -1;
	eol = memchr(p, '\n', (size_t)(end - p));
	while (eol && eol + 1 < end) {
		p = eol + 1;
		eol = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((eol ? eol : end) - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (!n)
			break;
		colon = memchr(p, ':', n);
		if (!colon)
			return -1;
		n -= (size_t)(colon + 1 - p);
#define IS(h) ((size_t)(colon - p) == sizeof(h) - 1 && !strncasecmp(p, h, sizeof(h) - 1))
		if (IS("Sec-WebSocket-Protocol"))
			trim_copy(proto, pcap, colon + 1, n);
		else if (IS("Sec-WebSocket-Accept"))
			trim_copy(accept, acap, colon + 1, n);
		else if (IS("Upgrade"))
			trim_copy(upgrade, sizeof(upgrade), colon + 1, n);
		else if (IS("Content-Length"))
			*content_length = strtoll(colon + 1, NULL, 10);
#undef IS
	}
	if (*status == 101 && strcasecmp(upgrade, "websocket"))
		return -1;
	return 0;
}

struct ws {
	struct ci_be *be;
	ci_stream *s;
	wslay_event_context_ptr ctx;
	struct k8s_ws_io *io;
	unsigned char *pre; /* bytes that came with the HTTP head */
	size_t pre_off, pre_len;
	bool eof, io_failed;
	bool data_frame, fin;
	ci_call call; /* stream errors land here */
	unsigned char *in_buf;
	bool in_done;
};

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct ws *w = user;
	size_t got = 0;
	int rc;

	(void)flags;
	if (w->pre_len) {
		got = w->pre_len < len ? w->pre_len : len;
		memcpy(buf, w->pre + w->pre_off, got);
		w->pre_off += got;
		w->pre_len -= got;
		return (ssize_t)got;
	}
	rc = w->s->recv(w->s, buf, len, &got, 0, &w->call);
	if (rc == CI_E_TIMEOUT) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (rc == CI_OK && got == 0)
		w->eof = true;
	else if (rc != CI_OK)
		w->io_failed = true;
	if (rc != CI_OK || got == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)got;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	struct ws *w = user;
	size_t sent = 0;
	int rc;

	(void)flags;
	rc = w->s->send(w->s, data, len, &sent, 0, &w->call);
	if (rc == CI_E_TIMEOUT) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (rc != CI_OK) {
		w->io_failed = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)sent;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	(void)user;
	return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

static void on_frame_start(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	struct ws *w = user;

	(void)ctx;
	w->fin = arg->fin;
	if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
		w->data_frame = true;
		k8s_chan_msg_start(w->io->chan);
	} else {
		w->data_frame = arg->opcode == WSLAY_CONTINUATION_FRAME;
	}
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
	struct ws *w = user;

	(void)ctx;
	if (w->data_frame)
		k8s_chan_data(w->io->chan, arg->data, arg->data_length);
}

static void on_frame_end(wslay_event_context_ptr ctx, void *user)
{
	struct ws *w = user;

	(void)ctx;
	if (w->data_frame && w->fin)
		k8s_chan_msg_end(w->io->chan);
	w->data_frame = false;
}

/* ---- the handshake ---------------------------------------------------------- */

static int64_t now_ms(struct ci_be *be)
{
	return be->host->now_ms(be->host->hctx);
}

/* Read the answer head (and, for an error, its body) from the stream. */
static int read_answer(struct ws *w, struct k8s_buf *head, size_t *head_len, ci_call *call)
{
	char buf[4096], *end;
	size_t got;
	int rc;

	for (;;) {
		end = head->len ? strstr(head->data, "\r\n\r\n") : NULL;
		if (end) {
			*head_len = (size_t)(end + 4 - head->data);
			return CI_OK;
		}
		rc = w->s->recv(w->s, buf, sizeof(buf), &got, w->io->deadline_ms, call);
		if (rc != CI_OK)
			return ci_fail(call, rc, "exec: no answer to the upgrade: %s", call->err);
		if (!got)
			return ci_fail(call, CI_E_UNAVAIL,
				       "exec: the API server closed the "
				       "connection before answering");
		if (memchr(buf, '\0', got) || k8s_buf_add(head, buf, got))
			return ci_fail(call, CI_E_BACKEND, "exec: malformed or oversized answer");
	}
}

static int refused(struct ws *w, struct k8s_buf *head, size_t head_len, int status, int64_t clen,
		   ci_call *call)
{
	struct k8s_resp r = {.status = status, .body = {.max = BODY_MAX}};
	char buf[4096], why[CI_ERR_MAX];
	size_t got;
	int rc;

	k8s_buf_add(&r.body, head->data + head_len, head->len - head_len);
	while ((clen < 0 || (int64_t)r.body.len < clen) && r.body.len < BODY_MAX) {
		ci_call sub = *call;

		if (w->s->recv(w->s, buf, sizeof(buf), &got, w->io->deadline_ms, &sub) != CI_OK ||
		    !got || k8s_buf_add(&r.body, buf, got))
			break;
	}
	k8s_status_text(k8s_buf_str(&r.body), r.body.len, why, sizeof(why), NULL, 0);
	if (status == 401)
		k8s_token_stale(w->be);
	if (status == 400 && (strstr(why, "completed pod") || strstr(why, "container not found") ||
			      strstr(why, "not running") || strstr(why, "is terminated")))
		rc = ci_fail(call, CI_E_NOTFOUND, "sandbox is gone: %s", why);
	else
		rc = k8s_fail_status(&r, call, "exec");
	k8s_resp_release(&r);
	return rc;
}

static int handshake(struct ws *w, const char *name, const char *query, ci_call *call)
{
	struct ci_be *be = w->be;
	unsigned char rnd[16];
	char key[32], want[32], proto[64], accept[64];
	struct k8s_buf url = {0}, auth = {0}, head = {.max = HEAD_MAX};
	const char *headers[8];
	ci_http_req req = {0};
	ci_call sub = *call;
	size_t head_len = 0;
	int64_t clen;
	char *tok = malloc(TOKEN_CAP);
	int rc, status;

	if (!tok)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		rc = ci_fail(call, CI_E_INTERNAL, "getrandom failed");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)key, rnd, sizeof(rnd));
	k8s_ws_accept(key, want);
	if ((rc = k8s_token(be, tok, TOKEN_CAP, call)) != CI_OK)
		goto out;
	if (k8s_buf_printf(&url, "%s/api/v1/namespaces/%s/pods/%s/exec?%s", be->conf.url,
			   be->conf.ns, name, query) ||
	    k8s_buf_printf(&auth, "Authorization: Bearer %s", tok)) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	char key_h[64];

	snprintf(key_h, sizeof(key_h), "Sec-WebSocket-Key: %s", key);
	headers[0] = "Connection: Upgrade";
	headers[1] = "Upgrade: websocket";
	headers[2] = "Sec-WebSocket-Version: 13";
	headers[3] = key_h;
	headers[4] = "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io";
	headers[5] = k8s_buf_str(&auth);
	headers[6] = "User-Agent: ci-server-k8s/" CI_BACKEND_VERSION;
	headers[7] = NULL;
	req.method = "GET";
	req.url = k8s_buf_str(&url);
	req.headers = headers;
	req.ca_file = be->conf.ca_file;
	sub.deadline_ms =
		w->io->deadline_ms < call->deadline_ms ? w->io->deadline_ms : call->deadline_ms;
	rc = be->host->http_connect(be->host->hctx, &req, &w->s, &sub);
	if (rc != CI_OK) {
		if (rc == CI_E_UNAVAIL)
			ci_fail(call, rc, "k8s API server unreachable at %s: %s", be->conf.url,
				sub.err);
		else
			ci_fail(call, rc, "exec: %s", sub.err);
		goto out;
	}
	rc = read_answer(w, &head, &head_len, call);
	if (rc != CI_OK)
		goto out;
	if (k8s_http_head(head.data, head_len, &status, proto, sizeof(proto), accept,
			  sizeof(accept), &clen)) {
		rc = ci_fail(call, CI_E_BACKEND, "exec: malformed answer to the upgrade");
		goto out;
	}
	if (status != 101) {
		rc = refused(w, &head, head_len, status, clen, call);
		goto out;
	}
	if (strcmp(accept, want)) {
		rc = ci_fail(call, CI_E_BACKEND, "exec: wrong Sec-WebSocket-Accept");
		goto out;
	}
	if (strcmp(proto, v5) && strcmp(proto, v4)) {
		rc = ci_fail(call, CI_E_BACKEND,
			     "exec: the API server chose subprotocol '%s' "
			     "(need %s or %s)",
			     proto, v5, v4);
		goto out;
	}
	w->io->v5 = !strcmp(proto, v5);
	if (head.len > head_len) {
		w->pre_len = head.len - head_len;
		w->pre = malloc(w->pre_len);
		if (!w->pre) {
			rc = ci_fail(call, CI_E_NOMEM, "out of memory");
			goto out;
		}
		memcpy(w->pre, head.data + head_len, w->pre_len);
	}
out:
	memset(tok, 0, TOKEN_CAP);
	free(tok);
	if (auth.data)
		memset(auth.data, 0, auth.len);
	k8s_buf_release(&auth);
	k8s_buf_release(&url);
	k8s_buf_release(&head);
	return rc;
}

/* ---- the exchange ------------------------------------------------------------ */

/* Queue the next stdin message (or v5's close of stdin) when none is queued. */
static int feed_stdin(struct ws *w, ci_call *call)
{
	const ci_source *in = w->io->in;
	struct wslay_event_msg m = {.opcode = WSLAY_BINARY_FRAME};
	int64_t left;
	ssize_t n;

	if (!in || w->in_done || wslay_event_get_queued_msg_count(w->ctx) ||
	    wslay_event_get_close_received(w->ctx))
		return CI_OK;
	left = in->size - w->io->sent;
	if (left > 0) {
		size_t cap = left < STDIN_MSG ? (size_t)left : STDIN_MSG;

		w->in_buf[0] = K8S_CH_STDIN;
		n = in->fd >= 0 ? pread(in->fd, w->in_buf + 1, cap, (off_t)w->io->sent)
				: in->read(in->ctx, w->in_buf + 1, cap);
		if (n < 0)
			return ci_fail(call, CI_E_INTERNAL, "exec: reading stdin failed");
		if (n == 0)
			return ci_fail(call, CI_E_INVAL,
				       "exec: stdin ended after %lld of %lld bytes",
				       (long long)w->io->sent, (long long)in->size);
		m.msg = w->in_buf;
		m.msg_length = (size_t)n + 1;
		if (wslay_event_queue_msg(w->ctx, &m))
			return ci_fail(call, CI_E_NOMEM, "exec: cannot queue stdin");
		w->io->sent += n;
		return CI_OK;
	}
	w->in_done = true;
	if (w->io->v5) {
		/* v5: [255, 0] closes stdin; v4 has no such signal. */
		static const uint8_t close_stdin[] = {K8S_CH_CLOSE, K8S_CH_STDIN};

		m.msg = close_stdin;
		m.msg_length = sizeof(close_stdin);
		if (wslay_event_queue_msg(w->ctx, &m))
			return ci_fail(call, CI_E_NOMEM, "exec: cannot queue stdin close");
	}
	return CI_OK;
}

static int exchange(struct ws *w, ci_call *call)
{
	int64_t now, until;
	int events, ready, rc;

	for (;;) {
		if ((rc = feed_stdin(w, call)) != CI_OK)
			return rc;
		events = (wslay_event_want_read(w->ctx) ? CI_WAIT_READ : 0) |
			 (wslay_event_want_write(w->ctx) ? CI_WAIT_WRITE : 0);
		if (!events) {
			w->io->closed = true;
			return CI_OK;
		}
		now = now_ms(w->be);
		if (now >= w->io->deadline_ms)
			return ci_fail(call, CI_E_TIMEOUT,
				       "exec: stream still open at the deadline");
		until = now + TICK_MS < w->io->deadline_ms ? now + TICK_MS : w->io->deadline_ms;
		ready = 0;
		if (w->pre_len && (events & CI_WAIT_READ))
			ready = CI_WAIT_READ;
		else if ((rc = w->s->wait(w->s, events, until, &ready, &w->call)) != CI_OK)
			return ci_fail(call, rc, "exec: %s", w->call.err);
		if ((ready & CI_WAIT_READ) && wslay_event_recv(w->ctx) < 0) {
			if (w->eof) {
				/* The server hung up; fine once it has told the status. */
				w->io->closed = true;
				return CI_OK;
			}
			return ci_fail(call, w->io_failed ? CI_E_UNAVAIL : CI_E_BACKEND, "exec: %s",
				       w->io_failed ? w->call.err : "WebSocket protocol error");
		}
		if ((ready & CI_WAIT_WRITE) && wslay_event_send(w->ctx) < 0) {
			if (w->io->chan->have_status) {
				w->io->closed = true;
				return CI_OK;
			}
			return ci_fail(call, CI_E_UNAVAIL, "exec: sending failed: %s", w->call.err);
		}
		if (wslay_event_get_close_received(w->ctx) && !wslay_event_want_write(w->ctx)) {
			w->io->closed = true;
			return CI_OK;
		}
	}
}

int k8s_ws_exec(struct ci_be *be, const char *name, const char *query, struct k8s_ws_io *io,
		ci_call *call)
{
	struct wslay_event_callbacks cb = {
		.recv_callback = on_recv,
		.send_callback = on_send,
		.genmask_callback = on_genmask,
		.on_frame_recv_start_callback = on_frame_start,
		.on_frame_recv_chunk_callback = on_frame_chunk,
		.on_frame_recv_end_callback = on_frame_end,
	};
	struct ws w = {.be = be, .io = io, .call = *call};
	int rc;

	io->closed = false;
	io->sent = 0;
	rc = handshake(&w, name, query, call);
	if (rc != CI_OK)
		goto out;
	if (io->in && !(w.in_buf = malloc(STDIN_MSG + 1))) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	if (wslay_event_context_client_init(&w.ctx, &cb, &w)) {
		rc = ci_fail(call, CI_E_NOMEM, "exec: wslay init failed");
		goto out;
	}
	wslay_event_config_set_no_buffering(w.ctx, 1);
	rc = exchange(&w, call);
out:
	if (w.ctx)
		wslay_event_context_free(w.ctx);
	if (w.s)
		w.s->close(w.s);
	free(w.in_buf);
	free(w.pre);
	return rc;
}
