/*
 * Starting bwrap from a multi-threaded server, cheaply and safely.
 *
 * The child joins the sandbox's cgroups, takes its rlimits, drops to the
 * sandbox's host uid and execs bwrap with exactly fds 0-4. It makes raw
 * syscalls only: it shares (CLONE_VM) or copies the memory of a process
 * whose other threads may hold any lock, and libc's setuid() would even try
 * to signal those threads.
 *
 * Two ways in:
 *   - cgroup v2: clone3(CLONE_INTO_CGROUP), so the child is born in its
 *     cgroup. Writing cgroup.procs instead takes the kernel's global
 *     threadgroup lock, whose RCU grace period costs ~10 ms per exec.
 *     clone3 cannot run a C function on a new stack, so this child is a
 *     copy-on-write fork (the parent still waits for exec: CLONE_VFORK).
 *   - otherwise clone(CLONE_VM | CLONE_VFORK) on a small private stack, the
 *     posix_spawn technique; on cgroup v1 the child moves its only thread
 *     through "tasks", which skips that global lock.
 * Failures before exec come back through a close-on-exec pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bwrap.h"

#define NOSAN	   __attribute__((no_sanitize("address", "undefined")))
#define STACK_SIZE (64 * 1024)
#define ERR_FD	   BWRAP_CHILD_FDS /* the error pipe's number in the child */

struct child_err {
	int err;
	const char *step; /* a string literal: valid in both processes */
};

/* Report why we could not exec bwrap, then die. */
static void NOSAN child_fail(int efd, const char *step)
{
	struct child_err e = {errno ? errno : EIO, step};

	syscall(SYS_write, efd, &e, sizeof(e));
	syscall(SYS_exit_group, 127);
}

static int NOSAN child_main(void *p)
{
	const struct bwrap_child *c = p;
	unsigned long zero[4] = {0, 0, 0, 0}; /* SIG_DFL, no flags, empty mask */
	int i, efd = c->err_fd, tmp[BWRAP_CHILD_FDS + 1];

	/* Handlers are the server's code; ignored signals would survive exec. */
	for (i = 1; i < 65; i++)
		if (i != SIGKILL && i != SIGSTOP)
			syscall(SYS_rt_sigaction, i, zero, NULL, 8);
	for (i = 0; i < c->n_cg; i++)
		if (syscall(SYS_write, c->cg_fds[i], "0", 1) != 1)
			child_fail(efd, "join cgroup");
	/* fds 0-4 for bwrap, 5 the error pipe; nothing else survives. */
	for (i = 0; i <= BWRAP_CHILD_FDS; i++) {
		tmp[i] =
			(int)syscall(SYS_fcntl, i < BWRAP_CHILD_FDS ? c->fds[i] : efd, F_DUPFD, 64);
		if (tmp[i] < 0)
			child_fail(efd, "dup");
	}
	for (i = 0; i <= BWRAP_CHILD_FDS; i++)
		if (syscall(SYS_dup3, tmp[i], i, i == ERR_FD ? O_CLOEXEC : 0) < 0)
			child_fail(efd, "dup3");
	efd = ERR_FD;
	if (syscall(SYS_close_range, ERR_FD + 1, ~0U, 0) < 0)
		for (i = ERR_FD + 1; i < 65536; i++)
			syscall(SYS_close, i);
	for (i = 0; i < c->n_lim; i++)
		if (syscall(SYS_prlimit64, 0, c->lim_res[i], &c->lims[i], NULL) < 0)
			child_fail(efd, "setrlimit");
	if (c->drop) {
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			child_fail(efd, "setgroups");
		if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0)
			child_fail(efd, "setresgid");
		if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
			child_fail(efd, "setresuid");
	}
	syscall(SYS_umask, 022); /* not the server's */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, zero, NULL, 8);
	syscall(SYS_execve, c->path, c->argv, c->envp);
	child_fail(efd, "execve bwrap");
	return 0;
}

/* clone3 into the v2 cgroup; -1 with errno when the kernel or a filter refuses. */
static pid_t spawn_into_cgroup(struct bwrap_child *c, int *pidfd)
{
	struct clone_args args;
	int saved = c->n_cg;
	long r;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_VFORK | CLONE_PIDFD | CLONE_INTO_CGROUP;
	args.pidfd = (uint64_t)(uintptr_t)pidfd;
	args.exit_signal = 0;
	args.cgroup = (uint64_t)c->cg_dir_fd;
	c->n_cg = 0; /* born in the cgroup: the child's copy writes nothing */
	r = syscall(SYS_clone3, &args, sizeof(args));
	c->n_cg = saved;
	if (r == 0) {
		child_main(c);
		syscall(SYS_exit_group, 127);
	}
	return (pid_t)r;
}

int bwrap_spawn(struct bwrap_child *c, pid_t *pid, int *pidfd, const char **step)
{
	struct child_err e = {0, NULL};
	int efds[2], err = 0;
	sigset_t all, old;
	void *stack = NULL;
	ssize_t n;

	*pid = -1;
	*step = "spawn";
	if (pipe2(efds, O_CLOEXEC) < 0)
		return errno;
	c->err_fd = efds[1];
	/* No handler of ours may run in the child before exec. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/*
	 * Exit signal 0: no SIGCHLD for the server, and a waitpid(-1)
	 * elsewhere in the process cannot reap our child (it needs __WALL).
	 */
	if (c->cg_dir_fd >= 0) {
		*pid = spawn_into_cgroup(c, pidfd);
		if (*pid < 0 && errno != ENOSYS && errno != EINVAL && errno != EPERM &&
		    errno != E2BIG)
			err = errno;
	}
	if (*pid < 0 && !err) {
		stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stack == MAP_FAILED) {
			err = errno;
			stack = NULL;
		} else {
			*pid = clone(child_main, (char *)stack + STACK_SIZE,
				     CLONE_VM | CLONE_VFORK | CLONE_PIDFD, c, pidfd);
			if (*pid < 0)
				err = errno;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (stack)
		munmap(stack, STACK_SIZE);
	close(efds[1]);
	c->err_fd = -1;
	if (!err) {
		/* The child has exec'd (pipe closed, nothing to read) or failed. */
		n = read(efds[0], &e, sizeof(e));
		if (n == (ssize_t)sizeof(e) && e.err) {
			err = e.err;
			*step = e.step;
		}
	}
	close(efds[0]);
	if (err && *pid > 0) {
		waitpid(*pid, NULL, __WALL);
		close(*pidfd);
		*pidfd = -1;
	}
	if (err)
		*pid = -1;
	return err;
}
