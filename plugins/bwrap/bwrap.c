/*
 * bubblewrap backend: descriptor, init/fini, sandbox lifecycle (create,
 * destroy, sweep) and the per-sandbox metadata file.
 *
 * A sandbox is a directory; all state lives on disk so that sweep() can find
 * what a crashed instance left behind. exec, put, get and list live in
 * bwrap_exec.c and bwrap_fs.c.
 */
#define _GNU_SOURCE
#include "bwrap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ci/backend_util.h"

#define PROBE_OWNER "ci-bwrap-probe"

void *bwrap_alloc(ci_be *be, size_t n)
{
	return be->host->mem_alloc(be->host->hctx, n);
}

void bwrap_free(ci_be *be, void *p)
{
	if (p)
		be->host->mem_free(be->host->hctx, p);
}

char *bwrap_strdup(ci_be *be, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = bwrap_alloc(be, n);

	if (p)
		memcpy(p, s, n);
	return p;
}

/*
 * Ids are "bw-" and 32 lowercase hex digits. Anything else cannot name one
 * of our sandboxes, so it is reported as unknown rather than looked up: it
 * never reaches a path.
 */
int bwrap_id_check(const char *id, ci_call *call)
{
	size_t i, p = sizeof(BWRAP_ID_PREFIX) - 1;

	if (!id)
		return ci_fail(call, CI_E_INVAL, "sandbox id missing");
	if (strlen(id) != BWRAP_ID_LEN || strncmp(id, BWRAP_ID_PREFIX, p) != 0)
		return ci_fail(call, CI_E_NOTFOUND, "no such sandbox");
	for (i = p; i < BWRAP_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return ci_fail(call, CI_E_NOTFOUND, "no such sandbox");
	return CI_OK;
}

/* ---- metadata file: "key=value" lines, values %XX-escaped ---- */

struct bwrap_buf {
	ci_be *be;
	char *p;
	size_t len, cap;
	int err;
};

static void buf_put(struct bwrap_buf *b, const char *s, size_t n)
{
	char *np;
	size_t ncap;

	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 512;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > BWRAP_META_MAX) {
			b->err = CI_E_LIMIT;
			return;
		}
		np = bwrap_alloc(b->be, ncap);
		if (!np) {
			b->err = CI_E_NOMEM;
			return;
		}
		if (b->len)
			memcpy(np, b->p, b->len);
		bwrap_free(b->be, b->p);
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_kv(struct bwrap_buf *b, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)(val ? val : "");
	char esc[3];

	buf_put(b, key, strlen(key));
	buf_put(b, "=", 1);
	for (; *s; s++) {
		if (*s < 0x20 || *s == 0x7f || *s == '%') {
			esc[0] = '%';
			esc[1] = hex[*s >> 4];
			esc[2] = hex[*s & 15];
			buf_put(b, esc, 3);
		} else {
			buf_put(b, (const char *)s, 1);
		}
	}
	buf_put(b, "\n", 1);
}

static void buf_ki(struct bwrap_buf *b, const char *key, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	buf_kv(b, key, num);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode %XX in place. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*d++ = (char)(hexval(s[1]) << 4 | hexval(s[2]));
			s += 2;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

static int write_file_atomic(int dirfd, const char *name, const char *data, size_t len, mode_t mode)
{
	char tmp[64];
	ssize_t w;
	size_t off = 0;
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), ".%s.tmp%ld", name, (long)getpid());
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return errno;
	while (off < len) {
		w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			err = errno;
			break;
		}
		off += (size_t)w;
	}
	if (!err && fchmod(fd, mode) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	if (!err && renameat(dirfd, tmp, dirfd, name) < 0)
		err = errno;
	if (err)
		unlinkat(dirfd, tmp, 0);
	return err;
}

static int meta_write(ci_be *be, int sbfd, const ci_create_spec *spec, const struct bwrap_meta *m,
		      ci_call *call)
{
	struct bwrap_buf b = {.be = be};
	const char *const *e;
	int err, rc = CI_OK;

	buf_put(&b, "ci-bwrap-meta 1\n", 16);
	buf_kv(&b, "owner", spec->owner);
	buf_kv(&b, "session", spec->session);
	buf_kv(&b, "runtime", spec->runtime);
	buf_ki(&b, "created", m->created);
	buf_ki(&b, "uid", m->host_uid);
	buf_ki(&b, "mem", m->mem);
	buf_ki(&b, "pids", m->pids);
	buf_ki(&b, "disk", m->disk);
	buf_ki(&b, "cpu", m->cpu);
	buf_ki(&b, "tmpfs", m->tmpfs);
	for (e = spec->env; e && *e; e++)
		buf_kv(&b, "env", *e);
	if (b.err) {
		rc = ci_fail(call, b.err, "sandbox metadata too large (env?)");
		goto out;
	}
	err = write_file_atomic(sbfd, "meta", b.p, b.len, 0600);
	if (err)
		rc = ci_fail(call, CI_E_INTERNAL, "write sandbox metadata: %s", strerror(err));
out:
	bwrap_free(be, b.p);
	return rc;
}

