/*
 * put/get through the archive API, list through an exec of find(1).
 *
 * put: PUT /containers/{id}/archive?path=/mnt/data with a tar built on the
 *   fly (eng_tar.c) holding the parents and the file, owned by the sandbox
 *   user; the parents of a nested path are checked for symlinks first.
 *   Content-Type must be application/x-tar: with curl's default form type
 *   both engines answer 200 and extract nothing.
 * get (docker, files directly in /mnt/data): GET .../archive?path=...
 *   streams a tar. The host pushes the body into a sink while libarchive
 *   wants to pull, so a helper thread runs the request and pumps the body
 *   into a socket pair that libarchive reads on this thread; only socket
 *   buffers sit in between. A symlink comes back as a link entry and is
 *   refused (never followed). podman follows such links, and docker follows
 *   symlinked directories, so there get is an exec (get_by_exec below).
 * list: find -P never follows links; the directory itself must not be
 *   reached through a symlink (realpath check), paths are NUL-separated.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ci/backend_util.h"
#include "engine.h"

#define PATH_CAP 4096

static const char list_script[] =
	"d=$1\n"
	"[ -e \"$d\" ] || [ -L \"$d\" ] || exit 3\n"
	"[ \"$(realpath -e -- \"$d\")\" = \"$d\" ] || exit 4\n"
	"[ -d \"$d\" ] || exit 5\n"
	"cd -P -- \"$d\" && exec find . -mindepth 1 -printf '%y %s %T@ %m %P\\0'\n";

/* Every existing parent of $1 below /mnt/data must be a real directory. */
static const char parents_script[] = "d=${1%/*}\n"
				     "while [ \"$d\" != /mnt/data ]; do\n"
				     "  [ -L \"$d\" ] && exit 4\n"
				     "  [ -e \"$d\" ] && ! [ -d \"$d\" ] && exit 5\n"
				     "  d=${d%/*}\n"
				     "done\n"
				     "exit 0\n";

/* A path with a directory between /mnt/data and its last component. */
static bool nested(const char *norm)
{
	return strchr(norm + sizeof(ENG_DATA_DIR), '/') != NULL;
}

struct null_sink {
	struct eng_buf err;
};

static int null_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct null_sink *ns = ctx;

	if (stream == CI_STREAM_STDERR)
		eng_buf_append(&ns->err, buf, len);
	return 0;
}

/*
 * The archive API resolves symlinks in the directories of a path (docker
 * within the container, but still into what the code made them point to)
 * and replaces a symlinked directory by a real one when extracting. So a
 * nested path is checked first, inside the sandbox, by an exec. Nothing of
 * the sandbox runs between that check and the archive call: the exec
 * wrapper leaves no process behind and the host serialises per sandbox.
 */
static int check_parents(struct ci_be *be, const char *id, const char *norm, const char *path,
			 ci_call *call)
{
	const char *argv[] = {"/bin/sh", "-c", parents_script, "ci-parents", norm, NULL};
	struct null_sink ns = {.err = {.max = 512}};
	ci_sink sink = {null_write, &ns};
	struct eng_exec x = {.argv = argv, .user = be->conf.user, .out = &sink};
	struct eng_exec_res r;
	int rc;

	rc = eng_exec_run(be, id, &x, &r, call);
	if (rc == CI_OK && r.status == 4)
		rc = ci_fail(call, CI_E_INVAL, "%s: a parent directory is a symlink (not followed)",
			     path);
	else if (rc == CI_OK && r.status == 5)
		rc = ci_fail(call, CI_E_INVAL, "%s: a parent is not a directory", path);
	else if (rc == CI_OK && r.status != 0)
		rc = ci_fail(call, CI_E_BACKEND, "%s: parent check exit %d: %s", path, r.status,
			     eng_buf_str(&ns.err));
	eng_buf_release(&ns.err);
	return rc;
}

static void user_ids(const char *user, unsigned *uid, unsigned *gid)
{
	*uid = 1000;
	*gid = 1000;
	sscanf(user, "%u:%u", uid, gid);
}

