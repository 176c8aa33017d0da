/*
 * cgroup memory, pids and cpu limits, v1 or v2, where a writable hierarchy
 * exists. Each sandbox gets "<hierarchy><parent>/ci-bwrap/<id>", made at
 * create() with its limits; exec starts bwrap inside it (see
 * bwrap_spawn.c), so every process of the sandbox is accounted from its
 * first instruction.
 *
 * The parent defaults to the server's own cgroup, so sandboxes stay inside
 * whatever limits the operator put on the server. On cgroup v2 a parent
 * with processes in it cannot delegate controllers ("no internal
 * processes"); point cgroup_parent at a delegated, empty cgroup there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bwrap.h"

static int write_str(const char *dir, const char *file, const char *val)
{
	char path[4096];
	ssize_t n;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	err = errno;
	close(fd);
	errno = err;
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static int write_i64(const char *dir, const char *file, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	return write_str(dir, file, num);
}

/* Does the comma-separated list contain token? */
static bool has_token(const char *list, const char *token)
{
	size_t n = strlen(token);
	const char *p = list;

	while (p && *p) {
		if (!strncmp(p, token, n) && (p[n] == ',' || p[n] == '\0' || p[n] == '\n'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

/* Our own cgroup path in the hierarchy that has ctl ("" for v2). */
static bool own_path(const char *ctl, char *out, size_t out_len)
{
	char line[4096], *a, *b;
	bool found = false;
	FILE *f = fopen("/proc/self/cgroup", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		a = strchr(line, ':');
		b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = '\0';
		if ((*ctl && has_token(a + 1, ctl)) ||
		    (!*ctl && a[1] == '\0' && !strncmp(line, "0:", 2))) {
			b[strcspn(b + 1, "\n") + 1] = '\0';
			snprintf(out, out_len, "%s", b + 1);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* Mount point (and mount root) of the v1 hierarchy with ctl, or of cgroup2 when ctl is "". */
static bool find_mount(const char *ctl, char *mnt, size_t mnt_len, char *root, size_t root_len)
{
	char line[4096], *f[10], *sep, *fstype, *super, *save;
	bool found = false;
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	int i;

	if (!fp)
		return false;
	while (!found && fgets(line, sizeof(line), fp)) {
		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		fstype = strtok_r(sep + 3, " ", &save);
		strtok_r(NULL, " ", &save);
		super = strtok_r(NULL, " \n", &save);
		if (!fstype || !super)
			continue;
		if (*ctl ? strcmp(fstype, "cgroup") || !has_token(super, ctl)
			 : strcmp(fstype, "cgroup2"))
			continue;
		f[0] = strtok_r(line, " ", &save);
		for (i = 1; i < 5 && f[i - 1]; i++)
			f[i] = strtok_r(NULL, " ", &save);
		if (i < 5 || !f[4])
			continue;
		snprintf(root, root_len, "%s", f[3]);
		snprintf(mnt, mnt_len, "%s", f[4]);
		found = true;
	}
	fclose(fp);
	return found;
}

/* "<mount><parent>/ci-bwrap" for ctl, created, or NULL. */
static char *base_dir(ci_be *be, const char *ctl, const char *parent)
{
	char mnt[1024], root[1024], own[2048], dir[4096];
	const char *rel;

	if (!find_mount(ctl, mnt, sizeof(mnt), root, sizeof(root)))
		return NULL;
	if (parent) {
		rel = parent;
	} else {
		if (!own_path(ctl, own, sizeof(own)))
			return NULL;
		rel = own;
		/* Paths in /proc/self/cgroup are relative to the mount's root. */
		if (strcmp(root, "/") && !strncmp(own, root, strlen(root)))
			rel = own + strlen(root);
	}
	snprintf(dir, sizeof(dir), "%s%s%s/ci-bwrap", mnt, *rel == '/' ? "" : "/",
		 strcmp(rel, "/") ? rel : "");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return NULL;
	return bwrap_strdup(be, dir);
}

/* Can we make a child of base and set the limit file in it? */
static bool usable(const char *base, const char *file, const char *val)
{
	char dir[4096];
	bool ok;

	snprintf(dir, sizeof(dir), "%s/probe-%ld", base, (long)getpid());
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return false;
	ok = write_str(dir, file, val) == 0;
	rmdir(dir);
	return ok;
}

static void add_ctl(ci_be *be, char *dir, const char *ctl)
{
	be->cg.dir[be->cg.n] = dir;
	be->cg.ctl[be->cg.n] = ctl;
	be->cg.n++;
}

/* base_dir() + usable(), trying our own cgroup first, then the root when root. */
static char *usable_base(ci_be *be, const char *ctl, const char *parent, const char *file,
			 const char *val)
{
	char *dir = base_dir(be, ctl, parent);

	if (dir && usable(dir, file, val))
		return dir;
	if (dir) {
		rmdir(dir); /* only when empty: never another instance's sandboxes */
		bwrap_free(be, dir);
	}
	/*
	 * On v2 a cgroup with processes (the server's own, under systemd)
	 * cannot hand controllers down; the root cgroup can.
	 */
	if (!parent && geteuid() == 0)
		return usable_base(be, ctl, "/", file, val);
	return NULL;
}

static void probe_v1(ci_be *be, const char *parent)
{
	static const struct {
		const char *ctl, *file, *val;
	} v1[] = {
		{"memory", "memory.limit_in_bytes", "-1"},
		{"pids", "pids.max", "max"},
		{"cpu", "cpu.cfs_quota_us", "-1"},
	};
	size_t i;
	char *dir;

	for (i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
		dir = usable_base(be, v1[i].ctl, parent, v1[i].file, v1[i].val);
		if (!dir)
			continue;
		add_ctl(be, dir, v1[i].ctl);
		if (i == 0)
			be->cg.memory = true;
		else if (i == 1)
			be->cg.pids = true;
		else
			be->cg.cpu = true;
	}
}

/* Enable the controllers below dir's parent and below dir. */
static void delegate(const char *dir)
{
	char up[4096], *slash;

	snprintf(up, sizeof(up), "%s", dir);
	slash = strrchr(up, '/');
	if (slash)
		*slash = '\0';
	if (write_str(up, "cgroup.subtree_control", "+memory +pids +cpu") < 0)
		write_str(up, "cgroup.subtree_control", "+memory +pids");
	if (write_str(dir, "cgroup.subtree_control", "+memory +pids +cpu") < 0)
		write_str(dir, "cgroup.subtree_control", "+memory +pids");
}

static bool probe_v2_at(ci_be *be, const char *parent)
{
	char *dir = base_dir(be, "", parent);

	if (!dir)
		return false;
	delegate(dir);
	be->cg.memory = usable(dir, "memory.max", "max");
	be->cg.pids = usable(dir, "pids.max", "max");
	be->cg.cpu = usable(dir, "cpu.max", "max");
	if (!be->cg.memory && !be->cg.pids) {
		be->cg.cpu = false;
		rmdir(dir);
		bwrap_free(be, dir);
		return false;
	}
	be->cg.v2 = 1;
	add_ctl(be, dir, "unified");
	return true;
}

static void probe_v2(ci_be *be, const char *parent)
{
	if (!probe_v2_at(be, parent) && !parent && geteuid() == 0)
		probe_v2_at(be, "/");
}

void bwrap_cgroup_probe(ci_be *be, const char *parent)
{
	unsigned i;

	probe_v1(be, parent);
	if (!be->cg.memory && !be->cg.pids) {
		bwrap_cgroup_release(be);
		probe_v2(be, parent);
	}
	for (i = 0; i < be->cg.n; i++)
		be->host->log(be->host->hctx, CI_LOG_INFO, "bwrap.cgroup controller=%s dir=%s",
			      be->cg.ctl[i], be->cg.dir[i]);
	if (!be->cg.memory || !be->cg.pids)
		be->host->log(be->host->hctx, CI_LOG_WARN,
			      "bwrap.cgroup msg=\"no writable cgroup %s%s%s controller (v1 or v2, "
			      "parent %s): memory is limited per process (RLIMIT_DATA) and "
			      "processes per host uid (RLIMIT_NPROC) only\"",
			      be->cg.memory ? "" : "memory",
			      !be->cg.memory && !be->cg.pids ? "/" : "", be->cg.pids ? "" : "pids",
			      parent ? parent : "(own cgroup)");
}

void bwrap_cgroup_release(ci_be *be)
{
	unsigned i;

	for (i = 0; i < be->cg.n; i++)
		bwrap_free(be, be->cg.dir[i]);
	memset(&be->cg, 0, sizeof(be->cg));
}

static bool wanted(const ci_be *be, unsigned i, const struct bwrap_meta *m)
{
	return strcmp(be->cg.ctl[i], "cpu") || m->cpu > 0;
}

int bwrap_cgroup_create(ci_be *be, const char *id, const struct bwrap_meta *m)
{
	char dir[4096], val[64];
	unsigned i;

	for (i = 0; i < be->cg.n; i++) {
		if (!wanted(be, i, m))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", be->cg.dir[i], id);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -1;
		if (be->cg.v2) {
			if (be->cg.memory && write_i64(dir, "memory.max", m->mem) < 0)
				return -1;
			if (be->cg.memory)
				write_str(dir, "memory.swap.max", "0");
			/* bwrap's own two processes live in the cgroup too. */
			if (be->cg.pids && write_i64(dir, "pids.max", m->pids + 2) < 0)
				return -1;
			snprintf(val, sizeof(val), "%" PRId64 " 100000", m->cpu * 100);
			if (be->cg.cpu && m->cpu > 0 && write_str(dir, "cpu.max", val) < 0)
				return -1;
		} else if (!strcmp(be->cg.ctl[i], "memory")) {
			if (write_i64(dir, "memory.limit_in_bytes", m->mem) < 0)
				return -1;
			write_i64(dir, "memory.memsw.limit_in_bytes", m->mem);
		} else if (!strcmp(be->cg.ctl[i], "pids")) {
			if (write_i64(dir, "pids.max", m->pids + 2) < 0)
				return -1;
		} else if (write_str(dir, "cpu.cfs_period_us", "100000") < 0 ||
			   write_i64(dir, "cpu.cfs_quota_us", m->cpu * 100) < 0) {
			return -1;
		}
	}
	return 0;
}

int bwrap_cgroup_open(ci_be *be, const char *id, const struct bwrap_meta *m, int fds[], int *dir_fd)
{
	char path[4096];
	unsigned i;
	int n = 0, again = 1;

	*dir_fd = -1;
retry:
	for (i = 0; i < be->cg.n; i++) {
		if (!wanted(be, i, m))
			continue;
		/*
		 * v1: moving the single thread of the new child through "tasks"
		 * skips the global threadgroup lock (and its RCU grace period,
		 * milliseconds per write) that "cgroup.procs" takes. v2 has no
		 * such file: clone3 puts the child straight into the directory,
		 * cgroup.procs is the fallback.
		 */
		snprintf(path, sizeof(path), "%s/%s/%s", be->cg.dir[i], id,
			 be->cg.v2 ? "cgroup.procs" : "tasks");
		fds[n] = open(path, O_WRONLY | O_CLOEXEC);
		if (fds[n] < 0)
			goto out_fail;
		n++;
		if (be->cg.v2) {
			snprintf(path, sizeof(path), "%s/%s", be->cg.dir[i], id);
			*dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (*dir_fd < 0)
				goto out_fail;
		}
	}
	return n;
out_fail:
	while (n > 0)
		close(fds[--n]);
	/* Gone (cgroupfs remounted, manual cleanup): make it again once. */
	if (errno == ENOENT && again-- && bwrap_cgroup_create(be, id, m) == 0)
		goto retry;
	return -1;
}

void bwrap_cgroup_kill(ci_be *be, const char *id)
{
	char dir[4096], path[4096], line[32];
	unsigned i;
	long pid;
	FILE *f;

	for (i = 0; i < be->cg.n; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", be->cg.dir[i], id);
		if (be->cg.v2 && write_str(dir, "cgroup.kill", "1") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/cgroup.procs", be->cg.dir[i], id);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			pid = strtol(line, NULL, 10);
			if (pid > 1)
				kill((pid_t)pid, SIGKILL);
		}
		fclose(f);
	}
}

void bwrap_cgroup_remove(ci_be *be, const char *id)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	char dir[4096];
	unsigned i;
	int tries;

	for (i = 0; i < be->cg.n; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", be->cg.dir[i], id);
		/* Killed tasks leave the cgroup asynchronously: retry for ~0.5 s. */
		for (tries = 0; tries < 100; tries++) {
			if (rmdir(dir) == 0 || errno != EBUSY)
				break;
			nanosleep(&ts, NULL);
		}
	}
}