void bwrap_meta_release(ci_be *be, struct bwrap_meta *m)
{
	bwrap_free(be, m->env);
	bwrap_free(be, m->buf);
	memset(m, 0, sizeof(*m));
}

static int64_t parse_i64(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	return v;
}

int bwrap_meta_read(ci_be *be, const char *id, struct bwrap_meta *m, ci_call *call)
{
	char path[4096];
	struct stat st;
	size_t n_env = 0, got = 0;
	char *line, *next, *val;
	ssize_t r;
	int fd, rc = CI_OK;

	memset(m, 0, sizeof(*m));
	m->host_uid = -1;
	snprintf(path, sizeof(path), "%s/%s/meta", be->root, id);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return ci_fail(call, CI_E_NOTFOUND, "no such sandbox");
		return ci_fail(call, CI_E_INTERNAL, "open %s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > BWRAP_META_MAX) {
		rc = ci_fail(call, CI_E_INTERNAL, "sandbox metadata %s is damaged", path);
		goto out_close;
	}
	m->buf = bwrap_alloc(be, (size_t)st.st_size + 1);
	if (!m->buf) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, m->buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	m->buf[got] = '\0';
	if (strncmp(m->buf, "ci-bwrap-meta 1\n", 16) != 0) {
		rc = ci_fail(call, CI_E_INTERNAL, "sandbox metadata %s is damaged", path);
		goto out_close;
	}
	for (line = m->buf; (line = strstr(line, "\nenv=")); line++)
		n_env++;
	m->env = bwrap_alloc(be, (n_env + 1) * sizeof(*m->env));
	if (!m->env) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out_close;
	}
	for (line = m->buf + 16; *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else
			next = line + strlen(line);
		val = strchr(line, '=');
		if (!val)
			continue;
		*val++ = '\0';
		unescape(val);
		if (!strcmp(line, "owner"))
			m->owner = val;
		else if (!strcmp(line, "session"))
			m->session = val;
		else if (!strcmp(line, "runtime"))
			m->runtime = val;
		else if (!strcmp(line, "created"))
			m->created = parse_i64(val);
		else if (!strcmp(line, "uid"))
			m->host_uid = parse_i64(val);
		else if (!strcmp(line, "mem"))
			m->mem = parse_i64(val);
		else if (!strcmp(line, "pids"))
			m->pids = parse_i64(val);
		else if (!strcmp(line, "disk"))
			m->disk = parse_i64(val);
		else if (!strcmp(line, "cpu"))
			m->cpu = parse_i64(val);
		else if (!strcmp(line, "tmpfs"))
			m->tmpfs = parse_i64(val) == 1;
		else if (!strcmp(line, "env") && m->n_env < n_env)
			m->env[m->n_env++] = val;
	}
	m->env[m->n_env] = NULL;
	if (!m->owner) {
		rc = ci_fail(call, CI_E_INTERNAL, "sandbox metadata %s is damaged", path);
		goto out_close;
	}
out_close:
	close(fd);
	if (rc)
		bwrap_meta_release(be, m);
	return rc;
}

/* ---- host uid claims: <root>/.uids/<uid> -> id, made atomically by symlinkat ---- */

static int uid_claim(ci_be *be, const char *id, int64_t *uid, ci_call *call)
{
	char dir[4096], name[16], owner[CI_ID_MAX], sbpath[4096];
	uint32_t r;
	ssize_t n;
	int dfd, i, rc = CI_OK;

	*uid = -1;
	if (!be->drop)
		return CI_OK;
	snprintf(dir, sizeof(dir), "%s/.uids", be->root);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return ci_fail(call, CI_E_INTERNAL, "open %s: %s", dir, strerror(errno));
	for (i = 0; i < 64; i++) {
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)rand();
		r %= be->uid_count;
		snprintf(name, sizeof(name), "%" PRIu32, be->uid_base + r);
		if (symlinkat(id, dfd, name) == 0) {
			*uid = be->uid_base + r;
			goto out;
		}
		if (errno != EEXIST) {
			rc = ci_fail(call, CI_E_INTERNAL, "claim host uid: %s", strerror(errno));
			goto out;
		}
		/* A claim whose sandbox is gone is stale: free it and retry. */
		n = readlinkat(dfd, name, owner, sizeof(owner) - 1);
		if (n <= 0)
			continue;
		owner[n] = '\0';
		snprintf(sbpath, sizeof(sbpath), "%s/%s", be->root, owner);
		if (bwrap_id_check(owner, NULL) == CI_OK && access(sbpath, F_OK) < 0 &&
		    errno == ENOENT)
			unlinkat(dfd, name, 0);
	}
	rc = ci_fail(call, CI_E_LIMIT, "no free host uid in %" PRIu32 "+%" PRIu32, be->uid_base,
		     be->uid_count);
