/*
 * Daytona backend: files. put streams a multipart body into the toolbox's
 * /files/bulk-upload, get streams /files/download into the caller's sink,
 * and list runs find(1) through the exec wrapper, because the toolbox's
 * own listing stat()s entries (a symlink looks like its target and a
 * dangling one disappears), which would break "symlinks are reported,
 * never followed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ci/backend_util.h"
#include "daytona.h"

#define DT_FS_TIMEOUT_MS 30000

int dt_map_path(ci_be *be, const char *path, int allow_root, struct dt_buf *out, ci_call *call)
{
	size_t rl = strlen(DT_DATA_ROOT);
	const char *p, *q;
	int parts = 0;

	if (!path || strncmp(path, DT_DATA_ROOT, rl) || (path[rl] && path[rl] != '/'))
		return ci_fail(call, CI_E_INVAL, "path %.80s is outside %s", path ? path : "(null)",
			       DT_DATA_ROOT);
	if (dt_buf_str(out, be->conf.data_dir))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	for (p = path + rl; *p; p = q) {
		size_t n;

		while (*p == '/')
			p++;
		q = strchr(p, '/');
		if (!q)
			q = p + strlen(p);
		n = (size_t)(q - p);
		if (!n)
			break;
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return ci_fail(call, CI_E_INVAL, "path %.80s has . or .. parts", path);
		if (dt_buf_add(out, "/", 1) || dt_buf_add(out, p, n))
			return ci_fail(call, CI_E_NOMEM, "out of memory");
		parts++;
	}
	if (!parts && !allow_root)
		return ci_fail(call, CI_E_INVAL, "path %s names the data directory itself", path);
	return CI_OK;
}

static int64_t dt_fs_timeout(ci_be *be, const ci_call *call)
{
	int64_t left = ci_call_left_ms(be->host, call);

	return left < DT_FS_TIMEOUT_MS ? (left > 1000 ? left - 500 : left) : DT_FS_TIMEOUT_MS;
}

/* --- put ---------------------------------------------------------------------- */

struct dt_mp {
	const ci_source *src;
	struct dt_buf head, tail;
	int64_t off, total;
};

static ssize_t dt_mp_read(void *ctx, void *buf, size_t cap)
{
	struct dt_mp *mp = ctx;
	int64_t hl = (int64_t)mp->head.len, sz = mp->src->size;
	size_t n;

	if (mp->off < hl) {
		n = (size_t)(hl - mp->off) < cap ? (size_t)(hl - mp->off) : cap;
		memcpy(buf, mp->head.data + mp->off, n);
	} else if (mp->off < hl + sz) {
		int64_t left = hl + sz - mp->off;
		ssize_t r;

		n = (size_t)left < cap ? (size_t)left : cap;
		if (mp->src->fd >= 0)
			r = pread(mp->src->fd, buf, n, (off_t)(mp->off - hl));
		else
			r = mp->src->read(mp->src->ctx, buf, n);
		if (r <= 0)
			return -1; /* error, or the source is shorter than its size */
		n = (size_t)r;
	} else {
		int64_t t = mp->off - hl - sz;

		if (t >= (int64_t)mp->tail.len)
			return 0;
		n = mp->tail.len - (size_t)t < cap ? mp->tail.len - (size_t)t : cap;
		memcpy(buf, mp->tail.data + t, n);
	}
	mp->off += (int64_t)n;
	return (ssize_t)n;
}

static int dt_mp_rewind(void *ctx)
{
	struct dt_mp *mp = ctx;

	if (mp->off && mp->src->fd < 0 && mp->off > (int64_t)mp->head.len)
		return -1;
	mp->off = 0;
	return 0;
}

/*
 * Move the staged upload into place: only when its directory resolves
 * inside data_dir without a symlink, with rename(2) (mv -T), which replaces
 * a symlink at the target instead of writing through it and never leaves a
 * half-written file behind.
 */
