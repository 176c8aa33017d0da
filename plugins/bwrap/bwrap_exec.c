/*
 * exec: one bwrap process per call, its output streamed while it runs.
 *
 * Hot path, in order: read the sandbox metadata, open its cgroup.procs
 * files, make five pipes (stdin, stdout, stderr, seccomp program, bwrap
 * info), clone(CLONE_VM | CLONE_VFORK) a child that joins the cgroups, sets
 * rlimits, drops to the sandbox's host uid and execs bwrap. No shell, no
 * second fork, no allocation in the child.
 *
 * The whole process tree dies with the sandbox's pid namespace: bwrap's
 * info fd tells us the host pid of the namespace's init; SIGKILL to it makes
 * the kernel kill every process in the namespace before the outer bwrap can
 * reap it, so when our waitpid() returns nothing of the program is left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bwrap.h"
#include "ci/backend_util.h"

#define CHUNK	   65536
#define KILL_GRACE 1000 /* ms for the namespace to die before bwrap is killed too */
#define DRAIN_MS   2000 /* ms to wait for pipes to close once bwrap is gone */

/* ---- environment and command line ---- */

struct env_list {
	char *arena;
	char **key, **val;
	size_t n, cap;
};

static int env_add(struct env_list *e, char **pos, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t i, len = strlen(kv) + 1;

	if (!eq || eq == kv)
		return -1;
	memcpy(*pos, kv, len);
	(*pos)[eq - kv] = '\0';
	for (i = 0; i < e->n; i++)
		if (!strcmp(e->key[i], *pos))
			break;
	if (i == e->n && e->n < e->cap)
		e->n++;
	e->key[i] = *pos;
	e->val[i] = *pos + (eq - kv) + 1;
	*pos += len;
	return 0;
}

static size_t env_size(const char *const *v, size_t *n)
{
	size_t sz = 0;

	for (; v && *v; v++, (*n)++)
		sz += strlen(*v) + 1;
	return sz;
}

/* Defaults, then the sandbox's env, then the call's: later keys win. */
static int env_build(ci_be *be, const struct bwrap_meta *m, const ci_exec_spec *spec,
		     struct env_list *e, ci_call *call)
{
	char path_kv[4200];
	const char *base[] = {
		path_kv, "HOME=/mnt/data", "LANG=C.UTF-8", "TMPDIR=/tmp", "MPLBACKEND=Agg",
		/* caches and configs out of /mnt/data, which is the output area */
		"MPLCONFIGDIR=/tmp/.config/matplotlib", "XDG_CACHE_HOME=/tmp/.cache", NULL};
	size_t n = 0, sz;
	char *pos;
	size_t i;

	snprintf(path_kv, sizeof(path_kv), "PATH=%s", be->path_env);
	sz = env_size(base, &n) + env_size(m->env, &n) + env_size(spec->env, &n);
	e->arena = bwrap_alloc(be, sz + 1);
	e->key = bwrap_alloc(be, (n + 1) * sizeof(char *));
	e->val = bwrap_alloc(be, (n + 1) * sizeof(char *));
	if (!e->arena || !e->key || !e->val)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	e->cap = n;
	pos = e->arena;
	for (i = 0; base[i]; i++)
		env_add(e, &pos, base[i]);
	for (i = 0; m->env && m->env[i]; i++)
		env_add(e, &pos, m->env[i]);
	for (i = 0; spec->env && spec->env[i]; i++)
		if (env_add(e, &pos, spec->env[i]) < 0)
			return ci_fail(call, CI_E_INVAL, "env entry is not K=V: \"%.40s\"",
				       spec->env[i]);
	return CI_OK;
}

static void env_release(ci_be *be, struct env_list *e)
{
	bwrap_free(be, e->arena);
	bwrap_free(be, e->key);
	bwrap_free(be, e->val);
}

/* ---- running ---- */