out:
	close(dfd);
	return rc;
}

static void uid_release(ci_be *be, const char *id, int64_t uid)
{
	char path[4096], owner[CI_ID_MAX];
	ssize_t n;

	if (uid < 0)
		return;
	snprintf(path, sizeof(path), "%s/.uids/%" PRId64, be->root, uid);
	n = readlink(path, owner, sizeof(owner) - 1);
	if (n <= 0)
		return;
	owner[n] = '\0';
	if (!strcmp(owner, id))
		unlink(path);
}

/* ---- create / destroy / sweep ---- */

/* Mount a size-capped tmpfs owned by the sandbox's host uid, or chown a dir. */
static int make_area(ci_be *be, int sbfd, const char *name, const char *path, int64_t size,
		     uid_t uid, gid_t gid, ci_call *call)
{
	char opts[160];

	if (mkdirat(sbfd, name, 0700) < 0)
		return ci_fail(call, CI_E_INTERNAL, "mkdir %s: %s", path, strerror(errno));
	if (be->tmpfs) {
		snprintf(opts, sizeof(opts),
			 "size=%" PRId64 ",nr_inodes=%" PRId64 ",mode=0700,uid=%u,gid=%u", size,
			 be->inodes, (unsigned)uid, (unsigned)gid);
		if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
			return ci_fail(call, CI_E_INTERNAL, "mount tmpfs on %s: %s", path,
				       strerror(errno));
		return CI_OK;
	}
	if (fchownat(sbfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return ci_fail(call, CI_E_INTERNAL, "chown %s: %s", path, strerror(errno));
	return CI_OK;
}

/* Take a sandbox apart; tolerant of half-made ones. */
static void sandbox_remove(ci_be *be, const char *id, int64_t uid)
{
	char path[4096];
	int rfd;

	bwrap_cgroup_kill(be, id); /* normally empty: exec leaves no process behind */
	snprintf(path, sizeof(path), "%s/%s/data", be->root, id);
	umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
	snprintf(path, sizeof(path), "%s/%s/tmp", be->root, id);
	umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
	bwrap_cgroup_remove(be, id);
	rfd = open(be->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd >= 0) {
		if (bwrap_rmtree(rfd, id) < 0 && errno != ENOENT)
			be->host->log(be->host->hctx, CI_LOG_WARN, "bwrap.remove id=%s err=\"%s\"",
				      id, strerror(errno));
		close(rfd);
	}
	uid_release(be, id, uid);
}

static int bwrap_create(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call)
{
	struct bwrap_meta m = {0};
	unsigned char rnd[BWRAP_ID_HEX / 2];
	char sbpath[3600], path[4096];
	const char *const *e;
	uid_t uid;
	gid_t gid;
	size_t i;
	int sbfd = -1, rc;

	if (!spec)
		return ci_fail(call, CI_E_INVAL, "create: no spec");
	if (spec->network)
		return ci_fail(call, CI_E_UNSUPPORTED, "bwrap sandboxes have no network");
	if (spec->mem_bytes < 0 || spec->pids < 0 || spec->disk_bytes < 0 || spec->cpu_millis < 0)
		return ci_fail(call, CI_E_INVAL, "negative limit");
	for (e = spec->env; e && *e; e++)
		if (!strchr(*e, '=') || **e == '=')
			return ci_fail(call, CI_E_INVAL, "env entry is not K=V: \"%.40s\"", *e);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return ci_fail(call, CI_E_INTERNAL, "getrandom: %s", strerror(errno));
	memcpy(id, BWRAP_ID_PREFIX, sizeof(BWRAP_ID_PREFIX));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(id + sizeof(BWRAP_ID_PREFIX) - 1 + 2 * i, 3, "%02x", rnd[i]);

	m.created = be->host->wall_unix(be->host->hctx);
	m.mem = spec->mem_bytes ? spec->mem_bytes : be->def_mem;
	m.pids = spec->pids ? spec->pids : be->def_pids;
	m.disk = spec->disk_bytes ? spec->disk_bytes : be->def_disk;
	m.cpu = spec->cpu_millis ? spec->cpu_millis : be->def_cpu;
	m.tmpfs = be->tmpfs;

	snprintf(sbpath, sizeof(sbpath), "%s/%s", be->root, id);
	if (mkdir(sbpath, be->drop ? 0711 : 0700) < 0)
		return ci_fail(call, CI_E_INTERNAL, "mkdir %s: %s", sbpath, strerror(errno));
	/* mkdir honours the umask; traversal by the sandbox uid needs 0711. */
	chmod(sbpath, be->drop ? 0711 : 0700);
	sbfd = open(sbpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sbfd < 0) {
		rc = ci_fail(call, CI_E_INTERNAL, "open %s: %s", sbpath, strerror(errno));
		goto out_fail;
	}
	rc = uid_claim(be, id, &m.host_uid, call);
	if (rc)
		goto out_fail;
	rc = meta_write(be, sbfd, spec, &m, call);
	if (rc)
		goto out_fail;
	uid = m.host_uid >= 0 ? (uid_t)m.host_uid : geteuid();
	gid = m.host_uid >= 0 ? (gid_t)m.host_uid : getegid();
	snprintf(path, sizeof(path), "%s/data", sbpath);
	rc = make_area(be, sbfd, "data", path, m.disk, uid, gid, call);
	if (rc)
		goto out_fail;
	snprintf(path, sizeof(path), "%s/tmp", sbpath);
	rc = make_area(be, sbfd, "tmp", path, be->tmp_size, uid, gid, call);
	if (rc)
		goto out_fail;
	if (bwrap_cgroup_create(be, id, &m) < 0)
		be->host->log(be->host->hctx, CI_LOG_WARN, "bwrap.cgroup id=%s err=\"%s\"", id,
			      strerror(errno));
	close(sbfd);
	be->host->log(be->host->hctx, CI_LOG_DEBUG,
		      "bwrap.create id=%s owner=%s uid=%" PRId64 " mem=%" PRId64 " disk=%" PRId64,
		      id, spec->owner ? spec->owner : "", m.host_uid, m.mem, m.disk);
	return CI_OK;

out_fail:
	if (sbfd >= 0)
		close(sbfd);
	sandbox_remove(be, id, m.host_uid);
	id[0] = '\0';
	return rc;
}

static int bwrap_destroy(ci_be *be, const char *id, ci_call *call)
{
	struct bwrap_meta m;
	char path[4096];
	struct stat st;
	int64_t uid = -1;
	int rc;

	rc = bwrap_id_check(id, call);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", be->root, id);
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return ci_fail(call, CI_E_NOTFOUND, "no such sandbox");
	if (bwrap_meta_read(be, id, &m, NULL) == CI_OK) {
		uid = m.host_uid;
		bwrap_meta_release(be, &m);
	}
	sandbox_remove(be, id, uid);
	if (lstat(path, &st) == 0)
		return ci_fail(call, CI_E_INTERNAL, "could not remove %s", path);
	return CI_OK;
}

static int bwrap_sweep(ci_be *be, const char *owner, int64_t older_than_unix, unsigned *n_removed,
		       ci_call *call)
{
	struct bwrap_meta m;
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	if (n_removed)
		*n_removed = 0;
	if (!owner)
		return ci_fail(call, CI_E_INVAL, "sweep: no owner");
	d = opendir(be->root);
	if (!d)
		return ci_fail(call, CI_E_INTERNAL, "open %s: %s", be->root, strerror(errno));
	while ((de = readdir(d))) {
		if (bwrap_id_check(de->d_name, NULL) != CI_OK)
			continue;
		if (bwrap_meta_read(be, de->d_name, &m, NULL) != CI_OK)
			continue;
		if (!strcmp(m.owner, owner) && m.created < older_than_unix) {
			sandbox_remove(be, de->d_name, m.host_uid);
			n++;
		}
		bwrap_meta_release(be, &m);
	}
	closedir(d);
	if (n_removed)
		*n_removed = n;
	if (n)
		be->host->log(be->host->hctx, CI_LOG_INFO, "bwrap.sweep owner=%s removed=%u", owner,
			      n);
	return CI_OK;
}

/* ---- init ---- */

struct probe_out {
	char err[200];
	size_t len;
};

static int probe_sink(void *ctx, int stream, const void *buf, size_t len)
{
	struct probe_out *p = ctx;
	size_t room = sizeof(p->err) - 1 - p->len;

	if (stream == CI_STREAM_STDERR && room) {
		if (len > room)
			len = room;
		memcpy(p->err + p->len, buf, len);
		p->len += len;
		p->err[p->len] = '\0';
	}
	return 0;
}

/* Run `true` in a throwaway sandbox: proves namespaces, mounts and seccomp work. */
static int probe(ci_be *be, char *why, size_t why_len)
{
	static const char *const argv[] = {"true", NULL};
	ci_create_spec cs = {.struct_size = sizeof(cs), .owner = PROBE_OWNER, .runtime = "probe"};
	struct probe_out po = {{0}, 0};
	ci_sink sink = {probe_sink, &po};
	ci_exec_spec es = {
		.struct_size = sizeof(es), .argv = argv, .timeout_ms = 10000, .out = &sink};
	ci_exec_result res = {.struct_size = sizeof(res)};
	ci_call call = {.struct_size = sizeof(call), .request_id = "bwrap-probe"};
	char id[CI_ID_MAX];
	char *nl;
	int rc;

	call.deadline_ms = be->host->now_ms(be->host->hctx) + 15000;
	rc = bwrap_create(be, &cs, id, &call);
	if (rc) {
		snprintf(why, why_len, "%s", call.err);
		return rc;
	}
	rc = bwrap_exec(be, id, &es, &res, &call);
	if (rc) {
		snprintf(why, why_len, "%s", call.err);
	} else if (res.exit_code != 0) {
		nl = strchr(po.err, '\n');
		if (nl)
			*nl = '\0';
		snprintf(why, why_len, "exit %d: %s", res.exit_code,
			 po.len ? po.err : "(no message)");
		rc = CI_E_UNAVAIL;
	}
	bwrap_destroy(be, id, &call);
	return rc;
}

static void bwrap_fini(ci_be *be)
{
	if (!be)
		return;
	bwrap_cgroup_release(be);
	bwrap_setup_release(be);
	be->host->mem_free(be->host->hctx, be);
}

static int bwrap_init(const ci_host *host, ci_be **out, ci_call *call)
{
	char why[CI_ERR_MAX];
	unsigned swept;
	ci_be *be;
	int rc;

	*out = NULL;
	be = host->mem_alloc(host->hctx, sizeof(*be));
	if (!be)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	memset(be, 0, sizeof(*be));
	be->host = host;
	rc = bwrap_setup(be, call);
	if (rc)
		goto out_fail;
	bwrap_sweep(be, PROBE_OWNER, INT64_MAX, &swept, NULL);
	rc = probe(be, why, sizeof(why));
	if (rc && be->drop) {
		host->log(host->hctx, CI_LOG_WARN,
			  "bwrap.init msg=\"cannot run bwrap as an unprivileged host uid (%s); "
			  "falling back to the server's uid: RLIMIT_NPROC is then not enforced\"",
			  why);
		be->drop = false;
		rc = probe(be, why, sizeof(why));
	}
	if (rc) {
		rc = ci_fail(call, CI_E_UNAVAIL, "bwrap cannot create a sandbox here: %s", why);
		goto out_fail;
	}
	host->log(host->hctx, CI_LOG_INFO,
		  "bwrap.init bwrap=%s root=%s host_uids=%s data_fs=%s cgroup_memory=%s "
		  "cgroup_pids=%s cgroup_cpu=%s",
		  be->bwrap_path, be->root, be->drop ? "per-sandbox" : "server",
		  be->tmpfs ? "tmpfs" : "dir", be->cg.memory ? "yes" : "no",
		  be->cg.pids ? "yes" : "no", be->cg.cpu ? "yes" : "no");
	*out = be;
	return CI_OK;

out_fail:
	bwrap_fini(be);
	return rc;
}

static const ci_backend bwrap_backend = {
	.abi_version = CI_ABI_VERSION,
	.struct_size = sizeof(ci_backend),
	.name = "bwrap",
	.version = CI_BACKEND_VERSION,
	.caps = CI_CAP_STDIN | CI_CAP_SELFLIMIT,
	.init = bwrap_init,
	.fini = bwrap_fini,
	.create = bwrap_create,
	.exec = bwrap_exec,
	.put = bwrap_put,
	.get = bwrap_get,
	.list = bwrap_list,
	.destroy = bwrap_destroy,
	.sweep = bwrap_sweep,
};

CI_EXPORT ci_entry_fn ci_backend_v1;

const ci_backend *ci_backend_v1(uint32_t host_abi_version)
{
	if (host_abi_version >> 16 != CI_ABI_MAJOR)
		return NULL;
	return &bwrap_backend;
}
