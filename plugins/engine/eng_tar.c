/*
 * Tar streams for the archive API, through libarchive, never holding a whole
 * file in memory.
 *
 * put: a ci_source whose read() asks libarchive for the next bytes of a tar
 * built on the fly: headers first (written up front, so the exact tar size
 * is known before the upload starts), then the file's data as it is read
 * from the caller's source, then padding and the end-of-archive blocks.
 * libarchive runs with blocking disabled, so each archive_write_data()
 * reaches our write callback at once.
 *
 * get: libarchive reads the tar from a file descriptor (one end of a socket
 * pair the HTTP response is pumped into, see eng_files.c) and the member's
 * data goes to the sink chunk by chunk.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ci/backend_util.h"
#include "engine.h"

#define TAR_CHUNK (64 * 1024)

struct eng_tar_src {
	struct archive *a;
	struct eng_buf out; /* produced by libarchive, not yet handed out */
	size_t off;
	const ci_source *data;
	int64_t left;	  /* data bytes still to come from the caller's source */
	int64_t total;	  /* exact tar size promised to the HTTP layer */
	int64_t produced; /* tar bytes handed out */
	bool finished;
	char err[CI_ERR_MAX];
	unsigned char chunk[TAR_CHUNK];
};

static la_ssize_t tar_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct eng_tar_src *ts = ctx;

	(void)a;
	if (ts->off == ts->out.len) {
		ts->out.len = 0;
		ts->off = 0;
	}
	if (eng_buf_append(&ts->out, buf, len))
		return -1;
	return (la_ssize_t)len;
}

static int tar_fail(struct eng_tar_src *ts, const char *what)
{
	if (!ts->err[0])
		snprintf(ts->err, sizeof(ts->err), "tar: %s%s%s", what, ts->a ? ": " : "",
			 ts->a && archive_error_string(ts->a) ? archive_error_string(ts->a) : "");
	return -1;
}

static ssize_t src_read(const ci_source *s, void *buf, size_t cap)
{
	if (s->read)
		return s->read(s->ctx, buf, cap);
	if (s->fd >= 0)
		return read(s->fd, buf, cap);
	return -1;
}

/* Produce more tar bytes into ts->out; 0 ok, -1 error. */
static int tar_step(struct eng_tar_src *ts)
{
	ssize_t n;

	if (ts->left > 0) {
		size_t want = ts->left < TAR_CHUNK ? (size_t)ts->left : TAR_CHUNK;

		n = src_read(ts->data, ts->chunk, want);
		if (n < 0)
			return tar_fail(ts, "reading the source failed");
		if (n == 0) {
			snprintf(ts->err, sizeof(ts->err),
				 "source ended %lld bytes short of its size", (long long)ts->left);
			return -1;
		}
		ts->left -= n;
		if (archive_write_data(ts->a, ts->chunk, (size_t)n) != n)
			return tar_fail(ts, "write_data");
		return 0;
	}
	if (archive_write_finish_entry(ts->a) != ARCHIVE_OK ||
	    archive_write_close(ts->a) != ARCHIVE_OK)
		return tar_fail(ts, "close");
	ts->finished = true;
	return 0;
}

static ssize_t tar_read(void *ctx, void *buf, size_t cap)
{
	struct eng_tar_src *ts = ctx;
	size_t n;

	while (ts->off == ts->out.len) {
		if (ts->finished)
			return 0;
		if (tar_step(ts))
			return -1;
	}
	n = ts->out.len - ts->off;
	if (n > cap)
		n = cap;
	memcpy(buf, ts->out.data + ts->off, n);
	ts->off += n;
	ts->produced += (int64_t)n;
	if (ts->produced > ts->total) {
		snprintf(ts->err, sizeof(ts->err), "tar larger than announced");
		return -1;
	}
	return (ssize_t)n;
}

static int tar_header(struct eng_tar_src *ts, const char *name, mode_t type, uint32_t mode,
		      int64_t size, int64_t mtime, unsigned uid, unsigned gid)
{
	struct archive_entry *e = archive_entry_new();
	int rc;

	if (!e)
		return tar_fail(ts, "out of memory");
	/* Raw bytes: the engines (Go archive/tar) take names as bytes, and
	 * libarchive cannot convert UTF-8 in the C locale. */
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode & 07777);
	archive_entry_set_size(e, size);
	archive_entry_set_mtime(e, mtime, 0);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, gid);
	rc = archive_write_header(ts->a, e);
	archive_entry_free(e);
	return rc == ARCHIVE_OK ? 0 : tar_fail(ts, "header");
}