struct run {
	ci_be *be;
	const char *id;
	const ci_exec_spec *spec;
	pid_t pid; /* outer bwrap */
	int pidfd;
	pid_t pid1; /* init of the sandbox's pid namespace, from bwrap's info fd */
	int out_fd, err_fd, in_fd, info_fd;
	bool stop_out, stop_err;
	const unsigned char *in_buf;
	size_t in_left;
	char info[512];
	size_t info_len;
	bool exited, killed;
	int status;
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void read_info(struct run *r)
{
	const char *p;
	ssize_t n;

	while (r->info_fd >= 0 && r->info_len < sizeof(r->info) - 1) {
		n = read(r->info_fd, r->info + r->info_len, sizeof(r->info) - 1 - r->info_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN)
				close_fd(&r->info_fd);
			break;
		}
		r->info_len += (size_t)n;
	}
	r->info[r->info_len] = '\0';
	p = strstr(r->info, "\"child-pid\":");
	if (p && !r->pid1)
		r->pid1 = (pid_t)strtol(p + 12, NULL, 10);
	if (r->info_len >= sizeof(r->info) - 1)
		close_fd(&r->info_fd);
}

/* Parent pid of pid from /proc, or -1. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (!p || strlen(p) < 5)
		return -1;
	return (pid_t)strtol(p + 4, NULL, 10);
}

static void kill_tree(struct run *r)
{
	int fd;

	r->killed = true;
	read_info(r);
	if (r->pid1 > 0) {
		/*
		 * The pidfd pins whatever process has this pid now; if its
		 * parent is still bwrap (our unreaped child, so its pid cannot
		 * be recycled), it is the namespace's init and not a stranger.
		 */
		fd = (int)syscall(SYS_pidfd_open, r->pid1, 0);
		if (fd >= 0) {
			if (parent_of(r->pid1) == r->pid &&
			    syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) == 0) {
				close(fd);
				return;
			}
			close(fd);
		}
	}
	/* Namespace init unknown: kill bwrap; --die-with-parent takes the rest. */
	syscall(SYS_pidfd_send_signal, r->pidfd, SIGKILL, NULL, 0);
	bwrap_cgroup_kill(r->be, r->id);
}

static void deliver(struct run *r, int *fd, int stream, bool *stop, char *buf)
{
	const ci_sink *out = r->spec->out;
	ssize_t n;

	n = read(*fd, buf, CHUNK);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close_fd(fd);
		return;
	}
	/* A sink that had enough: keep draining so the program never blocks. */
	if (!*stop && out && out->write && out->write(out->ctx, stream, buf, (size_t)n) != 0)
		*stop = true;
}

static void feed_stdin(struct run *r)
{
	ssize_t n;

	while (r->in_left) {
		n = write(r->in_fd, r->in_buf, r->in_left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN)
				r->in_left = 0; /* EPIPE: the program closed stdin */
			break;
		}
		r->in_buf += n;
		r->in_left -= (size_t)n;
	}
	if (!r->in_left)
		close_fd(&r->in_fd);
}

static int64_t now_ms(ci_be *be)
{
	return be->host->now_ms(be->host->hctx);
}

/* Poll until bwrap is gone and its pipes are drained, killing at kill_at. */
static void run_loop(struct run *r, int64_t kill_at, char *buf)
{
	int64_t now, give_up = INT64_MAX, wait;
	struct pollfd pfd[5];
	int n, i;

	for (;;) {
		now = now_ms(r->be);
		if (!r->killed && !r->exited && now >= kill_at) {
			kill_tree(r);
			give_up = now + KILL_GRACE;
		}
		if (r->killed && !r->exited && now >= give_up) {
			syscall(SYS_pidfd_send_signal, r->pidfd, SIGKILL, NULL, 0);
			give_up = now + KILL_GRACE;
		}
		if (r->exited && r->out_fd < 0 && r->err_fd < 0)
			break;
		if (r->exited && now >= give_up)
			break; /* pipes held open past the end: stop waiting for them */
		n = 0;
		if (r->out_fd >= 0)
			pfd[n++] = (struct pollfd){r->out_fd, POLLIN, 0};
		if (r->err_fd >= 0)
			pfd[n++] = (struct pollfd){r->err_fd, POLLIN, 0};
		if (r->in_fd >= 0)
			pfd[n++] = (struct pollfd){r->in_fd, POLLOUT, 0};
		if (r->info_fd >= 0)
			pfd[n++] = (struct pollfd){r->info_fd, POLLIN, 0};
		if (!r->exited)
			pfd[n++] = (struct pollfd){r->pidfd, POLLIN, 0};
		wait = r->killed || r->exited ? give_up - now : kill_at - now;
		if (wait > INT32_MAX)
			wait = INT32_MAX;
		if (poll(pfd, (nfds_t)n, (int)(wait < 0 ? 0 : wait)) < 0 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == r->out_fd)
				deliver(r, &r->out_fd, CI_STREAM_STDOUT, &r->stop_out, buf);
			else if (pfd[i].fd == r->err_fd)
				deliver(r, &r->err_fd, CI_STREAM_STDERR, &r->stop_err, buf);
			else if (pfd[i].fd == r->in_fd)
				feed_stdin(r);
			else if (pfd[i].fd == r->info_fd)
				read_info(r);
			else if (pfd[i].fd == r->pidfd &&
				 waitpid(r->pid, &r->status, __WALL | WNOHANG) == r->pid) {
				r->exited = true;
				give_up = now_ms(r->be) + DRAIN_MS;
			}
		}
	}
	if (!r->exited && waitpid(r->pid, &r->status, __WALL) == r->pid)
		r->exited = true;
}

