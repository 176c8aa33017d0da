/*
 * ci-backend-conformance [options] PATH/TO/ci-backend-<name>.so [CONFIG_FILE]
 *
 * Loads the plugin through the server's own loader and host table (the
 * config file's backends.<name> section is what the plugin sees), runs every
 * check group and prints TAP. Exit status 0 only when nothing failed.
 */
#define _GNU_SOURCE
#include "kit.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "host.h"
#include "loader.h"
#include "log.h"

bool kit_ok(struct kit *k, bool ok, const char *fmt, ...)
{
	va_list ap;

	k->n++;
	if (!ok)
		k->failed++;
	printf("%sok %d - ", ok ? "" : "not ", k->n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return ok;
}

void kit_skip(struct kit *k, const char *why, const char *fmt, ...)
{
	va_list ap;

	k->n++;
	k->skipped++;
	printf("ok %d - ", k->n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", why);
	fflush(stdout);
}

void kit_diag(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	printf("#   %s\n", line);
	fflush(stdout);
}

const char *kit_rc(int rc)
{
	return ci_rc_name(rc);
}

int64_t kit_now_ms(void)
{
	return ci_now_ms();
}

void kit_buf_add(struct kit_buf *b, const void *p, size_t n)
{
	size_t keep = n;

	b->total += (int64_t)n;
	b->chunks++;
	if (b->len + keep > KIT_CAPTURE)
		keep = KIT_CAPTURE - b->len;
	if (!keep)
		return;
	if (b->len + keep > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + keep)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (!b->data)
			abort();
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, keep);
	b->len += keep;
}

void kit_buf_free(struct kit_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

bool kit_buf_is(const struct kit_buf *b, const void *p, size_t n)
{
	return b->total == (int64_t)n && b->len == n && (!n || !memcmp(b->data, p, n));
}

void kit_run_free(struct kit_run *run)
{
	kit_buf_free(&run->out);
	kit_buf_free(&run->err_out);
}

int kit_create(struct kit *k, const char *owner, const char *const *env, char id[CI_ID_MAX],
	       char err[CI_ERR_MAX])
{
	ci_create_spec spec = {
		.struct_size = sizeof(spec),
		.runtime = k->runtime,
		.image = k->image,
		.owner = owner,
		.session = "conformance",
		.env = env,
	};
	ci_call call;
	int rc = ci_plugin_create(k->p, &call, "kit", ci_now_ms() + KIT_CALL_MS, &spec, id);

	memcpy(err, call.err, CI_ERR_MAX);
	return rc;
}

int kit_destroy(struct kit *k, const char *id, char err[CI_ERR_MAX])
{
	ci_call call;
	int rc = ci_plugin_destroy(k->p, &call, "kit", ci_now_ms() + KIT_CALL_MS, id);

	memcpy(err, call.err, CI_ERR_MAX);
	return rc;
}

struct mem_src {
	const char *p;
	size_t len, off;
};

static ssize_t mem_read(void *ctx, void *buf, size_t cap)
{
	struct mem_src *m = ctx;
	size_t n = m->len - m->off < cap ? m->len - m->off : cap;

	memcpy(buf, m->p + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

int kit_put(struct kit *k, const char *id, const char *path, const void *data, size_t len,
	    uint32_t mode, bool through_fd, char err[CI_ERR_MAX])
{
	struct mem_src m = {.p = data, .len = len};
	ci_source src = {.read = mem_read, .ctx = &m, .size = (int64_t)len, .fd = -1};
	char tmpl[] = "/tmp/ci-kit-XXXXXX";
	ci_call call;
	int rc;

	if (through_fd) {
		src.fd = mkstemp(tmpl);
		if (src.fd >= 0)
			unlink(tmpl);
		if (src.fd < 0 || write(src.fd, data, len) != (ssize_t)len ||
		    lseek(src.fd, 0, SEEK_SET)) {
			snprintf(err, CI_ERR_MAX, "kit: cannot make a temporary file");
			if (src.fd >= 0)
				close(src.fd);
			return CI_E_INTERNAL;
		}
	}
	rc = ci_plugin_put(k->p, &call, "kit", ci_now_ms() + KIT_CALL_MS, id, path, &src, mode);
	memcpy(err, call.err, CI_ERR_MAX);
	if (src.fd >= 0)
		close(src.fd);
	return rc;
}

static int buf_sink(void *ctx, int stream, const void *buf, size_t len)
{
	(void)stream;
	kit_buf_add(ctx, buf, len);
	return 0;
}

int kit_get(struct kit *k, const char *id, const char *path, struct kit_buf *out,
	    char err[CI_ERR_MAX])
{
	ci_sink sink = {.write = buf_sink, .ctx = out};
	ci_call call;
	int rc = ci_plugin_get(k->p, &call, "kit", ci_now_ms() + KIT_CALL_MS, id, path, &sink);

	memcpy(err, call.err, CI_ERR_MAX);
	return rc;
}

struct run_sink {
	struct kit_run *run;
	int64_t start;
	bool stdout_stopped;
};

static int run_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct run_sink *s = ctx;
	struct kit_run *r = s->run;

	if (stream == CI_STREAM_STDERR) {
		kit_buf_add(&r->err_out, buf, len);
		return 0;
	}
	if (s->stdout_stopped) {
		r->out_after_stop++;
		return 1;
	}
	if (r->first_out_ms < 0)
		r->first_out_ms = ci_now_ms() - s->start;
	kit_buf_add(&r->out, buf, len);
	if (r->stop_stdout_after > 0 && r->out.chunks >= r->stop_stdout_after) {
		s->stdout_stopped = true;
		return 1;
	}
	return 0;
}

int kit_exec(struct kit *k, const char *id, const char *const *argv, const char *const *env,
	     const char *cwd, const void *in, size_t in_len, int64_t timeout_ms,
	     struct kit_run *run)
{
	struct run_sink s = {.run = run, .start = ci_now_ms()};
	ci_sink sink = {.write = run_write, .ctx = &s};
	ci_exec_spec spec = {
		.struct_size = sizeof(spec),
		.argv = argv,
		.env = env,
		.cwd = cwd,
		.stdin_buf = in,
		.stdin_len = in_len,
		.timeout_ms = timeout_ms,
		.out = &sink,
	};
	ci_call call;

	run->first_out_ms = -1;
	run->rc = ci_plugin_exec(k->p, &call, "kit", s.start + timeout_ms + KIT_CALL_MS, id, &spec,
				 &run->res);
	run->call_ms = ci_now_ms() - s.start;
	memcpy(run->err, call.err, CI_ERR_MAX);
	return run->rc;
}

bool kit_sh(struct kit *k, const char *script)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	struct kit_run run = {0};
	bool ok;

	kit_exec(k, k->id, argv, NULL, NULL, NULL, 0, KIT_EXEC_MS, &run);
	ok = run.rc == CI_OK && run.res.exit_code == 0;
	if (!ok)
		kit_diag("sh -c '%s': rc=%s exit=%d err=%s stderr=%.*s", script, kit_rc(run.rc),
			 run.res.exit_code, run.err,
			 (int)(run.err_out.len < 200 ? run.err_out.len : 200),
			 run.err_out.data ? run.err_out.data : "");
	kit_run_free(&run);
	return ok;
}

static int list_cb(void *ctx, const ci_entry *e)
{
	struct kit_list *l = ctx;

	l->calls++;
	if (l->n < (int)(sizeof(l->e) / sizeof(l->e[0]))) {
		struct kit_entry *c = &l->e[l->n++];

		snprintf(c->path, sizeof(c->path), "%s", e->path ? e->path : "(null)");
		c->type = e->type;
		c->size = e->size;
		c->mode = e->mode;
	}
	return l->stop_after > 0 && l->calls >= l->stop_after;
}

int kit_list(struct kit *k, const char *id, const char *dir, struct kit_list *l,
	     char err[CI_ERR_MAX])
{
	ci_call call;
	int rc;

	l->n = l->calls = 0;
	rc = ci_plugin_list(k->p, &call, "kit", ci_now_ms() + KIT_CALL_MS, id, dir, list_cb, l);
	memcpy(err, call.err, CI_ERR_MAX);
	return rc;
}

const struct kit_entry *kit_list_find(const struct kit_list *l, const char *path)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->e[i].path, path))
			return &l->e[i];
	return NULL;
}

