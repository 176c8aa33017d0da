/*
 * Warm pool: per runtime, N containers created and started ahead of time by
 * a plugin-owned thread, so create() only has to hand one out. Pooled
 * containers carry the same labels as any other (plus ci.pool=1) and are
 * swept like any other after a crash. One is handed to exactly one sandbox
 * (removed from the pool under the lock) and destroyed with it; it is never
 * returned to the pool. Entries older than pool_max_age_s are replaced, so a
 * handed-out container is young by the core's TTL clock too.
 *
 * The owner label is only known once the core calls create() or sweep();
 * the pool starts filling then.
 *
 * Also here: the env of pooled containers. A container's env is fixed at
 * create time, before the sandbox's env is known, so the plugin keeps it
 * and adds it to every exec in that sandbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ci/backend_util.h"
#include "engine.h"

#define POOL_CREATE_MS	60000
#define POOL_DELETE_MS	10000
#define POOL_BACKOFF_MS 30000

/* Runtimes whose pool.<runtime> key is looked up. */
static const char *const pool_runtimes[] = {
	"python", "node", "javascript", "typescript", "bash", "gcc",	 "c", "cpp",
	"java",	  "php",  "rust",	"go",	      "d",    "fortran", "r", NULL,
};

struct pool_slot {
	char id[CI_ID_MAX];
	int64_t born_ms;
};

struct pool_rt {
	char runtime[64];
	char image[256];
	int target;
	struct pool_slot *slots;
	int n;
	int failures;
	int64_t next_try_ms;
};

struct eng_pool {
	pthread_t th;
	bool started, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pool_rt *rts;
	int nrt;
	char *owner;
};

struct env_ent {
	struct env_ent *next;
	char id[CI_ID_MAX];
	char **env;
};

struct eng_envtab {
	pthread_mutex_t mu;
	struct env_ent *head;
};

static int64_t now_ms(struct ci_be *be)
{
	return be->host->now_ms(be->host->hctx);
}

static ci_call mk_call(struct ci_be *be, int64_t ms)
{
	ci_call c = {.struct_size = sizeof(ci_call), .request_id = "pool"};

	c.deadline_ms = now_ms(be) + ms;
	return c;
}

/* Drop slots older than the max age; called with the lock held. */
static bool pick_expired(struct ci_be *be, struct eng_pool *p, char id[CI_ID_MAX])
{
	int64_t limit = now_ms(be) - be->conf.pool_max_age_s * 1000;
	int i, k;

	for (i = 0; i < p->nrt; i++) {
		struct pool_rt *rt = &p->rts[i];

		for (k = 0; k < rt->n; k++) {
			if (rt->slots[k].born_ms >= limit)
				continue;
			memcpy(id, rt->slots[k].id, CI_ID_MAX);
			rt->slots[k] = rt->slots[--rt->n];
			return true;
		}
	}
	return false;
}