static int make_pipe(int fds[2], ci_call *call)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return ci_fail(call, CI_E_INTERNAL, "pipe: %s", strerror(errno));
	return CI_OK;
}

static void add_limit(struct bwrap_child *c, int res, int64_t v)
{
	c->lim_res[c->n_lim] = res;
	c->lims[c->n_lim].rlim_cur = (rlim_t)v;
	c->lims[c->n_lim].rlim_max = (rlim_t)v;
	c->n_lim++;
}

static void set_limits(ci_be *be, struct bwrap_child *c, const struct bwrap_meta *m,
		       int64_t timeout_ms)
{
	int64_t cpu_s = (timeout_ms + 999) / 1000 * be->ncpu + 1;

	add_limit(c, RLIMIT_CORE, 0);
	add_limit(c, RLIMIT_NOFILE, be->nofile);
	add_limit(c, RLIMIT_FSIZE, m->disk);
	add_limit(c, RLIMIT_DATA, m->mem);
	add_limit(c, RLIMIT_CPU, cpu_s);
	/* Counted per real uid: only meaningful for a uid of the sandbox's own. */
	if (c->drop)
		add_limit(c, RLIMIT_NPROC, m->pids + 2);
	if (be->as_bytes > 0)
		add_limit(c, RLIMIT_AS, be->as_bytes);
}

static void decode_status(const struct run *r, ci_exec_result *res)
{
	int code;

	res->exit_code = -1;
	res->signal = 0;
	if (WIFSIGNALED(r->status)) {
		res->signal = WTERMSIG(r->status);
	} else if (WIFEXITED(r->status)) {
		/* bwrap reports a program killed by signal N as exit 128+N. */
		code = WEXITSTATUS(r->status);
		if (code > 128 && code <= 128 + 64)
			res->signal = code - 128;
		else
			res->exit_code = code;
	}
}

struct exec_ctx {
	struct bwrap_meta m;
	struct env_list env;
	char **argv;
	char *buf;
	int cg_fds[BWRAP_CG_MAX];
	int n_cg;
	int cg_dir;
	int p_in[2], p_out[2], p_err[2], p_sec[2], p_info[2];
};

static void exec_release(ci_be *be, struct exec_ctx *x)
{
	int *fds[] = {x->p_in, x->p_out, x->p_err, x->p_sec, x->p_info};
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		close_fd(&fds[i][0]);
		close_fd(&fds[i][1]);
	}
	while (x->n_cg > 0)
		close(x->cg_fds[--x->n_cg]);
	close_fd(&x->cg_dir);
	bwrap_free(be, x->buf);
	bwrap_free(be, x->argv);
	env_release(be, &x->env);
	bwrap_meta_release(be, &x->m);
}

