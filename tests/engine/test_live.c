/*
 * Live tests of a docker/podman plugin against a running engine:
 * containment (no network, non-root, read-only rootfs, no capabilities,
 * size-capped /mnt/data), the exec wrapper's process-tree kill, file round
 * trips, symlink handling, errors, sweep and the warm pool.
 *
 *   test_engine_live PLUGIN.so NAME
 *
 * The plugin is dlopen()ed like the core does. The engine must be up: an
 * unreachable engine FAILS the test, unless CI_SKIP_ENGINES=1 (developer
 * machines), which skips it (exit 77).
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_host.h"

static const ci_backend *be_desc;
static const char *be_name;
static char owner[48];
static const char *cfg_main[] = {"disk_mb=16", "exec_grace_ms=1500", NULL};

struct out {
	char buf[1 << 16];
	size_t len;
	char err[1 << 14];
	size_t elen;
};

static int out_write(void *ctx, int stream, const void *p, size_t n)
{
	struct out *o = ctx;
	char *dst = stream == CI_STREAM_STDERR ? o->err : o->buf;
	size_t *len = stream == CI_STREAM_STDERR ? &o->elen : &o->len;
	size_t cap = (stream == CI_STREAM_STDERR ? sizeof(o->err) : sizeof(o->buf)) - 1;

	if (*len + n > cap)
		n = cap - *len;
	memcpy(dst + *len, p, n);
	*len += n;
	dst[*len] = '\0';
	return 0;
}

struct env {
	struct th_host th;
	ci_be *be;
	char id[CI_ID_MAX];
};

static int env_open(struct env *e, const char *const *cfg)
{
	ci_call c;

	th_init(&e->th, true, cfg);
	c = th_call(&e->th, 10000);
	if (be_desc->init(&e->th.host, &e->be, &c) != CI_OK) {
		fprintf(stderr, "init: %s\n", c.err);
		return -1;
	}
	return 0;
}

static int mk_sandbox(struct env *e, const char *runtime)
{
	ci_create_spec spec = {.struct_size = sizeof(spec),
			       .runtime = runtime,
			       .owner = owner,
			       .session = "live-test"};
	ci_call c = th_call(&e->th, 60000);
	int rc = be_desc->create(e->be, &spec, e->id, &c);

	if (rc != CI_OK)
		fprintf(stderr, "create: %s\n", c.err);
	return rc;
}

static void env_close(struct env *e)
{
	ci_call c = th_call(&e->th, 20000);

	if (e->id[0])
		be_desc->destroy(e->be, e->id, &c);
	be_desc->fini(e->be);
}

static int run(struct env *e, const char *script, int64_t timeout_ms, struct out *o,
	       ci_exec_result *r)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	ci_sink sink = {out_write, o};
	ci_exec_spec x = {
		.struct_size = sizeof(x), .argv = argv, .timeout_ms = timeout_ms, .out = &sink};
	ci_call c = th_call(&e->th, timeout_ms + 10000);
	int rc;

	memset(o, 0, sizeof(*o));
	memset(r, 0, sizeof(*r));
	rc = be_desc->exec(e->be, e->id, &x, r, &c);
	if (rc != CI_OK)
		fprintf(stderr, "exec: %s\n", c.err);
	return rc;
}

static int setup(void **state)
{
	static struct env e;

	memset(&e, 0, sizeof(e));
	if (env_open(&e, cfg_main) || mk_sandbox(&e, "bash") != CI_OK)
		return -1;
	*state = &e;
	return 0;
}

static int teardown(void **state)
{
	env_close(*state);
	return 0;
}

static void test_containment(void **state)
{
	struct env *e = *state;
	struct out o;
	ci_exec_result r;

	assert_int_equal(run(e,
			     "id -u; id -g; grep -E '^(CapEff|CapPrm|NoNewPrivs)' "
			     "/proc/self/status; ls /sys/class/net",
			     5000, &o, &r),
			 CI_OK);
	assert_int_equal(r.exit_code, 0);
	assert_string_equal(o.buf, "1000\n1000\nCapPrm:\t0000000000000000\n"
				   "CapEff:\t0000000000000000\nNoNewPrivs:\t1\nlo\n");

	/* Read-only rootfs; /mnt/data and /tmp writable. */
	assert_int_equal(run(e,
			     "touch /etc/x 2>/dev/null && echo rootfs-writable; "
			     "touch /x 2>/dev/null && echo root-writable; "
			     "echo a > /mnt/data/w && echo data-ok; echo b > /tmp/w && echo tmp-ok",
			     5000, &o, &r),
			 CI_OK);
	assert_string_equal(o.buf, "data-ok\ntmp-ok\n");

	/* No network: only lo (above), no routes, no IPv6 either. */
	assert_int_equal(run(e,
			     "wc -l < /proc/net/route; cat /proc/net/if_inet6 2>/dev/null | "
			     "grep -vc ' lo$'",
			     5000, &o, &r),
			 CI_OK);
	assert_string_equal(o.buf, "1\n0\n");

	/* /mnt/data is size-capped (disk_mb=16). */
	assert_int_equal(run(e,
			     "dd if=/dev/zero of=/mnt/data/big bs=1M count=32 2>/dev/null; "
			     "echo rc=$?; rm -f /mnt/data/big /mnt/data/w",
			     10000, &o, &r),
			 CI_OK);
	assert_string_equal(o.buf, "rc=1\n");
}