static int dt_place(ci_be *be, const char *id, const char *tmp, const char *dest, const char *dir,
		    uint32_t mode, const char *path, ci_call *call)
{
	static const char place[] =
		"r=$(realpath -e -- \"$4\") && d=$(realpath -e -- \"$3\") && [ \"$d\" = \"$r$5\" ] "
		"||"
		" { rm -f -- \"$1\"; echo 'resolves through a symlink' >&2; exit 3; }\n"
		"chmod \"$6\" -- \"$1\" && mv -fT -- \"$1\" \"$2\" || { rm -f -- \"$1\"; exit 4; "
		"}\n";
	char m[16];
	const char *argv[] = {"sh",
			      "-c",
			      place,
			      "sh",
			      tmp,
			      dest,
			      dir,
			      be->conf.data_dir,
			      dir + strlen(be->conf.data_dir),
			      m,
			      NULL};
	struct dt_script s = {.argv = argv, .cwd = "/", .max_output = 4096};
	struct dt_framed f;
	int rc, to;

	snprintf(m, sizeof(m), "%o", (unsigned)(mode ? mode & 07777 : 0644));
	s.timeout_ms = dt_fs_timeout(be, call);
	rc = dt_run_framed(be, id, &s, &f, &to, call);
	if (rc)
		return rc;
	if (to || f.exit_code == 3)
		rc = ci_fail(call, CI_E_INVAL, "put %s: the directory resolves through a symlink",
			     path);
	else if (f.exit_code)
		rc = ci_fail(call, CI_E_INVAL, "put %s: cannot replace it: %.100s", path,
			     f.err.data ? f.err.data : "");
	dt_framed_free(&f);
	return rc;
}

static void dt_unstage(ci_be *be, const char *id, const char *tmp, ci_call *call)
{
	const char *argv[] = {"rm", "-f", "--", tmp, NULL};
	struct dt_script s = {.argv = argv, .cwd = "/", .max_output = 1024, .timeout_ms = 5000};
	struct dt_framed f;
	ci_call sub = *call;
	int to;

	sub.struct_size = sizeof(sub);
	sub.deadline_ms = dt_now(be) + 8000;
	if (!dt_run_framed(be, id, &s, &f, &to, &sub))
		dt_framed_free(&f);
}

int dt_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	   ci_call *call)
{
	struct dt_mp mp = {.src = src};
	struct dt_buf dest = {0}, tmp = {0}, dir = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "POST",
			     .flags = DT_IDEMPOTENT | DT_UPLOAD,
			     .rewind = dt_mp_rewind,
			     .rewind_ctx = &mp};
	char bnd[48], ctype[96], rnd[25], *slash;
	ci_source body = {dt_mp_read, &mp, 0, -1};
	json_t *j = NULL, *f0;
	int rc, staged = 0;

	rc = dt_check_id(id, call);
	if (rc)
		return rc == CI_E_INVAL ? CI_E_NOTFOUND : rc;
	if (!src || src->size < 0 || (!src->read && src->fd < 0))
		return ci_fail(call, CI_E_INVAL, "put: bad source");
	rc = dt_map_path(be, path, 0, &dest, call);
	if (rc)
		goto out;
	/* stage next to the target (same filesystem), then rename into place */
	dt_random_hex(rnd, 12);
	slash = strrchr(dest.data, '/');
	if (dt_buf_add(&tmp, dest.data, (size_t)(slash - dest.data)) ||
	    dt_buf_printf(&tmp, "/.ci-put-%s", rnd)) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	snprintf(bnd, sizeof(bnd), "ci-daytona-%s", rnd);
	snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s", bnd);
	/* the .path part must precede its .file part (daytona-api.md 6.4) */
	if (dt_buf_printf(&mp.head,
			  "--%s\r\nContent-Disposition: form-data; name=\"files[0].path\"\r\n\r\n"
			  "%s\r\n--%s\r\nContent-Disposition: form-data; name=\"files[0].file\"; "
			  "filename=\"upload\"\r\nContent-Type: application/octet-stream\r\n\r\n",
			  bnd, tmp.data, bnd) ||
	    dt_buf_printf(&mp.tail, "\r\n--%s--\r\n", bnd)) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	mp.total = (int64_t)mp.head.len + src->size + (int64_t)mp.tail.len;
	body.size = mp.total;
	req.ctype = ctype;
	req.body_src = &body;
	staged = 1;
	rc = dt_toolbox(be, id, "/files/bulk-upload", &req, &resp, call);
	if (rc)
		goto out;
	if (resp.status != 200) {
		rc = dt_http_fail(be, &resp, 1, "put", call);
		if (rc == CI_E_NOTFOUND || rc == CI_E_EXISTS)
			rc = CI_E_BACKEND;
		goto out;
	}
	j = dt_json(&resp);
	f0 = json_array_get(json_object_get(j, "files"), 0);
	if (f0 && json_integer_value(json_object_get(f0, "bytes")) != src->size) {
		rc = ci_fail(call, CI_E_BACKEND, "put %s: sandbox stored %lld of %lld bytes", path,
			     (long long)json_integer_value(json_object_get(f0, "bytes")),
			     (long long)src->size);
		goto out;
	}
	*slash = '\0';
	rc = dt_buf_str(&dir, dest.data) ? ci_fail(call, CI_E_NOMEM, "out of memory") : CI_OK;
	*slash = '/';
	if (!rc)
		rc = dt_place(be, id, tmp.data, dest.data, dir.data, mode, path, call);
	staged = 0;
