/*
 * In-memory index of the file store: a hash table of storage sessions keyed
 * by session id, each holding its files in a small array in commit order.
 * Pure data structure: no I/O, no locking (store.c holds the rwlock).
 * Sized for many small sessions: about 100 bytes per session plus 100 per
 * file plus the file's strings.
 */
#ifndef CI_CORE_STORE_INDEX_H
#define CI_CORE_STORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct ci_sfile {
	char fid[CI_NANOID_SIZE];
	uint8_t sha256[32];
	uint32_t flags;
	uint64_t size;
	int64_t created_ns;
	char *strs; /* one allocation: name NUL content_type NUL kind NUL resource_id NUL */
	uint16_t ctype_off, kind_off, rid_off;
};

struct ci_ssession {
	struct ci_ssession *next; /* hash chain */
	char sid[CI_NANOID_SIZE];
	uint32_t nfiles, cap;
	uint32_t pending;   /* writers between begin and commit/abort */
	int64_t touched_ns; /* creation or last commit */
	struct ci_sfile *files;
	char owner[]; /* NUL-terminated */
};

struct ci_sindex {
	struct ci_ssession **buckets;
	size_t nbuckets; /* power of two */
	size_t nsessions;
	size_t nfiles;
	uint64_t bytes;
	uint64_t seed;
};

int ci_sindex_init(struct ci_sindex *idx);
void ci_sindex_release(struct ci_sindex *idx);

/* The session sid, or NULL. */
struct ci_ssession *ci_sindex_get(const struct ci_sindex *idx, const char *sid);
/* The session sid if it belongs to owner, else NULL (the two are not told apart). */
struct ci_ssession *ci_sindex_get_owned(const struct ci_sindex *idx, const char *sid,
					const char *owner);
/* Insert an empty session (sid must be absent). NULL on allocation failure. */
struct ci_ssession *ci_sindex_add_session(struct ci_sindex *idx, const char *sid, const char *owner,
					  int64_t now_ns);
/* Unlink and free a session and its files. */
void ci_sindex_remove_session(struct ci_sindex *idx, struct ci_ssession *s);

/* Append a file described by info (info->sid is ignored). CI_OK or CI_E_NOMEM/CI_E_INVAL. */
int ci_sindex_add_file(struct ci_sindex *idx, struct ci_ssession *s,
		       const struct ci_store_info *info);
struct ci_sfile *ci_sindex_find_file(const struct ci_ssession *s, const char *fid);
/* Remove f (a pointer into s->files) and free its strings. */
void ci_sindex_remove_file(struct ci_sindex *idx, struct ci_ssession *s, struct ci_sfile *f);
/* Fill a caller-owned info from s and f. */
void ci_sindex_file_info(const struct ci_ssession *s, const struct ci_sfile *f,
			 struct ci_store_info *info);

/* Iterate: for (s = ci_sindex_first(idx, &b); s; s = ci_sindex_next(idx, s, &b)). */
struct ci_ssession *ci_sindex_first(const struct ci_sindex *idx, size_t *bucket);
struct ci_ssession *ci_sindex_next(const struct ci_sindex *idx, const struct ci_ssession *s,
				   size_t *bucket);

/* Bytes of heap the index holds (approximate: excludes allocator overhead). */
size_t ci_sindex_heap_bytes(const struct ci_sindex *idx);

/* Hex helpers for the SHA-256 field; from_hex returns -1 on a malformed string. */
void ci_sha256_to_hex(const uint8_t sha[32], char hex[CI_STORE_SHA_HEX]);
int ci_sha256_from_hex(const char *hex, uint8_t sha[32]);

#endif /* CI_CORE_STORE_INDEX_H */
