/*
 * put/get/list: plain file operations on the sandbox's data directory,
 * which sandboxed code controls completely. Every path is walked one
 * component at a time from an fd of data/ with O_NOFOLLOW (and O_DIRECTORY
 * for the intermediate ones), "." and ".." are refused up front, so a
 * symlink or a rename race planted by the program can never take us out of
 * data/: at worst the operation fails.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bwrap.h"
#include "ci/backend_util.h"

#define CHUNK	   65536
#define LIST_DEPTH 64 /* deeper directories are not descended into */
#define RM_DEPTH   32 /* deeper directories are moved up, then removed */
#define PATH_LEN   4096

int bwrap_errno_rc(int err)
{
	switch (err) {
	case ENOENT:
		return CI_E_NOTFOUND;
	case ELOOP:
	case ENOTDIR:
	case EISDIR:
	case ENAMETOOLONG:
	case EINVAL:
		return CI_E_INVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
	case EMFILE:
	case ENFILE:
		return CI_E_LIMIT;
	case ENOMEM:
		return CI_E_NOMEM;
	case EEXIST:
		return CI_E_EXISTS;
	default:
		return CI_E_INTERNAL;
	}
}

static int fs_fail(ci_call *call, int err, const char *what, const char *path)
{
	if (err == ELOOP)
		return ci_fail(call, CI_E_INVAL, "%s %s: a path component is a symlink", what,
			       path);
	return ci_fail(call, bwrap_errno_rc(err), "%s %s: %s", what, path, strerror(err));
}

/*
 * "/mnt/data/a//b/" -> "a/b" in out ("" for /mnt/data itself). Refuses paths
 * outside /mnt/data and "." or ".." components.
 */
static int rel_path(const char *path, char *out, size_t out_len, ci_call *call)
{
	size_t plen = strlen(BWRAP_DATA), n = 0, len;
	const char *p, *end;

	if (!path || strncmp(path, BWRAP_DATA, plen) != 0 || (path[plen] && path[plen] != '/'))
		return ci_fail(call, CI_E_INVAL, "path must be below %s", BWRAP_DATA);
	for (p = path + plen; *p; p = end) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchrnul(p, '/');
		len = (size_t)(end - p);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return ci_fail(call, CI_E_INVAL, "path may not contain . or ..");
		if (n + len + 2 > out_len)
			return ci_fail(call, CI_E_INVAL, "path too long");
		if (n)
			out[n++] = '/';
		memcpy(out + n, p, len);
		n += len;
	}
	out[n] = '\0';
	return CI_OK;
}

static int open_data(ci_be *be, const char *id, int *fd, ci_call *call)
{
	char path[PATH_LEN];

	snprintf(path, sizeof(path), "%s/%s/data", be->root, id);
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd >= 0)
		return CI_OK;
	if (errno == ENOENT || errno == ENOTDIR)
		return ci_fail(call, CI_E_NOTFOUND, "no such sandbox");
	return ci_fail(call, CI_E_INTERNAL, "open %s: %s", path, strerror(errno));
}

/*
 * Open the directory holding the last component of rel (modified in place;
 * *leaf points at that component). With mk, missing directories are made
 * and given to the sandbox's uid/gid. Returns an fd or -1 with errno.
 */
static int walk_parent(int datafd, char *rel, bool mk, uid_t uid, gid_t gid, char **leaf)
{
	char *p = rel, *slash;
	int fd, nfd, err;
	bool made;

	fd = fcntl(datafd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	while ((slash = strchr(p, '/'))) {
		*slash = '\0';
		made = false;
		nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && mk) {
			made = mkdirat(fd, p, 0755) == 0;
			if (made || errno == EEXIST)
				nfd = openat(fd, p,
					     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		err = errno;
		*slash = '/';
		if (nfd < 0) {
			close(fd);
			errno = err;
			return -1;
		}
		if (made && (fchown(nfd, uid, gid) < 0 || fchmod(nfd, 0755) < 0)) {
			err = errno;
			close(nfd);
			close(fd);
			errno = err;
			return -1;
		}
		close(fd);
		fd = nfd;
		p = slash + 1;
	}
	*leaf = p;
	return fd;
}

/* Open rel as a directory (the data root itself when rel is ""). */
static int open_dir(int datafd, char *rel)
{
	char *leaf;
	int dfd, fd, err;

	if (!*rel)
		return fcntl(datafd, F_DUPFD_CLOEXEC, 0);
	dfd = walk_parent(datafd, rel, false, 0, 0, &leaf);
	if (dfd < 0)
		return -1;
	fd = openat(dfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	err = errno;
	close(dfd);
	errno = err;
	return fd;
}

static bool past_deadline(ci_be *be, ci_call *call)
{
	return call->deadline_ms > 0 && be->host->now_ms(be->host->hctx) >= call->deadline_ms;
}

int bwrap_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call)
{
	char rel[PATH_LEN], *leaf, *buf = NULL;
	struct stat st;
	int datafd, dfd = -1, fd = -1, rc;
	ssize_t n;

	if ((rc = bwrap_id_check(id, call)) || (rc = rel_path(path, rel, sizeof(rel), call)))
		return rc;
	if (!*rel)
		return ci_fail(call, CI_E_INVAL, "%s is a directory", path);
	if (!out || !out->write)
		return ci_fail(call, CI_E_INVAL, "get: no sink");
	rc = open_data(be, id, &datafd, call);
	if (rc)
		return rc;
	dfd = walk_parent(datafd, rel, false, 0, 0, &leaf);
	if (dfd < 0) {
		rc = fs_fail(call, errno, "get", path);
		goto out;
	}
	/* O_NONBLOCK: a FIFO planted by the program must not hang us. */
	fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		rc = fs_fail(call, errno, "get", path);
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = ci_fail(call, CI_E_INVAL, "get %s: not a regular file", path);
		goto out;
	}
	buf = bwrap_alloc(be, CHUNK);
	if (!buf) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fs_fail(call, errno, "read", path);
			break;
		}
		if (n == 0 || out->write(out->ctx, CI_STREAM_DATA, buf, (size_t)n) != 0)
			break;
		if (past_deadline(be, call)) {
			rc = ci_fail(call, CI_E_TIMEOUT, "get %s: deadline passed", path);
			break;
		}
	}