out:
	if (rc && staged && rc != CI_E_NOTFOUND)
		dt_unstage(be, id, tmp.data, call);
	json_decref(j);
	dt_resp_free(&resp);
	dt_buf_free(&dest);
	dt_buf_free(&tmp);
	dt_buf_free(&dir);
	dt_buf_free(&mp.head);
	dt_buf_free(&mp.tail);
	return rc;
}

/* --- get ------------------------------------------------------------------------ */

/* Refuse a path that is missing, not a regular file, or reached through a symlink. */
static int dt_check_regular(ci_be *be, const char *id, const char *dest, const char *path,
			    ci_call *call)
{
	const char *argv[] = {"test", "-f", dest, NULL};
	struct dt_script s = {.argv = argv, .cwd = "/", .max_output = 4096};
	struct dt_framed f;
	int rc, to;

	s.nolink_path = dest;
	s.nolink_root = be->conf.data_dir;
	s.timeout_ms = dt_fs_timeout(be, call);
	rc = dt_run_framed(be, id, &s, &f, &to, call);
	if (rc)
		return rc;
	if (f.status == 'N')
		rc = ci_fail(call, CI_E_NOTFOUND, "no file %s", path);
	else if (f.status == 'L')
		rc = ci_fail(call, CI_E_INVAL, "%s resolves through a symlink", path);
	else if (to || f.exit_code)
		rc = ci_fail(call, CI_E_INVAL, "%s is not a regular file", path);
	dt_framed_free(&f);
	return rc;
}

int dt_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call)
{
	struct dt_buf dest = {0}, sub = {0};
	struct dt_resp resp = {0};
	struct dt_req req = {.method = "GET",
			     .accept = "application/octet-stream",
			     .flags = DT_IDEMPOTENT,
			     .sink = out};
	int rc;

	rc = dt_check_id(id, call);
	if (rc)
		return rc == CI_E_INVAL ? CI_E_NOTFOUND : rc;
	rc = dt_map_path(be, path, 0, &dest, call);
	if (rc)
		goto out;
	if (be->conf.get_refuse_symlinks) {
		rc = dt_check_regular(be, id, dest.data, path, call);
		if (rc)
			goto out;
	}
	if (dt_buf_str(&sub, "/files/download?path=") || dt_buf_urlenc(&sub, dest.data)) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	/* big files take long: the call's deadline bounds this, not request_timeout_ms */
	req.deadline_ms = call->deadline_ms;
	rc = dt_toolbox(be, id, sub.data, &req, &resp, call);
	if (rc)
		goto out;
	if (resp.status == 404)
		rc = ci_fail(call, CI_E_NOTFOUND, "no file %s", path);
	else if (resp.status == 400)
		rc = ci_fail(call, CI_E_INVAL, "%s is not a regular file", path);
	else if (resp.status != 200)
		rc = dt_http_fail(be, &resp, 1, "get", call);
out:
	dt_resp_free(&resp);
	dt_buf_free(&sub);
	dt_buf_free(&dest);
	return rc;
}

