/*
 * bwrap plugin unit tests through the descriptor: init and its config
 * errors, ids, lifecycle (create/destroy/sweep), the on-disk layout and
 * put/get/list. Must run as root (mounts, host uids).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bw_test.h"
#include "bwrap.h"

static void test_descriptor(void **state)
{
	const ci_backend *d = ci_backend_v1(CI_ABI_VERSION);

	(void)state;
	assert_non_null(d);
	assert_string_equal(d->name, "bwrap");
	assert_string_equal(d->version, "0.1.0");
	assert_int_equal(d->abi_version, CI_ABI_VERSION);
	assert_true(d->struct_size >= CI_BACKEND_MIN_SIZE);
	assert_true(d->caps & CI_CAP_STDIN);
	assert_false(d->caps & CI_CAP_NETWORK);
	assert_non_null(d->init);
	assert_non_null(d->fini);
	assert_non_null(d->create);
	assert_non_null(d->exec);
	assert_non_null(d->put);
	assert_non_null(d->get);
	assert_non_null(d->list);
	assert_non_null(d->destroy);
	assert_non_null(d->sweep);
	/* Another major: refused. A newer minor of the same major: accepted. */
	assert_null(ci_backend_v1((uint32_t)(CI_ABI_MAJOR + 1) << 16));
	assert_non_null(ci_backend_v1(CI_ABI_VERSION + 1));
}

/* init with cfg; returns rc, fini's on success. err gets call.err. */
static int init_with(const struct fake_cfg *cfg, char *err, size_t err_len)
{
	ci_host host;
	ci_call call = bw_call(20000);
	ci_be *be = NULL;
	int rc;

	fake_host_init(&host, cfg);
	rc = bw.d->init(&host, &be, &call);
	snprintf(err, err_len, "%s", call.err);
	if (rc == CI_OK) {
		assert_non_null(be);
		bw.d->fini(be);
	} else {
		assert_null(be);
		assert_true(call.err[0] != '\0');
	}
	return rc;
}

static void test_init_errors(void **state)
{
	struct fake_cfg no_bwrap[] = {{"root", FAKE_STR, bw.root, 0},
				      {"bwrap", FAKE_STR, "/nonexistent/bwrap", 0},
				      {NULL, 0, NULL, 0}};
	struct fake_cfg rel_root[] = {{"root", FAKE_STR, "relative/dir", 0}, {NULL, 0, NULL, 0}};
	struct fake_cfg bad_type[] = {{"root", FAKE_STR, bw.root, 0},
				      {"mem_bytes", FAKE_STR, "lots", 0},
				      {NULL, 0, NULL, 0}};
	struct fake_cfg bad_range[] = {
		{"root", FAKE_STR, bw.root, 0}, {"uid", FAKE_INT, NULL, 0}, {NULL, 0, NULL, 0}};
	struct fake_cfg bad_fs[] = {{"root", FAKE_STR, bw.root, 0},
				    {"data_fs", FAKE_STR, "zfs", 0},
				    {NULL, 0, NULL, 0}};
	/* bwrap exists but is not bubblewrap: the probe sandbox must fail. */
	struct fake_cfg not_bwrap[] = {{"root", FAKE_STR, bw.root, 0},
				       {"bwrap", FAKE_STR, "/bin/false", 0},
				       {NULL, 0, NULL, 0}};
	char err[CI_ERR_MAX];

	(void)state;
	assert_int_equal(init_with(no_bwrap, err, sizeof(err)), CI_E_UNAVAIL);
	assert_non_null(strstr(err, "not found"));
	assert_int_equal(init_with(rel_root, err, sizeof(err)), CI_E_INVAL);
	assert_non_null(strstr(err, "root"));
	assert_int_equal(init_with(bad_type, err, sizeof(err)), CI_E_INVAL);
	assert_non_null(strstr(err, "mem_bytes"));
	assert_int_equal(init_with(bad_range, err, sizeof(err)), CI_E_INVAL);
	assert_non_null(strstr(err, "uid"));
	assert_int_equal(init_with(bad_fs, err, sizeof(err)), CI_E_INVAL);
	assert_non_null(strstr(err, "data_fs"));
	assert_int_equal(init_with(not_bwrap, err, sizeof(err)), CI_E_UNAVAIL);
	assert_non_null(strstr(err, "cannot create a sandbox"));
}

