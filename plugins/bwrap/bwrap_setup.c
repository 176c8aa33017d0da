/*
 * Configuration (backends.bwrap.*), the sandbox root, the synthesized /etc
 * files and the part of the bwrap command line every exec shares. All of it
 * runs once in init(), so exec only appends what differs per call.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bwrap.h"
#include "ci/backend_util.h"

#define MIB (1024 * 1024LL)

/*
 * /etc entries interpreters and compilers read. Names are fnmatch patterns
 * matched against /etc; entries with a '/' are taken literally. passwd,
 * group, hosts and nsswitch.conf are synthesized; shadow files and
 * anything else of the host's /etc are never visible.
 */
static const char default_etc[] =
	"alternatives ca-certificates.conf debian_version fonts gai.conf host.conf "
	"java-* ld.so.cache ld.so.conf ld.so.conf.d localtime matplotlibrc mime.types "
	"os-release perl php* protocols python3* R services ssl/certs ssl/openssl.cnf "
	"terminfo timezone";

static const char *const synth_etc[] = {"passwd", "group", "hosts", "nsswitch.conf"};

static const char *const never_etc[] = {"shadow",  "gshadow", "shadow-", "gshadow-",
					"passwd-", "group-",  "sudoers", "ssl"};

struct argv_b {
	ci_be *be;
	char **v;
	size_t n, cap;
	int err;
};

static void arg(struct argv_b *a, const char *s)
{
	char **nv;
	size_t ncap;

	if (a->err)
		return;
	if (a->n + 1 >= a->cap) {
		ncap = a->cap ? a->cap * 2 : 64;
		nv = bwrap_alloc(a->be, ncap * sizeof(*nv));
		if (!nv) {
			a->err = CI_E_NOMEM;
			return;
		}
		if (a->n)
			memcpy(nv, a->v, a->n * sizeof(*nv));
		bwrap_free(a->be, a->v);
		a->v = nv;
		a->cap = ncap;
	}
	a->v[a->n] = bwrap_strdup(a->be, s);
	if (!a->v[a->n]) {
		a->err = CI_E_NOMEM;
		return;
	}
	a->v[++a->n] = NULL;
}

static void arg3(struct argv_b *a, const char *opt, const char *x, const char *y)
{
	arg(a, opt);
	arg(a, x);
	if (y)
		arg(a, y);
}

static int cfg_str(ci_be *be, const char *key, const char *def, const char **out, ci_call *call)
{
	int rc = be->host->cfg_str(be->host->hctx, key, out);

	if (rc == CI_E_NOTFOUND) {
		*out = def;
		return CI_OK;
	}
	if (rc)
		return ci_fail(call, CI_E_INVAL, "backends.bwrap.%s must be a string", key);
	return CI_OK;
}

static int cfg_int(ci_be *be, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
		   ci_call *call)
{
	int rc = be->host->cfg_int(be->host->hctx, key, out);

	if (rc == CI_E_NOTFOUND) {
		*out = def;
		return CI_OK;
	}
	if (rc)
		return ci_fail(call, CI_E_INVAL, "backends.bwrap.%s must be an integer", key);
	if (*out < min || *out > max)
		return ci_fail(call, CI_E_INVAL,
			       "backends.bwrap.%s = %" PRId64 " is out of range [%" PRId64
			       ", %" PRId64 "]",
			       key, *out, min, max);
	return CI_OK;
}

static int cfg_bool(ci_be *be, const char *key, int def, int *out, ci_call *call)
{
	int rc = be->host->cfg_bool(be->host->hctx, key, out);

	if (rc == CI_E_NOTFOUND) {
		*out = def;
		return CI_OK;
	}
	if (rc)
		return ci_fail(call, CI_E_INVAL, "backends.bwrap.%s must be a boolean", key);
	return CI_OK;
}