static const struct {
	const char *name;
	void (*run)(struct kit *k);
} groups[] = {
	{"files", kit_check_files}, {"big", kit_check_big},	    {"list", kit_check_list},
	{"exec", kit_check_exec},   {"timeout", kit_check_timeout}, {"errors", kit_check_errors},
	{"sweep", kit_check_sweep},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ci-backend-conformance [--runtime R] [--image I] [--only GROUPS]\n"
		   "                              [--load-only] PATH/TO/ci-backend-<name>.so "
		   "[CONFIG_FILE]\n"
		   "Checks a backend plugin against the ABI contract; prints TAP.\n"
		   "CONFIG_FILE: a ci.conf whose backends.<name> section the plugin reads.\n"
		   "GROUPS: comma-separated, of lifecycle (always run) files big list exec "
		   "timeout errors sweep.\n");
}

static bool selected(const char *only, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = only; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == n && !strncmp(p, name, n))
			return true;
	}
	return !only;
}

static int run_checks(struct kit *k, const char *only)
{
	char err[CI_ERR_MAX];
	int rc;

	kit_check_lifecycle(k);
	if (!k->id[0]) {
		kit_diag("no sandbox: every further check needs one, stopping");
		return -1;
	}
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (selected(only, groups[i].name))
			groups[i].run(k);
	rc = kit_destroy(k, k->id, err);
	if (!kit_ok(k, rc == CI_OK, "destroy of the working sandbox"))
		kit_diag("rc=%s err=%s", kit_rc(rc), err);
	return 0;
}

