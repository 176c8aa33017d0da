#define _GNU_SOURCE
#include "mini_httpd.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONNS 128
#define HDR_MAX	  65536

struct conn {
	pthread_t thread;
	int fd;
	struct mini_httpd *srv;
};

struct mini_httpd {
	int lfd, port;
	char unix_path[108];
	pthread_t accept_thread;
	atomic_int accepted;
	atomic_bool stopping;
	pthread_mutex_t lock;
	struct conn conns[MAX_CONNS];
	int n_conns;
};

unsigned char mini_byte(int64_t off)
{
	return (unsigned char)((off * 7 + (off >> 11)) & 0xff);
}

uint32_t mini_fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static bool send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t k;

	while (n) {
		k = send(fd, c, n, MSG_NOSIGNAL);
		if (k <= 0)
			return false;
		c += k;
		n -= (size_t)k;
	}
	return true;
}

static bool respond(int fd, int status, const void *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n\r\n",
			 status, len);

	return send_all(fd, head, (size_t)n) && send_all(fd, body, len);
}

static long long content_length(const char *hdr)
{
	const char *p = strcasestr(hdr, "\r\ncontent-length:");

	return p ? strtoll(p + 17, NULL, 10) : 0;
}

/* Read until buf holds a whole header block; returns its length. */
static ssize_t read_header(int fd, char *buf, size_t cap, size_t *have)
{
	char *end;
	ssize_t n;

	for (;;) {
		buf[*have] = 0;
		end = strstr(buf, "\r\n\r\n");
		if (end)
			return end + 4 - buf;
		if (*have >= cap - 1)
			return -1;
		n = recv(fd, buf + *have, cap - 1 - *have, 0);
		if (n <= 0)
			return -1;
		*have += (size_t)n;
	}
}

static bool route_sum(int fd, char *buf, size_t hlen, size_t have)
{
	long long want = content_length(buf), got = 0;
	uint32_t h = MINI_FNV_INIT;
	char chunk[65536], out[64];
	ssize_t n;

	if (strcasestr(buf, "\r\ntransfer-encoding:"))
		return respond(fd, 411, "length required", 15);
	n = (ssize_t)(have - hlen);
	if (n > want)
		n = (ssize_t)want;
	h = mini_fnv(h, buf + hlen, (size_t)n);
	got = n;
	while (got < want) {
		n = recv(fd, chunk,
			 (size_t)(want - got) < sizeof(chunk) ? (size_t)(want - got)
							      : sizeof(chunk),
			 0);
		if (n <= 0)
			return false;
		h = mini_fnv(h, chunk, (size_t)n);
		got += n;
	}
	n = snprintf(out, sizeof(out), "len=%lld sum=%08x", got, h);
	return respond(fd, 200, out, (size_t)n);
}

static bool route_big(int fd, long long n)
{
	char head[128], chunk[65536];
	long long off = 0;
	int hn = snprintf(head, sizeof(head), "HTTP/1.1 200 X\r\nContent-Length: %lld\r\n\r\n", n);

	if (!send_all(fd, head, (size_t)hn))
		return false;
	while (off < n) {
		size_t k = (size_t)(n - off) < sizeof(chunk) ? (size_t)(n - off) : sizeof(chunk);

		for (size_t i = 0; i < k; i++)
			chunk[i] = (char)mini_byte(off + (long long)i);
		if (!send_all(fd, chunk, k))
			return false;
		off += (long long)k;
	}
	return true;
}

static bool route_slow(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	/* the client gives up first: its socket becomes readable (EOF) */
	if (poll(&pf, 1, 5000) > 0)
		return false;
	return respond(fd, 200, "late", 4);
}

static bool serve_one(struct mini_httpd *s, int fd, char *buf, size_t *have)
{
	char method[16], path[512];
	ssize_t hlen = read_header(fd, buf, HDR_MAX, have);
	bool ok, keep;

	(void)s;
	if (hlen < 0 || sscanf(buf, "%15s %511s", method, path) != 2)
		return false;
	keep = !strcasestr(buf, "\r\nconnection: close");
	if (!strcmp(path, "/sum")) {
		ok = route_sum(fd, buf, (size_t)hlen, *have);
		*have = 0; /* the body was consumed (pipelining is not supported) */
		return ok && keep;
	}
	if (!strcmp(path, "/hello"))
		ok = respond(fd, 200, "hello", 5);
	else if (!strcmp(path, "/headers"))
		ok = respond(fd, 200, buf, (size_t)hlen);
	else if (!strncmp(path, "/big/", 5))
		ok = route_big(fd, strtoll(path + 5, NULL, 10));
	else if (!strcmp(path, "/slow"))
		ok = route_slow(fd);
	else if (!strncmp(path, "/status/", 8))
		ok = respond(fd, atoi(path + 8), "status", 6);
	else
		ok = respond(fd, 404, "not found", 9);
	memmove(buf, buf + hlen, *have - (size_t)hlen);
	*have -= (size_t)hlen;
	return ok && keep;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	char *buf = malloc(HDR_MAX);
	size_t have = 0;

	while (buf && !atomic_load(&c->srv->stopping) && serve_one(c->srv, c->fd, buf, &have))
		;
	free(buf);
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct mini_httpd *s = arg;
	int fd;

	while (!atomic_load(&s->stopping)) {
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		atomic_fetch_add(&s->accepted, 1);
		pthread_mutex_lock(&s->lock);
		if (s->n_conns < MAX_CONNS) {
			struct conn *c = &s->conns[s->n_conns];

			c->fd = fd;
			c->srv = s;
			if (!pthread_create(&c->thread, NULL, conn_main, c)) {
				s->n_conns++;
				fd = -1;
			}
		}
		pthread_mutex_unlock(&s->lock);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

struct mini_httpd *mini_httpd_start(const char *unix_path)
{
	struct mini_httpd *s = calloc(1, sizeof(*s));
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	socklen_t len = sizeof(in);

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	if (unix_path) {
		snprintf(s->unix_path, sizeof(s->unix_path), "%s", unix_path);
		snprintf(un.sun_path, sizeof(un.sun_path), "%s", unix_path);
		s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&un, sizeof(un)))
			goto out_fail;
	} else {
		s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&in, sizeof(in)) ||
		    getsockname(s->lfd, (struct sockaddr *)&in, &len))
			goto out_fail;
		s->port = ntohs(in.sin_port);
	}
	if (listen(s->lfd, 64) || pthread_create(&s->accept_thread, NULL, accept_main, s))
		goto out_fail;
	return s;

out_fail:
	if (s->lfd >= 0)
		close(s->lfd);
	free(s);
	return NULL;
}

int mini_httpd_port(const struct mini_httpd *s)
{
	return s->port;
}

int mini_httpd_accepted(const struct mini_httpd *s)
{
	return atomic_load(&s->accepted);
}

void mini_httpd_stop(struct mini_httpd *s)
{
	atomic_store(&s->stopping, true);
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->accept_thread, NULL);
	close(s->lfd);
	for (int i = 0; i < s->n_conns; i++) {
		shutdown(s->conns[i].fd, SHUT_RDWR);
		pthread_join(s->conns[i].thread, NULL);
		close(s->conns[i].fd);
	}
	if (s->unix_path[0])
		unlink(s->unix_path);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
