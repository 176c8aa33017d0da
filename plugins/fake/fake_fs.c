/*
 * The /mnt/data view of a fake sandbox: put, get and list on its data
 * directory. Every path is walked one component at a time with O_NOFOLLOW,
 * so a symlink made by sandboxed code is never followed, wherever it points.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake.h"

#define LIST_DEPTH_MAX 64

bool fake_id_ok(const char *id)
{
	size_t n = 0;

	if (!id)
		return false;
	for (; id[n]; n++)
		if (!((id[n] >= 'a' && id[n] <= 'z') || (id[n] >= '0' && id[n] <= '9')))
			return false;
	return n > 0 && n < 64;
}

int fake_data_fd(struct ci_be *be, const char *id, int *rc, ci_call *call)
{
	char rel[80];
	int fd;

	if (!fake_id_ok(id)) {
		*rc = ci_fail(call, CI_E_NOTFOUND, "fake: no sandbox '%.64s'", id ? id : "(null)");
		return -1;
	}
	snprintf(rel, sizeof(rel), "%s/data", id);
	fd = openat(be->root_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*rc = ci_fail(call, CI_E_NOTFOUND, "fake: no sandbox '%s'", id);
		return -1;
	}
	return fd;
}

int fake_rel_path(const char *path, char rel[FAKE_PATH], ci_call *call)
{
	size_t mlen = strlen(FAKE_MNT), n = 0, clen;
	const char *p, *c;

	if (!path || strncmp(path, FAKE_MNT, mlen) || (path[mlen] && path[mlen] != '/'))
		return ci_fail(call, CI_E_INVAL, "fake: path '%.200s' is not under " FAKE_MNT,
			       path ? path : "(null)");
	for (p = path + mlen; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		c = p;
		clen = strcspn(c, "/");
		p = c + clen;
		if (clen == 1 && c[0] == '.')
			continue;
		if (clen == 2 && c[0] == '.' && c[1] == '.')
			return ci_fail(call, CI_E_INVAL, "fake: path '%.200s' holds '..'", path);
		if (n + clen + 2 > FAKE_PATH)
			return ci_fail(call, CI_E_LIMIT, "fake: path too long");
		if (n)
			rel[n++] = '/';
		memcpy(rel + n, c, clen);
		n += clen;
	}
	rel[n] = 0;
	return CI_OK;
}

int fake_open_dir(int data_fd, const char *rel, bool mkdirs, int *rc, ci_call *call)
{
	char comp[FAKE_PATH];
	const char *p = rel;
	int fd, next;
	size_t n;

	fd = dup(data_fd);
	if (fd < 0) {
		*rc = ci_fail(call, CI_E_INTERNAL, "fake: dup: %s", strerror(errno));
		return -1;
	}
	while (*p) {
		n = strcspn(p, "/");
		memcpy(comp, p, n);
		comp[n] = 0;
		p += n + (p[n] == '/');
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && mkdirs) {
			if (mkdirat(fd, comp, 0755) && errno != EEXIST) {
				*rc = ci_fail(call, CI_E_BACKEND, "fake: mkdir %s: %s", comp,
					      strerror(errno));
				close(fd);
				return -1;
			}
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			if (errno == ENOENT)
				*rc = ci_fail(call, CI_E_NOTFOUND,
					      "fake: " FAKE_MNT "/%s: no such "
					      "directory",
					      rel);
			else if (errno == ELOOP || errno == ENOTDIR)
				*rc = ci_fail(call, CI_E_INVAL,
					      "fake: " FAKE_MNT "/%s: '%s' is a "
					      "symlink or not a directory",
					      rel, comp);
			else
				*rc = ci_fail(call, CI_E_BACKEND, "fake: " FAKE_MNT "/%s: %s", rel,
					      strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		fd = next;
	}
	return fd;
}

int fake_rm_tree(int dfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if (!unlinkat(dfd, name, 0) || errno == ENOENT)
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	fchmod(fd, 0700); /* sandboxed code may have taken our permissions away */
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			fake_rm_tree(dirfd(d), de->d_name);
	closedir(d);
	return unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Split rel into its parent directory (opened) and last component. */
static int open_parent(int data_fd, const char *rel, bool mkdirs, const char **leaf, int *rc,
		       ci_call *call)
{
	char parent[FAKE_PATH];
	const char *slash = strrchr(rel, '/');

	if (!slash) {
		*leaf = rel;
		return fake_open_dir(data_fd, "", mkdirs, rc, call);
	}
	memcpy(parent, rel, (size_t)(slash - rel));
	parent[slash - rel] = 0;
	*leaf = slash + 1;
	return fake_open_dir(data_fd, parent, mkdirs, rc, call);
}

