/* Lookups, deletion and expiry of stored files (writes live in store.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_priv.h"

struct victim {
	char sid[CI_NANOID_SIZE];
	char fid[CI_NANOID_SIZE];
};

/* Find (sid, fid) for owner and copy its info. Caller holds the lock. */
static bool lookup(struct ci_store *st, const char *sid, const char *fid, const char *owner,
		   struct ci_store_info *info)
{
	struct ci_ssession *s = ci_sindex_get_owned(&st->idx, sid, owner);
	struct ci_sfile *f = s ? ci_sindex_find_file(s, fid) : NULL;

	if (f && info)
		ci_sindex_file_info(s, f, info);
	return f != NULL;
}

int ci_store_stat(struct ci_store *st, const char *sid, const char *fid, const char *owner,
		  struct ci_store_info *info)
{
	bool found;

	pthread_rwlock_rdlock(&st->lock);
	found = lookup(st, sid, fid, owner, info);
	pthread_rwlock_unlock(&st->lock);
	return found ? CI_OK : CI_E_NOTFOUND;
}

int ci_store_file_open(struct ci_store *st, const char *sid, const char *fid, const char *owner,
		       int *fd, struct ci_store_info *info)
{
	struct ci_store_info tmp, *in = info ? info : &tmp;
	char path[2 * CI_STORE_NAME_BUF];
	bool found;

	*fd = -1;
	pthread_rwlock_rdlock(&st->lock);
	found = lookup(st, sid, fid, owner, in);
	pthread_rwlock_unlock(&st->lock);
	if (!found)
		return CI_E_NOTFOUND;
	/* The ids come from the index, so the path cannot leave sessions/. */
	snprintf(path, sizeof(path), "%s/%s" CI_STORE_DATA_SUFFIX, in->sid, in->fid);
	*fd = openat(st->sess_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (*fd >= 0)
		return CI_OK;
	if (errno == ENOENT) /* deleted or expired since the lookup */
		return CI_E_NOTFOUND;
	ci_log(CI_LL_ERROR, "store.io", "op=open name=%s error=\"%s\"", path, strerror(errno));
	return errno == EMFILE || errno == ENFILE ? CI_E_UNAVAIL : CI_E_INTERNAL;
}

int ci_store_find(struct ci_store *st, const char *fid, const char *owner,
		  struct ci_store_info *info)
{
	struct ci_ssession *s;
	bool found = false;
	size_t b;

	if (!fid || !owner)
		return CI_E_NOTFOUND;
	pthread_rwlock_rdlock(&st->lock);
	for (s = ci_sindex_first(&st->idx, &b); s && !found; s = ci_sindex_next(&st->idx, s, &b))
		if (ci_store_owner_matches(s->owner, owner))
			found = lookup(st, s->sid, fid, owner, info);
	pthread_rwlock_unlock(&st->lock);
	return found ? CI_OK : CI_E_NOTFOUND;
}

int ci_store_list(struct ci_store *st, const char *sid, const char *owner, ci_store_list_cb cb,
		  void *ctx)
{
	struct ci_store_info *snap = NULL;
	struct ci_ssession *s;
	uint32_t n = 0;

	pthread_rwlock_rdlock(&st->lock);
	s = ci_sindex_get_owned(&st->idx, sid, owner);
	if (!s) {
		pthread_rwlock_unlock(&st->lock);
		return CI_E_NOTFOUND;
	}
	if (s->nfiles) {
		snap = malloc(s->nfiles * sizeof(*snap));
		if (!snap) {
			pthread_rwlock_unlock(&st->lock);
			return CI_E_NOMEM;
		}
		for (n = 0; n < s->nfiles; n++)
			ci_sindex_file_info(s, &s->files[n], &snap[n]);
	}
	pthread_rwlock_unlock(&st->lock);
	for (uint32_t i = 0; i < n; i++)
		if (cb(ctx, &snap[i]))
			break;
	free(snap);
	return CI_OK;
}

int ci_store_count(struct ci_store *st, const char *sid, const char *owner, unsigned *n)
{
	struct ci_ssession *s;

	pthread_rwlock_rdlock(&st->lock);
	s = ci_sindex_get_owned(&st->idx, sid, owner);
	*n = s ? s->nfiles : 0;
	pthread_rwlock_unlock(&st->lock);
	return s ? CI_OK : CI_E_NOTFOUND;
}

/* Metadata first: a crash in between leaves data without metadata, which recovery removes. */
static void unlink_file(struct ci_store *st, const char *sid, const char *fid)
{
	char path[2 * CI_STORE_NAME_BUF];

	snprintf(path, sizeof(path), "%s/%s" CI_STORE_META_SUFFIX, sid, fid);
	if (unlinkat(st->sess_fd, path, 0) && errno != ENOENT)
		ci_log(CI_LL_WARN, "store.io", "op=unlink name=%s error=\"%s\"", path,
		       strerror(errno));
	snprintf(path, sizeof(path), "%s/%s" CI_STORE_DATA_SUFFIX, sid, fid);
	if (unlinkat(st->sess_fd, path, 0) && errno != ENOENT)
		ci_log(CI_LL_WARN, "store.io", "op=unlink name=%s error=\"%s\"", path,
		       strerror(errno));
}

int ci_store_delete(struct ci_store *st, const char *sid, const char *fid, const char *owner)
{
	struct ci_ssession *s;
	struct ci_sfile *f = NULL;
	struct victim v;

	pthread_rwlock_wrlock(&st->lock);
	s = ci_sindex_get_owned(&st->idx, sid, owner);
	if (s)
		f = ci_sindex_find_file(s, fid);
	if (f) {
		memcpy(v.sid, s->sid, sizeof(v.sid));
		memcpy(v.fid, f->fid, sizeof(v.fid));
		ci_sindex_remove_file(&st->idx, s, f);
	}
	pthread_rwlock_unlock(&st->lock);
	if (!f)
		return CI_E_NOTFOUND;
	unlink_file(st, v.sid, v.fid);
	ci_log(CI_LL_INFO, "store.delete", "sid=%s fid=%s", v.sid, v.fid);
	return CI_OK;
}

/* Take expired files out of the index; their names go to *out for unlinking. */
static int collect_expired(struct ci_store *st, int64_t cutoff, struct victim **out, size_t *nout)
{
	struct victim *v = NULL;
	size_t n = 0, cap = 0, b;
	int rc = CI_OK;

	pthread_rwlock_wrlock(&st->lock);
	for (struct ci_ssession *s = ci_sindex_first(&st->idx, &b); s && !rc;
	     s = ci_sindex_next(&st->idx, s, &b)) {
		uint32_t i = 0;

		while (i < s->nfiles) {
			struct ci_sfile *f = &s->files[i];

			if (f->created_ns >= cutoff) {
				i++;
				continue;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct victim *nv = realloc(v, ncap * sizeof(*nv));

				if (!nv) {
					rc = CI_E_NOMEM; /* the rest waits for the next run */
					break;
				}
				v = nv;
				cap = ncap;
			}
			memcpy(v[n].sid, s->sid, CI_NANOID_SIZE);
			memcpy(v[n].fid, f->fid, CI_NANOID_SIZE);
			n++;
			ci_sindex_remove_file(&st->idx, s, f); /* shifts the next file to i */
		}
	}
	pthread_rwlock_unlock(&st->lock);
	*out = v;
	*nout = n;
	return rc;
}

/*
 * Drop empty, idle sessions. rmdir runs under the write lock so that no
 * commit can be creating files in a directory we are removing (a commit
 * holds a pending slot, and pending sessions are skipped).
 */
static unsigned drop_empty_sessions(struct ci_store *st, int64_t cutoff)
{
	struct ci_ssession *s, *next;
	unsigned dropped = 0;
	size_t b;

	pthread_rwlock_wrlock(&st->lock);
	for (s = ci_sindex_first(&st->idx, &b); s; s = next) {
		size_t nb = b;

		next = ci_sindex_next(&st->idx, s, &nb);
		if (!s->nfiles && !s->pending && s->touched_ns < cutoff) {
			if (!unlinkat(st->sess_fd, s->sid, AT_REMOVEDIR) || errno == ENOENT) {
				ci_sindex_remove_session(&st->idx, s);
				dropped++;
			} else {
				ci_log(CI_LL_WARN, "store.io", "op=rmdir name=%s error=\"%s\"",
				       s->sid, strerror(errno));
			}
		}
		b = nb;
	}
	pthread_rwlock_unlock(&st->lock);
	return dropped;
}

int ci_store_expire(struct ci_store *st, int64_t older_than_ns, unsigned *n_removed)
{
	struct victim *v;
	unsigned sessions;
	size_t n;
	int rc;

	rc = collect_expired(st, older_than_ns, &v, &n);
	for (size_t i = 0; i < n; i++)
		unlink_file(st, v[i].sid, v[i].fid);
	free(v);
	sessions = drop_empty_sessions(st, older_than_ns);
	if (n || sessions)
		ci_log(CI_LL_INFO, "store.expire", "files=%zu sessions=%u", n, sessions);
	if (n_removed)
		*n_removed = (unsigned)n;
	return rc;
}

void ci_store_get_stats(struct ci_store *st, struct ci_store_stats *stats)
{
	pthread_rwlock_rdlock(&st->lock);
	stats->sessions = st->idx.nsessions;
	stats->files = st->idx.nfiles;
	stats->bytes = st->idx.bytes;
	stats->inflight = st->inflight;
	pthread_rwlock_unlock(&st->lock);
}

uint64_t ci_store_owner_bytes(struct ci_store *st, const char *owner)
{
	uint64_t bytes = 0;

	/* A scan: quota checks are per upload, not per byte, and sessions are few. */
	pthread_rwlock_rdlock(&st->lock);
	for (size_t b = 0; b < st->idx.nbuckets; b++)
		for (const struct ci_ssession *s = st->idx.buckets[b]; s; s = s->next)
			if (ci_store_owner_matches(s->owner, owner))
				for (uint32_t i = 0; i < s->nfiles; i++)
					bytes += s->files[i].size;
	pthread_rwlock_unlock(&st->lock);
	return bytes;
}