static void test_init_logged(void **state)
{
	(void)state;
	/* One summary line, and the cgroup verdict is explicit either way. */
	assert_non_null(strstr(fake_host_log(), "bwrap.init bwrap="));
	assert_non_null(strstr(fake_host_log(), "cgroup_memory="));
}

static void test_bad_ids(void **state)
{
	static const char *const bad[] = {"",
					  "../etc",
					  "bw-../../x",
					  "bw-0123456789abcdef0123456789abcdeg",
					  "bw-0123456789ABCDEF0123456789ABCDEF",
					  "bw-0123456789abcdef0123456789abcdef/x",
					  "bw-00000000000000000000000000000000"};
	const char *argv[] = {"true", NULL};
	ci_exec_result res;
	struct bw_out o = {0};
	ci_call call;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call = bw_call(5000);
		assert_int_equal(bw.d->destroy(bw.be, bad[i], &call), CI_E_NOTFOUND);
		assert_int_equal(bw_run(bad[i], argv, NULL, NULL, NULL, 0, 1000, &res, NULL),
				 CI_E_NOTFOUND);
		call = bw_call(5000);
		assert_int_equal(bw_get(bad[i], "/mnt/data/x", &o, &call), CI_E_NOTFOUND);
		call = bw_call(5000);
		assert_int_equal(bw_put_mem(bad[i], "/mnt/data/x", "x", 1, 0644, &call),
				 CI_E_NOTFOUND);
	}
	call = bw_call(5000);
	assert_int_equal(bw.d->destroy(bw.be, NULL, &call), CI_E_INVAL);
	bw_out_free(&o);
}

