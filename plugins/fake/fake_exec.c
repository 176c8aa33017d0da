/*
 * exec for the fake backend: the program runs directly on the host, in its
 * own process group, with cwd and HOME in the sandbox's data directory and
 * argv elements under /mnt/data rewritten to that directory. This is NOT a
 * sandbox; the backend exists for tests and as a reference.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake.h"

#define ENV_MAX	  256
#define DRAIN_MS  200 /* after the program is gone, wait this long for pipe EOF */
#define BASE_DIRS "/usr/local/bin:/usr/bin:/bin"
#define BASE_PATH "PATH=" BASE_DIRS

struct run {
	struct ci_be *be;
	ci_call *call;
	char data[FAKE_PATH]; /* real path of /mnt/data */
	char cwd[FAKE_PATH];
	char prog[FAKE_PATH];
	char *argv[ENV_MAX];
	char *env[ENV_MAX + 4];
	int n_argv, n_env;
	char *env_file; /* create-time env, NUL-separated */
	size_t env_file_len;
};

static char *dup_str(struct ci_be *be, const char *a, const char *b)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0;
	char *s = be->host->mem_alloc(be->host->hctx, la + lb + 1);

	if (s) {
		memcpy(s, a, la);
		if (b)
			memcpy(s + la, b, lb);
		s[la + lb] = 0;
	}
	return s;
}

static void run_free(struct run *r)
{
	const ci_host *h = r->be->host;

	for (int i = 0; i < r->n_argv; i++)
		h->mem_free(h->hctx, r->argv[i]);
	for (int i = 0; i < r->n_env; i++)
		h->mem_free(h->hctx, r->env[i]);
	h->mem_free(h->hctx, r->env_file);
}

/* Add "K=V", replacing an earlier entry with the same K. */
static int env_add(struct run *r, const char *kv, const char *extra)
{
	size_t klen = strcspn(kv, "=");
	char *s;

	if (!kv[klen] || !klen)
		return ci_fail(r->call, CI_E_INVAL, "fake: env entry '%.64s' is not K=V", kv);
	if (r->n_env >= ENV_MAX)
		return ci_fail(r->call, CI_E_LIMIT, "fake: more than %d env entries", ENV_MAX);
	s = dup_str(r->be, kv, extra);
	if (!s)
		return ci_fail(r->call, CI_E_NOMEM, "fake: out of memory");
	for (int i = 0; i < r->n_env; i++) {
		if (!strncmp(r->env[i], kv, klen + 1)) {
			r->be->host->mem_free(r->be->host->hctx, r->env[i]);
			r->env[i] = s;
			return CI_OK;
		}
	}
	r->env[r->n_env++] = s;
	r->env[r->n_env] = NULL;
	return CI_OK;
}