static void *pool_main(void *arg)
{
	struct ci_be *be = arg;
	struct eng_pool *p = be->pool;
	struct eng_limits l;
	char id[CI_ID_MAX], owner[CI_ERR_MAX];
	ci_call c;
	int i, rc;

	eng_limits_from_spec(&be->conf, NULL, &l);
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		struct pool_rt *rt = NULL;
		int64_t now = now_ms(be);

		if (p->owner && pick_expired(be, p, id)) {
			pthread_mutex_unlock(&p->mu);
			c = mk_call(be, POOL_DELETE_MS);
			eng_container_delete(be, id, &c);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		for (i = 0; p->owner && i < p->nrt; i++) {
			if (p->rts[i].n < p->rts[i].target && now >= p->rts[i].next_try_ms) {
				rt = &p->rts[i];
				break;
			}
		}
		if (!rt) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&p->cv, &p->mu, &ts);
			continue;
		}
		snprintf(owner, sizeof(owner), "%s", p->owner);
		pthread_mutex_unlock(&p->mu);

		c = mk_call(be, POOL_CREATE_MS);
		rc = eng_ready(be, &c);
		if (rc == CI_OK)
			rc = eng_container_new(be, rt->image, rt->runtime, owner, NULL, NULL, &l,
					       true, id, &c);

		pthread_mutex_lock(&p->mu);
		if (rc == CI_OK && !p->stop) {
			rt->slots[rt->n].born_ms = now_ms(be);
			memcpy(rt->slots[rt->n].id, id, CI_ID_MAX);
			rt->n++;
			rt->failures = 0;
		} else if (rc == CI_OK) {
			/* fini came while we created: do not leak it. */
			pthread_mutex_unlock(&p->mu);
			c = mk_call(be, POOL_DELETE_MS);
			eng_container_delete(be, id, &c);
			pthread_mutex_lock(&p->mu);
		} else {
			int64_t wait = 500LL << (rt->failures < 6 ? rt->failures : 6);

			rt->failures++;
			rt->next_try_ms =
				now_ms(be) + (wait < POOL_BACKOFF_MS ? wait : POOL_BACKOFF_MS);
			be->host->log(be->host->hctx, CI_LOG_WARN, "%s pool: %s: %s",
				      be->prof->name, rt->runtime, c.err);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int eng_pool_start(struct ci_be *be)
{
	struct eng_pool *p;
	ci_call c = {.struct_size = sizeof(ci_call), .request_id = "init"};
	char key[96];
	int64_t n;
	int i, total = 0;

	p = calloc(1, sizeof(*p));
	if (!p)
		return CI_E_NOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	be->pool = p;
	for (i = 0; pool_runtimes[i]; i++) {
		struct pool_rt *rt, *nr;

		snprintf(key, sizeof(key), "pool.%s", pool_runtimes[i]);
		if (be->host->cfg_int(be->host->hctx, key, &n) != CI_OK || n <= 0)
			continue;
		if (n > 64)
			n = 64;
		nr = realloc(p->rts, sizeof(*p->rts) * (size_t)(p->nrt + 1));
		if (!nr)
			return CI_E_NOMEM;
		p->rts = nr;
		rt = &p->rts[p->nrt];
		memset(rt, 0, sizeof(*rt));
		snprintf(rt->runtime, sizeof(rt->runtime), "%s", pool_runtimes[i]);
		if (eng_image_for(be, rt->runtime, NULL, rt->image, sizeof(rt->image), &c))
			continue;
		rt->target = (int)n;
		rt->slots = calloc((size_t)n, sizeof(*rt->slots));
		if (!rt->slots)
			return CI_E_NOMEM;
		p->nrt++;
		total += (int)n;
		be->host->log(be->host->hctx, CI_LOG_INFO, "%s pool: %s x%d (%s)", be->prof->name,
			      rt->runtime, rt->target, rt->image);
	}
	if (!total)
		return CI_OK;
	if (pthread_create(&p->th, NULL, pool_main, be))
		return CI_E_INTERNAL;
	p->started = true;
	return CI_OK;
}

void eng_pool_stop(struct ci_be *be)
{
	struct eng_pool *p = be->pool;
	ci_call c;
	int i, k;

	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->th, NULL);
	}
	/* Pooled containers never became sandboxes: nobody else will remove them. */
	for (i = 0; i < p->nrt; i++) {
		for (k = 0; k < p->rts[i].n; k++) {
			c = mk_call(be, POOL_DELETE_MS);
			eng_container_delete(be, p->rts[i].slots[k].id, &c);
		}
		free(p->rts[i].slots);
	}
	free(p->rts);
	free(p->owner);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
	be->pool = NULL;
}