out:
	bwrap_free(be, buf);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	close(datafd);
	return rc;
}

/* Copy src into fd; returns 0 or an errno, EMSGSIZE when the size is not as announced. */
static int copy_in(ci_be *be, const ci_source *src, int fd, ci_call *call)
{
	int64_t done = 0;
	off_t off = 0;
	ssize_t n = 0, w;
	char *buf;
	int err = 0;

	if (src->fd >= 0) {
		while (done < src->size) {
			n = copy_file_range(src->fd, &off, fd, NULL, (size_t)(src->size - done), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			done += n;
		}
		if (done == src->size)
			return 0;
		if (n < 0 && errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return errno;
	}
	buf = bwrap_alloc(be, CHUNK);
	if (!buf)
		return ENOMEM;
	for (;;) {
		if (src->fd >= 0)
			n = pread(src->fd, buf, CHUNK, (off_t)done);
		else
			n = src->read ? src->read(src->ctx, buf, CHUNK) : 0;
		if (n < 0 && src->fd >= 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = src->fd >= 0 ? errno : EIO;
			break;
		}
		if (n == 0)
			break;
		for (w = 0; w < n;) {
			ssize_t k = write(fd, buf + w, (size_t)(n - w));

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				err = errno;
				goto out;
			}
			w += k;
		}
		done += n;
		if (done > src->size) {
			err = EMSGSIZE;
			break;
		}
		if (past_deadline(be, call)) {
			err = ETIME;
			break;
		}
	}
	if (!err && done != src->size)
		err = EMSGSIZE;
out:
	bwrap_free(be, buf);
	return err;
}

int bwrap_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	      ci_call *call)
{
	char rel[PATH_LEN], *leaf, tmp[48];
	unsigned char rnd[8];
	struct stat st;
	int datafd, dfd = -1, fd = -1, rc = CI_OK, err;
	size_t i;

	if ((rc = bwrap_id_check(id, call)) || (rc = rel_path(path, rel, sizeof(rel), call)))
		return rc;
	if (!*rel)
		return ci_fail(call, CI_E_INVAL, "%s is a directory", path);
	if (!src || src->size < 0 || (src->fd < 0 && !src->read))
		return ci_fail(call, CI_E_INVAL, "put: no source");
	rc = open_data(be, id, &datafd, call);
	if (rc)
		return rc;
	/* data/ belongs to the sandbox's host uid: so will everything we write. */
	if (fstat(datafd, &st) < 0) {
		rc = fs_fail(call, errno, "stat", "data");
		goto out;
	}
	/* A tmpfs enforces its size itself; a plain directory gets this check only. */
	if (!be->tmpfs) {
		struct bwrap_meta m;

		rc = bwrap_meta_read(be, id, &m, call);
		if (rc)
			goto out;
		if (src->size > m.disk)
			rc = ci_fail(call, CI_E_LIMIT, "put %s: larger than the sandbox disk",
				     path);
		bwrap_meta_release(be, &m);
		if (rc)
			goto out;
	}
	dfd = walk_parent(datafd, rel, true, st.st_uid, st.st_gid, &leaf);
	if (dfd < 0) {
		rc = fs_fail(call, errno, "put", path);
		goto out;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	strcpy(tmp, ".ci-put-");
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(tmp + 8 + 2 * i, 3, "%02x", rnd[i]);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = fs_fail(call, errno, "put", path);
		goto out;
	}
	err = copy_in(be, src, fd, call);
	if (!err && (fchown(fd, st.st_uid, st.st_gid) < 0 ||
		     fchmod(fd, (mode & 0777) ? mode & 0777 : 0644) < 0))
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	fd = -1;
	if (!err && renameat(dfd, tmp, dfd, leaf) < 0)
		err = errno;
	if (err) {
		unlinkat(dfd, tmp, 0);
		if (err == EMSGSIZE)
			rc = ci_fail(call, CI_E_INVAL, "put %s: source size does not match", path);
		else if (err == ETIME)
			rc = ci_fail(call, CI_E_TIMEOUT, "put %s: deadline passed", path);
		else
			rc = fs_fail(call, err, "put", path);
	}
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	close(datafd);
	return rc;
}

