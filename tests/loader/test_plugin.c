/*
 * Test plugins for the loader, one source built once per variant:
 * PLUGIN_NAME is the file stem, and exactly one VARIANT_* picks the defect.
 *
 *   VARIANT_GOOD      valid; exec reports how many execs ran at once
 *   VARIANT_SERIAL    the same with CI_CAP_SERIAL
 *   VARIANT_MAJOR     abi_version of major 2
 *   VARIANT_MINOR     abi_version one minor newer than the host
 *   VARIANT_SIZE      struct_size below CI_BACKEND_MIN_SIZE
 *   VARIANT_NAME      descriptor name differs from the file stem
 *   VARIANT_VERSION   empty version
 *   VARIANT_NOSYM     exports ci_backend_v2 instead of ci_backend_v1
 *   VARIANT_NULL_OP   list is NULL
 *   VARIANT_REFUSE    the entry returns NULL
 *   VARIANT_INIT      init fails (and fini aborts if the host calls it)
 *   VARIANT_LEAK      fini forgets the host memory init took
 *   VARIANT_WILD      operations return out-of-range codes and unterminated strings
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ci/backend.h"
#include "ci/backend_util.h"

struct ci_be {
	const ci_host *host;
	char *greeting; /* host memory: the leak check watches it */
};

static __attribute__((unused)) atomic_int running, most;

static int t_init(const ci_host *host, ci_be **out, ci_call *call)
{
	const char *greeting = "none";
	struct ci_be *be;

#ifdef VARIANT_INIT
	(void)host;
	(void)out;
	return ci_fail(call, CI_E_UNAVAIL, "daemon at /nonexistent.sock is down");
#endif
	be = host->mem_alloc(host->hctx, sizeof(*be));
	if (!be)
		return ci_fail(call, CI_E_NOMEM, "no memory");
	be->host = host;
	host->cfg_str(host->hctx, "greeting", &greeting);
	be->greeting = host->mem_alloc(host->hctx, strlen(greeting) + 1);
	if (!be->greeting)
		return ci_fail(call, CI_E_NOMEM, "no memory");
	strcpy(be->greeting, greeting);
	host->log(host->hctx, CI_LOG_INFO, "test.init greeting=%s", be->greeting);
	*out = be;
	return CI_OK;
}

static void t_fini(ci_be *be)
{
#ifdef VARIANT_INIT
	(void)be;
	abort(); /* init failed: the host must not call fini */
#else
	const ci_host *h = be->host;

#ifndef VARIANT_LEAK
	h->mem_free(h->hctx, be->greeting);
#endif
	h->mem_free(h->hctx, be);
#endif
}

static int t_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call)
{
	(void)be;
	(void)spec;
	(void)call;
#ifdef VARIANT_WILD
	memset(id, 'x', CI_ID_MAX); /* no NUL */
#else
	strcpy(id, "box1");
#endif
	return CI_OK;
}

static int t_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
		  ci_call *call)
{
	struct timespec ts = {0, 50 * 1000 * 1000};
	int now, seen;

	(void)be;
	(void)id;
	(void)spec;
	(void)call;
#ifdef VARIANT_WILD
	(void)res;
	(void)ts;
	(void)now;
	(void)seen;
	return 42;
#else
	now = atomic_fetch_add(&running, 1) + 1;
	seen = atomic_load(&most);
	while (now > seen && !atomic_compare_exchange_weak(&most, &seen, now))
		;
	nanosleep(&ts, NULL);
	atomic_fetch_sub(&running, 1);
	res->exit_code = atomic_load(&most);
	return CI_OK;
#endif
}

static int t_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
		 ci_call *call)
{
	(void)be;
	(void)id;
	(void)path;
	(void)src;
	(void)mode;
	(void)call;
#ifdef VARIANT_WILD
	return -1;
#else
	return CI_OK;
#endif
}

static int t_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call)
{
	(void)be;
	(void)id;
	(void)path;
	(void)out;
#ifdef VARIANT_WILD
	memset(call->err, 'e', sizeof(call->err)); /* no NUL */
	return CI_E_BACKEND;
#else
	(void)call;
	return CI_OK;
#endif
}

/* unused in the NULL_OP variant */
static __attribute__((unused)) int t_list(ci_be *be, const char *id, const char *dir,
					  ci_entry_cb cb, void *ctx, ci_call *call)
{
	(void)be;
	(void)id;
	(void)dir;
	(void)cb;
	(void)ctx;
	(void)call;
#ifdef VARIANT_WILD
	return CI_E_NOTFOUND; /* and no message: the host writes one */
#else
	return CI_OK;
#endif
}

static int t_destroy(ci_be *be, const char *id, ci_call *call)
{
	(void)be;
	(void)call;
#ifdef VARIANT_WILD
	(void)id;
	return CI_RC_COUNT;
#else
	return strcmp(id, "box1") ? ci_fail(call, CI_E_NOTFOUND, "no sandbox %s", id) : CI_OK;
#endif
}

static int t_sweep(ci_be *be, const char *owner, int64_t older_than_unix, unsigned *n_removed,
		   ci_call *call)
{
	(void)be;
	(void)owner;
	(void)older_than_unix;
	(void)call;
	*n_removed = 3;
	return CI_OK;
}

static const ci_backend desc = {
#if defined(VARIANT_MAJOR)
	.abi_version = (uint32_t)(CI_ABI_MAJOR + 1) << 16,
#elif defined(VARIANT_MINOR)
	.abi_version = CI_ABI_VERSION + 1,
#else
	.abi_version = CI_ABI_VERSION,
#endif
#ifdef VARIANT_SIZE
	.struct_size = CI_BACKEND_MIN_SIZE - sizeof(void *),
#else
	.struct_size = sizeof(ci_backend),
#endif
#ifdef VARIANT_NAME
	.name = "someone_else",
#else
	.name = PLUGIN_NAME,
#endif
#ifdef VARIANT_VERSION
	.version = "",
#else
	.version = "1.2.3",
#endif
#ifdef VARIANT_SERIAL
	.caps = CI_CAP_SERIAL,
#endif
	.init = t_init,
	.fini = t_fini,
	.create = t_create,
	.exec = t_exec,
	.put = t_put,
	.get = t_get,
#ifndef VARIANT_NULL_OP
	.list = t_list,
#endif
	.destroy = t_destroy,
	.sweep = t_sweep,
};

#ifdef VARIANT_NOSYM
#define ENTRY ci_backend_v2
#else
#define ENTRY ci_backend_v1
#endif

CI_EXPORT ci_entry_fn ENTRY;

const ci_backend *ENTRY(uint32_t host_abi_version)
{
#ifdef VARIANT_REFUSE
	(void)host_abi_version;
	(void)desc;
	return NULL;
#else
	return host_abi_version >> 16 == CI_ABI_MAJOR ? &desc : NULL;
#endif
}