int eng_tar_src_new(const char *rel, uint32_t mode, int64_t mtime, unsigned uid, unsigned gid,
		    const ci_source *data, struct eng_tar_src **out_ts, ci_source *out,
		    ci_call *call)
{
	struct eng_tar_src *ts;
	char *dir = NULL, *p;
	int rc = CI_E_INTERNAL;

	if (!rel[0] || rel[0] == '/' || data->size < 0)
		return ci_fail(call, CI_E_INVAL, "tar: bad member '%s'", rel);
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	ts->data = data;
	ts->left = data->size;
	ts->a = archive_write_new();
	if (!ts->a || archive_write_set_format_pax_restricted(ts->a) != ARCHIVE_OK ||
	    archive_write_set_options(ts->a, "hdrcharset=BINARY") != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(ts->a, 0) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(ts->a, 1) != ARCHIVE_OK ||
	    archive_write_open(ts->a, ts, NULL, tar_out, NULL) != ARCHIVE_OK) {
		tar_fail(ts, "setup");
		goto out_err;
	}
	/* Parents as explicit entries, so they belong to the sandbox user. */
	dir = strdup(rel);
	if (!dir) {
		rc = CI_E_NOMEM;
		goto out_err;
	}
	for (p = strchr(dir, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (tar_header(ts, dir, AE_IFDIR, 0755, 0, mtime, uid, gid))
			goto out_err;
		*p = '/';
	}
	if (tar_header(ts, rel, AE_IFREG, mode, data->size, mtime, uid, gid))
		goto out_err;
	free(dir);
	/* Headers are out; data is padded to 512, then two zero blocks. */
	ts->total = (int64_t)ts->out.len + ((data->size + 511) / 512) * 512 + 1024;
	out->read = tar_read;
	out->ctx = ts;
	out->size = ts->total;
	out->fd = -1;
	*out_ts = ts;
	return CI_OK;

out_err:
	free(dir);
	rc = rc == CI_E_NOMEM ? CI_E_NOMEM : CI_E_INTERNAL;
	ci_fail(call, rc, "%s", ts->err[0] ? ts->err : "tar: out of memory");
	eng_tar_src_free(ts);
	return rc;
}

void eng_tar_src_free(struct eng_tar_src *ts)
{
	if (!ts)
		return;
	if (ts->a)
		archive_write_free(ts->a);
	eng_buf_release(&ts->out);
	free(ts);
}

int eng_tar_src_status(struct eng_tar_src *ts, ci_call *call)
{
	if (ts->err[0])
		return ci_fail(call, ts->left > 0 ? CI_E_INVAL : CI_E_INTERNAL, "%s", ts->err);
	if (!ts->finished || ts->produced != ts->total)
		return ci_fail(call, CI_E_INTERNAL, "tar: sent %lld of %lld bytes",
			       (long long)ts->produced, (long long)ts->total);
	return CI_OK;
}

int eng_tar_extract_one(int fd, const char *name, const ci_sink *out, bool *stopped, ci_call *call)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	const char *member;
	char *buf = NULL;
	la_ssize_t n;
	int r, rc = CI_OK;

	*stopped = false;
	if (!a)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, TAR_CHUNK) != ARCHIVE_OK) {
		rc = ci_fail(call, CI_E_BACKEND, "tar: %s", archive_error_string(a));
		goto out;
	}
	r = archive_read_next_header(a, &e);
	if (r == ARCHIVE_EOF) {
		rc = ci_fail(call, CI_E_BACKEND, "tar: empty archive");
		goto out;
	}
	if (r < ARCHIVE_WARN) {
		rc = ci_fail(call, CI_E_BACKEND, "tar: %s", archive_error_string(a));
		goto out;
	}
	member = archive_entry_pathname(e);
	if (!member)
		member = archive_entry_pathname_utf8(e);
	/* Directories come back as "name/". */
	if (!member || strncmp(member, name, strlen(name)) != 0 ||
	    (member[strlen(name)] && strcmp(member + strlen(name), "/") != 0)) {
		rc = ci_fail(call, CI_E_BACKEND, "tar: member '%s', expected '%s'",
			     member ? member : "?", name);
		goto out;
	}
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		break;
	case AE_IFLNK:
		rc = ci_fail(call, CI_E_INVAL, "'%s' is a symlink (not followed)", name);
		goto out;
	case AE_IFDIR:
		rc = ci_fail(call, CI_E_INVAL, "'%s' is a directory", name);
		goto out;
	default:
		rc = ci_fail(call, CI_E_INVAL, "'%s' is not a regular file", name);
		goto out;
	}
	buf = malloc(TAR_CHUNK);
	if (!buf) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	while ((n = archive_read_data(a, buf, TAR_CHUNK)) > 0) {
		if (out->write(out->ctx, CI_STREAM_DATA, buf, (size_t)n) != 0) {
			*stopped = true;
			goto out;
		}
	}
	if (n < 0)
		rc = ci_fail(call, CI_E_BACKEND, "tar: %s", archive_error_string(a));
out:
	free(buf);
	archive_read_free(a);
	return rc;
}
