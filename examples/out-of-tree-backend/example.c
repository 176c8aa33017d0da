/*
 * ci-backend-example: the smallest complete skeleton of a backend plugin.
 *
 * Sandboxes here are only entries in a table: create, destroy and sweep work
 * (owner labels and creation times included), the data and exec operations
 * answer CI_E_UNSUPPORTED. Replace those with calls to your sandbox system.
 * plugins/fake in the ci-server tree is a complete backend to read next.
 *
 * Config (backends.example in ci.conf): max_sandboxes (integer, default 64).
 */
#include <ci/backend.h>
#include <ci/backend_util.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef CI_BACKEND_VERSION
#define CI_BACKEND_VERSION "0.0.0"
#endif

struct box {
	char id[32];
	char owner[128];
	int64_t created_unix;
	int used;
};

struct ci_be {
	const ci_host *host;
	pthread_mutex_t lock; /* operations run concurrently on host threads */
	unsigned next;
	int64_t max;
	struct box *boxes; /* max entries, from host->mem_alloc */
};

static int ex_init(const ci_host *host, ci_be **out, ci_call *call)
{
	struct ci_be *be;
	int64_t max = 64;
	int rc;

	rc = host->cfg_int(host->hctx, "max_sandboxes", &max);
	if (rc == CI_E_INVAL || max < 1 || max > 100000)
		return ci_fail(call, CI_E_INVAL, "backends.example.max_sandboxes: need 1..100000");
	be = host->mem_alloc(host->hctx, sizeof(*be));
	if (!be)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	be->boxes = host->mem_alloc(host->hctx, sizeof(*be->boxes) * (size_t)max);
	if (!be->boxes) {
		host->mem_free(host->hctx, be);
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	}
	memset(be->boxes, 0, sizeof(*be->boxes) * (size_t)max);
	be->host = host;
	be->max = max;
	be->next = 1;
	pthread_mutex_init(&be->lock, NULL);
	host->log(host->hctx, CI_LOG_INFO, "example.init max_sandboxes=%lld", (long long)max);
	*out = be;
	return CI_OK;
}

static void ex_fini(ci_be *be)
{
	const ci_host *h = be->host;

	pthread_mutex_destroy(&be->lock);
	h->mem_free(h->hctx, be->boxes);
	h->mem_free(h->hctx, be);
}

/* The slot of a live sandbox; call with the lock held. */
static struct box *find(ci_be *be, const char *id)
{
	for (int64_t i = 0; id && i < be->max; i++)
		if (be->boxes[i].used && !strcmp(be->boxes[i].id, id))
			return &be->boxes[i];
	return NULL;
}

static int ex_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call)
{
	struct box *b = NULL;

	pthread_mutex_lock(&be->lock);
	for (int64_t i = 0; i < be->max && !b; i++)
		if (!be->boxes[i].used)
			b = &be->boxes[i];
	if (!b) {
		pthread_mutex_unlock(&be->lock);
		return ci_fail(call, CI_E_LIMIT, "all %lld sandboxes in use", (long long)be->max);
	}
	b->used = 1;
	snprintf(b->id, sizeof(b->id), "ex%u", be->next++);
	snprintf(b->owner, sizeof(b->owner), "%s", spec->owner ? spec->owner : "");
	b->created_unix = be->host->wall_unix(be->host->hctx);
	snprintf(id, CI_ID_MAX, "%s", b->id);
	pthread_mutex_unlock(&be->lock);
	return CI_OK;
}

static int ex_destroy(ci_be *be, const char *id, ci_call *call)
{
	struct box *b;

	pthread_mutex_lock(&be->lock);
	b = find(be, id);
	if (b)
		b->used = 0;
	pthread_mutex_unlock(&be->lock);
	return b ? CI_OK : ci_fail(call, CI_E_NOTFOUND, "no sandbox '%.64s'", id ? id : "");
}

static int ex_sweep(ci_be *be, const char *owner, int64_t older_than_unix, unsigned *n_removed,
		    ci_call *call)
{
	(void)call;
	*n_removed = 0;
	pthread_mutex_lock(&be->lock);
	for (int64_t i = 0; i < be->max; i++) {
		struct box *b = &be->boxes[i];

		if (b->used && !strcmp(b->owner, owner) && b->created_unix < older_than_unix) {
			b->used = 0;
			(*n_removed)++;
		}
	}
	pthread_mutex_unlock(&be->lock);
	return CI_OK;
}

/* Unknown ids are CI_E_NOTFOUND on every operation, supported or not. */
static int unsupported(ci_be *be, const char *id, const char *op, ci_call *call)
{
	int known;

	pthread_mutex_lock(&be->lock);
	known = find(be, id) != NULL;
	pthread_mutex_unlock(&be->lock);
	if (!known)
		return ci_fail(call, CI_E_NOTFOUND, "no sandbox '%.64s'", id ? id : "");
	return ci_fail(call, CI_E_UNSUPPORTED, "example backend: %s is not implemented", op);
}

static int ex_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
		   ci_call *call)
{
	(void)spec;
	(void)res;
	return unsupported(be, id, "exec", call);
}

static int ex_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
		  ci_call *call)
{
	(void)path;
	(void)src;
	(void)mode;
	return unsupported(be, id, "put", call);
}

static int ex_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call)
{
	(void)path;
	(void)out;
	return unsupported(be, id, "get", call);
}

static int ex_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
		   ci_call *call)
{
	(void)dir;
	(void)cb;
	(void)ctx;
	return unsupported(be, id, "list", call);
}

static const ci_backend example_backend = {
	.abi_version = CI_ABI_VERSION,
	.struct_size = sizeof(ci_backend),
	.name = "example", /* must equal the file stem: ci-backend-example.so */
	.version = CI_BACKEND_VERSION,
	.caps = 0,
	.init = ex_init,
	.fini = ex_fini,
	.create = ex_create,
	.exec = ex_exec,
	.put = ex_put,
	.get = ex_get,
	.list = ex_list,
	.destroy = ex_destroy,
	.sweep = ex_sweep,
};

/* The only exported symbol. Declared through the typedef so the compiler checks it. */
CI_EXPORT ci_entry_fn ci_backend_v1;

const ci_backend *ci_backend_v1(uint32_t host_abi_version)
{
	if (host_abi_version >> 16 != CI_ABI_MAJOR)
		return NULL; /* another major: refuse rather than misbehave */
	return &example_backend;
}