static int build_argv(ci_be *be, struct exec_ctx *x, const char *id, const ci_exec_spec *spec,
		      char *data, char *tmp, ci_call *call)
{
	size_t n_argv = 0, n, i;
	const char *cwd = spec->cwd ? spec->cwd : BWRAP_DATA;

	if (cwd[0] != '/')
		return ci_fail(call, CI_E_INVAL, "cwd must be an absolute path");
	while (spec->argv[n_argv])
		n_argv++;
	x->argv = bwrap_alloc(be, (be->argc0 + 12 + 3 * x->env.n + n_argv) * sizeof(char *));
	if (!x->argv)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	memcpy(x->argv, be->argv0, be->argc0 * sizeof(char *));
	n = be->argc0;
	snprintf(data, 4096, "%s/%s/data", be->root, id);
	snprintf(tmp, 4096, "%s/%s/tmp", be->root, id);
	x->argv[n++] = (char *)"--bind";
	x->argv[n++] = data;
	x->argv[n++] = (char *)BWRAP_DATA;
	x->argv[n++] = (char *)"--bind";
	x->argv[n++] = tmp;
	x->argv[n++] = (char *)"/tmp";
	x->argv[n++] = (char *)"--chdir";
	x->argv[n++] = (char *)cwd;
	for (i = 0; i < x->env.n; i++) {
		x->argv[n++] = (char *)"--setenv";
		x->argv[n++] = x->env.key[i];
		x->argv[n++] = x->env.val[i];
	}
	/* Last: the mount points above are made, now nothing more may appear in /. */
	x->argv[n++] = (char *)"--remount-ro";
	x->argv[n++] = (char *)"/";
	x->argv[n++] = (char *)"--";
	for (i = 0; i < n_argv; i++)
		x->argv[n++] = (char *)spec->argv[i];
	x->argv[n] = NULL;
	return CI_OK;
}

/* Pipes: child ends go to the child_arg, ours are set non-blocking. */
static int make_pipes(ci_be *be, struct exec_ctx *x, const ci_exec_spec *spec, ci_call *call)
{
	size_t want;
	int rc;

	if ((rc = make_pipe(x->p_in, call)) || (rc = make_pipe(x->p_out, call)) ||
	    (rc = make_pipe(x->p_err, call)) || (rc = make_pipe(x->p_sec, call)) ||
	    (rc = make_pipe(x->p_info, call)))
		return rc;
	/* The filter is a few KB: it fits in the pipe before anyone reads. */
	if (write(x->p_sec[1], be->bpf, be->bpf_len) != (ssize_t)be->bpf_len)
		return ci_fail(call, CI_E_INTERNAL, "write seccomp program: %s", strerror(errno));
	close_fd(&x->p_sec[1]);
	fcntl(x->p_out[0], F_SETFL, O_NONBLOCK);
	fcntl(x->p_err[0], F_SETFL, O_NONBLOCK);
	fcntl(x->p_info[0], F_SETFL, O_NONBLOCK);
	fcntl(x->p_in[1], F_SETFL, O_NONBLOCK);
	if (spec->stdin_buf && spec->stdin_len > 65536) {
		want = spec->stdin_len < 1048576 ? spec->stdin_len : 1048576;
		fcntl(x->p_in[1], F_SETPIPE_SZ, (int)want);
	}
	return CI_OK;
}

