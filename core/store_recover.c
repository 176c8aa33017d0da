/*
 * Open-time recovery: rebuild the index from the metadata files and remove
 * whatever a crash or a kill left half-done. Only names this store creates
 * are touched; unexpected directories are reported and kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_meta.h"
#include "store_priv.h"

#define META_MAX (64 * 1024) /* a real document is < 1 KiB */

struct recover_stats {
	unsigned loaded, tmp, orphans, bad, junk, dirs;
};

static DIR *open_dir(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

static bool is_dot(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

static bool is_dir_at(int dirfd, const char *name)
{
	struct stat sb;

	return !fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) && S_ISDIR(sb.st_mode);
}

/* "<nanoid><suffix>" -> the id in fid, else false. */
static bool split_name(const char *name, const char *suffix, char fid[CI_NANOID_SIZE])
{
	size_t n = strlen(name), ls = strlen(suffix);

	if (n != CI_NANOID_LEN + ls || strcmp(name + CI_NANOID_LEN, suffix))
		return false;
	memcpy(fid, name, CI_NANOID_LEN);
	fid[CI_NANOID_LEN] = '\0';
	return ci_nanoid_is_valid(fid);
}

static void remove_junk(int dirfd, const char *where, const char *name, unsigned *counter)
{
	if (is_dir_at(dirfd, name)) {
		ci_log(CI_LL_WARN, "store.recover.keep",
		       "dir=\"%s/%s\" reason=\"unexpected directory\"", where, name);
		return;
	}
	if (!unlinkat(dirfd, name, 0))
		(*counter)++;
	else if (errno != ENOENT)
		ci_log(CI_LL_WARN, "store.io", "op=unlink name=\"%s/%s\" error=\"%s\"", where, name,
		       strerror(errno));
}

static int read_meta(int sdir, const char *name, char **buf, size_t *len, char *why)
{
	int fd = openat(sdir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	ssize_t n;

	if (fd < 0)
		return ci_store_fail(why, CI_E_INVAL, "open: %s", strerror(errno));
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > META_MAX) {
		close(fd);
		return ci_store_fail(why, CI_E_INVAL, "not a small regular file");
	}
	*buf = malloc((size_t)sb.st_size + 1);
	if (!*buf) {
		close(fd);
		return CI_E_NOMEM;
	}
	n = pread(fd, *buf, (size_t)sb.st_size, 0);
	close(fd);
	if (n != sb.st_size) {
		free(*buf);
		return ci_store_fail(why, CI_E_INVAL, "short read");
	}
	*len = (size_t)n;
	return CI_OK;
}

/*
 * Index the file described by metadata <fid>.json of session sid.
 * CI_E_INVAL (reason in why) when the pair must be removed.
 */
static int load_one(struct ci_store *st, int sdir, const char *sid, const char *fid,
		    const char *name, char *why)
{
	char owner[CI_STORE_OWNER_MAX + 1], data[CI_STORE_NAME_BUF];
	struct ci_store_info info;
	struct ci_ssession *s;
	struct stat sb;
	size_t len = 0;
	char *buf = NULL;
	int rc;

	rc = read_meta(sdir, name, &buf, &len, why);
	if (rc)
		return rc;
	rc = ci_store_meta_decode(buf, len, &info, owner, why);
	free(buf);
	if (rc)
		return rc;
	if (strcmp(info.sid, sid) || strcmp(info.fid, fid))
		return ci_store_fail(why, CI_E_INVAL, "ids do not match the path");
	snprintf(data, sizeof(data), "%s" CI_STORE_DATA_SUFFIX, fid);
	if (fstatat(sdir, data, &sb, AT_SYMLINK_NOFOLLOW) || !S_ISREG(sb.st_mode))
		return ci_store_fail(why, CI_E_INVAL, "data file missing");
	if ((uint64_t)sb.st_size != info.size)
		return ci_store_fail(why, CI_E_INVAL, "data size %lld != recorded %llu",
				     (long long)sb.st_size, (unsigned long long)info.size);
	s = ci_sindex_get(&st->idx, sid);
	if (s && strcmp(s->owner, owner))
		return ci_store_fail(why, CI_E_INVAL, "owner differs from the session's");
	if (s && ci_sindex_find_file(s, fid))
		return ci_store_fail(why, CI_E_INVAL, "duplicate file id");
	if (!s)
		s = ci_sindex_add_session(&st->idx, sid, owner, info.created_ns);
	if (!s)
		return CI_E_NOMEM;
	rc = ci_sindex_add_file(&st->idx, s, &info);
	if (rc)
		return rc == CI_E_NOMEM ? rc : ci_store_fail(why, rc, "cannot index");
	if (info.created_ns > s->touched_ns)
		s->touched_ns = info.created_ns;
	return CI_OK;
}

static void drop_pair(int sdir, const char *sid, const char *fid, const char *why,
		      struct recover_stats *rs)
{
	char name[CI_STORE_NAME_BUF];

	ci_log(CI_LL_WARN, "store.recover.drop", "sid=%s fid=%s reason=\"%s\"", sid, fid, why);
	snprintf(name, sizeof(name), "%s" CI_STORE_META_SUFFIX, fid);
	unlinkat(sdir, name, 0);
	snprintf(name, sizeof(name), "%s" CI_STORE_DATA_SUFFIX, fid);
	unlinkat(sdir, name, 0);
	rs->bad++;
}

static int scan_session(struct ci_store *st, const char *sid, struct recover_stats *rs)
{
	struct ci_ssession *s;
	struct dirent *de;
	char fid[CI_NANOID_SIZE], why[CI_ERR_MAX];
	DIR *d = open_dir(st->sess_fd, sid);
	int sdir, rc = CI_OK;

	if (!d) {
		ci_log(CI_LL_WARN, "store.io", "op=opendir name=%s error=\"%s\"", sid,
		       strerror(errno));
		return CI_OK;
	}
	sdir = dirfd(d);
	/* Pass 1: every metadata document, checked against its data file. */
	while (!rc && (de = readdir(d))) {
		if (!split_name(de->d_name, CI_STORE_META_SUFFIX, fid))
			continue;
		why[0] = '\0';
		rc = load_one(st, sdir, sid, fid, de->d_name, why);
		if (rc == CI_E_INVAL) {
			drop_pair(sdir, sid, fid, why, rs);
			rc = CI_OK;
		} else if (!rc) {
			rs->loaded++;
		}
	}
	/* Pass 2: data without indexed metadata, and anything else. */
	rewinddir(d);
	s = ci_sindex_get(&st->idx, sid);
	while (!rc && (de = readdir(d))) {
		if (is_dot(de->d_name))
			continue;
		if (split_name(de->d_name, CI_STORE_META_SUFFIX, fid) && s &&
		    ci_sindex_find_file(s, fid))
			continue;
		if (split_name(de->d_name, CI_STORE_DATA_SUFFIX, fid)) {
			if (s && ci_sindex_find_file(s, fid))
				continue;
			ci_log(CI_LL_WARN, "store.recover.drop",
			       "sid=%s fid=%s reason=\"data without metadata\"", sid, fid);
			remove_junk(sdir, sid, de->d_name, &rs->orphans);
			continue;
		}
		remove_junk(sdir, sid, de->d_name, &rs->junk);
	}
	closedir(d);
	if (!rc && !s) {
		if (!unlinkat(st->sess_fd, sid, AT_REMOVEDIR))
			rs->dirs++;
		else
			ci_log(CI_LL_WARN, "store.io", "op=rmdir name=%s error=\"%s\"", sid,
			       strerror(errno));
	}
	return rc;
}

static void clean_tmp(struct ci_store *st, struct recover_stats *rs)
{
	DIR *d = open_dir(st->root_fd, CI_STORE_TMP_DIR);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (!is_dot(de->d_name))
			remove_junk(st->tmp_fd, CI_STORE_TMP_DIR, de->d_name, &rs->tmp);
	closedir(d);
}

int ci_store_recover(struct ci_store *st, char *err)
{
	struct recover_stats rs = {0};
	DIR *d = open_dir(st->root_fd, CI_STORE_SESSIONS_DIR);
	struct dirent *de;
	int rc = CI_OK;

	if (!d)
		return ci_store_fail(err, CI_E_INTERNAL, "opendir sessions: %s", strerror(errno));
	clean_tmp(st, &rs);
	while (!rc && (de = readdir(d))) {
		if (is_dot(de->d_name))
			continue;
		if (ci_nanoid_is_valid(de->d_name) && is_dir_at(st->sess_fd, de->d_name))
			rc = scan_session(st, de->d_name, &rs);
		else
			remove_junk(st->sess_fd, CI_STORE_SESSIONS_DIR, de->d_name, &rs.junk);
	}
	closedir(d);
	if (rc)
		return ci_store_fail(err, rc, "out of memory while indexing the store");
	ci_log(CI_LL_INFO, "store.recover",
	       "loaded=%u sessions=%zu tmp_removed=%u orphans_removed=%u bad_removed=%u "
	       "junk_removed=%u dirs_removed=%u",
	       rs.loaded, st->idx.nsessions, rs.tmp, rs.orphans, rs.bad, rs.junk, rs.dirs);
	return CI_OK;
}