static int load_env_file(struct run *r, const char *id)
{
	char rel[80];
	struct stat st;
	int fd, rc = CI_OK;

	snprintf(rel, sizeof(rel), "%s/env", id);
	fd = openat(r->be->root_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return CI_OK;
	if (fstat(fd, &st) || st.st_size > 1 << 20) {
		close(fd);
		return ci_fail(r->call, CI_E_BACKEND, "fake: bad env file of %s", id);
	}
	r->env_file = r->be->host->mem_alloc(r->be->host->hctx, (size_t)st.st_size + 1);
	if (!r->env_file) {
		close(fd);
		return ci_fail(r->call, CI_E_NOMEM, "fake: out of memory");
	}
	r->env_file_len = (size_t)st.st_size;
	if (read(fd, r->env_file, r->env_file_len) != (ssize_t)r->env_file_len)
		rc = ci_fail(r->call, CI_E_BACKEND, "fake: short read of the env file of %s", id);
	r->env_file[r->env_file_len] = 0;
	close(fd);
	for (size_t off = 0; !rc && off < r->env_file_len; off += strlen(r->env_file + off) + 1)
		rc = env_add(r, r->env_file + off, NULL);
	return rc;
}

/*
 * A copy of s with every /mnt/data path (in argv, or inside env values such
 * as PYTHONPATH=/mnt/data/x:/mnt/data) pointing at the real directory.
 */
static char *dup_mapped(struct run *r, const char *s)
{
	const size_t m = strlen(FAKE_MNT), dl = strlen(r->data);
	size_t n = 0, len = 0;
	const char *p;
	char *out;

	for (p = s; (p = strstr(p, FAKE_MNT)); p += m)
		n++;
	out = r->be->host->mem_alloc(r->be->host->hctx, strlen(s) + n * dl + 1);
	if (!out)
		return NULL;
	for (p = s; *p;) {
		if (!strncmp(p, FAKE_MNT, m) && (!p[m] || p[m] == '/' || p[m] == ':')) {
			memcpy(out + len, r->data, dl);
			len += dl;
			p += m;
		} else {
			out[len++] = *p++;
		}
	}
	out[len] = 0;
	return out;
}

static int prepare(struct run *r, const char *id, const ci_exec_spec *spec)
{
	char rel[FAKE_PATH];
	int rc, fd;

	if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
		return ci_fail(r->call, CI_E_INVAL, "fake: exec needs a non-empty argv");
	if ((size_t)snprintf(r->data, sizeof(r->data), "%s/%s/data", r->be->root, id) >=
	    sizeof(r->data))
		return ci_fail(r->call, CI_E_LIMIT, "fake: root path too long");
	/* cwd: a directory below /mnt/data reached without symlinks */
	rc = fake_rel_path(spec->cwd ? spec->cwd : FAKE_MNT, rel, r->call);
	if (rc)
		return rc;
	fd = fake_data_fd(r->be, id, &rc, r->call);
	if (fd < 0)
		return rc;
	rc = CI_OK;
	{
		int dfd = fake_open_dir(fd, rel, false, &rc, r->call);

		close(fd);
		if (dfd < 0)
			return rc;
		close(dfd);
	}
	if ((size_t)snprintf(r->cwd, sizeof(r->cwd), "%s%s%s", r->data, rel[0] ? "/" : "", rel) >=
	    sizeof(r->cwd))
		return ci_fail(r->call, CI_E_LIMIT, "fake: cwd too long");
	for (int i = 0; spec->argv[i]; i++) {
		if (i >= ENV_MAX - 1)
			return ci_fail(r->call, CI_E_LIMIT, "fake: argv longer than %d", ENV_MAX);
		r->argv[i] = dup_mapped(r, spec->argv[i]);
		if (!r->argv[i])
			return ci_fail(r->call, CI_E_NOMEM, "fake: out of memory");
		r->n_argv = i + 1;
	}
	r->argv[r->n_argv] = NULL;
	/* A clean environment, like a sandbox: nothing inherited from the host. */
	rc = env_add(r, BASE_PATH, NULL);
	if (!rc)
		rc = env_add(r, "HOME=", r->data);
	if (!rc)
		rc = env_add(r, "LANG=C.UTF-8", NULL);
	if (!rc)
		rc = load_env_file(r, id);
	for (int i = 0; !rc && spec->env && spec->env[i]; i++) {
		char *kv = dup_mapped(r, spec->env[i]);

		rc = kv ? env_add(r, kv, NULL)
			: ci_fail(r->call, CI_E_NOMEM, "fake: out of memory");
		if (kv)
			r->be->host->mem_free(r->be->host->hctx, kv);
	}
	return rc;
}

/* argv[0] through PATH of the program's own environment. */
static bool find_prog(struct run *r)
{
	const char *path = BASE_DIRS, *p;
	struct stat st;
	size_t n;

	if (strchr(r->argv[0], '/')) {
		/* relative to the program's cwd, not ours */
		if ((size_t)snprintf(
			    r->prog, sizeof(r->prog), "%s%s%s", r->argv[0][0] == '/' ? "" : r->cwd,
			    r->argv[0][0] == '/' ? "" : "/", r->argv[0]) >= sizeof(r->prog))
			return false;
		return !access(r->prog, X_OK);
	}
	for (int i = 0; i < r->n_env; i++)
		if (!strncmp(r->env[i], "PATH=", 5))
			path = r->env[i] + 5;
	for (p = path; *p; p += n + (p[n] == ':')) {
		n = strcspn(p, ":");
		if ((size_t)snprintf(r->prog, sizeof(r->prog), "%.*s/%s", (int)n, p, r->argv[0]) >=
		    sizeof(r->prog))
			continue;
		if (!stat(r->prog, &st) && S_ISREG(st.st_mode) && !access(r->prog, X_OK))
			return true;
	}
	return false;
}

static int spawn(struct run *r, int in, int out, int err, pid_t *pid)
{
	static const int dfl[] = {SIGPIPE, SIGINT,  SIGQUIT, SIGTERM, SIGHUP,
				  SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGTSTP};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	int e;

	sigemptyset(&none);
	sigemptyset(&def);
	for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
		sigaddset(&def, dfl[i]);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	posix_spawn_file_actions_addchdir_np(&fa, r->cwd);
	posix_spawnattr_init(&at);
	/* Its own process group, so a timeout kills the whole tree at once. */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	e = posix_spawn(pid, r->prog, &fa, &at, r->argv, r->env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return e;
}

/* write() to the stdin pipe without SIGPIPE reaching the host process. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	struct timespec zero = {0, 0};
	bool was_pending;
	ssize_t n;
	int e;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	n = write(fd, buf, len);
	e = errno;
	if (n < 0 && e == EPIPE && !was_pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return n;
}

struct io {
	int fd[2];	 /* stdout, stderr read ends; -1 once at EOF */
	bool stopped[2]; /* the sink declined this stream */
	int in;		 /* stdin write end, -1 when done */
	size_t in_off;
	const ci_sink *sink;
};

static void pump_out(struct run *r, struct io *io, int k, char *buf)
{
	ssize_t n = read(io->fd[k], buf, FAKE_BUFSIZE);

	(void)r;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(io->fd[k]);
		io->fd[k] = -1;
		return;
	}
	if (n < 0 || io->stopped[k] || !io->sink || !io->sink->write)
		return;
	if (io->sink->write(io->sink->ctx, k ? CI_STREAM_STDERR : CI_STREAM_STDOUT, buf, (size_t)n))
		io->stopped[k] = true; /* keep draining, deliver no more */
}

