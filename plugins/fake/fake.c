/*
 * ci-backend-fake.so: sandboxes are directories, exec runs on the host.
 *
 * The seam for core tests (scripted faults and a call log, see fake_fault.c)
 * and the smallest complete backend to read when writing a new one. It is
 * NOT a sandbox: exec gives programs the host, as the server's user.
 *
 * Config (backends.fake): root (sandbox directory; default a fresh mkdtemp
 * directory removed at fini), script (fault file, like $CI_FAKE_SCRIPT),
 * call_log (like $CI_FAKE_LOG), fail.<op>, delay_ms.<op>.
 */
#define _GNU_SOURCE
#include "fake.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CI_BACKEND_VERSION
#define CI_BACKEND_VERSION "0.0.0"
#endif

#define META_MAX 4096

static char *mem_strdup(const ci_host *h, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = h->mem_alloc(h->hctx, n);

	if (d)
		memcpy(d, s, n);
	return d;
}

static int fake_init(const ci_host *host, ci_be **out, ci_call *call)
{
	char tmpl[FAKE_PATH];
	const char *root = NULL, *tmp;
	struct ci_be *be;
	int rc;

	be = host->mem_alloc(host->hctx, sizeof(*be));
	if (!be)
		return ci_fail(call, CI_E_NOMEM, "fake: out of memory");
	*be = (struct ci_be){.host = host, .root_fd = -1};
	rc = fake_fault(be, "init", call);
	if (rc)
		goto out_free;
	rc = host->cfg_str(host->hctx, "root", &root);
	if (rc == CI_E_INVAL) {
		rc = ci_fail(call, CI_E_INVAL, "fake: backends.fake.root must be a string");
		goto out_free;
	}
	if (root) {
		if (mkdir(root, 0700) && errno != EEXIST) {
			rc = ci_fail(call, CI_E_INVAL, "fake: root %s: %s", root, strerror(errno));
			goto out_free;
		}
		be->root = mem_strdup(host, root);
	} else {
		tmp = getenv("TMPDIR");
		snprintf(tmpl, sizeof(tmpl), "%s/ci-fake-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(tmpl)) {
			rc = ci_fail(call, CI_E_UNAVAIL, "fake: mkdtemp %s: %s", tmpl,
				     strerror(errno));
			goto out_free;
		}
		be->own_root = true;
		be->root = mem_strdup(host, tmpl);
	}
	if (!be->root) {
		rc = ci_fail(call, CI_E_NOMEM, "fake: out of memory");
		goto out_free;
	}
	be->root_fd = open(be->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (be->root_fd < 0) {
		rc = ci_fail(call, CI_E_INVAL, "fake: root %s: %s", be->root, strerror(errno));
		goto out_free;
	}
	host->log(host->hctx, CI_LOG_WARN,
		  "fake.init root=%s sandboxed=NO: exec runs programs directly on this host as "
		  "uid %d; for tests only, never serve untrusted code with it",
		  be->root, (int)getuid());
	*out = be;
	return CI_OK;

out_free:
	if (be->own_root && be->root)
		rmdir(be->root);
	host->mem_free(host->hctx, be->root);
	host->mem_free(host->hctx, be);
	return rc;
}

static void fake_fini(ci_be *be)
{
	const ci_host *h = be->host;

	/* A temporary root is unreachable after us: take it along. */
	if (be->own_root)
		fake_rm_tree(AT_FDCWD, be->root);
	close(be->root_fd);
	h->mem_free(h->hctx, be->root);
	h->mem_free(h->hctx, be);
}

static bool label_ok(const char *s)
{
	return !s || (!strpbrk(s, "\n\r") && strlen(s) < 256);
}

static int write_file_at(int dfd, const char *name, const char *data, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int write_box(struct ci_be *be, int box, const ci_create_spec *spec, ci_call *call)
{
	char meta[META_MAX], envbuf[META_MAX * 4];
	size_t m, e = 0, n;

	m = (size_t)snprintf(
		meta, sizeof(meta), "owner=%s\nsession=%s\nruntime=%s\ncreated=%lld\ndisk=%lld\n",
		spec->owner ? spec->owner : "", spec->session ? spec->session : "",
		spec->runtime ? spec->runtime : "", (long long)be->host->wall_unix(be->host->hctx),
		(long long)spec->disk_bytes);
	for (int i = 0; spec->env && spec->env[i]; i++) {
		n = strlen(spec->env[i]) + 1;
		if (!strchr(spec->env[i], '=') || e + n > sizeof(envbuf))
			return ci_fail(call, CI_E_INVAL,
				       "fake: env entry %d is not K=V or too "
				       "long",
				       i);
		memcpy(envbuf + e, spec->env[i], n);
		e += n;
	}
	if (mkdirat(box, "data", 0755) || write_file_at(box, "env", envbuf, e) ||
	    write_file_at(box, "meta", meta, m))
		return ci_fail(call, CI_E_BACKEND, "fake: writing the sandbox: %s",
			       strerror(errno));
	return CI_OK;
}

static int fake_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call)
{
	unsigned char rnd[12];
	int rc, box;

	rc = fake_fault(be, "create", call);
	if (rc)
		goto out_record;
	if (!spec || !label_ok(spec->owner) || !label_ok(spec->session) ||
	    !label_ok(spec->runtime)) {
		rc = ci_fail(call, CI_E_INVAL, "fake: missing spec or a label with a line break");
		goto out_record;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		rc = ci_fail(call, CI_E_INTERNAL, "fake: getrandom: %s", strerror(errno));
		goto out_record;
	}
	strcpy(id, "fk");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 + 2 * i, 3, "%02x", rnd[i]);
	if (mkdirat(be->root_fd, id, 0700)) {
		rc = ci_fail(call, errno == EEXIST ? CI_E_EXISTS : CI_E_BACKEND,
			     "fake: mkdir %s/%s: %s", be->root, id, strerror(errno));
		goto out_record;
	}
	box = openat(be->root_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = box < 0 ? ci_fail(call, CI_E_BACKEND, "fake: open %s: %s", id, strerror(errno))
		     : write_box(be, box, spec, call);
	if (box >= 0)
		close(box);
	if (rc)
		fake_rm_tree(be->root_fd, id); /* nothing half-made stays */
out_record:
	fake_record(be, "create", call, rc, "id=%s runtime=%s owner=%s session=%s", rc ? "-" : id,
		    spec && spec->runtime ? spec->runtime : "-",
		    spec && spec->owner ? spec->owner : "-",
		    spec && spec->session ? spec->session : "-");
	if (rc)
		id[0] = 0;
	return rc;
}

/* Move the sandbox out of sight first, so it vanishes atomically. */
static int remove_box(struct ci_be *be, const char *id, ci_call *call)
{
	char trash[96];

	snprintf(trash, sizeof(trash), ".trash-%s", id);
	if (renameat(be->root_fd, id, be->root_fd, trash)) {
		if (errno == ENOENT)
			return ci_fail(call, CI_E_NOTFOUND, "fake: no sandbox '%s'", id);
		return ci_fail(call, CI_E_BACKEND, "fake: rename %s: %s", id, strerror(errno));
	}
	if (fake_rm_tree(be->root_fd, trash))
		be->host->log(be->host->hctx, CI_LOG_WARN, "fake.destroy id=%s leftover=%s/%s", id,
			      be->root, trash);
	return CI_OK;
}

static int fake_destroy(ci_be *be, const char *id, ci_call *call)
{
	int rc = fake_fault(be, "destroy", call);

	if (!rc && !fake_id_ok(id))
		rc = ci_fail(call, CI_E_NOTFOUND, "fake: no sandbox '%.64s'", id ? id : "(null)");
	if (!rc)
		rc = remove_box(be, id, call);
	fake_record(be, "destroy", call, rc, "id=%s", id ? id : "-");
	return rc;
}

/* owner and created of a sandbox, from its meta file. */
static bool read_meta(struct ci_be *be, const char *id, char owner[256], long long *created)
{
	char rel[96], meta[META_MAX], *p;
	ssize_t n;
	int fd;

	snprintf(rel, sizeof(rel), "%s/meta", id);
	fd = openat(be->root_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, meta, sizeof(meta) - 1);
	close(fd);
	if (n <= 0)
		return false;
	meta[n] = 0;
	if (strncmp(meta, "owner=", 6) || !(p = strstr(meta, "\ncreated=")))
		return false;
	snprintf(owner, 256, "%.*s", (int)strcspn(meta + 6, "\n"), meta + 6);
	*created = strtoll(p + 9, NULL, 10);
	return true;
}

static int fake_sweep(ci_be *be, const char *owner, int64_t older_than_unix, unsigned *n_removed,
		      ci_call *call)
{
	char box_owner[256];
	long long created;
	struct dirent *de;
	int rc, fd;
	DIR *d;

	*n_removed = 0;
	rc = fake_fault(be, "sweep", call);
	if (rc)
		goto out_record;
	if (!owner || !*owner) {
		rc = ci_fail(call, CI_E_INVAL, "fake: sweep needs an owner");
		goto out_record;
	}
	fd = openat(be->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		rc = ci_fail(call, CI_E_BACKEND, "fake: opendir %s: %s", be->root, strerror(errno));
		goto out_record;
	}
	while ((de = readdir(d))) {
		if (!fake_id_ok(de->d_name) || !read_meta(be, de->d_name, box_owner, &created))
			continue;
		if (strcmp(box_owner, owner) || created >= older_than_unix)
			continue;
		if (remove_box(be, de->d_name, call) == CI_OK)
			(*n_removed)++;
	}
	closedir(d);
	call->err[0] = 0;
out_record:
	fake_record(be, "sweep", call, rc, "owner=%s older_than=%lld removed=%u",
		    owner ? owner : "-", (long long)older_than_unix, *n_removed);
	return rc;
}

static const ci_backend fake_backend = {
	.abi_version = CI_ABI_VERSION,
	.struct_size = sizeof(ci_backend),
	.name = "fake",
	.version = CI_BACKEND_VERSION,
	.caps = CI_CAP_STDIN | CI_CAP_NETWORK,
	.init = fake_init,
	.fini = fake_fini,
	.create = fake_create,
	.exec = fake_exec,
	.put = fake_put,
	.get = fake_get,
	.list = fake_list,
	.destroy = fake_destroy,
	.sweep = fake_sweep,
};

CI_EXPORT ci_entry_fn ci_backend_v1;

const ci_backend *ci_backend_v1(uint32_t host_abi_version)
{
	if (host_abi_version >> 16 != CI_ABI_MAJOR)
		return NULL;
	return &fake_backend;
}
