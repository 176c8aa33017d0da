#include "store_index.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define INITIAL_BUCKETS 64

/* FNV-1a over the id, keyed with a per-process seed so bucket choice is not predictable. */
static size_t hash_sid(const struct ci_sindex *idx, const char *sid)
{
	uint64_t h = 0xcbf29ce484222325ull ^ idx->seed;

	for (const unsigned char *p = (const unsigned char *)sid; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	h ^= h >> 29;
	return (size_t)(h & (idx->nbuckets - 1));
}

int ci_sindex_init(struct ci_sindex *idx)
{
	memset(idx, 0, sizeof(*idx));
	idx->buckets = calloc(INITIAL_BUCKETS, sizeof(*idx->buckets));
	if (!idx->buckets)
		return CI_E_NOMEM;
	idx->nbuckets = INITIAL_BUCKETS;
	if (getrandom(&idx->seed, sizeof(idx->seed), GRND_NONBLOCK) != sizeof(idx->seed))
		idx->seed = (uint64_t)(uintptr_t)idx ^ 0x9e3779b97f4a7c15ull;
	return CI_OK;
}

static void free_session(struct ci_ssession *s)
{
	for (uint32_t i = 0; i < s->nfiles; i++)
		free(s->files[i].strs);
	free(s->files);
	free(s);
}

void ci_sindex_release(struct ci_sindex *idx)
{
	for (size_t b = 0; b < idx->nbuckets; b++) {
		struct ci_ssession *s = idx->buckets[b], *next;

		for (; s; s = next) {
			next = s->next;
			free_session(s);
		}
	}
	free(idx->buckets);
	memset(idx, 0, sizeof(*idx));
}

struct ci_ssession *ci_sindex_get(const struct ci_sindex *idx, const char *sid)
{
	struct ci_ssession *s;

	if (!sid)
		return NULL;
	for (s = idx->buckets[hash_sid(idx, sid)]; s; s = s->next)
		if (!strcmp(s->sid, sid))
			return s;
	return NULL;
}

struct ci_ssession *ci_sindex_get_owned(const struct ci_sindex *idx, const char *sid,
					const char *owner)
{
	struct ci_ssession *s = ci_sindex_get(idx, sid);

	return s && owner && ci_store_owner_matches(s->owner, owner) ? s : NULL;
}

/* Double the table when sessions outnumber buckets; a failed grow just keeps longer chains. */
static void maybe_grow(struct ci_sindex *idx)
{
	struct ci_ssession **old = idx->buckets, **nb;
	size_t oldn = idx->nbuckets;

	if (idx->nsessions < idx->nbuckets)
		return;
	nb = calloc(oldn * 2, sizeof(*nb));
	if (!nb)
		return;
	idx->buckets = nb;
	idx->nbuckets = oldn * 2;
	for (size_t b = 0; b < oldn; b++) {
		struct ci_ssession *s = old[b], *next;

		for (; s; s = next) {
			size_t h = hash_sid(idx, s->sid);

			next = s->next;
			s->next = nb[h];
			nb[h] = s;
		}
	}
	free(old);
}

struct ci_ssession *ci_sindex_add_session(struct ci_sindex *idx, const char *sid, const char *owner,
					  int64_t now_ns)
{
	size_t olen = strlen(owner);
	struct ci_ssession *s = calloc(1, sizeof(*s) + olen + 1);
	size_t h;

	if (!s)
		return NULL;
	memcpy(s->sid, sid, CI_NANOID_LEN);
	memcpy(s->owner, owner, olen + 1);
	s->touched_ns = now_ns;
	maybe_grow(idx);
	h = hash_sid(idx, sid);
	s->next = idx->buckets[h];
	idx->buckets[h] = s;
	idx->nsessions++;
	return s;
}

void ci_sindex_remove_session(struct ci_sindex *idx, struct ci_ssession *s)
{
	struct ci_ssession **pp = &idx->buckets[hash_sid(idx, s->sid)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	for (uint32_t i = 0; i < s->nfiles; i++)
		idx->bytes -= s->files[i].size;
	idx->nfiles -= s->nfiles;
	idx->nsessions--;
	free_session(s);
}

int ci_sindex_add_file(struct ci_sindex *idx, struct ci_ssession *s,
		       const struct ci_store_info *info)
{
	size_t ln = strlen(info->name), lc = strlen(info->content_type);
	size_t lk = strlen(info->kind), lr = strlen(info->resource_id);
	struct ci_sfile *f;
	char *p;

	if (ln + lc + lk + lr + 4 > UINT16_MAX || ci_sha256_from_hex(info->sha256, NULL))
		return CI_E_INVAL;
	if (s->nfiles == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 4;
		struct ci_sfile *nf = realloc(s->files, cap * sizeof(*nf));

		if (!nf)
			return CI_E_NOMEM;
		s->files = nf;
		s->cap = cap;
	}
	p = malloc(ln + lc + lk + lr + 4);
	if (!p)
		return CI_E_NOMEM;
	f = &s->files[s->nfiles];
	memset(f, 0, sizeof(*f));
	memcpy(f->fid, info->fid, CI_NANOID_SIZE);
	ci_sha256_from_hex(info->sha256, f->sha256);
	f->flags = info->flags;
	f->size = info->size;
	f->created_ns = info->created_ns;
	f->strs = p;
	memcpy(p, info->name, ln + 1);
	f->ctype_off = (uint16_t)(ln + 1);
	memcpy(p + f->ctype_off, info->content_type, lc + 1);
	f->kind_off = (uint16_t)(f->ctype_off + lc + 1);
	memcpy(p + f->kind_off, info->kind, lk + 1);
	f->rid_off = (uint16_t)(f->kind_off + lk + 1);
	memcpy(p + f->rid_off, info->resource_id, lr + 1);
	s->nfiles++;
	idx->nfiles++;
	idx->bytes += info->size;
	return CI_OK;
}

struct ci_sfile *ci_sindex_find_file(const struct ci_ssession *s, const char *fid)
{
	if (!fid)
		return NULL;
	for (uint32_t i = 0; i < s->nfiles; i++)
		if (!strcmp(s->files[i].fid, fid))
			return &s->files[i];
	return NULL;
}

void ci_sindex_remove_file(struct ci_sindex *idx, struct ci_ssession *s, struct ci_sfile *f)
{
	size_t i = (size_t)(f - s->files);

	idx->bytes -= f->size;
	idx->nfiles--;
	free(f->strs);
	memmove(f, f + 1, (s->nfiles - i - 1) * sizeof(*f));
	s->nfiles--;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void ci_sindex_file_info(const struct ci_ssession *s, const struct ci_sfile *f,
			 struct ci_store_info *info)
{
	memset(info, 0, sizeof(*info)); /* callers may compare or hash whole structs */
	memcpy(info->sid, s->sid, CI_NANOID_SIZE);
	memcpy(info->fid, f->fid, CI_NANOID_SIZE);
	copy_str(info->name, sizeof(info->name), f->strs);
	copy_str(info->content_type, sizeof(info->content_type), f->strs + f->ctype_off);
	copy_str(info->kind, sizeof(info->kind), f->strs + f->kind_off);
	copy_str(info->resource_id, sizeof(info->resource_id), f->strs + f->rid_off);
	ci_sha256_to_hex(f->sha256, info->sha256);
	info->size = f->size;
	info->created_ns = f->created_ns;
	info->flags = f->flags;
}

struct ci_ssession *ci_sindex_first(const struct ci_sindex *idx, size_t *bucket)
{
	for (*bucket = 0; *bucket < idx->nbuckets; (*bucket)++)
		if (idx->buckets[*bucket])
			return idx->buckets[*bucket];
	return NULL;
}

struct ci_ssession *ci_sindex_next(const struct ci_sindex *idx, const struct ci_ssession *s,
				   size_t *bucket)
{
	if (s->next)
		return s->next;
	for ((*bucket)++; *bucket < idx->nbuckets; (*bucket)++)
		if (idx->buckets[*bucket])
			return idx->buckets[*bucket];
	return NULL;
}

size_t ci_sindex_heap_bytes(const struct ci_sindex *idx)
{
	size_t n = idx->nbuckets * sizeof(*idx->buckets);
	size_t b;

	for (struct ci_ssession *s = ci_sindex_first(idx, &b); s; s = ci_sindex_next(idx, s, &b)) {
		n += sizeof(*s) + strlen(s->owner) + 1 + s->cap * sizeof(*s->files);
		for (uint32_t i = 0; i < s->nfiles; i++) {
			const struct ci_sfile *f = &s->files[i];

			n += (size_t)f->rid_off + strlen(f->strs + f->rid_off) + 1;
		}
	}
	return n;
}

void ci_sha256_to_hex(const uint8_t sha[32], char hex[CI_STORE_SHA_HEX])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[sha[i] >> 4];
		hex[2 * i + 1] = digits[sha[i] & 15];
	}
	hex[64] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* sha may be NULL to only validate. */
int ci_sha256_from_hex(const char *hex, uint8_t sha[32])
{
	for (int i = 0; i < 32; i++) {
		int hi = hexval(hex[2 * i]), lo;

		if (hi < 0)
			return -1;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		if (sha)
			sha[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[64] == '\0' ? 0 : -1;
}

bool ci_store_owner_matches(const char *stored, const char *req)
{
	const char *rs, *ss;

	if (!strcmp(stored, req))
		return true;
	/* A token's principal is one user already: never narrowed, matched exactly. */
	if (!strncmp(req, "jwt:", 4) || !strncmp(stored, "jwt:", 4))
		return false;
	rs = strchr(req, '/');
	ss = strchr(stored, '/');
	if (!rs && ss) /* the principal itself sees its users' files */
		return (size_t)(ss - stored) == strlen(req) && !strncmp(stored, req, strlen(req));
	if (rs && !ss) /* a user sees the principal's own (un-narrowed) files */
		return (size_t)(rs - req) == strlen(stored) &&
		       !strncmp(stored, req, strlen(stored));
	return false; /* two different users */
}
