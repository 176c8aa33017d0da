/*
 * put/get/list, each one exec in the pod. Each script checks the path
 * inside the sandbox before touching it: no component between /mnt/data
 * and the target may be a symlink (the code in the sandbox could have made
 * one pointing anywhere), and the target must be what the operation
 * expects. Nothing sandboxed runs between the check and the work: the host
 * serialises calls per sandbox and every exec wrapper kills what it left.
 *
 * put: the file travels as a tar on stdin (k8s_tar.c), streamed from the
 *   source; parents are made with mkdir -p after the check; a symlink at
 *   the target itself is replaced, never written through.
 * get: `tar -c` of the file on stdout, parsed as it streams (a symlink or
 *   anything but a regular file is refused).
 * list: find -P (never follows links) with NUL-separated records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "k8s.h"

#define PATH_CAP 4096

/* Exit codes shared by the scripts. */
enum { X_NOENT = 3, X_LINK = 4, X_NOTDIR = 5, X_ISDIR = 7 };

static const char put_script[] = "p=$1 d=${1%/*}\n"
				 "c=$d\n"
				 "while [ \"$c\" != /mnt/data ]; do\n"
				 "  [ -L \"$c\" ] && exit 4\n"
				 "  [ -e \"$c\" ] && ! [ -d \"$c\" ] && exit 5\n"
				 "  c=${c%/*}\n"
				 "done\n"
				 "[ -d \"$p\" ] && ! [ -L \"$p\" ] && exit 7\n"
				 "mkdir -p -- \"$d\" || exit 5\n"
				 "[ -L \"$p\" ] && { rm -f -- \"$p\" || exit 6; }\n"
				 "exec tar -x -p -f - -C \"$d\" --no-same-owner\n";

static const char get_script[] = "p=$1\n"
				 "[ -e \"$p\" ] || [ -L \"$p\" ] || exit 3\n"
				 "[ \"$(realpath -e -- \"$p\")\" = \"$p\" ] || exit 4\n"
				 "[ -f \"$p\" ] || exit 5\n"
				 "exec tar -c -f - -C \"${p%/*}\" -- \"${p##*/}\"\n";

static const char list_script[] =
	"d=$1\n"
	"[ -e \"$d\" ] || [ -L \"$d\" ] || exit 3\n"
	"[ \"$(realpath -e -- \"$d\")\" = \"$d\" ] || exit 4\n"
	"[ -d \"$d\" ] || exit 5\n"
	"cd -P -- \"$d\" && exec find . -mindepth 1 -printf '%y %s %T@ %m %P\\0'\n";

struct err_sink {
	struct k8s_buf err;
};

static void keep_err(struct k8s_buf *b, const void *buf, size_t len)
{
	if (b->len < 400)
		k8s_buf_add(b, buf, len < 400 - b->len ? len : 400 - b->len);
}

static int err_write(void *ctx, int stream, const void *buf, size_t len)
{
	if (stream == CI_STREAM_STDERR)
		keep_err(&((struct err_sink *)ctx)->err, buf, len);
	return 0;
}

static int usable(struct ci_be *be, const char *id, ci_call *call)
{
	return k8s_pod_usable(be, id, call);
}