static int copy_in(struct ci_be *be, int out, const ci_source *src, ci_call *call)
{
	int64_t done = 0;
	char *buf;
	ssize_t r;
	loff_t off = 0;
	int rc = CI_OK;

	/* The fast path a plugin may take when the host hands it a file. */
	while (src->fd >= 0 && off < src->size) {
		r = copy_file_range(src->fd, &off, out, NULL, (size_t)(src->size - off), 0);
		if (r > 0)
			continue;
		if (r == 0)
			return ci_fail(call, CI_E_INVAL, "fake: source ended at %lld of %lld bytes",
				       (long long)off, (long long)src->size);
		if (off ||
		    (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP))
			return ci_fail(call, CI_E_BACKEND, "fake: copy_file_range: %s",
				       strerror(errno));
		break; /* not supported here: use read() */
	}
	if (off == src->size)
		return CI_OK;
	if (!src->read)
		return ci_fail(call, CI_E_INVAL, "fake: source has neither fd nor read()");
	buf = be->host->mem_alloc(be->host->hctx, FAKE_BUFSIZE);
	if (!buf)
		return ci_fail(call, CI_E_NOMEM, "fake: out of memory");
	while (done < src->size) {
		size_t want =
			src->size - done < FAKE_BUFSIZE ? (size_t)(src->size - done) : FAKE_BUFSIZE;

		if (fake_left_ms(be, call) <= 0) {
			rc = ci_fail(call, CI_E_TIMEOUT, "fake: put ran past the deadline");
			break;
		}
		r = src->read(src->ctx, buf, want);
		if (r < 0) {
			rc = ci_fail(call, CI_E_INTERNAL, "fake: source read failed");
			break;
		}
		if (r == 0 || (size_t)r > want) {
			rc = ci_fail(call, CI_E_INVAL, "fake: source gave %s than its size %lld",
				     r ? "more" : "less", (long long)src->size);
			break;
		}
		for (ssize_t w = 0, k; w < r; w += k) {
			k = write(out, buf + w, (size_t)(r - w));
			if (k < 0) {
				rc = ci_fail(call, errno == ENOSPC ? CI_E_LIMIT : CI_E_BACKEND,
					     "fake: write: %s", strerror(errno));
				goto out;
			}
		}
		done += r;
	}
out:
	be->host->mem_free(be->host->hctx, buf);
	return rc;
}

int fake_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	     ci_call *call)
{
	char rel[FAKE_PATH], tmp[64];
	const char *leaf;
	int rc, data_fd, dfd = -1, out = -1;
	uint64_t rnd = 0;

	rc = fake_fault(be, "put", call);
	if (rc)
		goto out_record;
	data_fd = fake_data_fd(be, id, &rc, call);
	if (data_fd < 0)
		goto out_record;
	rc = fake_rel_path(path, rel, call);
	if (rc)
		goto out_close;
	if (!rel[0]) {
		rc = ci_fail(call, CI_E_INVAL, "fake: cannot put " FAKE_MNT " itself");
		goto out_close;
	}
	if (!src || src->size < 0) {
		rc = ci_fail(call, CI_E_INVAL, "fake: put without a sized source");
		goto out_close;
	}
	dfd = open_parent(data_fd, rel, true, &leaf, &rc, call);
	if (dfd < 0)
		goto out_close;
	/* Write a temporary, then rename over the target: a failed put leaves nothing. */
	if (getrandom(&rnd, sizeof(rnd), 0) < 0)
		rnd = (uint64_t)be->host->now_ms(be->host->hctx);
	snprintf(tmp, sizeof(tmp), ".ci-put-%016llx", (unsigned long long)rnd);
	out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = ci_fail(call, CI_E_BACKEND, "fake: create %s: %s", tmp, strerror(errno));
		goto out_close;
	}
	rc = copy_in(be, out, src, call);
	if (!rc && fchmod(out, mode & 07777 ? mode & 0777 : 0644))
		rc = ci_fail(call, CI_E_BACKEND, "fake: chmod: %s", strerror(errno));
	if (!rc && renameat(dfd, tmp, dfd, leaf))
		rc = ci_fail(call, errno == EISDIR ? CI_E_INVAL : CI_E_BACKEND,
			     "fake: " FAKE_MNT "/%s: %s", rel, strerror(errno));
	if (rc)
		unlinkat(dfd, tmp, 0);
out_close:
	if (out >= 0)
		close(out);
	if (dfd >= 0)
		close(dfd);
	close(data_fd);
out_record:
	fake_record(be, "put", call, rc, "id=%s path=%s size=%lld mode=%04o", id ? id : "-",
		    path ? path : "-", src ? (long long)src->size : -1LL, (unsigned)mode);
	return rc;
}

static int copy_out(struct ci_be *be, int fd, const ci_sink *out, ci_call *call)
{
	char *buf = be->host->mem_alloc(be->host->hctx, FAKE_BUFSIZE);
	int rc = CI_OK;
	ssize_t r;

	if (!buf)
		return ci_fail(call, CI_E_NOMEM, "fake: out of memory");
	for (;;) {
		if (fake_left_ms(be, call) <= 0) {
			rc = ci_fail(call, CI_E_TIMEOUT, "fake: get ran past the deadline");
			break;
		}
		r = read(fd, buf, FAKE_BUFSIZE);
		if (r < 0) {
			rc = ci_fail(call, CI_E_BACKEND, "fake: read: %s", strerror(errno));
			break;
		}
		if (r == 0 || out->write(out->ctx, CI_STREAM_DATA, buf, (size_t)r))
			break; /* end, or the sink wants no more */
	}
	be->host->mem_free(be->host->hctx, buf);
	return rc;
}

