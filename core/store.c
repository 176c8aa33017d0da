#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mime.h"
#include "store_meta.h"
#include "store_priv.h"

#define COPY_BUF (128 * 1024)

struct ci_store_writer {
	struct ci_store *st;
	EVP_MD_CTX *md;
	int fd;
	int dead_rc;		     /* CI_OK while usable, else the code of the failed write */
	bool new_session;	     /* begin() created the session: drop it again if unused */
	uint64_t max;		     /* 0 = unlimited */
	char tmp[CI_STORE_NAME_BUF]; /* name in tmp/ while the data lives there, else "" */
	struct ci_store_info info;
	char owner[CI_STORE_OWNER_MAX + 1];
};

int ci_store_fail(char *err, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err, CI_ERR_MAX, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Errno to ci_rc: a full disk is a condition of the server, not a bug. */
static int io_rc(int e)
{
	if (e == ENOSPC || e == EDQUOT)
		return CI_E_UNAVAIL;
	if (e == ENOMEM)
		return CI_E_NOMEM;
	return CI_E_INTERNAL;
}

static int io_fail(char *err, const char *what, const char *name, int e)
{
	ci_log(CI_LL_ERROR, "store.io", "op=\"%s\" name=\"%s\" error=\"%s\"", what, name,
	       strerror(e));
	return ci_store_fail(err, io_rc(e), "%s %s: %s", what, name, strerror(e));
}

int64_t ci_store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sync_fd(const struct ci_store *st, int fd)
{
	if (st->opts.no_fsync || !fsync(fd))
		return 0;
	return errno;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int make_dir(int dirfd, const char *name, char *err)
{
	if (mkdirat(dirfd, name, 0700) && errno != EEXIST)
		return io_fail(err, "mkdir", name, errno);
	return CI_OK;
}

int ci_store_open(const char *root, const struct ci_store_opts *opts, struct ci_store **out,
		  char *err)
{
	struct ci_store *st;
	int rc;

	*out = NULL;
	if (!root || !root[0])
		return ci_store_fail(err, CI_E_INVAL, "store root is empty");
	st = calloc(1, sizeof(*st));
	if (!st)
		return ci_store_fail(err, CI_E_NOMEM, "out of memory");
	st->root_fd = st->tmp_fd = st->sess_fd = st->lock_fd = -1;
	if (opts)
		st->opts = *opts;
	if (mkdir(root, 0700) && errno != EEXIST) {
		rc = io_fail(err, "mkdir", root, errno);
		goto out_free;
	}
	st->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->root_fd < 0) {
		rc = io_fail(err, "open", root, errno);
		goto out_free;
	}
	st->lock_fd = openat(st->root_fd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (st->lock_fd < 0) {
		rc = io_fail(err, "open", ".lock", errno);
		goto out_free;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB)) {
		rc = ci_store_fail(err, CI_E_UNAVAIL, "store %s is in use by another process",
				   root);
		goto out_free;
	}
	rc = make_dir(st->root_fd, CI_STORE_TMP_DIR, err);
	if (!rc)
		rc = make_dir(st->root_fd, CI_STORE_SESSIONS_DIR, err);
	if (rc)
		goto out_free;
	st->tmp_fd = openat(st->root_fd, CI_STORE_TMP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	st->sess_fd =
		openat(st->root_fd, CI_STORE_SESSIONS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->tmp_fd < 0 || st->sess_fd < 0) {
		rc = io_fail(err, "open", "tmp/ or sessions/", errno);
		goto out_free;
	}
	rc = ci_sindex_init(&st->idx);
	if (rc) {
		rc = ci_store_fail(err, rc, "out of memory");
		goto out_free;
	}
	if (pthread_rwlock_init(&st->lock, NULL)) {
		ci_sindex_release(&st->idx);
		rc = ci_store_fail(err, CI_E_INTERNAL, "rwlock init failed");
		goto out_free;
	}
	rc = ci_store_recover(st, err);
	if (rc) {
		ci_store_close(st);
		return rc;
	}
	ci_log(CI_LL_INFO, "store.open", "root=\"%s\" sessions=%zu files=%zu bytes=%llu", root,
	       st->idx.nsessions, st->idx.nfiles, (unsigned long long)st->idx.bytes);
	*out = st;
	return CI_OK;

out_free:
	close_fd(&st->tmp_fd);
	close_fd(&st->sess_fd);
	close_fd(&st->lock_fd);
	close_fd(&st->root_fd);
	free(st);
	return rc;
}

void ci_store_close(struct ci_store *st)
{
	if (!st)
		return;
	if (st->inflight)
		ci_log(CI_LL_WARN, "store.close", "inflight=%llu",
		       (unsigned long long)st->inflight);
	ci_sindex_release(&st->idx);
	pthread_rwlock_destroy(&st->lock);
	close_fd(&st->tmp_fd);
	close_fd(&st->sess_fd);
	close_fd(&st->lock_fd); /* drops the flock */
	close_fd(&st->root_fd);
	free(st);
}

int ci_store_session_new(struct ci_store *st, const char *owner, char sid[CI_NANOID_SIZE])
{
	struct ci_ssession *s;

	if (!ci_store_owner_is_valid(owner))
		return CI_E_INVAL;
	pthread_rwlock_wrlock(&st->lock);
	do
		ci_nanoid(sid);
	while (ci_sindex_get(&st->idx, sid));
	s = ci_sindex_add_session(&st->idx, sid, owner, ci_store_now_ns());
	pthread_rwlock_unlock(&st->lock);
	return s ? CI_OK : CI_E_NOMEM;
}

static void copy_opt(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static int check_put(const struct ci_store_put *put, char *err)
{
	const char *why;

	if (!ci_nanoid_is_valid(put->sid))
		return ci_store_fail(err, CI_E_INVAL, "session id is not a 21-char nanoid");
	if (!ci_store_owner_is_valid(put->owner))
		return ci_store_fail(err, CI_E_INVAL, "bad owner");
	why = ci_name_check(put->name);
	if (why)
		return ci_store_fail(err, CI_E_INVAL, "bad file name: %s", why);
	if (!ci_store_kind_is_valid(put->kind))
		return ci_store_fail(err, CI_E_INVAL, "bad kind");
	if (put->resource_id && put->resource_id[0] && !ci_resource_id_is_valid(put->resource_id))
		return ci_store_fail(err, CI_E_INVAL, "bad resource id");
	return CI_OK;
}

/* Take a file slot in the session (creating it), or refuse. Under the write lock. */
static int reserve_slot(struct ci_store *st, struct ci_store_writer *w, char *err)
{
	struct ci_ssession *s = ci_sindex_get(&st->idx, w->info.sid);
	uint32_t max = st->opts.max_files_per_session;

	if (s && strcmp(s->owner, w->owner))
		return ci_store_fail(err, CI_E_NOTFOUND, "unknown session");
	if (s && max && s->nfiles + s->pending >= max)
		return ci_store_fail(err, CI_E_LIMIT, "too many files in session (max %u)", max);
	if (!s) {
		s = ci_sindex_add_session(&st->idx, w->info.sid, w->owner, ci_store_now_ns());
		if (!s)
			return ci_store_fail(err, CI_E_NOMEM, "out of memory");
		w->new_session = true;
	}
	s->pending++;
	st->inflight++;
	return CI_OK;
}

/*
 * Give the slot back. A session this writer created and that stayed empty
 * is dropped, with its directory if a failed commit made one; holding the
 * write lock with pending == 0 means no other commit is using that directory.
 */
static void release_slot(struct ci_store *st, struct ci_store_writer *w)
{
	struct ci_ssession *s;

	pthread_rwlock_wrlock(&st->lock);
	s = ci_sindex_get(&st->idx, w->info.sid);
	if (s) {
		s->pending--;
		if (w->new_session && !s->nfiles && !s->pending) {
			unlinkat(st->sess_fd, s->sid, AT_REMOVEDIR);
			ci_sindex_remove_session(&st->idx, s);
		}
	}
	st->inflight--;
	pthread_rwlock_unlock(&st->lock);
}

static void free_writer(struct ci_store_writer *w)
{
	close_fd(&w->fd);
	if (w->tmp[0])
		unlinkat(w->st->tmp_fd, w->tmp, 0);
	EVP_MD_CTX_free(w->md);
	free(w);
}

int ci_store_begin(struct ci_store *st, const struct ci_store_put *put,
		   struct ci_store_writer **out, char *err)
{
	struct ci_store_writer *w;
	int rc;

	*out = NULL;
	if (!put)
		return ci_store_fail(err, CI_E_INVAL, "nothing to store");
	rc = check_put(put, err);
	if (rc)
		return rc;
	w = calloc(1, sizeof(*w));
	if (!w)
		return ci_store_fail(err, CI_E_NOMEM, "out of memory");
	w->st = st;
	w->fd = -1;
	memcpy(w->info.sid, put->sid, CI_NANOID_SIZE);
	ci_nanoid(w->info.fid);
	copy_opt(w->info.name, sizeof(w->info.name), put->name);
	copy_opt(w->info.content_type, sizeof(w->info.content_type),
		 ci_mime_is_valid(put->content_type) ? put->content_type
						     : ci_mime_for_name(put->name));
	copy_opt(w->info.kind, sizeof(w->info.kind), put->kind);
	copy_opt(w->info.resource_id, sizeof(w->info.resource_id), put->resource_id);
	w->info.flags = put->flags & CI_STORE_F_READ_ONLY;
	copy_opt(w->owner, sizeof(w->owner), put->owner);
	w->max = put->max_size ? put->max_size : st->opts.max_file_size;

	pthread_rwlock_wrlock(&st->lock);
	rc = reserve_slot(st, w, err);
	pthread_rwlock_unlock(&st->lock);
	if (rc) {
		free(w);
		return rc;
	}
	w->md = EVP_MD_CTX_new();
	if (!w->md || !EVP_DigestInit_ex(w->md, EVP_sha256(), NULL)) {
		rc = ci_store_fail(err, CI_E_INTERNAL, "SHA-256 unavailable");
		goto out_release;
	}
	snprintf(w->tmp, sizeof(w->tmp), "w-%s.tmp", w->info.fid);
	w->fd = openat(st->tmp_fd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		rc = io_fail(err, "create", w->tmp, errno);
		w->tmp[0] = '\0';
		goto out_release;
	}
	*out = w;
	return CI_OK;

out_release:
	release_slot(st, w);
	free_writer(w);
	return rc;
}

int ci_store_write(struct ci_store_writer *w, const void *buf, size_t len, char *err)
{
	int e;

	if (w->dead_rc)
		return ci_store_fail(err, w->dead_rc, "write after a failed write");
	if (w->max && len > w->max - w->info.size) {
		w->dead_rc = CI_E_LIMIT;
		return ci_store_fail(err, CI_E_LIMIT, "file size limit exceeded (max %llu bytes)",
				     (unsigned long long)w->max);
	}
	e = write_all(w->fd, buf, len);
	if (e) {
		w->dead_rc = io_rc(e);
		return io_fail(err, "write", w->tmp, e);
	}
	if (!EVP_DigestUpdate(w->md, buf, len)) {
		w->dead_rc = CI_E_INTERNAL;
		return ci_store_fail(err, CI_E_INTERNAL, "SHA-256 update failed");
	}
	w->info.size += len;
	return CI_OK;
}

/* Write info's metadata document into sdir as <fid>.json, through a temp file in tmp/. */
static int write_meta(struct ci_store *st, int sdir, const struct ci_store_info *info,
		      const char *owner, char *err)
{
	char tmp[CI_STORE_NAME_BUF], name[CI_STORE_NAME_BUF];
	char *doc;
	size_t len;
	int fd, e, rc;

	rc = ci_store_meta_encode(info, owner, &doc, &len);
	if (rc)
		return ci_store_fail(err, rc, "cannot encode metadata");
	snprintf(tmp, sizeof(tmp), "m-%s.tmp", info->fid);
	snprintf(name, sizeof(name), "%s" CI_STORE_META_SUFFIX, info->fid);
	fd = openat(st->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(doc);
		return io_fail(err, "create", tmp, errno);
	}
	e = write_all(fd, doc, len);
	free(doc);
	if (!e)
		e = sync_fd(st, fd);
	close(fd);
	if (!e && renameat(st->tmp_fd, tmp, sdir, name))
		e = errno;
	if (e) {
		unlinkat(st->tmp_fd, tmp, 0);
		return io_fail(err, "write metadata", name, e);
	}
	return CI_OK;
}

/* Open sessions/<sid>/, creating it (and making the creation durable) when needed. */
static int open_session_dir(struct ci_store *st, const char *sid, int *dfd, char *err)
{
	if (mkdirat(st->sess_fd, sid, 0700)) {
		if (errno != EEXIST)
			return io_fail(err, "mkdir", sid, errno);
	} else if (sync_fd(st, st->sess_fd)) {
		return io_fail(err, "fsync", CI_STORE_SESSIONS_DIR, errno);
	}
	*dfd = openat(st->sess_fd, sid, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (*dfd < 0)
		return io_fail(err, "open", sid, errno);
	return CI_OK;
}

int ci_store_commit(struct ci_store_writer *w, struct ci_store_info *info, char *err)
{
	struct ci_store *st = w->st;
	char data[CI_STORE_NAME_BUF], meta[CI_STORE_NAME_BUF];
	unsigned char sha[EVP_MAX_MD_SIZE];
	unsigned int shalen = 0;
	bool data_placed = false, meta_placed = false;
	struct ci_ssession *s;
	int sdir = -1, rc, e;

	if (w->dead_rc) {
		rc = ci_store_fail(err, w->dead_rc, "commit after a failed write");
		goto out_abort;
	}
	if (!EVP_DigestFinal_ex(w->md, sha, &shalen) || shalen != 32) {
		rc = ci_store_fail(err, CI_E_INTERNAL, "SHA-256 final failed");
		goto out_abort;
	}
	ci_sha256_to_hex(sha, w->info.sha256);
	e = sync_fd(st, w->fd);
	if (e) {
		rc = io_fail(err, "fsync", w->tmp, e);
		goto out_abort;
	}
	close_fd(&w->fd);
	w->info.created_ns = ci_store_now_ns();

	rc = open_session_dir(st, w->info.sid, &sdir, err);
	if (rc)
		goto out_abort;
	snprintf(data, sizeof(data), "%s" CI_STORE_DATA_SUFFIX, w->info.fid);
	snprintf(meta, sizeof(meta), "%s" CI_STORE_META_SUFFIX, w->info.fid);
	if (renameat(st->tmp_fd, w->tmp, sdir, data)) {
		rc = io_fail(err, "rename", w->tmp, errno);
		goto out_abort;
	}
	w->tmp[0] = '\0';
	data_placed = true;
	rc = write_meta(st, sdir, &w->info, w->owner, err);
	if (rc)
		goto out_abort;
	meta_placed = true;
	e = sync_fd(st, sdir);
	if (e) {
		rc = io_fail(err, "fsync", w->info.sid, e);
		goto out_abort;
	}

	pthread_rwlock_wrlock(&st->lock);
	s = ci_sindex_get(&st->idx, w->info.sid); /* pinned by our pending slot */
	rc = s ? ci_sindex_add_file(&st->idx, s, &w->info) : CI_E_INTERNAL;
	if (!rc) {
		s->pending--;
		s->touched_ns = w->info.created_ns;
		st->inflight--;
	}
	pthread_rwlock_unlock(&st->lock);
	if (rc) {
		ci_store_fail(err, rc, "cannot index the file");
		goto out_abort;
	}
	close(sdir);
	ci_log(CI_LL_DEBUG, "store.commit", "sid=%s fid=%s size=%llu", w->info.sid, w->info.fid,
	       (unsigned long long)w->info.size);
	if (info)
		*info = w->info;
	free_writer(w);
	return CI_OK;

out_abort:
	if (meta_placed)
		unlinkat(sdir, meta, 0);
	if (data_placed)
		unlinkat(sdir, data, 0);
	close_fd(&sdir);
	release_slot(st, w);
	free_writer(w);
	return rc;
}

void ci_store_abort(struct ci_store_writer *w)
{
	if (!w)
		return;
	release_slot(w->st, w);
	free_writer(w);
}

int ci_store_put_fd(struct ci_store *st, const struct ci_store_put *put, int fd,
		    struct ci_store_info *info, char *err)
{
	struct ci_store_writer *w;
	char *buf;
	int rc;

	rc = ci_store_begin(st, put, &w, err);
	if (rc)
		return rc;
	buf = malloc(COPY_BUF);
	if (!buf) {
		ci_store_abort(w);
		return ci_store_fail(err, CI_E_NOMEM, "out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, buf, COPY_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = io_fail(err, "read", "source fd", errno);
			break;
		}
		if (n == 0)
			break;
		rc = ci_store_write(w, buf, (size_t)n, err);
		if (rc)
			break;
	}
	free(buf);
	if (rc) {
		ci_store_abort(w);
		return rc;
	}
	return ci_store_commit(w, info, err);
}