int eng_put(struct ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	    ci_call *call)
{
	struct eng_req req = {.method = "PUT"};
	struct eng_resp resp = {0};
	struct eng_tar_src *ts = NULL;
	struct eng_buf url = {0};
	char norm[PATH_CAP];
	ci_source tsrc;
	unsigned uid, gid;
	int rc;

	rc = eng_path_check(path, norm, sizeof(norm), call);
	if (rc != CI_OK)
		return rc;
	if (strcmp(norm, ENG_DATA_DIR) == 0)
		return ci_fail(call, CI_E_INVAL, "put: '%s' is the data directory", path);
	if (!src || src->size < 0 || (!src->read && src->fd < 0))
		return ci_fail(call, CI_E_INVAL, "put: bad source");
	if (nested(norm) && (rc = check_parents(be, id, norm, path, call)) != CI_OK)
		return rc;
	user_ids(be->conf.user, &uid, &gid);
	rc = eng_tar_src_new(norm + sizeof(ENG_DATA_DIR), mode & 07777 ? mode & 07777 : 0644,
			     be->host->wall_unix(be->host->hctx), uid, gid, src, &ts, &tsrc, call);
	if (rc != CI_OK)
		return rc;
	eng_buf_printf(&url, "/containers/%s/archive?path=" ENG_DATA_DIR, id);
	req.path = eng_buf_str(&url);
	req.body_src = &tsrc;
	req.content_type = "Content-Type: application/x-tar";
	rc = eng_call(be, &req, &resp, call);
	if (rc != CI_OK) {
		/* A short or failing source surfaces here as an aborted upload. */
		ci_call tc = *call;

		if (eng_tar_src_status(ts, &tc) == CI_E_INVAL)
			rc = ci_fail(call, CI_E_INVAL, "put %s: %s", path, tc.err);
		goto out;
	}
	if (resp.status == 404 ||
	    (resp.status >= 500 && strstr(eng_err_text(&resp), "no such container"))) {
		rc = ci_fail(call, CI_E_NOTFOUND, "sandbox %.12s is gone: %s", id,
			     eng_err_text(&resp));
		goto out;
	}
	if (resp.status != 200) {
		rc = eng_fail_status(be, &resp, call, "put");
		if (rc == CI_E_NOTFOUND || rc == CI_E_EXISTS)
			rc = CI_E_BACKEND;
		goto out;
	}
	rc = eng_tar_src_status(ts, call);
out:
	eng_tar_src_free(ts);
	eng_buf_release(&url);
	eng_resp_release(&resp);
	return rc;
}

struct pump {
	struct ci_be *be;
	struct eng_req req;
	struct eng_resp resp; /* status; body keeps only an error's first bytes */
	ci_call call;
	int fd;
	int rc;
};