int bwrap_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
	       ci_call *call)
{
	static char *const no_env[] = {NULL};
	struct exec_ctx x = {.cg_dir = -1,
			     .p_in = {-1, -1},
			     .p_out = {-1, -1},
			     .p_err = {-1, -1},
			     .p_sec = {-1, -1},
			     .p_info = {-1, -1}};
	struct bwrap_child c;
	const char *step;
	struct run r = {0};
	char data[4096], tmp[4096];
	struct statfs sfs;
	int64_t start, timeout, kill_at;
	bool by_deadline = false;
	sigset_t pipe_set, old_set;
	struct timespec zero = {0, 0};
	int rc, err;

	rc = bwrap_id_check(id, call);
	if (rc)
		return rc;
	if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0] || !res)
		return ci_fail(call, CI_E_INVAL, "exec: empty argv");
	rc = bwrap_meta_read(be, id, &x.m, call);
	if (rc)
		return rc;
	snprintf(data, sizeof(data), "%s/%s/data", be->root, id);
	if (x.m.tmpfs && (statfs(data, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)) {
		rc = ci_fail(call, CI_E_NOTFOUND, "sandbox %s lost its data (host restarted?)", id);
		goto out;
	}
	rc = env_build(be, &x.m, spec, &x.env, call);
	if (rc)
		goto out;
	rc = build_argv(be, &x, id, spec, data, tmp, call);
	if (rc)
		goto out;
	x.buf = bwrap_alloc(be, CHUNK);
	if (!x.buf) {
		rc = ci_fail(call, CI_E_NOMEM, "out of memory");
		goto out;
	}
	if (be->cg.n) {
		x.n_cg = bwrap_cgroup_open(be, id, &x.m, x.cg_fds, &x.cg_dir);
		if (x.n_cg < 0) {
			x.n_cg = 0;
			rc = ci_fail(call, CI_E_INTERNAL, "cgroup of %s: %s", id, strerror(errno));
			goto out;
		}
	}
	rc = make_pipes(be, &x, spec, call);
	if (rc)
		goto out;

	timeout = spec->timeout_ms > 0 ? spec->timeout_ms : be->def_timeout_ms;
	r = (struct run){.be = be,
			 .id = id,
			 .spec = spec,
			 .pidfd = -1,
			 .out_fd = x.p_out[0],
			 .err_fd = x.p_err[0],
			 .in_fd = x.p_in[1],
			 .info_fd = x.p_info[0],
			 .in_buf = spec->stdin_buf,
			 .in_left = spec->stdin_buf ? spec->stdin_len : 0};
	x.p_out[0] = x.p_err[0] = x.p_in[1] = x.p_info[0] = -1;
	/* Fill the stdin pipe now: we hold its read end, so no EPIPE is possible. */
	if (r.in_left)
		feed_stdin(&r);
	else
		close_fd(&r.in_fd);

	c = (struct bwrap_child){
		.path = be->bwrap_path,
		.argv = x.argv,
		.envp = no_env,
		.fds = {x.p_in[0], x.p_out[1], x.p_err[1], x.p_sec[0], x.p_info[1]},
		.n_cg = x.n_cg,
		.cg_dir_fd = x.cg_dir,
		.drop = be->drop && x.m.host_uid >= 0,
		.uid = (uid_t)x.m.host_uid,
		.gid = (gid_t)x.m.host_uid,
		.err_fd = -1};
	memcpy(c.cg_fds, x.cg_fds, sizeof(c.cg_fds));
	set_limits(be, &c, &x.m, timeout);

	start = now_ms(be);
	kill_at = start + timeout;
	if (call->deadline_ms > 0 && call->deadline_ms - 20 < kill_at) {
		kill_at = call->deadline_ms - 20;
		by_deadline = true;
	}
	err = bwrap_spawn(&c, &r.pid, &r.pidfd, &step);
	if (err) {
		rc = ci_fail(call, CI_E_INTERNAL, "start bwrap: %s: %s", step, strerror(err));
		goto out_run;
	}
	/* Only the child may hold these now, or EOF would never come. */
	close_fd(&x.p_in[0]);
	close_fd(&x.p_out[1]);
	close_fd(&x.p_err[1]);
	close_fd(&x.p_sec[0]);
	close_fd(&x.p_info[1]);

	/* Feeding a stdin the program closed must not SIGPIPE the server. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	run_loop(&r, kill_at, x.buf);
	if (r.in_fd >= 0)
		close_fd(&r.in_fd);
	while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
		;
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);

	memset(res, 0, sizeof(*res));
	res->struct_size = sizeof(*res);
	res->wall_ms = now_ms(be) - start;
	decode_status(&r, res);
	if (r.killed) {
		res->exit_code = -1;
		res->signal = SIGKILL;
		res->timed_out = !by_deadline;
		if (by_deadline)
			rc = ci_fail(call, CI_E_TIMEOUT, "call deadline passed, program killed");
	}
	be->host->log(be->host->hctx, CI_LOG_DEBUG,
		      "bwrap.exec rid=%s id=%s exit=%d signal=%d timed_out=%d wall_ms=%" PRId64,
		      call->request_id ? call->request_id : "-", id, res->exit_code, res->signal,
		      res->timed_out, res->wall_ms);
out_run:
	close_fd(&r.out_fd);
	close_fd(&r.err_fd);
	close_fd(&r.in_fd);
	close_fd(&r.info_fd);
	close_fd(&r.pidfd);
out:
	exec_release(be, &x);
	return rc;
}