int k8s_put(struct ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	    ci_call *call)
{
	char norm[PATH_CAP];
	const char *argv[] = {"/bin/sh", "-c", put_script, "ci-put", norm, NULL};
	struct err_sink es = {0};
	ci_sink sink = {err_write, &es};
	struct k8s_tar_out *t = NULL;
	ci_source tsrc;
	struct k8s_exec x = {.argv = argv, .in = &tsrc, .stdin_kind = K8S_STDIN_RAW, .out = &sink};
	struct k8s_exec_res r;
	int rc;

	rc = k8s_path_check(path, norm, sizeof(norm), call);
	if (rc != CI_OK)
		return rc;
	if (strcmp(norm, K8S_DATA_DIR) == 0)
		return ci_fail(call, CI_E_INVAL, "put: '%s' is the data directory", path);
	if (!src || src->size < 0 || (!src->read && src->fd < 0))
		return ci_fail(call, CI_E_INVAL, "put: bad source");
	if ((rc = usable(be, id, call)) != CI_OK)
		return rc;
	rc = k8s_tar_out_new(strrchr(norm, '/') + 1, mode & 07777 ? mode & 07777 : 0644,
			     be->host->wall_unix(be->host->hctx), src, &t, &tsrc, call);
	if (rc != CI_OK)
		return rc;
	rc = k8s_exec_run(be, id, &x, &r, call);
	if (rc != CI_OK) {
		ci_call tc = *call;

		if (k8s_tar_out_status(t, &tc) == CI_E_INVAL)
			rc = ci_fail(call, CI_E_INVAL, "put %s: %s", path, tc.err);
		goto out;
	}
	if (r.timed_out)
		rc = ci_fail(call, CI_E_TIMEOUT, "put %s: timed out", path);
	else if (r.status == X_LINK)
		rc = ci_fail(call, CI_E_INVAL,
			     "put %s: a parent directory is a symlink (not "
			     "followed)",
			     path);
	else if (r.status == X_NOTDIR)
		rc = ci_fail(call, CI_E_INVAL, "put %s: a parent is not a directory", path);
	else if (r.status == X_ISDIR)
		rc = ci_fail(call, CI_E_INVAL, "put %s: is a directory", path);
	else if (r.status != 0)
		rc = ci_fail(call,
			     strstr(k8s_buf_str(&es.err), "No space") ? CI_E_LIMIT : CI_E_BACKEND,
			     "put %s: exit %d: %s", path, r.status, k8s_buf_str(&es.err));
	else
		rc = k8s_tar_out_status(t, call);
out:
	k8s_tar_out_free(t);
	k8s_buf_release(&es.err);
	return rc;
}

struct get_sink {
	struct k8s_tar_in tin;
	struct k8s_buf err;
};

static int get_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct get_sink *gs = ctx;

	if (stream == CI_STREAM_STDERR)
		keep_err(&gs->err, buf, len);
	else
		k8s_tar_in_feed(&gs->tin, buf, len);
	return 0;
}

int k8s_get(struct ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call)
{
	char norm[PATH_CAP];
	const char *argv[] = {"/bin/sh", "-c", get_script, "ci-get", norm, NULL};
	struct get_sink gs = {0};
	ci_sink sink = {get_write, &gs};
	struct k8s_exec x = {.argv = argv, .out = &sink};
	struct k8s_exec_res r;
	int rc;

	rc = k8s_path_check(path, norm, sizeof(norm), call);
	if (rc != CI_OK)
		return rc;
	if (strcmp(norm, K8S_DATA_DIR) == 0)
		return ci_fail(call, CI_E_INVAL, "get: '%s' is a directory", path);
	if ((rc = usable(be, id, call)) != CI_OK)
		return rc;
	k8s_tar_in_init(&gs.tin, strrchr(norm, '/') + 1, out);
	rc = k8s_exec_run(be, id, &x, &r, call);
	if (rc != CI_OK)
		goto out;
	if (r.timed_out)
		rc = ci_fail(call, CI_E_TIMEOUT, "get %s: timed out", path);
	else if (r.status == X_NOENT)
		rc = ci_fail(call, CI_E_NOTFOUND, "get %s: no such file", path);
	else if (r.status == X_LINK)
		rc = ci_fail(call, CI_E_INVAL,
			     "get %s: is or is reached through a symlink (not "
			     "followed)",
			     path);
	else if (r.status == X_NOTDIR)
		rc = ci_fail(call, CI_E_INVAL, "get %s: not a regular file", path);
	else if (gs.tin.rc != CI_OK)
		rc = ci_fail(call, gs.tin.rc, "get %s: %s", path, gs.tin.err);
	else if (r.status != 0)
		rc = ci_fail(call, CI_E_BACKEND, "get %s: exit %d: %s", path, r.status,
			     k8s_buf_str(&gs.err));
	else if (!gs.tin.done || gs.tin.left)
		rc = ci_fail(call, CI_E_BACKEND, "get %s: the archive ended early", path);
out:
	k8s_tar_in_release(&gs.tin);
	k8s_buf_release(&gs.err);
	return rc;
}