static int pump_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct pump *p = ctx;
	const char *b = buf;
	ssize_t n;

	(void)stream;
	if (p->resp.body.len < 1024)
		eng_buf_append(&p->resp.body, b, len < 1024 ? len : 1024);
	while (len) {
		n = send(p->fd, b, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1; /* the reader is done or gone */
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *pump_main(void *arg)
{
	struct pump *p = arg;
	ci_sink sink = {pump_write, p};

	p->req.sink = &sink;
	p->rc = eng_call(p->be, &p->req, &p->resp, &p->call);
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

static const char get_script[] = "p=$1\n"
				 "[ -e \"$p\" ] || [ -L \"$p\" ] || exit 3\n"
				 "[ \"$(realpath -e -- \"$p\")\" = \"$p\" ] || exit 4\n"
				 "[ -f \"$p\" ] || exit 5\n"
				 "exec cat -- \"$p\"\n";

struct get_sink {
	const ci_sink *out;
	bool stopped;
	struct eng_buf err;
};

static int get_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct get_sink *gs = ctx;

	if (stream == CI_STREAM_STDERR) {
		eng_buf_append(&gs->err, buf, len);
		return 0;
	}
	if (!gs->stopped && gs->out->write(gs->out->ctx, CI_STREAM_DATA, buf, len))
		gs->stopped = true;
	return 0;
}

/*
 * podman's archive GET follows a symlink in the last component (it returns
 * the target's bytes under the link's name), and docker's follows symlinked
 * directories on the way. So on podman, and for nested paths on docker, the
 * file is read by an exec that checks inside the sandbox that no component
 * of the path is a symlink and that it is a regular file, then cats it
 * (binary-safe through the stream framing). No sandboxed process runs
 * between the check and the read: the exec wrapper leaves none behind.
 */
static int get_by_exec(struct ci_be *be, const char *id, const char *norm, const char *path,
		       const ci_sink *out, ci_call *call)
{
	const char *argv[] = {"/bin/sh", "-c", get_script, "ci-get", norm, NULL};
	struct get_sink gs = {.out = out, .err = {.max = 512}};
	ci_sink sink = {get_write, &gs};
	struct eng_exec x = {.argv = argv, .user = be->conf.user, .out = &sink};
	struct eng_exec_res r;
	int rc;

	rc = eng_exec_run(be, id, &x, &r, call);
	if (rc != CI_OK)
		goto out;
	if (r.timed_out)
		rc = ci_fail(call, CI_E_TIMEOUT, "get %s: timed out", path);
	else if (r.status == 3)
		rc = ci_fail(call, CI_E_NOTFOUND, "get %s: no such file", path);
	else if (r.status == 4)
		rc = ci_fail(call, CI_E_INVAL,
			     "get %s: is or is reached through a symlink "
			     "(not followed)",
			     path);
	else if (r.status == 5)
		rc = ci_fail(call, CI_E_INVAL, "get %s: not a regular file", path);
	else if (r.status != 0 && !gs.stopped)
		rc = ci_fail(call, CI_E_BACKEND, "get %s: exit %d: %s", path, r.status,
			     eng_buf_str(&gs.err));
out:
	eng_buf_release(&gs.err);
	return rc;
}

int eng_get(struct ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call)
{
	struct pump p = {.be = be};
	struct eng_buf url = {0};
	char norm[PATH_CAP], junk[4096];
	const char *name;
	pthread_t th;
	bool stopped = false;
	int sv[2], rc, xrc;
	size_t drained = 0;
	ssize_t n;

	rc = eng_path_check(path, norm, sizeof(norm), call);
	if (rc != CI_OK)
		return rc;
	if (strcmp(norm, ENG_DATA_DIR) == 0)
		return ci_fail(call, CI_E_INVAL, "get: '%s' is a directory", path);
	if (be->kind == ENG_KIND_PODMAN || nested(norm))
		return get_by_exec(be, id, norm, path, out, call);
	name = strrchr(norm, '/') + 1;
	eng_buf_printf(&url, "/containers/%s/archive?path=", id);
	if (eng_url_escape(&url, norm))
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		eng_buf_release(&url);
		return ci_fail(call, CI_E_INTERNAL, "socketpair: %s", strerror(errno));
	}
	p.req = (struct eng_req){.method = "GET", .path = eng_buf_str(&url)};
	p.call = *call;
	p.fd = sv[1];
	p.resp.body.max = 0;
	if (pthread_create(&th, NULL, pump_main, &p)) {
		close(sv[0]);
		close(sv[1]);
		eng_buf_release(&url);
		return ci_fail(call, CI_E_INTERNAL, "get: cannot start a thread");
	}
	xrc = eng_tar_extract_one(sv[0], name, out, &stopped, call);
	/* Let the tar trailer through so the request ends cleanly. */
	if (xrc == CI_OK && !stopped)
		while (drained < (1u << 20) && (n = read(sv[0], junk, sizeof(junk))) > 0)
			drained += (size_t)n;
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(th, NULL);
	close(sv[0]);
	close(sv[1]);

	if (p.rc != CI_OK && !(stopped && p.resp.status == 200)) {
		rc = ci_fail(call, p.rc, "%s", p.call.err);
	} else if (p.resp.status == 404) {
		rc = ci_fail(call, CI_E_NOTFOUND, "get %s: %s", path, eng_err_text(&p.resp));
	} else if (p.resp.status >= 500 && strstr(eng_err_text(&p.resp), "no such file")) {
		rc = ci_fail(call, CI_E_NOTFOUND, "get %s: %s", path, eng_err_text(&p.resp));
	} else if (p.resp.status != 200) {
		rc = eng_fail_status(be, &p.resp, call, "get");
	} else {
		rc = xrc;
	}
	eng_resp_release(&p.resp);
	eng_buf_release(&url);
	return rc;
}

/* One "%y %s %T@ %m %P" record (ci_find_record_parse). */
int eng_listp_record(struct eng_listp *p, const char *rec, size_t len)
{
	ci_entry e;

	if (ci_find_record_parse(rec, len, &e))
		return -1;
	p->count++;
	if (p->cb(p->ctx, &e) != 0)
		p->stopped = true;
	return 0;
}

int eng_listp_feed(struct eng_listp *p, const void *buf, size_t len)
{
	const char *b = buf, *z;

	while (len && !p->stopped && !p->bad) {
		z = memchr(b, '\0', len);
		if (!z) {
			if (eng_buf_append(&p->rec, b, len))
				p->bad = true;
			break;
		}
		if (eng_buf_append(&p->rec, b, (size_t)(z - b)) ||
		    eng_listp_record(p, eng_buf_str(&p->rec), p->rec.len))
			p->bad = true;
		p->rec.len = 0;
		len -= (size_t)(z - b) + 1;
		b = z + 1;
	}
	return p->bad ? -1 : 0;
}

struct list_sink {
	struct eng_listp lp;
	struct eng_buf err;
};

static int list_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct list_sink *ls = ctx;

	if (stream == CI_STREAM_STDERR) {
		eng_buf_append(&ls->err, buf, len); /* capped by err.max */
		return 0;
	}
	eng_listp_feed(&ls->lp, buf, len);
	return 0;
}