static void pump_in(struct io *io, const ci_exec_spec *spec)
{
	ssize_t n = write_nosigpipe(io->in, (const char *)spec->stdin_buf + io->in_off,
				    spec->stdin_len - io->in_off);

	if (n > 0)
		io->in_off += (size_t)n;
	if ((n < 0 && errno != EAGAIN && errno != EINTR) || io->in_off >= spec->stdin_len) {
		close(io->in);
		io->in = -1;
	}
}

static int64_t now(const struct run *r)
{
	return r->be->host->now_ms(r->be->host->hctx);
}

/*
 * Move bytes until the program is gone and its pipes are closed, or until
 * `until` (ms on the host clock). Returns 1 when the program exited (status
 * in *st), 0 at `until`. With exited set the program is already reaped and
 * only the pipes are drained, for at most DRAIN_MS.
 */
static int pump(struct run *r, struct io *io, const ci_exec_spec *spec, pid_t pid, int pidfd,
		int64_t until, int *st, char *buf, bool exited)
{
	int64_t drain_end = now(r) + DRAIN_MS, t, wait_ms;
	struct pollfd pf[4];
	int n;

	for (;;) {
		siginfo_t si = {.si_pid = 0};

		/* WNOWAIT: the zombie keeps the pid, so the group id cannot be reused yet */
		if (!exited && !waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) &&
		    si.si_pid == pid) {
			kill(-pid, SIGKILL); /* leftovers of the tree die with the program */
			waitpid(pid, st, 0);
			exited = true;
			drain_end = now(r) + DRAIN_MS;
		}
		if (exited && io->fd[0] < 0 && io->fd[1] < 0)
			return 1;
		t = now(r);
		if (exited && t >= drain_end)
			return 1;
		if (!exited && t >= until)
			return 0;
		wait_ms = (exited ? drain_end : until) - t;
		n = 0;
		for (int k = 0; k < 2; k++)
			if (io->fd[k] >= 0)
				pf[n++] = (struct pollfd){.fd = io->fd[k], .events = POLLIN};
		if (io->in >= 0)
			pf[n++] = (struct pollfd){.fd = io->in, .events = POLLOUT};
		if (!exited)
			pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		if (pidfd < 0 && !exited && wait_ms > 20)
			wait_ms = 20; /* no pidfd: look at the child now and then */
		poll(pf, (nfds_t)n, (int)(wait_ms > 1000 ? 1000 : wait_ms));
		for (int i = 0; i < n; i++) {
			if (!pf[i].revents || pf[i].fd == pidfd)
				continue;
			if (pf[i].fd == io->in)
				pump_in(io, spec);
			else
				pump_out(r, io, pf[i].fd == io->fd[0] ? 0 : 1, buf);
		}
	}
}