static void test_exec_basics(void **state)
{
	struct env *e = *state;
	const char *argv[] = {"sh", "-c", "echo $FOO; pwd; cat; echo err >&2; exit 7", NULL};
	const char *env[] = {"FOO=bar baz", NULL};
	static char in[200000];
	struct out *o = calloc(1, sizeof(*o));
	ci_sink sink = {out_write, o};
	ci_exec_spec x = {.struct_size = sizeof(x),
			  .argv = argv,
			  .env = env,
			  .cwd = "/tmp",
			  .stdin_buf = "hello\n",
			  .stdin_len = 6,
			  .timeout_ms = 5000,
			  .out = &sink};
	ci_exec_result r = {0};
	ci_call c = th_call(&e->th, 15000);

	assert_int_equal(be_desc->exec(e->be, e->id, &x, &r, &c), CI_OK);
	assert_string_equal(o->buf, "bar baz\n/tmp\nhello\n");
	assert_string_equal(o->err, "err\n");
	assert_int_equal(r.exit_code, 7);
	assert_int_equal(r.signal, 0);
	assert_int_equal(r.timed_out, 0);

	/* Large stdin travels as a file, removed before the program runs. */
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (char)('a' + i % 26);
	argv[2] = "wc -c; ls -A /mnt/data | grep -c ci-stdin";
	x.stdin_buf = in;
	x.stdin_len = sizeof(in);
	x.cwd = NULL;
	memset(o, 0, sizeof(*o));
	c = th_call(&e->th, 15000);
	assert_int_equal(be_desc->exec(e->be, e->id, &x, &r, &c), CI_OK);
	assert_string_equal(o->buf, "200000\n0\n");

	/* A signal death is reported as such. */
	argv[2] = "kill -SEGV $$";
	x.stdin_buf = NULL;
	x.stdin_len = 0;
	c = th_call(&e->th, 15000);
	assert_int_equal(be_desc->exec(e->be, e->id, &x, &r, &c), CI_OK);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 11);
	free(o);
}

static void test_timeout_kills_tree(void **state)
{
	struct env *e = *state;
	struct out o;
	ci_exec_result r;

	/* Children, a setsid'ed escapee holding stdout, and a busy loop. */
	assert_int_equal(run(e, "sleep 60 & setsid sleep 61 & echo started; while :; do :; done",
			     1000, &o, &r),
			 CI_OK);
	assert_string_equal(o.buf, "started\n");
	assert_int_equal(r.timed_out, 1);
	assert_int_equal(r.signal, 9);
	assert_true(r.wall_ms >= 1000 && r.wall_ms < 4000);

	/* A daemon left by a program that exited normally does not survive either. */
	assert_int_equal(run(e, "setsid sh -c 'sleep 62' >/dev/null 2>&1 < /dev/null & exit 0",
			     5000, &o, &r),
			 CI_OK);
	assert_int_equal(r.exit_code, 0);
	assert_true(r.wall_ms < 3000);
	assert_int_equal(run(e, "cat /proc/[0-9]*/comm | grep -c sleep", 5000, &o, &r), CI_OK);
	/* Only the container's own keep-alive "sleep infinity" is left. */
	assert_string_equal(o.buf, "1\n");
}

