/*
 * ci_host.http_connect and struct ci_stream (ABI 1.1) against a small TCP
 * peer on 127.0.0.1 run by a thread: the request head the host writes,
 * bytes both ways (4 MiB echoed, so sends and receives go partial), wait()
 * readiness and ticks, end of stream, receive deadlines, and the errors of
 * a refused connection, a bad request and a passed deadline. TLS is
 * covered end to end by the k8s tests (exec through the fake API server).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "host.h"

struct peer {
	int lfd, port;
	int mode; /* 0: upgrade + echo; 1: silent until the client closes; 2: answer, close */
	char head[2048];
	size_t echoed;
	pthread_t th;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	char buf[65536];
	size_t n = 0;
	ssize_t r;
	int fd = accept(p->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	while (n < sizeof(p->head) - 1 && !strstr(p->head, "\r\n\r\n")) {
		r = read(fd, p->head + n, 1);
		if (r <= 0)
			break;
		n += (size_t)r;
		p->head[n] = 0;
	}
	if (p->mode == 0 || p->mode == 2) {
		static const char answer[] = "HTTP/1.1 101 Switching Protocols\r\n\r\nhello";

		if (write(fd, answer, sizeof(answer) - 1) < 0 || p->mode == 2)
			goto out;
		/* echo until the client half-closes, then say bye and close */
		while ((r = read(fd, buf, sizeof(buf))) > 0) {
			if (write(fd, buf, (size_t)r) != r)
				break;
			p->echoed += (size_t)r;
		}
		if (write(fd, "bye", 3) < 0)
			goto out;
	} else {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
out:
	close(fd);
	return NULL;
}

static void peer_start(struct peer *p, int mode)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(p, 0, sizeof(*p));
	p->mode = mode;
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 1), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
	p->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

static void peer_stop(struct peer *p)
{
	pthread_join(p->th, NULL);
	close(p->lfd);
}

static const ci_host *host(void)
{
	static struct ci_host_ctx *h;

	if (!h)
		h = ci_host_new("streamtest", NULL);
	return ci_host_table(h);
}

static ci_call mkcall(int64_t ms)
{
	ci_call c = {.struct_size = sizeof(c), .request_id = "t"};

	c.deadline_ms = ci_now_ms() + ms;
	return c;
}

/* Receive exactly n bytes (or until EOF) into buf. */
static size_t recv_all(ci_stream *s, char *buf, size_t n, int64_t ms)
{
	size_t got = 0, k;
	ci_call call = mkcall(ms);

	while (got < n) {
		int rc = s->recv(s, buf + got, n - got, &k, ci_now_ms() + ms, &call);

		assert_int_equal(rc, CI_OK);
		if (!k)
			break;
		got += k;
	}
	return got;
}