static int run_program(struct run *r, const ci_exec_spec *spec, ci_exec_result *res)
{
	int p_in[2] = {-1, -1}, p_out[2] = {-1, -1}, p_err[2] = {-1, -1};
	struct io io = {.fd = {-1, -1}, .in = -1, .sink = spec->out};
	int64_t start, prog_end, until;
	int rc = CI_OK, st = 0, pidfd, e, done;
	char *buf = NULL;
	pid_t pid;

	if (pipe2(p_in, O_CLOEXEC) || pipe2(p_out, O_CLOEXEC) || pipe2(p_err, O_CLOEXEC)) {
		rc = ci_fail(r->call, CI_E_BACKEND, "fake: pipe: %s", strerror(errno));
		goto out_close;
	}
	buf = r->be->host->mem_alloc(r->be->host->hctx, FAKE_BUFSIZE);
	if (!buf) {
		rc = ci_fail(r->call, CI_E_NOMEM, "fake: out of memory");
		goto out_close;
	}
	start = now(r);
	e = spawn(r, p_in[0], p_out[1], p_err[1], &pid);
	if (e) {
		rc = ci_fail(r->call, CI_E_BACKEND, "fake: spawn %s: %s", r->prog, strerror(e));
		goto out_close;
	}
	close(p_in[0]);
	close(p_out[1]);
	close(p_err[1]);
	p_in[0] = p_out[1] = p_err[1] = -1;
	io.fd[0] = p_out[0];
	io.fd[1] = p_err[0];
	p_out[0] = p_err[0] = -1;
	if (spec->stdin_buf && spec->stdin_len) {
		io.in = p_in[1];
		fcntl(io.in, F_SETFL, O_NONBLOCK);
	} else {
		close(p_in[1]); /* empty stdin: EOF at once */
	}
	p_in[1] = -1;
	fcntl(io.fd[0], F_SETFL, O_NONBLOCK);
	fcntl(io.fd[1], F_SETFL, O_NONBLOCK);
	pidfd = pidfd_open(pid, 0);

	prog_end = spec->timeout_ms > 0 ? start + spec->timeout_ms : INT64_MAX;
	until = prog_end < r->call->deadline_ms ? prog_end : r->call->deadline_ms;
	done = pump(r, &io, spec, pid, pidfd, until, &st, buf, false);
	if (!done) {
		kill(-pid, SIGKILL);
		waitpid(pid, &st, 0);
		res->timed_out = prog_end <= r->call->deadline_ms;
		if (!res->timed_out)
			rc = ci_fail(r->call, CI_E_TIMEOUT,
				     "fake: call deadline passed while the program ran");
		/* what the dying tree still wrote, briefly */
		pump(r, &io, spec, pid, -1, 0, &st, buf, true);
	}
	res->wall_ms = now(r) - start;
	res->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	res->signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	if (pidfd >= 0)
		close(pidfd);
	for (int k = 0; k < 2; k++)
		if (io.fd[k] >= 0)
			close(io.fd[k]);
	if (io.in >= 0)
		close(io.in);
out_close:
	r->be->host->mem_free(r->be->host->hctx, buf);
	for (int i = 0; i < 2; i++) {
		if (p_in[i] >= 0)
			close(p_in[i]);
		if (p_out[i] >= 0)
			close(p_out[i]);
		if (p_err[i] >= 0)
			close(p_err[i]);
	}
	return rc;
}

/* The program could not be found: what a shell would say, exit 127. */
static void not_found(struct run *r, const ci_exec_spec *spec, ci_exec_result *res)
{
	char msg[FAKE_PATH + 64];
	int n = snprintf(msg, sizeof(msg), "fake: %s: command not found\n", r->argv[0]);

	if (spec->out && spec->out->write && n > 0)
		spec->out->write(spec->out->ctx, CI_STREAM_STDERR, msg,
				 (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	res->exit_code = 127;
}

int fake_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
	      ci_call *call)
{
	struct run *r;
	int rc;

	rc = fake_fault(be, "exec", call);
	if (rc)
		goto out_record;
	r = be->host->mem_alloc(be->host->hctx, sizeof(*r));
	if (!r) {
		rc = ci_fail(call, CI_E_NOMEM, "fake: out of memory");
		goto out_record;
	}
	memset(r, 0, sizeof(*r));
	r->be = be;
	r->call = call;
	rc = prepare(r, id, spec);
	if (!rc && !res)
		rc = ci_fail(call, CI_E_INVAL, "fake: exec without a result");
	if (!rc) {
		res->exit_code = res->signal = res->timed_out = 0;
		res->wall_ms = 0;
		if (find_prog(r))
			rc = run_program(r, spec, res);
		else
			not_found(r, spec, res);
	}
	run_free(r);
	be->host->mem_free(be->host->hctx, r);
out_record:
	fake_record(be, "exec", call, rc, "id=%s argv0=%s timeout_ms=%lld exit=%d timed_out=%d",
		    id ? id : "-", spec && spec->argv && spec->argv[0] ? spec->argv[0] : "-",
		    spec ? (long long)spec->timeout_ms : -1LL, !rc && res ? res->exit_code : -1,
		    !rc && res ? res->timed_out : 0);
	return rc;
}