/* First executable named prog in $PATH, or prog itself when it has a '/'. */
static char *find_program(ci_be *be, const char *prog)
{
	const char *p = getenv("PATH"), *end;
	char path[4096];
	size_t n;

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? bwrap_strdup(be, prog) : NULL;
	if (!p)
		p = "/usr/local/bin:/usr/bin:/bin";
	for (; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		n = (size_t)(end - p);
		if (n == 0 || n + strlen(prog) + 2 > sizeof(path))
			continue;
		snprintf(path, sizeof(path), "%.*s/%s", (int)n, p, prog);
		if (access(path, X_OK) == 0)
			return bwrap_strdup(be, path);
	}
	return NULL;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096], *s;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int write_etc(ci_be *be, const char *dir, const char *name, const char *text)
{
	char path[4096], tmp[4096];
	size_t len = strlen(text);
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", dir, name, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	ok = write(fd, text, len) == (ssize_t)len && fchmod(fd, 0644) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	(void)be;
	return 0;
}

/* The root, its uid claim area and the synthesized /etc files. */
static int make_root(ci_be *be, ci_call *call)
{
	char dir[4096], text[1024];
	mode_t mode = be->drop ? 0711 : 0700;

	if (mkdir_p(be->root, mode) < 0)
		return ci_fail(call, CI_E_UNAVAIL, "create %s: %s", be->root, strerror(errno));
	if (chmod(be->root, mode) < 0)
		return ci_fail(call, CI_E_UNAVAIL, "chmod %s: %s", be->root, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/.uids", be->root);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ci_fail(call, CI_E_UNAVAIL, "create %s: %s", dir, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/.etc", be->root);
	if ((mkdir(dir, 0711) < 0 && errno != EEXIST) || chmod(dir, 0711) < 0)
		return ci_fail(call, CI_E_UNAVAIL, "create %s: %s", dir, strerror(errno));
	snprintf(text, sizeof(text),
		 "root:x:0:0:root:/root:/usr/sbin/nologin\n"
		 "sandbox:x:%u:%u:sandbox:/mnt/data:/bin/sh\n"
		 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		 (unsigned)be->sb_uid, (unsigned)be->sb_gid);
	if (write_etc(be, dir, "passwd", text) < 0)
		goto out_err;
	snprintf(text, sizeof(text), "root:x:0:\nsandbox:x:%u:\nnogroup:x:65534:\n",
		 (unsigned)be->sb_gid);
	if (write_etc(be, dir, "group", text) < 0)
		goto out_err;
	if (write_etc(be, dir, "hosts", "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost\n") < 0)
		goto out_err;
	if (write_etc(be, dir, "nsswitch.conf",
		      "passwd: files\ngroup: files\nshadow: files\nhosts: files\n"
		      "networks: files\nprotocols: files\nservices: files\n") < 0)
		goto out_err;
	return CI_OK;
out_err:
	return ci_fail(call, CI_E_UNAVAIL, "write %s: %s", dir, strerror(errno));
}

static bool etc_excluded(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(synth_etc) / sizeof(synth_etc[0]); i++)
		if (!strcmp(name, synth_etc[i]))
			return true;
	for (i = 0; i < sizeof(never_etc) / sizeof(never_etc[0]); i++)
		if (!strcmp(name, never_etc[i]))
			return true;
	return false;
}

/* Bind every /etc entry matching a pattern of the space-separated list. */
static void add_etc(struct argv_b *a, const char *list)
{
	char pat[256], path[512];
	const char *p = list, *end;
	struct dirent *de;
	size_t n;
	DIR *d;

	for (; *p; p = end) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p + strcspn(p, " \t,");
		n = (size_t)(end - p);
		if (!n || n >= sizeof(pat))
			continue;
		memcpy(pat, p, n);
		pat[n] = '\0';
		if (strchr(pat, '/')) {
			if (strstr(pat, ".."))
				continue;
			snprintf(path, sizeof(path), "/etc/%s", pat);
			arg3(a, "--ro-bind-try", path, path);
			continue;
		}
		d = opendir("/etc");
		if (!d)
			return;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' || etc_excluded(de->d_name) ||
			    fnmatch(pat, de->d_name, 0) != 0)
				continue;
			snprintf(path, sizeof(path), "/etc/%s", de->d_name);
			arg3(a, "--ro-bind-try", path, path);
		}
		closedir(d);
	}
}

