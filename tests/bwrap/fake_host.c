#include "fake_host.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>

int64_t fake_host_wall_offset;

static char log_buf[1 << 16];
static size_t log_len;
/* The plugin may be called from several threads; cmocka's allocator is not thread-safe. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void fh_log(void *hctx, int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	size_t start = log_len;
	va_list ap;
	int n;

	(void)hctx;
	pthread_mutex_lock(&lock);
	if (log_len + 2 >= sizeof(log_buf)) {
		pthread_mutex_unlock(&lock);
		return;
	}
	n = snprintf(log_buf + log_len, sizeof(log_buf) - log_len, "%s ",
		     level >= 0 && level <= 3 ? names[level] : "?");
	if (n > 0)
		log_len += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(log_buf + log_len, sizeof(log_buf) - log_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		log_len += (size_t)n;
	if (log_len >= sizeof(log_buf) - 1)
		log_len = sizeof(log_buf) - 2;
	log_buf[log_len++] = '\n';
	log_buf[log_len] = '\0';
	if (getenv("FAKE_HOST_VERBOSE"))
		fprintf(stderr, "[plugin] %s", log_buf + start);
	pthread_mutex_unlock(&lock);
}

static const struct fake_cfg *find(void *hctx, const char *key)
{
	const struct fake_cfg *c;

	for (c = hctx; c && c->key; c++)
		if (!strcmp(c->key, key))
			return c;
	return NULL;
}

static int fh_cfg_str(void *hctx, const char *key, const char **out)
{
	const struct fake_cfg *c = find(hctx, key);

	if (!c)
		return CI_E_NOTFOUND;
	if (c->type != FAKE_STR)
		return CI_E_INVAL;
	*out = c->s;
	return CI_OK;
}

static int fh_cfg_int(void *hctx, const char *key, int64_t *out)
{
	const struct fake_cfg *c = find(hctx, key);

	if (!c)
		return CI_E_NOTFOUND;
	if (c->type != FAKE_INT)
		return CI_E_INVAL;
	*out = c->i;
	return CI_OK;
}

static int fh_cfg_bool(void *hctx, const char *key, int *out)
{
	const struct fake_cfg *c = find(hctx, key);

	if (!c)
		return CI_E_NOTFOUND;
	if (c->type != FAKE_BOOL)
		return CI_E_INVAL;
	*out = c->i != 0;
	return CI_OK;
}

static void *fh_alloc(void *hctx, size_t n)
{
	void *p;

	(void)hctx;
	pthread_mutex_lock(&lock);
	p = test_malloc(n);
	pthread_mutex_unlock(&lock);
	return p;
}

static void fh_free(void *hctx, void *p)
{
	(void)hctx;
	pthread_mutex_lock(&lock);
	test_free(p);
	pthread_mutex_unlock(&lock);
}

static int64_t fh_now_ms(void *hctx)
{
	struct timespec ts;

	(void)hctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t fh_wall_unix(void *hctx)
{
	(void)hctx;
	return (int64_t)time(NULL) + fake_host_wall_offset;
}

static int fh_http(void *hctx, const ci_http_req *req, int *status, const ci_sink *body,
		   ci_call *call)
{
	(void)hctx;
	(void)req;
	(void)status;
	(void)body;
	snprintf(call->err, sizeof(call->err), "fake host: no http");
	return CI_E_UNSUPPORTED;
}

void fake_host_init(ci_host *host, const struct fake_cfg *cfg)
{
	memset(host, 0, sizeof(*host));
	host->struct_size = sizeof(*host);
	host->abi_version = CI_ABI_VERSION;
	host->log = fh_log;
	host->cfg_str = fh_cfg_str;
	host->cfg_int = fh_cfg_int;
	host->cfg_bool = fh_cfg_bool;
	host->mem_alloc = fh_alloc;
	host->mem_free = fh_free;
	host->now_ms = fh_now_ms;
	host->wall_unix = fh_wall_unix;
	host->http = fh_http;
	host->hctx = (void *)cfg;
}

const char *fake_host_log(void)
{
	return log_buf;
}

void fake_host_log_clear(void)
{
	log_len = 0;
	log_buf[0] = '\0';
}