static bool only_ok(const char *only)
{
	char name[32];

	for (const char *p = only; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		bool known = false;

		snprintf(name, sizeof(name), "%.*s", (int)strcspn(p, ","), p);
		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
			known = known || !strcmp(name, groups[i].name);
		if (!known && strcmp(name, "lifecycle")) {
			fprintf(stderr, "ci-backend-conformance: unknown group '%s'\n", name);
			return false;
		}
	}
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"runtime", required_argument, NULL, 'r'}, {"image", required_argument, NULL, 'i'},
		{"load-only", no_argument, NULL, 'l'},	   {"only", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},	   {NULL, 0, NULL, 0},
	};
	struct kit k = {0};
	struct ci_conf conf;
	const char *only = NULL;
	bool load_only = false;
	char err[1024];
	int c;

	while ((c = getopt_long(argc, argv, "r:i:lo:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			k.runtime = optarg;
			break;
		case 'i':
			k.image = optarg;
			break;
		case 'l':
			load_only = true;
			break;
		case 'o':
			only = optarg;
			if (!only_ok(only))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	ci_log_set_level(CI_LL_WARN);
	if (argc - optind == 2) {
		if (ci_conf_load(&conf, argv[optind + 1], err, sizeof(err))) {
			fprintf(stderr, "ci-backend-conformance: %s\n", err);
			ci_conf_release(&conf);
			return 2;
		}
	} else {
		ci_conf_defaults(&conf);
	}
	k.p = ci_plugin_load_path(argv[optind], &conf, err, sizeof(err));
	printf("# ci-backend-conformance: ABI %d.%d, plugin %s\n", CI_ABI_MAJOR, CI_ABI_MINOR,
	       argv[optind]);
	if (kit_ok(&k, k.p != NULL, "plugin loads through the server's loader") && k.p) {
		kit_diag("name=%s version=%s abi=%u.%u caps=0x%llx", k.p->name, k.p->version,
			 k.p->desc.abi_version >> 16, k.p->desc.abi_version & 0xffff,
			 (unsigned long long)k.p->desc.caps);
		snprintf(k.owner, sizeof(k.owner), "ci-conformance-%d-%lld", (int)getpid(),
			 (long long)ci_wall_unix());
		if (!load_only)
			run_checks(&k, only);
		ci_plugin_unload(k.p);
	} else {
		kit_diag("%s", err);
	}
	ci_host_http_cleanup();
	ci_conf_release(&conf);
	printf("1..%d\n", k.n);
	printf("# %d passed, %d failed, %d skipped\n", k.n - k.failed, k.failed, k.skipped);
	return k.failed ? 1 : 0;
}