struct mem_src {
	const unsigned char *p;
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

struct collect {
	unsigned char *buf;
	size_t len, cap;
};

static int collect_write(void *ctx, int stream, const void *p, size_t n)
{
	struct collect *c = ctx;

	assert_int_equal(stream, CI_STREAM_DATA);
	if (c->len + n > c->cap)
		return 1;
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	return 0;
}

struct seen {
	int files, dirs, links;
	char names[2048];
};

static int list_cb(void *ctx, const ci_entry *en)
{
	struct seen *s = ctx;

	s->files += en->type == CI_ENTRY_FILE;
	s->dirs += en->type == CI_ENTRY_DIR;
	s->links += en->type == CI_ENTRY_SYMLINK;
	strncat(s->names, en->path, sizeof(s->names) - strlen(s->names) - 2);
	strcat(s->names, ";");
	return 0;
}

static void test_files(void **state)
{
	struct env *e = *state;
	size_t n = 5u << 20;
	unsigned char *data = malloc(n);
	struct collect col = {malloc(n + 1), 0, n + 1};
	struct mem_src m = {data, n};
	ci_source src = {mem_read, &m, (int64_t)n, -1};
	ci_sink sink = {collect_write, &col};
	struct seen s = {0};
	struct out o;
	ci_exec_result r;
	ci_call c;

	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	c = th_call(&e->th, 30000);
	assert_int_equal(be_desc->put(e->be, e->id, "/mnt/data/in/deep er/f.bin", &src, 0640, &c),
			 CI_OK);
	c = th_call(&e->th, 30000);
	assert_int_equal(be_desc->get(e->be, e->id, "/mnt/data/in/deep er/f.bin", &sink, &c),
			 CI_OK);
	assert_int_equal(col.len, n);
	assert_memory_equal(col.buf, data, n);

	/* A non-ASCII name survives the round trip and the listing. */
	m = (struct mem_src){data, 100};
	src.size = 100;
	col.len = 0;
	c = th_call(&e->th, 30000);
	assert_int_equal(
		be_desc->put(e->be, e->id, "/mnt/data/r\xc3\xa9sum\xc3\xa9.txt", &src, 0644, &c),
		CI_OK);
	c = th_call(&e->th, 30000);
	assert_int_equal(
		be_desc->get(e->be, e->id, "/mnt/data/r\xc3\xa9sum\xc3\xa9.txt", &sink, &c), CI_OK);
	assert_int_equal(col.len, 100);
	assert_int_equal(run(e,
			     "ls /mnt/data | grep -c '^r\xc3\xa9sum\xc3\xa9.txt$' && "
			     "rm /mnt/data/r*.txt",
			     5000, &o, &r),
			 CI_OK);
	assert_string_equal(o.buf, "1\n");

	/* Owned by the sandbox user, writable by the code. */
	assert_int_equal(run(e,
			     "stat -c '%u %a' '/mnt/data/in/deep er/f.bin' '/mnt/data/in'; "
			     "echo x >> '/mnt/data/in/deep er/f.bin' && echo appended; "
			     "ln -s /etc/passwd /mnt/data/link; ln -s /etc /mnt/data/dirlink",
			     5000, &o, &r),
			 CI_OK);
	assert_string_equal(o.buf, "1000 640\n1000 755\nappended\n");

	/* Symlinks: reported by list, never followed by get or list. */
	c = th_call(&e->th, 10000);
	assert_int_equal(be_desc->list(e->be, e->id, "/mnt/data", list_cb, &s, &c), CI_OK);
	assert_int_equal(s.files, 1);
	assert_int_equal(s.dirs, 2);
	assert_int_equal(s.links, 2);
	assert_non_null(strstr(s.names, "in/deep er/f.bin;"));
	col.len = 0;
	c = th_call(&e->th, 10000);
	assert_int_equal(be_desc->get(e->be, e->id, "/mnt/data/link", &sink, &c), CI_E_INVAL);
	assert_int_equal(col.len, 0);
	c = th_call(&e->th, 10000);
	assert_int_equal(be_desc->list(e->be, e->id, "/mnt/data/dirlink", list_cb, &s, &c),
			 CI_E_INVAL);

	/* Errors. */
	c = th_call(&e->th, 10000);
	assert_int_equal(be_desc->get(e->be, e->id, "/mnt/data/nope", &sink, &c), CI_E_NOTFOUND);
	c = th_call(&e->th, 10000);
	assert_int_equal(be_desc->get(e->be, e->id, "/etc/passwd", &sink, &c), CI_E_INVAL);
	c = th_call(&e->th, 10000);
	assert_int_equal(be_desc->list(e->be, e->id, "/mnt/data/nope", list_cb, &s, &c),
			 CI_E_NOTFOUND);

	/* Over the /mnt/data cap (16 MiB): a clean LIMIT, not a half file. */
	free(data);
	n = 24u << 20;
	data = calloc(1, n);
	m = (struct mem_src){data, n};
	src.size = (int64_t)n;
	c = th_call(&e->th, 30000);
	assert_int_equal(be_desc->put(e->be, e->id, "/mnt/data/huge", &src, 0644, &c), CI_E_LIMIT);
	run(e, "rm -rf /mnt/data/*", 5000, &o, &r);
	free(data);
	free(col.buf);
}

static void test_gone_and_down(void **state)
{
	struct env e2 = {0};
	const char *cfg_down[] = {"socket=/nonexistent/engine.sock", NULL};
	ci_create_spec spec = {.struct_size = sizeof(spec), .runtime = "bash", .owner = owner};
	struct out o;
	ci_exec_result r;
	ci_call c;
	char id[CI_ID_MAX];

	(void)state;
	assert_int_equal(env_open(&e2, cfg_main), 0);
	assert_int_equal(mk_sandbox(&e2, "bash"), CI_OK);
	snprintf(id, sizeof(id), "%s", e2.id);
	c = th_call(&e2.th, 10000);
	assert_int_equal(be_desc->destroy(e2.be, id, &c), CI_OK);
	c = th_call(&e2.th, 10000);
	assert_int_equal(be_desc->destroy(e2.be, id, &c), CI_E_NOTFOUND);
	assert_int_equal(run(&e2, "true", 1000, &o, &r), CI_E_NOTFOUND);
	e2.id[0] = '\0';
	env_close(&e2);

	/* Engine unreachable: init still works (the engine may come later), calls say UNAVAIL. */
	assert_int_equal(env_open(&e2, cfg_down), 0);
	c = th_call(&e2.th, 5000);
	assert_int_equal(be_desc->create(e2.be, &spec, id, &c), CI_E_UNAVAIL);
	assert_non_null(strstr(c.err, "/nonexistent/engine.sock"));
	env_close(&e2);
}

static void test_sweep(void **state)
{
	struct env e2 = {0};
	char other[64], id_other[CI_ID_MAX];
	ci_create_spec spec = {.struct_size = sizeof(spec), .runtime = "bash", .owner = other};
	unsigned n = 0;
	ci_call c;

	(void)state;
	snprintf(other, sizeof(other), "%s-other", owner);
	assert_int_equal(env_open(&e2, cfg_main), 0);
	assert_int_equal(mk_sandbox(&e2, "bash"), CI_OK);
	c = th_call(&e2.th, 60000);
	assert_int_equal(be_desc->create(e2.be, &spec, id_other, &c), CI_OK);
	/* Too young: nothing goes. */
	c = th_call(&e2.th, 30000);
	assert_int_equal(be_desc->sweep(e2.be, owner, time(NULL) - 3600, &n, &c), CI_OK);
	assert_int_equal(n, 0);
	/* Everything of ours goes (the setup's sandbox too, so only count >= 1)... */
	c = th_call(&e2.th, 30000);
	assert_int_equal(be_desc->sweep(e2.be, owner, time(NULL) + 10, &n, &c), CI_OK);
	assert_true(n >= 1);
	c = th_call(&e2.th, 10000);
	assert_int_equal(be_desc->destroy(e2.be, e2.id, &c), CI_E_NOTFOUND);
	/* ...and another owner's sandbox stays. */
	c = th_call(&e2.th, 10000);
	assert_int_equal(be_desc->destroy(e2.be, id_other, &c), CI_OK);
	e2.id[0] = '\0';
	env_close(&e2);
}

static void test_pool(void **state)
{
	const char *cfg_pool[] = {"pool.bash=2", NULL};
	struct env e2 = {0};
	char ids[4][CI_ID_MAX];
	ci_create_spec spec = {.struct_size = sizeof(spec), .runtime = "bash", .owner = owner};
	const char *env[] = {"POOLED=yes", NULL};
	struct out o;
	ci_exec_result r;
	ci_call c;
	int i, j;

	(void)state;
	assert_int_equal(env_open(&e2, cfg_pool), 0);
	/* The first create teaches the pool its owner label; give it time to fill. */
	assert_int_equal(mk_sandbox(&e2, "bash"), CI_OK);
	snprintf(ids[0], sizeof(ids[0]), "%s", e2.id);
	sleep(4);
	spec.env = env;
	for (i = 1; i < 4; i++) {
		int64_t t0 = e2.th.host.now_ms(&e2.th);

		c = th_call(&e2.th, 60000);
		assert_int_equal(be_desc->create(e2.be, &spec, ids[i], &c), CI_OK);
		if (i <= 2) /* pooled: no create+start round trip */
			assert_true(e2.th.host.now_ms(&e2.th) - t0 < 150);
		for (j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
		snprintf(e2.id, sizeof(e2.id), "%s", ids[i]);
		assert_int_equal(run(&e2, "echo $POOLED", 5000, &o, &r), CI_OK);
		assert_string_equal(o.buf, "yes\n");
	}
	for (i = 0; i < 4; i++) {
		c = th_call(&e2.th, 10000);
		assert_int_equal(be_desc->destroy(e2.be, ids[i], &c), CI_OK);
	}
	e2.id[0] = '\0';
	env_close(&e2); /* removes what the pool still holds */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_containment),
		cmocka_unit_test(test_exec_basics),
		cmocka_unit_test(test_timeout_kills_tree),
		cmocka_unit_test(test_files),
	};
	const struct CMUnitTest solo[] = {
		cmocka_unit_test(test_gone_and_down),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_sweep),
	};
	struct th_host th;
	ci_be *be;
	ci_call c;
	void *so;
	ci_entry_fn *entry;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: %s PLUGIN.so NAME\n", argv[0]);
		return 2;
	}
	be_name = argv[2];
	so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	entry = (ci_entry_fn *)dlsym(so, CI_ENTRY_SYMBOL);
	be_desc = entry ? entry(CI_ABI_VERSION) : NULL;
	if (!be_desc || strcmp(be_desc->name, be_name)) {
		fprintf(stderr, "%s: not the %s backend\n", argv[1], be_name);
		return 1;
	}
	snprintf(owner, sizeof(owner), "ci-live-test-%d", (int)getpid());

	/* Is the engine there? Unreachable fails, unless explicitly skipped. */
	th_init(&th, true, cfg_main);
	c = th_call(&th, 10000);
	rc = be_desc->init(&th.host, &be, &c);
	if (rc == CI_OK) {
		unsigned n;

		c = th_call(&th, 10000);
		rc = be_desc->sweep(be, owner, 0, &n, &c);
		be_desc->fini(be);
	}
	if (rc != CI_OK) {
		if (getenv("CI_SKIP_ENGINES") && !strcmp(getenv("CI_SKIP_ENGINES"), "1")) {
			fprintf(stderr, "SKIP: %s engine unavailable (%s), CI_SKIP_ENGINES=1\n",
				be_name, c.err);
			return 77;
		}
		fprintf(stderr,
			"FAIL: %s engine unavailable: %s\n(start it with "
			"scripts/start-engines.sh, or set CI_SKIP_ENGINES=1 to skip)\n",
			be_name, c.err);
		return 1;
	}
	rc = cmocka_run_group_tests_name(be_name, tests, setup, teardown);
	rc |= cmocka_run_group_tests_name(be_name, solo, NULL, NULL);
	return rc;
}