/* --- list ------------------------------------------------------------------------- */

int dt_list_parse(const char *data, size_t len, ci_entry_cb cb, void *ctx)
{
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		char rec[4096], type, mt[48], *path;
		long long size;
		unsigned mode;
		int used = 0;
		ci_entry e = {0};

		if (!z)
			return -1; /* truncated record */
		if ((size_t)(z - p) >= sizeof(rec)) {
			p = z + 1;
			continue;
		}
		memcpy(rec, p, (size_t)(z - p));
		rec[z - p] = '\0';
		p = z + 1;
		if (sscanf(rec, "%c %lld %47s %o %n", &type, &size, mt, &mode, &used) != 4 || !used)
			return -1;
		path = rec + used;
		if (!*path)
			continue;
		e.path = path;
		e.type = type == 'f'   ? CI_ENTRY_FILE
			 : type == 'd' ? CI_ENTRY_DIR
			 : type == 'l' ? CI_ENTRY_SYMLINK
				       : CI_ENTRY_OTHER;
		e.size = e.type == CI_ENTRY_FILE ? size : 0;
		e.mode = mode & 07777;
		{
			char *dot = strchr(mt, '.');
			long long sec = strtoll(mt, NULL, 10), ns = 0;
			int digits = 0;

			for (dot = dot ? dot + 1 : NULL;
			     dot && *dot >= '0' && *dot <= '9' && digits < 9; dot++, digits++)
				ns = ns * 10 + (*dot - '0');
			for (; digits < 9; digits++)
				ns *= 10;
			e.mtime_ns = sec * 1000000000LL + ns;
		}
		if (cb(ctx, &e))
			return 1;
	}
	return 0;
}

int dt_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx, ci_call *call)
{
	const char *argv[] = {"find", ".", "-mindepth", "1", "-printf", "%y %s %T@ %m %P\\0", NULL};
	struct dt_buf d = {0};
	struct dt_script s = {.argv = argv};
	struct dt_framed f = {0};
	int rc, to;

	rc = dt_check_id(id, call);
	if (rc)
		return rc == CI_E_INVAL ? CI_E_NOTFOUND : rc;
	rc = dt_map_path(be, dir, 1, &d, call);
	if (rc)
		goto out;
	s.cwd = d.data;
	s.nolink_path = d.data;
	s.nolink_root = be->conf.data_dir;
	s.max_output = be->conf.max_output_bytes;
	s.timeout_ms = dt_fs_timeout(be, call);
	rc = dt_run_framed(be, id, &s, &f, &to, call);
	if (rc)
		goto out;
	if (f.status == 'N' || f.status == 'C')
		rc = ci_fail(call, CI_E_NOTFOUND, "no directory %s", dir);
	else if (f.status == 'L')
		rc = ci_fail(call, CI_E_INVAL, "%s resolves through a symlink", dir);
	else if (to)
		rc = ci_fail(call, CI_E_TIMEOUT, "list %s: find timed out", dir);
	else if (f.out_size > (int64_t)f.out.len)
		rc = ci_fail(call, CI_E_LIMIT, "list %s: more than %lld bytes of entries", dir,
			     (long long)s.max_output);
	if (rc)
		goto out;
	if (f.exit_code)
		be->host->log(be->host->hctx, CI_LOG_WARN, "daytona: find in %s exited %d: %.100s",
			      dir, f.exit_code, f.err.data ? f.err.data : "");
	if (dt_list_parse(f.out.data, f.out.len, cb, ctx) < 0)
		rc = ci_fail(call, CI_E_BACKEND, "list %s: unparsable find output", dir);
out:
	dt_framed_free(&f);
	dt_buf_free(&d);
	return rc;
}
