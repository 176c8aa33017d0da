/*
 * Cache of verified tokens: a 4-way set-associative table indexed by the
 * token digest. Bounded memory, O(1) under one mutex, and no lists to
 * maintain; in a full set the entry whose hold time ends first goes.
 * Only verified tokens are inserted, so nobody can aim entries at a set
 * without a valid signature.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_priv.h"

#define WAYS 4

struct cache_entry {
	unsigned char digest[CI_JWT_DIGEST_LEN];
	int64_t until; /* hit only while now < until; 0 = empty slot */
	struct ci_jwt_claims claims;
};

struct ci_jwt_cache {
	pthread_mutex_t lock;
	size_t n_sets;
	uint64_t hits, misses, evictions;
	size_t used;
	struct cache_entry *e; /* n_sets * WAYS */
};

struct ci_jwt_cache *ci_jwt_cache_new(size_t entries)
{
	struct ci_jwt_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->n_sets = (entries + WAYS - 1) / WAYS;
	c->e = calloc(c->n_sets * WAYS, sizeof(*c->e));
	if (!c->e || pthread_mutex_init(&c->lock, NULL)) {
		free(c->e);
		free(c);
		return NULL;
	}
	return c;
}

void ci_jwt_cache_free(struct ci_jwt_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->e);
	free(c);
}

static struct cache_entry *set_of(struct ci_jwt_cache *c, const unsigned char *digest)
{
	uint64_t h;

	/* The digest is uniform already; any 8 bytes make a fine index. */
	memcpy(&h, digest, sizeof(h));
	return &c->e[(h % c->n_sets) * WAYS];
}

bool ci_jwt_cache_get(struct ci_jwt_cache *c, const unsigned char *digest, int64_t now,
		      struct ci_jwt_claims *out)
{
	struct cache_entry *set;
	bool hit = false;

	pthread_mutex_lock(&c->lock);
	set = set_of(c, digest);
	for (int w = 0; w < WAYS; w++) {
		if (set[w].until && now < set[w].until &&
		    !memcmp(set[w].digest, digest, CI_JWT_DIGEST_LEN)) {
			*out = set[w].claims;
			hit = true;
			break;
		}
	}
	if (hit)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void ci_jwt_cache_put(struct ci_jwt_cache *c, const unsigned char *digest, int64_t until,
		      const struct ci_jwt_claims *claims)
{
	struct cache_entry *set, *victim;

	if (until <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	set = set_of(c, digest);
	victim = &set[0];
	for (int w = 0; w < WAYS; w++) {
		/* The same token again (two threads raced): refresh in place. */
		if (set[w].until && !memcmp(set[w].digest, digest, CI_JWT_DIGEST_LEN)) {
			victim = &set[w];
			break;
		}
		if (set[w].until < victim->until)
			victim = &set[w];
	}
	if (!victim->until)
		c->used++;
	else if (memcmp(victim->digest, digest, CI_JWT_DIGEST_LEN))
		c->evictions++;
	memcpy(victim->digest, digest, CI_JWT_DIGEST_LEN);
	victim->until = until;
	victim->claims = *claims;
	pthread_mutex_unlock(&c->lock);
}

void ci_jwt_cache_stats(struct ci_jwt_cache *c, struct ci_jwt_cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	st->hits = c->hits;
	st->misses = c->misses;
	st->evictions = c->evictions;
	st->entries = c->used;
	st->capacity = c->n_sets * WAYS;
	pthread_mutex_unlock(&c->lock);
}