int eng_list(struct ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
	     ci_call *call)
{
	char norm[PATH_CAP];
	const char *argv[] = {"/bin/sh", "-c", list_script, "ci-list", norm, NULL};
	struct list_sink ls = {.lp = {.cb = cb, .ctx = ctx}, .err = {.max = 512}};
	ci_sink sink = {list_write, &ls};
	struct eng_exec x = {.argv = argv, .user = be->conf.user, .out = &sink};
	struct eng_exec_res r;
	int rc;

	rc = eng_path_check(dir, norm, sizeof(norm), call);
	if (rc != CI_OK)
		return rc;
	ls.lp.rec.max = PATH_CAP + 128;
	rc = eng_exec_run(be, id, &x, &r, call);
	if (rc != CI_OK)
		goto out;
	if (r.timed_out) {
		rc = ci_fail(call, CI_E_TIMEOUT, "list %s: timed out", dir);
	} else if (ls.lp.bad || (!ls.lp.stopped && ls.lp.rec.len)) {
		rc = ci_fail(call, CI_E_BACKEND, "list %s: malformed find output", dir);
	} else if (r.status == 3) {
		rc = ci_fail(call, CI_E_NOTFOUND, "list %s: no such directory", dir);
	} else if (r.status == 4) {
		rc = ci_fail(call, CI_E_INVAL, "list %s: reached through a symlink", dir);
	} else if (r.status == 5) {
		rc = ci_fail(call, CI_E_INVAL, "list %s: not a directory", dir);
	} else if (r.status == 1) {
		/* find could not read some directory the code made unreadable. */
		be->host->log(be->host->hctx, CI_LOG_WARN, "%s: list %s: %s", be->prof->name, dir,
			      eng_buf_str(&ls.err));
	} else if (r.status != 0) {
		rc = ci_fail(call, CI_E_BACKEND, "list %s: exit %d: %s", dir, r.status,
			     eng_buf_str(&ls.err));
	}
out:
	eng_buf_release(&ls.lp.rec);
	eng_buf_release(&ls.err);
	return rc;
}