int fake_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call)
{
	char rel[FAKE_PATH];
	const char *leaf;
	int rc, data_fd, dfd = -1, fd = -1;
	struct stat st;

	rc = fake_fault(be, "get", call);
	if (rc)
		goto out_record;
	data_fd = fake_data_fd(be, id, &rc, call);
	if (data_fd < 0)
		goto out_record;
	rc = fake_rel_path(path, rel, call);
	if (rc)
		goto out_close;
	if (!out || !out->write) {
		rc = ci_fail(call, CI_E_INVAL, "fake: get without a sink");
		goto out_close;
	}
	dfd = open_parent(data_fd, rel, false, &leaf, &rc, call);
	if (dfd < 0)
		goto out_close;
	fd = *leaf ? openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
	if (fd < 0) {
		if (*leaf && errno == ENOENT)
			rc = ci_fail(call, CI_E_NOTFOUND, "fake: " FAKE_MNT "/%s: no such file",
				     rel);
		else if (!*leaf || errno == ELOOP)
			rc = ci_fail(call, CI_E_INVAL,
				     "fake: " FAKE_MNT "/%s is a symlink or "
				     "not a regular file",
				     rel);
		else
			rc = ci_fail(call, CI_E_BACKEND, "fake: " FAKE_MNT "/%s: %s", rel,
				     strerror(errno));
		goto out_close;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rc = ci_fail(call, CI_E_INVAL, "fake: " FAKE_MNT "/%s: not a regular file", rel);
		goto out_close;
	}
	fcntl(fd, F_SETFL, 0);
	rc = copy_out(be, fd, out, call);
out_close:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	close(data_fd);
out_record:
	fake_record(be, "get", call, rc, "id=%s path=%s", id ? id : "-", path ? path : "-");
	return rc;
}

struct walk {
	struct ci_be *be;
	ci_entry_cb cb;
	void *ctx;
	ci_call *call;
	char path[FAKE_PATH];
	bool stopped;
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

/* Report every entry of dfd (consumed) below w->path[0..plen). */
static int walk_dir(struct walk *w, int dfd, size_t plen, int depth)
{
	struct dirent *de;
	struct stat st;
	ci_entry e;
	DIR *d;
	int rc = CI_OK, sub;
	size_t n;

	if (depth > LIST_DEPTH_MAX) {
		close(dfd);
		return ci_fail(w->call, CI_E_LIMIT, "fake: list deeper than %d", LIST_DEPTH_MAX);
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return ci_fail(w->call, CI_E_BACKEND, "fake: opendir: %s", strerror(errno));
	}
	while (!rc && !w->stopped && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue; /* vanished meanwhile */
		n = strlen(de->d_name);
		if (plen + n + 2 > sizeof(w->path)) {
			rc = ci_fail(w->call, CI_E_LIMIT, "fake: list: path too long");
			break;
		}
		if (plen)
			w->path[plen] = '/';
		memcpy(w->path + plen + !!plen, de->d_name, n + 1);
		e = (ci_entry){
			.path = w->path,
			.type = entry_type(st.st_mode),
			.size = S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0,
			.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
			.mode = st.st_mode & 07777,
		};
		if (w->cb(w->ctx, &e)) {
			w->stopped = true;
			break;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			rc = walk_dir(w, sub, plen + !!plen + n, depth + 1);
	}
	closedir(d);
	return rc;
}

int fake_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx, ci_call *call)
{
	struct walk *w = NULL;
	char rel[FAKE_PATH];
	int rc, data_fd, dfd;

	rc = fake_fault(be, "list", call);
	if (rc)
		goto out_record;
	data_fd = fake_data_fd(be, id, &rc, call);
	if (data_fd < 0)
		goto out_record;
	rc = fake_rel_path(dir, rel, call);
	if (!rc && !cb)
		rc = ci_fail(call, CI_E_INVAL, "fake: list without a callback");
	if (rc)
		goto out_close;
	dfd = fake_open_dir(data_fd, rel, false, &rc, call);
	if (dfd < 0)
		goto out_close;
	w = be->host->mem_alloc(be->host->hctx, sizeof(*w));
	if (!w) {
		close(dfd);
		rc = ci_fail(call, CI_E_NOMEM, "fake: out of memory");
		goto out_close;
	}
	*w = (struct walk){.be = be, .cb = cb, .ctx = ctx, .call = call};
	rc = walk_dir(w, dfd, 0, 0);
	be->host->mem_free(be->host->hctx, w);
out_close:
	close(data_fd);
out_record:
	fake_record(be, "list", call, rc, "id=%s dir=%s", id ? id : "-", dir ? dir : "-");
	return rc;
}
