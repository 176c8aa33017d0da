#define _GNU_SOURCE
#include "bw_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

struct bw_env bw;

/* Small limits keep the bombs quick; tests needing others create their own. */
static struct fake_cfg cfg[] = {
	{"root", FAKE_STR, bw.root, 0},
	{"mem_bytes", FAKE_INT, NULL, 256 * MIB},
	{"pids", FAKE_INT, NULL, 64},
	{"disk_bytes", FAKE_INT, NULL, 32 * MIB},
	{"tmp_size", FAKE_INT, NULL, 32 * MIB},
	{"timeout_ms", FAKE_INT, NULL, 20000},
	{NULL, 0, NULL, 0},
};

ci_call bw_call(int64_t timeout_ms)
{
	ci_call c;

	memset(&c, 0, sizeof(c));
	c.struct_size = sizeof(c);
	c.request_id = "test";
	c.deadline_ms = bw.host.now_ms(bw.host.hctx) + timeout_ms;
	return c;
}

int bw_group_setup(void **state)
{
	ci_call call;
	int rc;

	(void)state;
	snprintf(bw.root, sizeof(bw.root), "/tmp/ci-bwrap-test-XXXXXX");
	if (!mkdtemp(bw.root))
		return -1;
	fake_host_init(&bw.host, cfg);
	call = bw_call(30000);
	bw.d = ci_backend_v1(CI_ABI_VERSION);
	if (!bw.d)
		return -1;
	rc = bw.d->init(&bw.host, &bw.be, &call);
	if (rc) {
		fprintf(stderr, "init failed: %d %s\n", rc, call.err);
		return -1;
	}
	bw.cg_memory = strstr(fake_host_log(), "cgroup_memory=yes") != NULL;
	return 0;
}

int bw_group_teardown(void **state)
{
	ci_call call = bw_call(30000);
	unsigned n;
	char cmd[128];

	(void)state;
	if (bw.be) {
		bw.d->sweep(bw.be, BW_OWNER, INT64_MAX, &n, &call);
		bw.d->fini(bw.be);
		bw.be = NULL;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bw.root);
	return system(cmd) == 0 ? 0 : -1;
}

int bw_sandbox_setup(void **state)
{
	ci_create_spec cs = {
		.struct_size = sizeof(cs), .runtime = "python", .owner = BW_OWNER, .session = "s1"};
	ci_call call = bw_call(10000);

	(void)state;
	if (bw.d->create(bw.be, &cs, bw.id, &call) != CI_OK) {
		fprintf(stderr, "create: %s\n", call.err);
		return -1;
	}
	return 0;
}

int bw_sandbox_teardown(void **state)
{
	ci_call call = bw_call(10000);

	(void)state;
	return bw.d->destroy(bw.be, bw.id, &call) == CI_OK ? 0 : -1;
}

static void cap_add(struct bw_cap *c, const void *buf, size_t len)
{
	if (c->len + len + 1 > c->cap) {
		c->cap = (c->len + len + 1) * 2;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	c->buf[c->len] = '\0';
	c->chunks++;
}

int bw_sink_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct bw_out *o = ctx;

	if (stream == CI_STREAM_STDERR) {
		cap_add(&o->err, buf, len);
		return 0;
	}
	cap_add(&o->out, buf, len);
	return o->stop_out_after && o->out.chunks >= o->stop_out_after;
}

void bw_out_free(struct bw_out *o)
{
	free(o->out.buf);
	free(o->err.buf);
	memset(o, 0, sizeof(*o));
}

int bw_run(const char *id, const char *const *argv, const char *const *env, const char *cwd,
	   const void *in, size_t in_len, int64_t timeout_ms, ci_exec_result *res, struct bw_out *o)
{
	ci_sink sink = {bw_sink_write, o};
	ci_exec_spec es = {.struct_size = sizeof(es),
			   .argv = argv,
			   .env = env,
			   .cwd = cwd,
			   .stdin_buf = in,
			   .stdin_len = in_len,
			   .timeout_ms = timeout_ms,
			   .out = o ? &sink : NULL};
	ci_call call = bw_call(timeout_ms + 10000);
	int rc;

	memset(res, 0, sizeof(*res));
	res->struct_size = sizeof(*res);
	rc = bw.d->exec(bw.be, id, &es, res, &call);
	if (rc)
		fprintf(stderr, "exec rc=%d: %s\n", rc, call.err);
	return rc;
}

void bw_py(const char *code, ci_exec_result *res, struct bw_out *o)
{
	const char *argv[] = {"/usr/bin/python3", "-c", code, NULL};

	assert_int_equal(bw_run(bw.id, argv, NULL, NULL, NULL, 0, 15000, res, o), CI_OK);
}

void bw_sh(const char *script, ci_exec_result *res, struct bw_out *o)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};

	assert_int_equal(bw_run(bw.id, argv, NULL, NULL, NULL, 0, 15000, res, o), CI_OK);
}

struct mem_src {
	const char *p;
	size_t left;
};

static ssize_t mem_read(void *ctx, void *buf, size_t cap)
{
	struct mem_src *m = ctx;
	size_t n = m->left < cap ? m->left : cap;

	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

int bw_put_mem(const char *id, const char *path, const void *data, size_t len, uint32_t mode,
	       ci_call *call)
{
	struct mem_src m = {data, len};
	ci_source src = {mem_read, &m, (int64_t)len, -1};

	return bw.d->put(bw.be, id, path, &src, mode, call);
}

int bw_get(const char *id, const char *path, struct bw_out *o, ci_call *call)
{
	ci_sink sink = {bw_sink_write, o};

	return bw.d->get(bw.be, id, path, &sink, call);
}

void bw_data_path(const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/data", bw.root, id);
}

int bw_proc_with_arg(const char *prog, const char *arg1)
{
	char path[300], buf[256];
	struct dirent *de;
	int found = 0, fd;
	ssize_t n;
	size_t plen = strlen(prog);
	DIR *d = opendir("/proc");

	assert_non_null(d);
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (!strcmp(buf, prog) && (size_t)n > plen + 1 && !strcmp(buf + plen + 1, arg1))
			found = 1;
	}
	closedir(d);
	return found;
}

int bw_proc_with_token(const char *token)
{
	char path[300], buf[4096];
	struct dirent *de;
	int found = 0, fd;
	ssize_t n, i;
	DIR *d = opendir("/proc");

	assert_non_null(d);
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[n] = '\0';
		found = strstr(buf, token) != NULL;
	}
	closedir(d);
	return found;
}