static void test_create_layout(void **state)
{
	char path[4096], link[128], target[CI_ID_MAX];
	struct stat st;
	struct statfs sfs;
	ssize_t n;

	(void)state;
	assert_int_equal(strncmp(bw.id, "bw-", 3), 0);
	assert_int_equal(strlen(bw.id), 35);
	assert_int_equal(stat(bw.root, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0711);
	snprintf(path, sizeof(path), "%s/%s/meta", bw.root, bw.id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_uid, 0);
	bw_data_path(bw.id, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* data belongs to the sandbox's own unprivileged host uid... */
	assert_true(st.st_uid >= 1000);
	assert_int_equal(st.st_uid, st.st_gid);
	/* ...which is claimed for this sandbox only */
	snprintf(link, sizeof(link), "%s/.uids/%u", bw.root, (unsigned)st.st_uid);
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, bw.id);
	/* and is a size-capped tmpfs */
	assert_int_equal(statfs(path, &sfs), 0);
	assert_true(sfs.f_type == TMPFS_MAGIC);
	assert_true((int64_t)sfs.f_blocks * sfs.f_bsize <= 32 * MIB);
}

static void test_create_rejects(void **state)
{
	const char *const bad_env[] = {"NOEQUALS", NULL};
	const char *const bad_env2[] = {"=x", NULL};
	ci_create_spec cs = {.struct_size = sizeof(cs), .owner = BW_OWNER, .network = 1};
	char id[CI_ID_MAX];
	ci_call call = bw_call(5000);

	(void)state;
	assert_int_equal(bw.d->create(bw.be, &cs, id, &call), CI_E_UNSUPPORTED);
	cs.network = 0;
	cs.env = bad_env;
	assert_int_equal(bw.d->create(bw.be, &cs, id, &call), CI_E_INVAL);
	cs.env = bad_env2;
	assert_int_equal(bw.d->create(bw.be, &cs, id, &call), CI_E_INVAL);
	cs.env = NULL;
	cs.mem_bytes = -1;
	assert_int_equal(bw.d->create(bw.be, &cs, id, &call), CI_E_INVAL);
	assert_int_equal(bw.d->create(bw.be, NULL, id, &call), CI_E_INVAL);
}

static void test_two_sandboxes_two_uids(void **state)
{
	ci_create_spec cs = {.struct_size = sizeof(cs), .owner = BW_OWNER};
	char id2[CI_ID_MAX], p1[4096], p2[4096], link[128];
	ci_call call = bw_call(5000);
	struct stat s1, s2;

	(void)state;
	assert_int_equal(bw.d->create(bw.be, &cs, id2, &call), CI_OK);
	assert_string_not_equal(id2, bw.id);
	bw_data_path(bw.id, p1, sizeof(p1));
	bw_data_path(id2, p2, sizeof(p2));
	assert_int_equal(stat(p1, &s1), 0);
	assert_int_equal(stat(p2, &s2), 0);
	assert_int_not_equal(s1.st_uid, s2.st_uid);
	assert_int_equal(bw.d->destroy(bw.be, id2, &call), CI_OK);
	/* destroy released the claim */
	snprintf(link, sizeof(link), "%s/.uids/%u", bw.root, (unsigned)s2.st_uid);
	assert_int_equal(access(link, F_OK), -1);
}

static void test_destroy(void **state)
{
	ci_create_spec cs = {.struct_size = sizeof(cs), .owner = BW_OWNER};
	const char *argv[] = {"true", NULL};
	char id[CI_ID_MAX], path[4096];
	ci_call call = bw_call(5000);
	ci_exec_result res;

	(void)state;
	assert_int_equal(bw.d->create(bw.be, &cs, id, &call), CI_OK);
	assert_int_equal(bw_put_mem(id, "/mnt/data/a/b/c.txt", "hi", 2, 0644, &call), CI_OK);
	assert_int_equal(bw.d->destroy(bw.be, id, &call), CI_OK);
	snprintf(path, sizeof(path), "%s/%s", bw.root, id);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(bw.d->destroy(bw.be, id, &call), CI_E_NOTFOUND);
	assert_int_equal(bw_run(id, argv, NULL, NULL, NULL, 0, 1000, &res, NULL), CI_E_NOTFOUND);
	assert_int_equal(bw_put_mem(id, "/mnt/data/x", "x", 1, 0644, &call), CI_E_NOTFOUND);
}

static void test_rmtree_deep(void **state)
{
	char dir[128], path[8192];
	size_t len;
	int i, fd;

	(void)state;
	/* Deeper than the removal's recursion limit, with a link out of it. */
	snprintf(dir, sizeof(dir), "%s/deep", bw.root);
	assert_int_equal(mkdir(dir, 0700), 0);
	len = (size_t)snprintf(path, sizeof(path), "%s", dir);
	for (i = 0; i < 300 && len + 4 < sizeof(path); i++) {
		len += (size_t)snprintf(path + len, sizeof(path) - len, "/%c", 'a' + i % 26);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(symlinkat("/etc", fd, "etc-link"), 0);
	assert_int_equal(mkdirat(fd, "x", 0700), 0);
	assert_int_equal(close(fd), 0);
	fd = open(bw.root, O_RDONLY | O_DIRECTORY);
	assert_int_equal(bwrap_rmtree(fd, "deep"), 0);
	close(fd);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(access("/etc/passwd", F_OK), 0);
}

static void test_sweep(void **state)
{
	ci_create_spec a = {.struct_size = sizeof(a), .owner = "sweep-a"};
	ci_create_spec b = {.struct_size = sizeof(b), .owner = "sweep-b"};
	char ida[CI_ID_MAX], idb[CI_ID_MAX], path[4096];
	ci_call call = bw_call(5000);
	int64_t now = bw.host.wall_unix(bw.host.hctx);
	unsigned n = 99;

	(void)state;
	assert_int_equal(bw.d->create(bw.be, &a, ida, &call), CI_OK);
	assert_int_equal(bw.d->create(bw.be, &b, idb, &call), CI_OK);
	/* Nothing of a's is older than a minute ago. */
	assert_int_equal(bw.d->sweep(bw.be, "sweep-a", now - 60, &n, &call), CI_OK);
	assert_int_equal(n, 0);
	/* A prefix of the owner is another owner. */
	assert_int_equal(bw.d->sweep(bw.be, "sweep-", now + 60, &n, &call), CI_OK);
	assert_int_equal(n, 0);
	assert_int_equal(bw.d->sweep(bw.be, "sweep-a", now + 60, &n, &call), CI_OK);
	assert_int_equal(n, 1);
	snprintf(path, sizeof(path), "%s/%s", bw.root, ida);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/%s", bw.root, idb);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(bw.d->destroy(bw.be, ida, &call), CI_E_NOTFOUND);
	assert_int_equal(bw.d->sweep(bw.be, "sweep-b", now + 60, &n, &call), CI_OK);
	assert_int_equal(n, 1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(bw.d->sweep(bw.be, NULL, now, &n, &call), CI_E_INVAL);
}

static void test_put_get_roundtrip(void **state)
{
	static const char text[] = "hello, sandbox\n";
	ci_call call = bw_call(5000);
	struct bw_out o = {0};
	ci_exec_result res;
	char path[4096];
	struct stat st, dst;

	(void)state;
	assert_int_equal(
		bw_put_mem(bw.id, "/mnt/data/sub/dir/in.txt", text, sizeof(text) - 1, 0640, &call),
		CI_OK);
	assert_int_equal(bw_get(bw.id, "/mnt/data/sub/dir/in.txt", &o, &call), CI_OK);
	assert_int_equal(o.out.len, sizeof(text) - 1);
	assert_memory_equal(o.out.buf, text, sizeof(text) - 1);
	bw_out_free(&o);
	/* Owned by the sandbox uid, mode as asked, parents too. */
	bw_data_path(bw.id, path, sizeof(path));
	assert_int_equal(stat(path, &dst), 0);
	strcat(path, "/sub/dir/in.txt");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(st.st_uid, dst.st_uid);
	bw_data_path(bw.id, path, sizeof(path));
	strcat(path, "/sub/dir");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, dst.st_uid);
	/* The program can read it, change it and make new files beside it. */
	bw_sh("cat sub/dir/in.txt && echo more >> sub/dir/in.txt && echo new > sub/dir/out.txt",
	      &res, &o);
	assert_int_equal(res.exit_code, 0);
	assert_string_equal(o.out.buf, text);
	bw_out_free(&o);
	assert_int_equal(bw_get(bw.id, "/mnt/data/sub/dir/in.txt", &o, &call), CI_OK);
	assert_string_equal(o.out.buf, "hello, sandbox\nmore\n");
	bw_out_free(&o);
	/* Replacing keeps no temp files around. */
	assert_int_equal(bw_put_mem(bw.id, "/mnt/data/sub/dir/in.txt", "v2", 2, 0, &call), CI_OK);
	assert_int_equal(bw_get(bw.id, "/mnt/data/sub/dir/in.txt", &o, &call), CI_OK);
	assert_string_equal(o.out.buf, "v2");
	bw_out_free(&o);
	bw_sh("ls -A sub/dir", &res, &o);
	assert_string_equal(o.out.buf, "in.txt\nout.txt\n");
	bw_out_free(&o);
}

static void test_put_from_fd(void **state)
{
	char tmpl[] = "/tmp/ci-bwrap-src-XXXXXX";
	size_t len = 3 * MIB + 123, i;
	char *data = malloc(len);
	ci_call call = bw_call(10000);
	struct bw_out o = {0};
	ci_source src;
	int fd;

	(void)state;
	assert_non_null(data);
	for (i = 0; i < len; i++)
		data[i] = (char)(i * 7 + i / 4096);
	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	unlink(tmpl);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	/* The fd's own offset is at the end: the plugin must copy from 0. */
	src = (ci_source){NULL, NULL, (int64_t)len, fd};
	assert_int_equal(bw.d->put(bw.be, bw.id, "/mnt/data/big.bin", &src, 0644, &call), CI_OK);
	assert_int_equal(bw_get(bw.id, "/mnt/data/big.bin", &o, &call), CI_OK);
	assert_int_equal(o.out.len, len);
	assert_memory_equal(o.out.buf, data, len);
	/* Streamed in chunks, not one buffer. */
	assert_true(o.out.chunks > 1);
	bw_out_free(&o);
	close(fd);
	free(data);
}

struct short_src {
	int calls;
};

static ssize_t short_read(void *ctx, void *buf, size_t cap)
{
	struct short_src *s = ctx;

	(void)cap;
	if (s->calls++)
		return 0;
	memcpy(buf, "12345", 5);
	return 5;
}

static ssize_t failing_read(void *ctx, void *buf, size_t cap)
{
	(void)ctx;
	(void)buf;
	(void)cap;
	return -1;
}

static void test_put_failures_leave_nothing(void **state)
{
	struct short_src s = {0};
	ci_source src = {short_read, &s, 10, -1};
	ci_call call = bw_call(5000);
	struct bw_out o = {0};
	ci_exec_result res;
	char *big;

	(void)state;
	assert_int_equal(bw.d->put(bw.be, bw.id, "/mnt/data/short", &src, 0644, &call), CI_E_INVAL);
	src = (ci_source){failing_read, NULL, 10, -1};
	assert_int_not_equal(bw.d->put(bw.be, bw.id, "/mnt/data/failing", &src, 0644, &call),
			     CI_OK);
	/* Larger than the sandbox disk (32 MiB here): refused as a limit. */
	big = calloc(1, 40 * MIB);
	assert_non_null(big);
	assert_int_equal(bw_put_mem(bw.id, "/mnt/data/huge", big, 40 * MIB, 0644, &call),
			 CI_E_LIMIT);
	free(big);
	bw_sh("ls -A", &res, &o);
	assert_string_equal(o.out.buf ? o.out.buf : "", "");
	bw_out_free(&o);
	/* Nothing over a directory either. */
	assert_int_equal(bw_put_mem(bw.id, "/mnt/data/d/f", "x", 1, 0644, &call), CI_OK);
	assert_int_equal(bw_put_mem(bw.id, "/mnt/data/d", "x", 1, 0644, &call), CI_E_INVAL);
}

static void test_bad_paths(void **state)
{
	static const char *const bad[] = {"/etc/passwd",
					  "/mnt/data/../../etc/passwd",
					  "/mnt/datafile",
					  "mnt/data/x",
					  "/mnt/data/./x",
					  "/mnt/data/a/../x",
					  "/mnt",
					  "",
					  NULL};
	ci_call call = bw_call(5000);
	struct bw_out o = {0};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(bw_get(bw.id, bad[i], &o, &call), CI_E_INVAL);
		assert_int_equal(bw_put_mem(bw.id, bad[i], "x", 1, 0644, &call), CI_E_INVAL);
	}
	assert_int_equal(bw_put_mem(bw.id, "/mnt/data", "x", 1, 0644, &call), CI_E_INVAL);
	assert_int_equal(bw_get(bw.id, "/mnt/data/", &o, &call), CI_E_INVAL);
	assert_int_equal(bw_get(bw.id, "/mnt/data/missing", &o, &call), CI_E_NOTFOUND);
	assert_int_equal(o.out.len, 0);
	bw_out_free(&o);
}

struct listing {
	char text[8192];
	size_t len;
	int n, stop_after;
};

static int list_cb(void *ctx, const ci_entry *e)
{
	struct listing *l = ctx;
	static const char types[] = "?fdlo";

	l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, "%c %s %lld %o\n",
				   types[e->type], e->path, (long long)e->size, e->mode);
	assert_true(e->mtime_ns > 1000000000LL * 1000000000LL);
	return ++l->n == l->stop_after;
}