/* One "%y %s %T@ %m %P" record (ci_find_record_parse). */
int k8s_listp_record(struct k8s_listp *p, const char *rec, size_t len)
{
	ci_entry e;

	if (ci_find_record_parse(rec, len, &e))
		return -1;
	p->count++;
	if (p->cb(p->ctx, &e) != 0)
		p->stopped = true;
	return 0;
}

int k8s_listp_feed(struct k8s_listp *p, const void *buf, size_t len)
{
	const char *b = buf, *z;

	while (len && !p->stopped && !p->bad) {
		z = memchr(b, '\0', len);
		if (!z) {
			if (k8s_buf_add(&p->rec, b, len))
				p->bad = true;
			break;
		}
		if (k8s_buf_add(&p->rec, b, (size_t)(z - b)) ||
		    k8s_listp_record(p, k8s_buf_str(&p->rec), p->rec.len))
			p->bad = true;
		p->rec.len = 0;
		len -= (size_t)(z - b) + 1;
		b = z + 1;
	}
	return p->bad ? -1 : 0;
}

struct list_sink {
	struct k8s_listp lp;
	struct k8s_buf err;
};

static int list_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct list_sink *ls = ctx;

	if (stream == CI_STREAM_STDERR)
		keep_err(&ls->err, buf, len);
	else
		k8s_listp_feed(&ls->lp, buf, len);
	return 0;
}

int k8s_list(struct ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
	     ci_call *call)
{
	char norm[PATH_CAP];
	const char *argv[] = {"/bin/sh", "-c", list_script, "ci-list", norm, NULL};
	struct list_sink ls = {.lp = {.cb = cb, .ctx = ctx}};
	ci_sink sink = {list_write, &ls};
	struct k8s_exec x = {.argv = argv, .out = &sink};
	struct k8s_exec_res r;
	int rc;

	rc = k8s_path_check(dir, norm, sizeof(norm), call);
	if (rc != CI_OK)
		return rc;
	if ((rc = usable(be, id, call)) != CI_OK)
		return rc;
	ls.lp.rec.max = PATH_CAP + 128;
	rc = k8s_exec_run(be, id, &x, &r, call);
	if (rc != CI_OK)
		goto out;
	if (r.timed_out)
		rc = ci_fail(call, CI_E_TIMEOUT, "list %s: timed out", dir);
	else if (ls.lp.bad || (!ls.lp.stopped && ls.lp.rec.len))
		rc = ci_fail(call, CI_E_BACKEND, "list %s: malformed find output", dir);
	else if (r.status == X_NOENT)
		rc = ci_fail(call, CI_E_NOTFOUND, "list %s: no such directory", dir);
	else if (r.status == X_LINK)
		rc = ci_fail(call, CI_E_INVAL, "list %s: reached through a symlink", dir);
	else if (r.status == X_NOTDIR)
		rc = ci_fail(call, CI_E_INVAL, "list %s: not a directory", dir);
	else if (r.status == 1)
		/* find could not read a directory the code made unreadable */
		be->host->log(be->host->hctx, CI_LOG_WARN, "k8s: list %s: %s", dir,
			      k8s_buf_str(&ls.err));
	else if (r.status != 0 && !ls.lp.stopped)
		rc = ci_fail(call, CI_E_BACKEND, "list %s: exit %d: %s", dir, r.status,
			     k8s_buf_str(&ls.err));
out:
	k8s_buf_release(&ls.lp.rec);
	k8s_buf_release(&ls.err);
	return rc;
}
