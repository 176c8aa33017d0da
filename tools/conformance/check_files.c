/* Sandbox lifecycle, put/get round trips, the 50 MiB stream, and list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kit.h"
#include "loader.h"

#define BIG_SIZE (50ll << 20)

/* ASan's quarantine and shadow memory make peak RSS meaningless. */
#if defined(__SANITIZE_ADDRESS__)
#define KIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KIT_ASAN 1
#endif
#endif

void kit_check_lifecycle(struct kit *k)
{
	static const char *const env[] = {"CI_KIT_CREATE=from-create", NULL};
	char err[CI_ERR_MAX];
	struct kit_list l;
	int rc;

	rc = kit_create(k, k->owner, env, k->id, err);
	if (!kit_ok(k, rc == CI_OK && k->id[0], "create returns a sandbox id")) {
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
		k->id[0] = 0;
		return;
	}
	kit_diag("working sandbox id=%s", k->id);
	rc = kit_create(k, k->owner, NULL, k->gone, err);
	if (!kit_ok(k, rc == CI_OK && strcmp(k->gone, k->id),
		    "a second create returns another id")) {
		kit_diag("rc=%s err=%s id=%s", kit_rc(rc), err, k->gone);
		snprintf(k->gone, sizeof(k->gone), "nosuchsandbox0gone");
		return;
	}
	rc = kit_destroy(k, k->gone, err);
	if (!kit_ok(k, rc == CI_OK, "destroy returns ok"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	rc = kit_destroy(k, k->gone, err);
	if (!kit_ok(k, rc == CI_E_NOTFOUND, "destroy of a destroyed sandbox is not_found"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	rc = kit_list(k, k->gone, "/mnt/data", &l, err);
	if (!kit_ok(k, rc == CI_E_NOTFOUND, "list in a destroyed sandbox is not_found"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
}

/* put then get, comparing bytes. */
static void round_trip(struct kit *k, const char *path, const void *data, size_t len,
		       bool through_fd, const char *what)
{
	struct kit_buf b = {0};
	char err[CI_ERR_MAX];
	int rc;

	rc = kit_put(k, k->id, path, data, len, 0644, through_fd, err);
	if (!kit_ok(k, rc == CI_OK, "put %s", what)) {
		kit_diag("%s: rc=%s err=%s", path, kit_rc(rc), err);
		return;
	}
	rc = kit_get(k, k->id, path, &b, err);
	if (!kit_ok(k, rc == CI_OK && kit_buf_is(&b, data, len), "get %s returns the same bytes",
		    what))
		kit_diag("%s: rc=%s err=%s got %lld bytes, want %zu", path, kit_rc(rc), err,
			 (long long)b.total, len);
	kit_buf_free(&b);
}

void kit_check_files(struct kit *k)
{
	static const char first[] = "the first version, longer than the second";
	unsigned char *bin = malloc(256 * 64);
	struct kit_list l = {0};
	const struct kit_entry *e;
	char err[CI_ERR_MAX];
	int rc;

	if (!bin)
		abort();
	for (int i = 0; i < 256 * 64; i++)
		bin[i] = (unsigned char)(i ^ (i >> 8));
	round_trip(k, "/mnt/data/empty.txt", "", 0, false, "of an empty file");
	round_trip(k, "/mnt/data/bin/all-bytes.bin", bin, 256 * 64, true,
		   "of every byte value (source with fd)");
	round_trip(k, "/mnt/data/bin/all-bytes2.bin", bin, 256 * 64, false,
		   "of every byte value (read() only source)");
	round_trip(k, "/mnt/data/n1/n2/n3/deep.txt", "deep\n", 5, false,
		   "into missing parent directories");
	free(bin);

	rc = kit_put(k, k->id, "/mnt/data/over.txt", first, sizeof(first) - 1, 0644, false, err);
	if (!rc)
		rc = kit_put(k, k->id, "/mnt/data/over.txt", "v2", 2, 0644, false, err);
	if (!kit_ok(k, rc == CI_OK, "put over an existing file"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	else
		round_trip(k, "/mnt/data/over.txt", "v2", 2, false, "over an existing file again");

	rc = kit_put(k, k->id, "/mnt/data/mode.sh", "#!/bin/sh\necho hi\n", 18, 0755, false, err);
	if (!rc)
		rc = kit_put(k, k->id, "/mnt/data/mode.txt", "x", 1, 0600, false, err);
	if (!rc)
		rc = kit_list(k, k->id, "/mnt/data", &l, err);
	if (!kit_ok(k, rc == CI_OK, "put with modes 0755 and 0600, then list"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	e = kit_list_find(&l, "mode.sh");
	if (!kit_ok(k, e && (e->mode & 0777) == 0755, "list reports the mode put gave (0755)"))
		kit_diag("mode.sh: %s mode %04o", e ? "found" : "missing", e ? e->mode : 0);
	e = kit_list_find(&l, "mode.txt");
	if (!kit_ok(k, e && (e->mode & 0777) == 0600, "list reports the mode put gave (0600)"))
		kit_diag("mode.txt: %s mode %04o", e ? "found" : "missing", e ? e->mode : 0);
	e = kit_list_find(&l, "empty.txt");
	if (!kit_ok(k, e && e->type == CI_ENTRY_FILE && e->size == 0,
		    "list reports the empty file with size 0"))
		kit_diag("empty.txt: %s", e ? "wrong type or size" : "missing");
	e = kit_list_find(&l, "n1/n2");
	if (!kit_ok(k, e && e->type == CI_ENTRY_DIR, "parents made by put are directories"))
		kit_diag("n1/n2: %s", e ? "not a directory" : "missing");
}

/* ---- 50 MiB: generated on the fly, verified on the fly ------------------ */

static unsigned char gen_byte(int64_t off)
{
	uint64_t x = (uint64_t)off * 0x9E3779B97F4A7C15ull;

	return (unsigned char)((x >> 56) ^ (uint64_t)off);
}

struct gen {
	int64_t off, size;
	int reads;
};

static ssize_t gen_read(void *ctx, void *buf, size_t cap)
{
	struct gen *g = ctx;
	unsigned char *p = buf;
	size_t n = (size_t)(g->size - g->off) < cap ? (size_t)(g->size - g->off) : cap;

	for (size_t i = 0; i < n; i++)
		p[i] = gen_byte(g->off + (int64_t)i);
	g->off += (int64_t)n;
	g->reads++;
	return (ssize_t)n;
}

struct check {
	int64_t off, bad_at;
	int chunks;
};

static int check_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct check *c = ctx;
	const unsigned char *p = buf;

	(void)stream;
	c->chunks++;
	for (size_t i = 0; i < len; i++)
		if (c->bad_at < 0 && p[i] != gen_byte(c->off + (int64_t)i))
			c->bad_at = c->off + (int64_t)i;
	c->off += (int64_t)len;
	return 0;
}

/* Peak resident set of this process, in KiB. */
static long peak_rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

void kit_check_big(struct kit *k)
{
	struct gen g = {.size = BIG_SIZE};
	ci_source src = {.read = gen_read, .ctx = &g, .size = BIG_SIZE, .fd = -1};
	struct check c = {.bad_at = -1};
	ci_sink sink = {.write = check_write, .ctx = &c};
	struct kit_list l = {0};
	const struct kit_entry *e;
	long rss0 = peak_rss_kib(), grew;
	char err[CI_ERR_MAX];
	int64_t t0 = kit_now_ms();
	ci_call call;
	int rc;

	rc = ci_plugin_put(k->p, &call, "kit", t0 + KIT_BIG_MS, k->id, "/mnt/data/big/50MiB.bin",
			   &src, 0644);
	if (!kit_ok(k, rc == CI_OK && g.off == BIG_SIZE,
		    "put of 50 MiB streamed from a read() callback")) {
		kit_diag("rc=%s err=%s read %lld bytes", kit_rc(rc), call.err, (long long)g.off);
		return;
	}
	kit_diag("put: %lld ms in %d reads", (long long)(kit_now_ms() - t0), g.reads);
	t0 = kit_now_ms();
	rc = ci_plugin_get(k->p, &call, "kit", t0 + KIT_BIG_MS, k->id, "/mnt/data/big/50MiB.bin",
			   &sink);
	if (!kit_ok(k, rc == CI_OK && c.off == BIG_SIZE && c.bad_at < 0,
		    "get of 50 MiB streams back the same bytes"))
		kit_diag("rc=%s err=%s got %lld bytes, first difference at %lld", kit_rc(rc),
			 call.err, (long long)c.off, (long long)c.bad_at);
	kit_diag("get: %lld ms in %d chunks", (long long)(kit_now_ms() - t0), c.chunks);
	kit_ok(k, c.chunks > 1, "get delivers 50 MiB in several chunks (%d)", c.chunks);
	rc = kit_list(k, k->id, "/mnt/data/big", &l, err);
	e = kit_list_find(&l, "50MiB.bin");
	if (!kit_ok(k, rc == CI_OK && e && e->size == BIG_SIZE, "list reports the 50 MiB size"))
		kit_diag("rc=%s err=%s size=%lld", kit_rc(rc), err, e ? (long long)e->size : -1LL);
	grew = (peak_rss_kib() - rss0) / 1024;
#ifdef KIT_ASAN
	kit_skip(k, "peak RSS means nothing under ASan", "50 MiB round trip stayed streamed (%ld)",
		 grew);
#else
	if (!kit_ok(k, rss0 > 0 && grew < 40,
		    "50 MiB round trip stayed streamed (peak RSS grew %ld MiB)", grew))
		kit_diag("a whole-file buffer would grow the peak by >= 50 MiB");
#endif
}

/* ---- list and symlinks --------------------------------------------------- */

static void expect_entry(struct kit *k, const struct kit_list *l, const char *path, int type,
			 int64_t size)
{
	const struct kit_entry *e = kit_list_find(l, path);

	if (!kit_ok(k, e && e->type == type && (size < 0 || e->size == size),
		    "list reports %s (type %d%s)", path, type, size >= 0 ? ", size" : ""))
		kit_diag("%s: %s type=%d size=%lld", path, e ? "found" : "missing", e ? e->type : 0,
			 e ? (long long)e->size : -1LL);
}

static void expect_refused_get(struct kit *k, const char *path, const char *what)
{
	struct kit_buf b = {0};
	char err[CI_ERR_MAX];
	int rc = kit_get(k, k->id, path, &b, err);

	if (!kit_ok(k, rc != CI_OK && b.total == 0, "get %s is refused", what))
		kit_diag("%s: rc=%s, %lld bytes delivered", path, kit_rc(rc), (long long)b.total);
	else
		kit_diag("%s: %s (%s)", path, kit_rc(rc), err);
	kit_buf_free(&b);
}

void kit_check_list(struct kit *k)
{
	static const char ybin[1000] = {1, 2, 3};
	struct kit_list l = {0};
	struct kit_buf b = {0};
	char err[CI_ERR_MAX];
	bool followed = false;
	int rc;

	rc = kit_put(k, k->id, "/mnt/data/list/x.txt", "abc", 3, 0644, false, err);
	if (!rc)
		rc = kit_put(k, k->id, "/mnt/data/list/sub/y.bin", ybin, sizeof(ybin), 0644, false,
			     err);
	if (!kit_ok(k, rc == CI_OK, "put the files of the list checks"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	kit_ok(k,
	       kit_sh(k, "cd list && ln -s /etc link_abs && ln -s sub link_rel && "
			 "ln -s sub/y.bin link_file && mkdir emptydir"),
	       "exec makes symlinks and a directory for the list checks");

	rc = kit_list(k, k->id, "/mnt/data/list", &l, err);
	if (!kit_ok(k, rc == CI_OK, "list of a directory"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	expect_entry(k, &l, "x.txt", CI_ENTRY_FILE, 3);
	expect_entry(k, &l, "sub", CI_ENTRY_DIR, -1);
	expect_entry(k, &l, "sub/y.bin", CI_ENTRY_FILE, 1000);
	expect_entry(k, &l, "emptydir", CI_ENTRY_DIR, -1);
	expect_entry(k, &l, "link_abs", CI_ENTRY_SYMLINK, -1);
	expect_entry(k, &l, "link_rel", CI_ENTRY_SYMLINK, -1);
	expect_entry(k, &l, "link_file", CI_ENTRY_SYMLINK, -1);
	for (int i = 0; i < l.n; i++)
		if (!strncmp(l.e[i].path, "link_", 5) && strchr(l.e[i].path, '/'))
			followed = true;
	kit_ok(k, !followed && l.calls == 7,
	       "list follows no symlink and reports exactly 7 entries (got %d)", l.calls);

	rc = kit_list(k, k->id, "/mnt/data", &l, err);
	kit_ok(k, rc == CI_OK && kit_list_find(&l, "list/sub/y.bin"),
	       "list recurses, paths relative to the listed directory");
	l.stop_after = 1;
	rc = kit_list(k, k->id, "/mnt/data/list", &l, err);
	kit_ok(k, l.calls == 1, "list stops when the callback returns non-zero (%d calls, %s)",
	       l.calls, kit_rc(rc));
	l.stop_after = 0;
	rc = kit_list(k, k->id, "/mnt/data/no/such/dir", &l, err);
	if (!kit_ok(k, rc == CI_E_NOTFOUND, "list of a missing directory is not_found"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	rc = kit_list(k, k->id, "/mnt/data/list/link_rel", &l, err);
	if (!kit_ok(k, rc != CI_OK && l.calls == 0, "list through a symlink is refused"))
		kit_diag("rc=%s, %d entries", kit_rc(rc), l.calls);

	expect_refused_get(k, "/mnt/data/list/link_file", "of a symlink to a file");
	expect_refused_get(k, "/mnt/data/list/link_rel/y.bin", "through a symlinked directory");
	expect_refused_get(k, "/mnt/data/list/link_abs/passwd", "through a symlink to /etc");

	rc = kit_put(k, k->id, "/mnt/data/list/link_rel/probe.txt", "p", 1, 0644, false, err);
	kit_ok(k, rc != CI_OK, "put through a symlinked directory is refused (%s)", kit_rc(rc));
	rc = kit_get(k, k->id, "/mnt/data/list/sub/probe.txt", &b, err);
	kit_ok(k, rc == CI_E_NOTFOUND, "... and wrote nothing where the link points (%s)",
	       kit_rc(rc));
	kit_buf_free(&b);
	/* either refused or the link itself replaced: never the target */
	kit_put(k, k->id, "/mnt/data/list/link_file", "replaced", 8, 0644, false, err);
	rc = kit_get(k, k->id, "/mnt/data/list/sub/y.bin", &b, err);
	kit_ok(k, rc == CI_OK && kit_buf_is(&b, ybin, sizeof(ybin)),
	       "put onto a symlink never writes through it");
	kit_buf_free(&b);
}