static void add_extra_binds(struct argv_b *a, const char *list)
{
	char path[4096];
	const char *p = list, *end;
	size_t n;

	for (; *p; p = end) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p + strcspn(p, " \t,");
		n = (size_t)(end - p);
		if (!n || n >= sizeof(path) || *p != '/')
			continue;
		memcpy(path, p, n);
		path[n] = '\0';
		arg3(a, "--ro-bind-try", path, path);
	}
}

/* /bin, /lib ...: symlinks into /usr on merged-/usr hosts, real dirs elsewhere. */
static void add_toplevel(struct argv_b *a)
{
	static const char *const dirs[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
	char target[4096];
	struct stat st;
	ssize_t n;
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (lstat(dirs[i], &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			n = readlink(dirs[i], target, sizeof(target) - 1);
			if (n <= 0)
				continue;
			target[n] = '\0';
			arg3(a, "--symlink", target, dirs[i]);
		} else if (S_ISDIR(st.st_mode)) {
			arg3(a, "--ro-bind", dirs[i], dirs[i]);
		}
	}
}

static int build_argv(ci_be *be, const char *etc, const char *extra, ci_call *call)
{
	struct argv_b a = {.be = be};
	char num[32], path[4096];
	size_t i;

	arg(&a, "bwrap");
	arg(&a, "--unshare-all");
	arg(&a, "--unshare-user");
	arg(&a, "--disable-userns");
	arg(&a, "--die-with-parent");
	arg(&a, "--new-session");
	arg3(&a, "--cap-drop", "ALL", NULL);
	arg3(&a, "--hostname", "sandbox", NULL);
	snprintf(num, sizeof(num), "%u", (unsigned)be->sb_uid);
	arg3(&a, "--uid", num, NULL);
	snprintf(num, sizeof(num), "%u", (unsigned)be->sb_gid);
	arg3(&a, "--gid", num, NULL);
	arg3(&a, "--ro-bind", "/usr", "/usr");
	add_toplevel(&a);
	add_etc(&a, etc);
	for (i = 0; i < sizeof(synth_etc) / sizeof(synth_etc[0]); i++) {
		snprintf(path, sizeof(path), "%s/.etc/%s", be->root, synth_etc[i]);
		snprintf(num, sizeof(num), "/etc/%s", synth_etc[i]);
		arg3(&a, "--ro-bind", path, num);
	}
	add_extra_binds(&a, extra);
	arg3(&a, "--proc", "/proc", NULL);
	arg3(&a, "--dev", "/dev", NULL);
	snprintf(num, sizeof(num), "%" PRId64, be->tmp_size);
	arg3(&a, "--perms", "1777", NULL);
	arg3(&a, "--size", num, NULL);
	arg3(&a, "--tmpfs", "/dev/shm", NULL);
	/* exec passes the seccomp program as fd 3 and collects bwrap's info on fd 4. */
	arg3(&a, "--seccomp", "3", NULL);
	arg3(&a, "--info-fd", "4", NULL);
	if (a.err) {
		be->argv0 = a.v;
		be->argc0 = a.n;
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	}
	be->argv0 = a.v;
	be->argc0 = a.n;
	return CI_OK;
}

void bwrap_setup_release(ci_be *be)
{
	size_t i;

	for (i = 0; i < be->argc0; i++)
		bwrap_free(be, be->argv0[i]);
	bwrap_free(be, be->argv0);
	bwrap_free(be, be->bpf);
	bwrap_free(be, be->root);
	bwrap_free(be, be->bwrap_path);
	bwrap_free(be, be->path_env);
	be->argv0 = NULL;
	be->argc0 = 0;
}

int bwrap_setup(ci_be *be, ci_call *call)
{
	const char *root, *bw, *path, *etc, *extra, *data_fs, *cg_parent;
	int64_t uid, gid, base, count;
	int cgroups, rc;
	bool is_root = geteuid() == 0;

	if ((rc = cfg_str(be, "root", "/var/lib/ci-server/bwrap", &root, call)) ||
	    (rc = cfg_str(be, "bwrap", "bwrap", &bw, call)) ||
	    (rc = cfg_str(be, "path", "/usr/local/bin:/usr/bin:/bin", &path, call)) ||
	    (rc = cfg_str(be, "etc", default_etc, &etc, call)) ||
	    (rc = cfg_str(be, "ro_binds", "", &extra, call)) ||
	    (rc = cfg_str(be, "data_fs", is_root ? "tmpfs" : "dir", &data_fs, call)) ||
	    (rc = cfg_str(be, "cgroup_parent", NULL, &cg_parent, call)) ||
	    (rc = cfg_bool(be, "cgroups", 1, &cgroups, call)) ||
	    (rc = cfg_int(be, "uid", 1000, 1, 65533, &uid, call)) ||
	    (rc = cfg_int(be, "gid", 1000, 1, 65533, &gid, call)) ||
	    (rc = cfg_int(be, "host_uid_base", 2000000000, 1000, 4294900000LL, &base, call)) ||
	    (rc = cfg_int(be, "host_uid_count", 65536, 0, 1 << 24, &count, call)) ||
	    (rc = cfg_int(be, "tmp_size", 256 * MIB, MIB, INT64_MAX, &be->tmp_size, call)) ||
	    (rc = cfg_int(be, "inodes", 65536, 64, INT32_MAX, &be->inodes, call)) ||
	    (rc = cfg_int(be, "mem_bytes", 512 * MIB, 16 * MIB, INT64_MAX, &be->def_mem, call)) ||
	    (rc = cfg_int(be, "pids", 256, 8, 1 << 22, &be->def_pids, call)) ||
	    (rc = cfg_int(be, "disk_bytes", 512 * MIB, MIB, INT64_MAX, &be->def_disk, call)) ||
	    (rc = cfg_int(be, "cpu_millis", 0, 0, 1 << 20, &be->def_cpu, call)) ||
	    (rc = cfg_int(be, "timeout_ms", 60000, 100, 86400000, &be->def_timeout_ms, call)) ||
	    (rc = cfg_int(be, "nofile", 1024, 16, 1 << 20, &be->nofile, call)) ||
	    (rc = cfg_int(be, "as_bytes", 0, 0, INT64_MAX, &be->as_bytes, call)))
		return rc;
	if (root[0] != '/' || strstr(root, "/../") || strlen(root) > 3000)
		return ci_fail(call, CI_E_INVAL, "backends.bwrap.root must be an absolute path");
	if (strcmp(data_fs, "tmpfs") && strcmp(data_fs, "dir"))
		return ci_fail(call, CI_E_INVAL,
			       "backends.bwrap.data_fs must be \"tmpfs\" or \"dir\"");
	if (!strcmp(data_fs, "tmpfs") && !is_root)
		return ci_fail(
			call, CI_E_INVAL,
			"backends.bwrap.data_fs = \"tmpfs\" needs root (mount); use \"dir\"");
	be->tmpfs = !strcmp(data_fs, "tmpfs");
	be->sb_uid = (uid_t)uid;
	be->sb_gid = (gid_t)gid;
	be->uid_base = (uint32_t)base;
	be->uid_count = (uint32_t)count;
	be->drop = is_root && count > 0;
	if (!is_root && count > 0)
		be->host->log(be->host->hctx, CI_LOG_INFO,
			      "bwrap.init msg=\"not root: bwrap runs as the server's uid\"");
	be->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (be->ncpu < 1)
		be->ncpu = 1;

	be->root = bwrap_strdup(be, root);
	be->path_env = bwrap_strdup(be, path);
	if (!be->root || !be->path_env)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	be->bwrap_path = find_program(be, bw);
	if (!be->bwrap_path)
		return ci_fail(call, CI_E_UNAVAIL,
			       "bwrap program \"%s\" not found (apt-get install bubblewrap)", bw);
	rc = make_root(be, call);
	if (rc)
		return rc;
	rc = build_argv(be, etc, extra, call);
	if (rc)
		return rc;
	rc = bwrap_seccomp_build(be, call);
	if (rc)
		return rc;
	if (cgroups)
		bwrap_cgroup_probe(be, cg_parent);
	else
		be->host->log(be->host->hctx, CI_LOG_INFO,
			      "bwrap.cgroup msg=\"disabled by config: limits are rlimits only\"");
	return CI_OK;
}