static void test_list(void **state)
{
	struct listing l = {.len = 0};
	ci_call call = bw_call(5000);
	ci_exec_result res;

	(void)state;
	bw_sh("mkdir -p a/b && printf 12345 > a/b/f && printf 1 > top && chmod 600 top && "
	      "ln -s /etc a/etc && mkfifo a/fifo",
	      &res, NULL);
	assert_int_equal(res.exit_code, 0);
	assert_int_equal(bw.d->list(bw.be, bw.id, "/mnt/data", list_cb, &l, &call), CI_OK);
	assert_int_equal(l.n, 6);
	assert_non_null(strstr(l.text, "d a 0 755\n"));
	assert_non_null(strstr(l.text, "d a/b 0 755\n"));
	assert_non_null(strstr(l.text, "f a/b/f 5 644\n"));
	assert_non_null(strstr(l.text, "f top 1 600\n"));
	assert_non_null(strstr(l.text, "l a/etc 0 777\n"));
	assert_non_null(strstr(l.text, "o a/fifo 0 644\n"));
	/* A subdirectory: paths relative to it. */
	l = (struct listing){.len = 0};
	assert_int_equal(bw.d->list(bw.be, bw.id, "/mnt/data/a/b", list_cb, &l, &call), CI_OK);
	assert_string_equal(l.text, "f f 5 644\n");
	/* The callback can stop the walk. */
	l = (struct listing){.stop_after = 2};
	assert_int_equal(bw.d->list(bw.be, bw.id, "/mnt/data", list_cb, &l, &call), CI_OK);
	assert_int_equal(l.n, 2);
	l = (struct listing){.len = 0};
	assert_int_equal(bw.d->list(bw.be, bw.id, "/mnt/data/none", list_cb, &l, &call),
			 CI_E_NOTFOUND);
	assert_int_equal(bw.d->list(bw.be, bw.id, "/etc", list_cb, &l, &call), CI_E_INVAL);
	assert_int_equal(l.n, 0);
}