void eng_pool_owner(struct ci_be *be, const char *owner)
{
	struct eng_pool *p = be->pool;

	if (!p || !p->started || !owner || !owner[0])
		return;
	pthread_mutex_lock(&p->mu);
	if (!p->owner) {
		p->owner = strdup(owner);
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
}

/* "ci-sandbox-python", "ci-sandbox-python:latest", "localhost/..." are one image. */
static bool same_image(const char *a, const char *b)
{
	static const char *const prefixes[] = {"localhost/", "docker.io/library/", NULL};
	size_t la, lb;

	for (int i = 0; prefixes[i]; i++) {
		size_t n = strlen(prefixes[i]);

		if (!strncmp(a, prefixes[i], n))
			a += n;
		if (!strncmp(b, prefixes[i], n))
			b += n;
	}
	la = strlen(a);
	lb = strlen(b);
	if (la > 7 && !strcmp(a + la - 7, ":latest"))
		la -= 7;
	if (lb > 7 && !strcmp(b + lb - 7, ":latest"))
		lb -= 7;
	return la == lb && !strncmp(a, b, la);
}

int eng_pool_take(struct ci_be *be, const char *runtime, const char *image, const char *owner,
		  char id[CI_ID_MAX])
{
	struct eng_pool *p = be->pool;
	int i, rc = CI_E_NOTFOUND;

	if (!p || !p->started || !runtime)
		return CI_E_NOTFOUND;
	pthread_mutex_lock(&p->mu);
	for (i = 0; p->owner && owner && strcmp(p->owner, owner) == 0 && i < p->nrt; i++) {
		struct pool_rt *rt = &p->rts[i];

		if (strcmp(rt->runtime, runtime) != 0 || (image && !same_image(rt->image, image)))
			continue;
		if (rt->n == 0)
			break;
		/* The newest one: furthest from its max age. */
		memcpy(id, rt->slots[--rt->n].id, CI_ID_MAX);
		/*
		 * Refill a little later: a container create+start competes
		 * for the engine and the CPUs with the new sandbox's first
		 * exec (measured: +30 ms on 2 cores).
		 */
		rt->next_try_ms = now_ms(be) + be->conf.pool_refill_delay_ms;
		pthread_cond_broadcast(&p->cv);
		rc = CI_OK;
		break;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

bool eng_pool_holds(struct ci_be *be, const char *id)
{
	struct eng_pool *p = be->pool;
	bool found = false;
	int i, k;

	if (!p)
		return false;
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->nrt && !found; i++)
		for (k = 0; k < p->rts[i].n && !found; k++)
			found = strcmp(p->rts[i].slots[k].id, id) == 0;
	pthread_mutex_unlock(&p->mu);
	return found;
}

static char **env_dup(const char *const *env)
{
	size_t n = 0, i;
	char **out;

	while (env && env[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		out[i] = strdup(env[i]);
		if (!out[i]) {
			eng_cmd_free(out);
			return NULL;
		}
	}
	return out;
}

static struct eng_envtab *envtab(struct ci_be *be)
{
	return be->envs;
}

int eng_envtab_set(struct ci_be *be, const char *id, const char *const *env)
{
	struct eng_envtab *t = envtab(be);
	struct env_ent *e;

	if (!env || !env[0])
		return CI_OK;
	e = calloc(1, sizeof(*e));
	if (!e)
		return CI_E_NOMEM;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->env = env_dup(env);
	if (!e->env) {
		free(e);
		return CI_E_NOMEM;
	}
	pthread_mutex_lock(&t->mu);
	e->next = t->head;
	t->head = e;
	pthread_mutex_unlock(&t->mu);
	return CI_OK;
}

char **eng_envtab_get(struct ci_be *be, const char *id)
{
	struct eng_envtab *t = envtab(be);
	struct env_ent *e;
	char **out = NULL;

	pthread_mutex_lock(&t->mu);
	for (e = t->head; e; e = e->next)
		if (strcmp(e->id, id) == 0) {
			out = env_dup((const char *const *)e->env);
			break;
		}
	pthread_mutex_unlock(&t->mu);
	return out;
}

void eng_envtab_drop(struct ci_be *be, const char *id)
{
	struct eng_envtab *t = envtab(be);
	struct env_ent **pp, *e;

	pthread_mutex_lock(&t->mu);
	for (pp = &t->head; (e = *pp); pp = &e->next) {
		if (strcmp(e->id, id) == 0) {
			*pp = e->next;
			eng_cmd_free(e->env);
			free(e);
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

int eng_envtab_new(struct ci_be *be)
{
	be->envs = calloc(1, sizeof(*be->envs));
	if (!be->envs)
		return CI_E_NOMEM;
	pthread_mutex_init(&be->envs->mu, NULL);
	return CI_OK;
}

void eng_envtab_free(struct ci_be *be)
{
	struct env_ent *e, *next;

	if (!be->envs)
		return;
	for (e = be->envs->head; e; e = next) {
		next = e->next;
		eng_cmd_free(e->env);
		free(e);
	}
	pthread_mutex_destroy(&be->envs->mu);
	free(be->envs);
	be->envs = NULL;
}