struct list_walk {
	ci_be *be;
	ci_call *call;
	ci_entry_cb cb;
	void *ctx;
	char path[PATH_LEN];
	int stopped;
};

static int entry_type(mode_t m)
{
	if (S_ISREG(m))
		return CI_ENTRY_FILE;
	if (S_ISDIR(m))
		return CI_ENTRY_DIR;
	if (S_ISLNK(m))
		return CI_ENTRY_SYMLINK;
	return CI_ENTRY_OTHER;
}

/* Report the entries of dfd (taken over) below l->path[0..plen). */
static void list_dir(struct list_walk *l, int dfd, size_t plen, int depth)
{
	struct dirent *de;
	struct stat st;
	ci_entry e;
	size_t nlen;
	DIR *d;
	int sub;

	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while (!l->stopped && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		nlen = strlen(de->d_name);
		if (plen + nlen + 2 > sizeof(l->path))
			continue;
		if (plen)
			l->path[plen] = '/';
		memcpy(l->path + plen + (plen ? 1 : 0), de->d_name, nlen + 1);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		e = (ci_entry){.path = l->path,
			       .type = entry_type(st.st_mode),
			       .size = S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0,
			       .mtime_ns =
				       (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
			       .mode = st.st_mode & 07777};
		if (l->cb(l->ctx, &e) != 0) {
			l->stopped = 1;
			break;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		if (depth >= LIST_DEPTH || past_deadline(l->be, l->call)) {
			l->stopped = depth >= LIST_DEPTH ? l->stopped : 2;
			continue;
		}
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			list_dir(l, sub, plen + (plen ? 1 : 0) + nlen, depth + 1);
	}
	closedir(d);
}

int bwrap_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx, ci_call *call)
{
	struct list_walk *l;
	char rel[PATH_LEN];
	int datafd, fd, rc;

	if ((rc = bwrap_id_check(id, call)) || (rc = rel_path(dir, rel, sizeof(rel), call)))
		return rc;
	if (!cb)
		return ci_fail(call, CI_E_INVAL, "list: no callback");
	rc = open_data(be, id, &datafd, call);
	if (rc)
		return rc;
	fd = open_dir(datafd, rel);
	close(datafd);
	if (fd < 0)
		return fs_fail(call, errno, "list", dir);
	l = bwrap_alloc(be, sizeof(*l));
	if (!l) {
		close(fd);
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	}
	*l = (struct list_walk){.be = be, .call = call, .cb = cb, .ctx = ctx};
	list_dir(l, fd, 0, 0);
	rc = l->stopped == 2 ? ci_fail(call, CI_E_TIMEOUT, "list %s: deadline passed", dir) : CI_OK;
	bwrap_free(be, l);
	return rc;
}

/* ---- removal ---- */

static unsigned long rm_seq;

/*
 * Empty the directory dfd. Directories nested deeper than RM_DEPTH are
 * renamed up into top (a fresh name) instead of recursed into, so neither
 * the stack nor the fd table grows with a hostile tree; *moved tells the
 * caller to scan top again.
 */
static int rm_contents(int dfd, int top, int depth, int *moved)
{
	struct dirent *de;
	char name[64];
	int sub, rc = 0, fd;
	DIR *d;

	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dfd, de->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = -1;
			continue;
		}
		if (depth >= RM_DEPTH) {
			snprintf(name, sizeof(name), ".rm-%ld-%lu", (long)getpid(),
				 __atomic_add_fetch(&rm_seq, 1, __ATOMIC_RELAXED));
			if (renameat(dfd, de->d_name, top, name) == 0)
				*moved = 1;
			else
				rc = -1;
			continue;
		}
		sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = -1;
			continue;
		}
		if (rm_contents(sub, top, depth + 1, moved) < 0)
			rc = -1;
		close(sub);
		if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int bwrap_rmtree(int dirfd, const char *name)
{
	int fd, moved, rc, pass;

	if (unlinkat(dirfd, name, 0) == 0)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (pass = 0; pass < 10000; pass++) {
		moved = 0;
		rc = rm_contents(fd, fd, 0, &moved);
		if (!moved)
			break;
	}
	close(fd);
	if (rc < 0)
		return -1;
	return unlinkat(dirfd, name, AT_REMOVEDIR);
}