static void test_head_and_echo(void **state)
{
	const char *hdrs[] = {"Upgrade: websocket", "Connection: Upgrade", NULL};
	ci_http_req req = {.method = "GET", .headers = hdrs, .bearer = "tok123"};
	size_t big = 4u << 20, sent = 0, got = 0, k;
	char url[128], buf[64], *out, *in;
	struct peer p;
	ci_stream *s = NULL;
	ci_call call = mkcall(5000);
	int ready = 0;

	(void)state;
	assert_true(CI_HOST_HAS(host(), http_connect));
	peer_start(&p, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/x/exec?command=a%%20b&x=1", p.port);
	req.url = url;
	assert_int_equal(host()->http_connect(host()->hctx, &req, &s, &call), CI_OK);
	assert_non_null(s);
	assert_true(s->struct_size >= sizeof(ci_stream));
	/* the answer and the first bytes after it */
	assert_int_equal(s->wait(s, CI_WAIT_READ, ci_now_ms() + 2000, &ready, &call), CI_OK);
	assert_int_equal(ready, CI_WAIT_READ);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(recv_all(s, buf, 41, 2000), 41);
	assert_string_equal(buf, "HTTP/1.1 101 Switching Protocols\r\n\r\nhello");
	/* the head the host wrote */
	assert_non_null(strstr(p.head, "GET /api/v1/x/exec?command=a%20b&x=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(p.head, "\r\nHost: 127.0.0.1:"));
	assert_non_null(strstr(p.head, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
	assert_non_null(strstr(p.head, "\r\nAuthorization: Bearer tok123\r\n\r\n"));

	/* nothing to read: wait ticks at its deadline without an error */
	int64_t t0 = ci_now_ms();

	assert_int_equal(s->wait(s, CI_WAIT_READ, ci_now_ms() + 150, &ready, &call), CI_OK);
	assert_int_equal(ready, 0);
	assert_true(ci_now_ms() - t0 >= 140);
	assert_int_equal(s->recv(s, buf, sizeof(buf), &k, ci_now_ms() + 100, &call), CI_E_TIMEOUT);
	assert_int_equal(s->recv(s, buf, sizeof(buf), &k, 0, &call), CI_E_TIMEOUT);
	assert_int_equal(s->wait(s, CI_WAIT_WRITE, ci_now_ms() + 1000, &ready, &call), CI_OK);
	assert_int_equal(ready, CI_WAIT_WRITE);

	/* 4 MiB both ways, full duplex in one thread as a plugin would */
	out = malloc(big);
	in = malloc(big);
	for (size_t i = 0; i < big; i++)
		out[i] = (char)(i * 13 + (i >> 11));
	while (got < big) {
		int ev = CI_WAIT_READ | (sent < big ? CI_WAIT_WRITE : 0);

		assert_int_equal(s->wait(s, ev, ci_now_ms() + 5000, &ready, &call), CI_OK);
		assert_true(ready != 0);
		if ((ready & CI_WAIT_WRITE) && sent < big) {
			assert_int_equal(s->send(s, out + sent, big - sent, &k, 0, &call), CI_OK);
			assert_true(k > 0);
			sent += k;
		}
		if (ready & CI_WAIT_READ) {
			assert_int_equal(s->recv(s, in + got, big - got, &k, 0, &call), CI_OK);
			assert_true(k > 0);
			got += k;
		}
	}
	assert_memory_equal(in, out, big);
	free(in);
	free(out);
	s->close(s);
	peer_stop(&p);
	assert_int_equal(p.echoed, big);
}

static void test_end_of_stream(void **state)
{
	ci_http_req req = {.method = "GET"};
	char url[64], buf[64];
	struct peer p;
	ci_stream *s;
	ci_call call = mkcall(5000);
	size_t k;
	int ready;

	(void)state;
	peer_start(&p, 2); /* answers, then closes */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
	req.url = url;
	assert_int_equal(host()->http_connect(host()->hctx, &req, &s, &call), CI_OK);
	assert_int_equal(recv_all(s, buf, 41, 2000), 41);
	assert_int_equal(s->wait(s, CI_WAIT_READ, ci_now_ms() + 2000, &ready, &call), CI_OK);
	assert_int_equal(ready, CI_WAIT_READ); /* end of stream is readable */
	assert_int_equal(s->recv(s, buf, sizeof(buf), &k, ci_now_ms() + 2000, &call), CI_OK);
	assert_int_equal(k, 0);
	assert_int_equal(s->recv(s, buf, sizeof(buf), &k, 0, &call), CI_OK);
	assert_int_equal(k, 0);
	s->close(s);
	peer_stop(&p);
}

static void test_silent_peer(void **state)
{
	ci_http_req req = {0};
	char url[64], buf[16];
	struct peer p;
	ci_stream *s;
	ci_call call = mkcall(5000);
	int64_t t0;
	size_t k;

	(void)state;
	peer_start(&p, 1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", p.port);
	req.url = url; /* method NULL: a raw connection, nothing sent */
	assert_int_equal(host()->http_connect(host()->hctx, &req, &s, &call), CI_OK);
	t0 = ci_now_ms();
	assert_int_equal(s->recv(s, buf, sizeof(buf), &k, ci_now_ms() + 300, &call), CI_E_TIMEOUT);
	assert_true(ci_now_ms() - t0 >= 290 && ci_now_ms() - t0 < 2000);
	assert_non_null(strstr(call.err, "deadline"));
	s->close(s);
	peer_stop(&p);
	assert_string_equal(p.head, "");
}

static void test_errors(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	char url[64];
	ci_http_req req = {.method = "GET"};
	const char *bad_hdrs[] = {"X-Evil: a\r\nInjected: b", NULL};
	ci_stream *s = (ci_stream *)&req; /* must be reset to NULL on failure */
	ci_call call = mkcall(3000);

	(void)state;
	/* a port nobody listens on: take one and let it go */
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	req.url = url;
	assert_int_equal(host()->http_connect(host()->hctx, &req, &s, &call), CI_E_UNAVAIL);
	assert_null(s);
	assert_non_null(strstr(call.err, "connect"));

	req.body = "x";
	req.body_len = 1;
	assert_int_equal(host()->http_connect(host()->hctx, &req, &s, &call), CI_E_INVAL);
	req.body = NULL;
	req.headers = bad_hdrs;
	assert_int_equal(host()->http_connect(host()->hctx, &req, &s, &call), CI_E_INVAL);
	req.headers = NULL;
	req.url = "not a url";
	assert_int_equal(host()->http_connect(host()->hctx, &req, &s, &call), CI_E_INVAL);
	req.url = url;
	call.deadline_ms = ci_now_ms() - 1;
	assert_int_equal(host()->http_connect(host()->hctx, &req, &s, &call), CI_E_TIMEOUT);
	call = mkcall(1000);
	assert_int_equal(host()->http_connect(host()->hctx, &req, NULL, &call), CI_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_and_echo),
		cmocka_unit_test(test_end_of_stream),
		cmocka_unit_test(test_silent_peer),
		cmocka_unit_test(test_errors),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	ci_host_http_cleanup();
	return rc;
}
