#include "rate_limit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 256

struct entry {
	struct entry *next;
	int active;	   /* execs running */
	double tokens;	   /* execs allowed right now */
	int64_t refill_ms; /* when tokens were last topped up */
	char principal[];
};

struct ci_limits {
	int concurrent, per_minute;
	pthread_mutex_t lock;
	struct entry *tab[BUCKETS];
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % BUCKETS;
}

struct ci_limits *ci_limits_new(int concurrent, int per_minute)
{
	struct ci_limits *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->concurrent = concurrent;
	l->per_minute = per_minute;
	pthread_mutex_init(&l->lock, NULL);
	return l;
}

void ci_limits_free(struct ci_limits *l)
{
	if (!l)
		return;
	for (int i = 0; i < BUCKETS; i++)
		while (l->tab[i]) {
			struct entry *e = l->tab[i];

			l->tab[i] = e->next;
			free(e);
		}
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* The principal's entry (created full); NULL when out of memory. Lock held. */
static struct entry *entry_get(struct ci_limits *l, const char *principal, int64_t now_ms)
{
	unsigned h = hash(principal);
	struct entry *e;
	size_t n;

	for (e = l->tab[h]; e; e = e->next)
		if (!strcmp(e->principal, principal))
			return e;
	n = strlen(principal);
	e = calloc(1, sizeof(*e) + n + 1);
	if (!e)
		return NULL;
	memcpy(e->principal, principal, n + 1);
	e->tokens = l->per_minute;
	e->refill_ms = now_ms;
	e->next = l->tab[h];
	l->tab[h] = e;
	return e;
}

int ci_limits_exec_begin(struct ci_limits *l, const char *principal, int64_t now_ms)
{
	struct entry *e;
	int wait = 0;

	if (!l || (!l->concurrent && !l->per_minute))
		return 0;
	pthread_mutex_lock(&l->lock);
	e = entry_get(l, principal, now_ms);
	if (!e)
		goto out; /* fail open: a limiter must not take the service down */
	if (l->per_minute) {
		e->tokens += (double)(now_ms - e->refill_ms) * l->per_minute / 60000.0;
		if (e->tokens > l->per_minute)
			e->tokens = l->per_minute;
		e->refill_ms = now_ms;
	}
	if (l->concurrent && e->active >= l->concurrent) {
		wait = 1;
	} else if (l->per_minute && e->tokens < 1.0) {
		wait = (int)((1.0 - e->tokens) * 60.0 / l->per_minute) + 1;
	} else {
		e->active++;
		if (l->per_minute)
			e->tokens -= 1.0;
	}
out:
	pthread_mutex_unlock(&l->lock);
	return wait;
}

void ci_limits_exec_end(struct ci_limits *l, const char *principal)
{
	struct entry *e;

	if (!l || (!l->concurrent && !l->per_minute))
		return;
	pthread_mutex_lock(&l->lock);
	for (e = l->tab[hash(principal)]; e; e = e->next)
		if (!strcmp(e->principal, principal)) {
			if (e->active > 0)
				e->active--;
			break;
		}
	pthread_mutex_unlock(&l->lock);
}
