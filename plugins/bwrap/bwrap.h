/*
 * Internal interfaces of the bubblewrap backend. Nothing here crosses the
 * plugin ABI; the host sees only the descriptor from ci_backend_v1().
 *
 * On-disk layout under the configured root (see docs/backends/bwrap.md):
 *	<root>/              0711 (0700 when bwrap runs as the server's uid)
 *	<root>/.etc/         synthesized passwd, group, hosts (0644)
 *	<root>/.uids/<uid>   symlink -> sandbox id: claims a host uid
 *	<root>/bw-<hex>/     one sandbox, root-owned
 *	<root>/bw-<hex>/meta owner, session, runtime, created, limits, env
 *	<root>/bw-<hex>/data the sandbox's /mnt/data (a size-capped tmpfs)
 *	<root>/bw-<hex>/tmp  the sandbox's /tmp (a size-capped tmpfs)
 */
#ifndef CI_BWRAP_H
#define CI_BWRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ci/backend.h"

#define BWRAP_ID_PREFIX "bw-"
#define BWRAP_ID_HEX	32 /* 128 random bits */
#define BWRAP_ID_LEN	(sizeof(BWRAP_ID_PREFIX) - 1 + BWRAP_ID_HEX)
#define BWRAP_DATA	"/mnt/data"
#define BWRAP_META_MAX	(256 * 1024)
#define BWRAP_CG_MAX	4 /* controllers: v1 memory, pids, cpu; or one v2 dir */
#define BWRAP_CHILD_FDS 5 /* bwrap's stdin, stdout, stderr, seccomp program, info */
#define BWRAP_LIMITS	8

/* Writable cgroup controllers found at init. */
struct bwrap_cgroups {
	int v2;			       /* 1: one unified directory */
	unsigned n;		       /* entries used in dir[] */
	char *dir[BWRAP_CG_MAX];       /* "<mount><parent>/ci-bwrap": sandboxes go below */
	const char *ctl[BWRAP_CG_MAX]; /* "memory", "pids", "cpu", or "unified" */
	bool memory, pids, cpu;	       /* which limits can be enforced */
};

struct ci_be {
	const ci_host *host;
	char *root;	  /* absolute sandbox root */
	char *bwrap_path; /* absolute path of the bwrap binary */
	char *path_env;	  /* PATH inside the sandbox */
	uid_t sb_uid;	  /* uid/gid seen inside the sandbox */
	gid_t sb_gid;
	bool drop;	   /* run bwrap as a per-sandbox unprivileged host uid */
	uint32_t uid_base; /* host uid range for drop mode */
	uint32_t uid_count;
	bool tmpfs;	  /* data and tmp are size-capped tmpfs mounts */
	int64_t tmp_size; /* bytes of the sandbox /tmp and /dev/shm */
	int64_t inodes;	  /* inode cap of each tmpfs */
	int64_t def_mem, def_pids, def_disk, def_cpu, def_timeout_ms;
	int64_t nofile;
	int64_t as_bytes; /* RLIMIT_AS, 0 = not set */
	long ncpu;

	/* bwrap argv prefix shared by every exec, built at init. */
	char **argv0;
	size_t argc0;
	char *argv0_pool;

	/* seccomp BPF program, written to a pipe for every exec. */
	unsigned char *bpf;
	size_t bpf_len;

	struct bwrap_cgroups cg;
};

/* What <root>/<id>/meta records; strings point into buf. */
struct bwrap_meta {
	char *buf;
	const char *owner, *session, *runtime;
	int64_t created;
	int64_t host_uid; /* -1: bwrap runs as the server's uid */
	int64_t mem, pids, disk, cpu;
	int tmpfs;
	const char **env; /* "K=V", n_env entries */
	size_t n_env;
};

/* bwrap.c */
void *bwrap_alloc(ci_be *be, size_t n);
void bwrap_free(ci_be *be, void *p);
char *bwrap_strdup(ci_be *be, const char *s);
int bwrap_id_check(const char *id, ci_call *call);
int bwrap_meta_read(ci_be *be, const char *id, struct bwrap_meta *m, ci_call *call);
void bwrap_meta_release(ci_be *be, struct bwrap_meta *m);

/* bwrap_setup.c: configuration and the fixed part of the bwrap command line */
int bwrap_setup(ci_be *be, ci_call *call);
void bwrap_setup_release(ci_be *be);

/* What the spawned child does before it execs bwrap; prepared by the parent. */
struct bwrap_child {
	const char *path;
	char *const *argv;
	char *const *envp;
	int fds[BWRAP_CHILD_FDS]; /* become 0-4 */
	int cg_fds[BWRAP_CG_MAX]; /* "tasks"/"cgroup.procs" files to write "0" to */
	int n_cg;
	int cg_dir_fd; /* v2 cgroup directory for CLONE_INTO_CGROUP, or -1 */
	int lim_res[BWRAP_LIMITS];
	struct rlimit lims[BWRAP_LIMITS];
	int n_lim;
	bool drop; /* switch to uid/gid (and no groups) */
	uid_t uid;
	gid_t gid;
	int err_fd; /* internal to bwrap_spawn() */
};

/* bwrap_spawn.c: start bwrap; 0 or an errno with *step naming what failed. */
int bwrap_spawn(struct bwrap_child *c, pid_t *pid, int *pidfd, const char **step);

/* bwrap_exec.c */
int bwrap_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
	       ci_call *call);

/* bwrap_fs.c: every path below data/ is resolved without following links */
int bwrap_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	      ci_call *call);
int bwrap_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call);
int bwrap_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
	       ci_call *call);
/* Remove name below dirfd and everything in it; never follows a link. */
int bwrap_rmtree(int dirfd, const char *name);
/* rc for a failed file operation: ENOENT -> NOTFOUND, ENOSPC -> LIMIT ... */
int bwrap_errno_rc(int err);

/* bwrap_seccomp.c */
int bwrap_seccomp_build(ci_be *be, ci_call *call);

/* bwrap_cgroup.c */
void bwrap_cgroup_probe(ci_be *be, const char *parent);
void bwrap_cgroup_release(ci_be *be);
int bwrap_cgroup_create(ci_be *be, const char *id, const struct bwrap_meta *m);
/*
 * Open the files that move a process into the sandbox's cgroups; returns
 * their count or -1. *dir_fd gets the v2 cgroup directory (else -1).
 */
int bwrap_cgroup_open(ci_be *be, const char *id, const struct bwrap_meta *m, int fds[],
		      int *dir_fd);
void bwrap_cgroup_kill(ci_be *be, const char *id);
void bwrap_cgroup_remove(ci_be *be, const char *id);

#endif /* CI_BWRAP_H */