static void test_get_special_files(void **state)
{
	ci_call call = bw_call(5000);
	struct bw_out o = {0};
	ci_exec_result res;
	int64_t t0;

	(void)state;
	bw_sh("mkfifo fifo && mkdir dir", &res, NULL);
	assert_int_equal(res.exit_code, 0);
	t0 = bw.host.now_ms(bw.host.hctx);
	/* A FIFO nobody writes to would block a naive reader forever. */
	assert_int_equal(bw_get(bw.id, "/mnt/data/fifo", &o, &call), CI_E_INVAL);
	assert_true(bw.host.now_ms(bw.host.hctx) - t0 < 1000);
	assert_int_equal(bw_get(bw.id, "/mnt/data/dir", &o, &call), CI_E_INVAL);
	assert_int_equal(o.out.len, 0);
	bw_out_free(&o);
}

static int64_t read_num(const char *dir, const char *id, const char *file)
{
	char path[4096], buf[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, id, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtoll(buf, NULL, 10);
}

static void test_cgroup_lifecycle(void **state)
{
	const struct bwrap_cgroups *cg = &bw.be->cg;
	char path[4096];
	ci_call call = bw_call(5000);
	unsigned i;

	(void)state;
	if (!cg->memory || !cg->pids) {
		/* No cgroups here: the plugin must say so, once, at init. */
		assert_non_null(strstr(fake_host_log(), "no writable cgroup"));
		return;
	}
	for (i = 0; i < cg->n; i++) {
		snprintf(path, sizeof(path), "%s/%s", cg->dir[i], bw.id);
		if (!strcmp(cg->ctl[i], "cpu")) {
			/* only made when a CPU quota is asked for */
			assert_int_equal(access(path, F_OK), -1);
			continue;
		}
		assert_int_equal(access(path, F_OK), 0);
		if (!strcmp(cg->ctl[i], "memory"))
			assert_int_equal(read_num(cg->dir[i], bw.id, "memory.limit_in_bytes"),
					 256 * MIB);
		if (!strcmp(cg->ctl[i], "pids"))
			assert_int_equal(read_num(cg->dir[i], bw.id, "pids.max"), 64 + 2);
		if (!strcmp(cg->ctl[i], "unified")) {
			assert_int_equal(read_num(cg->dir[i], bw.id, "memory.max"), 256 * MIB);
			assert_int_equal(read_num(cg->dir[i], bw.id, "pids.max"), 64 + 2);
		}
	}
	assert_int_equal(bw.d->destroy(bw.be, bw.id, &call), CI_OK);
	for (i = 0; i < cg->n; i++) {
		snprintf(path, sizeof(path), "%s/%s", cg->dir[i], bw.id);
		assert_int_equal(access(path, F_OK), -1);
	}
	/* the fixture's teardown destroys it again */
	assert_int_equal(bw_sandbox_setup(NULL), 0);
}

static void test_cgroup_cpu_quota(void **state)
{
	ci_create_spec cs = {.struct_size = sizeof(cs), .owner = BW_OWNER, .cpu_millis = 500};
	const struct bwrap_cgroups *cg = &bw.be->cg;
	ci_call call = bw_call(5000);
	char id[CI_ID_MAX];
	struct bw_out o = {0};
	ci_exec_result res;
	const char *argv[] = {"/bin/sh", "-c", "echo ok", NULL};
	unsigned i;

	(void)state;
	assert_int_equal(bw.d->create(bw.be, &cs, id, &call), CI_OK);
	for (i = 0; i < cg->n; i++) {
		if (!strcmp(cg->ctl[i], "cpu"))
			assert_int_equal(read_num(cg->dir[i], id, "cpu.cfs_quota_us"), 50000);
	}
	assert_int_equal(bw_run(id, argv, NULL, NULL, NULL, 0, 5000, &res, &o), CI_OK);
	assert_string_equal(o.out.buf, "ok\n");
	bw_out_free(&o);
	assert_int_equal(bw.d->destroy(bw.be, id, &call), CI_OK);
}

/* put len bytes of data through a temporary file's fd. */
static int put_via_fd(ci_be *be, const char *id, const char *path, const char *data, size_t len,
		      ci_call *call)
{
	char tmpl[] = "/tmp/ci-bwrap-src-XXXXXX";
	int fd = mkstemp(tmpl), rc;

	assert_true(fd >= 0);
	unlink(tmpl);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	rc = bw.d->put(be, id, path, &(ci_source){NULL, NULL, (int64_t)len, fd}, 0644, call);
	close(fd);
	return rc;
}

/* data_fs = "dir": plain directories, what a non-root server gets. */
static void test_dir_mode(void **state)
{
	char root[] = "/tmp/ci-bwrap-dir-XXXXXX", path[4096], cmd[128];
	struct fake_cfg cfg[] = {{"root", FAKE_STR, root, 0},
				 {"data_fs", FAKE_STR, "dir", 0},
				 {"disk_bytes", FAKE_INT, NULL, 4 * MIB},
				 {NULL, 0, NULL, 0}};
	ci_create_spec cs = {.struct_size = sizeof(cs), .owner = BW_OWNER};
	const char *argv[] = {"/bin/sh", "-c",
			      "cat in.txt; echo out > out.txt; head -c 8M /dev/zero > big; "
			      "ls -l big | awk '{print $5}'",
			      NULL};
	ci_sink sink;
	ci_exec_spec es = {.struct_size = sizeof(es), .argv = argv, .timeout_ms = 5000};
	ci_exec_result res = {.struct_size = sizeof(res)};
	struct bw_out o = {0};
	ci_call call = bw_call(20000);
	char id[CI_ID_MAX], *big;
	struct statfs sfs;
	ci_host host;
	ci_be *be;

	(void)state;
	assert_non_null(mkdtemp(root));
	fake_host_init(&host, cfg);
	assert_int_equal(bw.d->init(&host, &be, &call), CI_OK);
	assert_int_equal(bw.d->create(be, &cs, id, &call), CI_OK);
	snprintf(path, sizeof(path), "%s/%s/data", root, id);
	assert_int_equal(statfs(path, &sfs), 0);
	assert_true(sfs.f_type != TMPFS_MAGIC);
	assert_int_equal(put_via_fd(be, id, "/mnt/data/in.txt", "in\n", 3, &call), CI_OK);
	sink = (ci_sink){bw_sink_write, &o};
	es.out = &sink;
	assert_int_equal(bw.d->exec(be, id, &es, &res, &call), CI_OK);
	/* One file is capped by RLIMIT_FSIZE at the disk size. */
	assert_string_equal(o.out.buf, "in\n4194304\n");
	bw_out_free(&o);
	big = calloc(1, 5 * MIB);
	assert_non_null(big);
	assert_int_equal(put_via_fd(be, id, "/mnt/data/big2", big, 5 * MIB, &call), CI_E_LIMIT);
	free(big);
	assert_int_equal(bw.d->destroy(be, id, &call), CI_OK);
	assert_int_equal(access(path, F_OK), -1);
	bw.d->fini(be);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static void test_errno_map(void **state)
{
	(void)state;
	assert_int_equal(bwrap_errno_rc(ENOENT), CI_E_NOTFOUND);
	assert_int_equal(bwrap_errno_rc(ELOOP), CI_E_INVAL);
	assert_int_equal(bwrap_errno_rc(ENOSPC), CI_E_LIMIT);
	assert_int_equal(bwrap_errno_rc(EIO), CI_E_INTERNAL);
}

#define SB(f) cmocka_unit_test_setup_teardown(f, bw_sandbox_setup, bw_sandbox_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor),
		cmocka_unit_test(test_init_logged),
		cmocka_unit_test(test_init_errors),
		cmocka_unit_test(test_bad_ids),
		SB(test_create_layout),
		cmocka_unit_test(test_create_rejects),
		SB(test_two_sandboxes_two_uids),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_rmtree_deep),
		cmocka_unit_test(test_sweep),
		SB(test_put_get_roundtrip),
		SB(test_put_from_fd),
		SB(test_put_failures_leave_nothing),
		SB(test_bad_paths),
		SB(test_list),
		SB(test_get_special_files),
		SB(test_cgroup_lifecycle),
		cmocka_unit_test(test_cgroup_cpu_quota),
		cmocka_unit_test(test_dir_mode),
		cmocka_unit_test(test_errno_map),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "the bwrap tests need root (mounts, host uids)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, bw_group_setup, bw_group_teardown);
}
