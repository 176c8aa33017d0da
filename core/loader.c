#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "log.h"

/*
 * Under ASan keep plugins mapped after dlclose, so leak reports show their
 * frames instead of <unknown module>.
 */
#if defined(__SANITIZE_ADDRESS__)
#define CI_DL_EXTRA RTLD_NODELETE
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CI_DL_EXTRA RTLD_NODELETE
#endif
#endif
#ifndef CI_DL_EXTRA
#define CI_DL_EXTRA 0
#endif

#define NAME_MAX_LEN  64
#define FILE_PREFIX   "ci-backend-"
#define FILE_SUFFIX   ".so"
#define INIT_DEADLINE 60000

#define ABI_MAJOR(v) ((unsigned)((v) >> 16))
#define ABI_MINOR(v) ((unsigned)((v)&0xffff))

static const struct {
	const char *name;
	int http;
} rc_table[] = {
	[CI_OK] = {"ok", 200},
	[CI_E_INVAL] = {"invalid", 400},
	[CI_E_NOTFOUND] = {"not_found", 404},
	[CI_E_EXISTS] = {"exists", 409},
	[CI_E_NOMEM] = {"no_memory", 500},
	[CI_E_LIMIT] = {"limit", 413},
	[CI_E_TIMEOUT] = {"timeout", 504},
	[CI_E_UNAVAIL] = {"unavailable", 503},
	[CI_E_UNSUPPORTED] = {"unsupported", 501},
	[CI_E_BACKEND] = {"backend_error", 502},
	[CI_E_INTERNAL] = {"internal", 500},
};
_Static_assert(sizeof(rc_table) / sizeof(rc_table[0]) == CI_RC_COUNT,
	       "every ci_rc needs a name and an HTTP status");

const char *ci_rc_name(int rc)
{
	if (rc < 0 || rc >= CI_RC_COUNT)
		rc = CI_E_INTERNAL;
	return rc_table[rc].name;
}

int ci_rc_http_status(int rc)
{
	if (rc < 0 || rc >= CI_RC_COUNT)
		rc = CI_E_INTERNAL;
	return rc_table[rc].http;
}

/* key=value logging: quote values holding spaces, quotes or '='. */
static const char *quote(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	if (!s)
		return "-";
	if (*s && !strpbrk(s, " \"=\t\r\n"))
		return s;
	buf[n++] = '"';
	for (; *s && n + 3 < len; s++) {
		if (*s == '"' || *s == '\\')
			buf[n++] = '\\';
		buf[n++] = *s;
	}
	buf[n++] = '"';
	buf[n] = 0;
	return buf;
}

static void *fail(const char *name, const char *path, char *err, size_t errlen, const char *fmt,
		  ...) __attribute__((format(printf, 5, 6)));
static void *fail(const char *name, const char *path, char *err, size_t errlen, const char *fmt,
		  ...)
{
	char q[1100], qn[160], qp[PATH_MAX + 8], local[1024];
	va_list ap;

	if (!err || !errlen) {
		err = local;
		errlen = sizeof(local);
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	ci_log(CI_LL_ERROR, "backend.load_failed", "name=%s path=%s err=%s",
	       quote(qn, sizeof(qn), name), quote(qp, sizeof(qp), path), quote(q, sizeof(q), err));
	return NULL;
}

char *ci_plugin_dir(const char *configured)
{
	char exe[PATH_MAX];
	struct stat st;
	char *slash;
	ssize_t n;

	if (configured && *configured)
		return strdup(configured);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - sizeof("/plugins"));
	if (n > 0) {
		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			strcpy(slash, "/plugins");
			if (!stat(exe, &st) && S_ISDIR(st.st_mode))
				return strdup(exe);
		}
	}
	return strdup(CI_INSTALL_PLUGIN_DIR);
}

static bool name_ok(const char *name)
{
	size_t n = 0;

	for (; name[n]; n++)
		if (!((name[n] >= 'a' && name[n] <= 'z') || (name[n] >= '0' && name[n] <= '9') ||
		      name[n] == '_'))
			return false;
	return n > 0 && n <= NAME_MAX_LEN;
}

/* The file must be a regular file nobody but its owner can rewrite. */
static bool file_ok(const char *name, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			fail(name, path, err, errlen, "%s: not a regular file (a symlink)", path);
		else
			fail(name, path, err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st)) {
		fail(name, path, err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return false;
	}
	close(fd);
	if (!S_ISREG(st.st_mode)) {
		fail(name, path, err, errlen, "%s: not a regular file", path);
		return false;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		fail(name, path, err, errlen,
		     "%s: group- or world-writable (mode %04o): refusing to load it", path,
		     (unsigned)(st.st_mode & 07777));
		return false;
	}
	return true;
}

static bool dir_ok(const char *name, const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st)) {
		fail(name, NULL, err, errlen, "plugin directory %s: %s", dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		fail(name, NULL, err, errlen, "plugin directory %s: not a directory", dir);
		return false;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		fail(name, NULL, err, errlen,
		     "plugin directory %s: group- or world-writable (mode %04o): refusing to "
		     "load from it",
		     dir, (unsigned)(st.st_mode & 07777));
		return false;
	}
	return true;
}

/* Checks of the descriptor as the plugin returned it. */
static bool desc_ok(const ci_backend *d, const char *name, const char *path, char *err,
		    size_t errlen)
{
	ci_backend c = {0};
	static const struct {
		const char *member;
		size_t off;
	} ops[] = {
#define OP(m) {#m, offsetof(ci_backend, m)}
		OP(init), OP(fini), OP(create),	 OP(exec),  OP(put),
		OP(get),  OP(list), OP(destroy), OP(sweep),
#undef OP
	};

	if (ABI_MAJOR(d->abi_version) != CI_ABI_MAJOR) {
		fail(name, path, err, errlen,
		     "%s: built for ABI %u.%u, host speaks %u.%u (major differs)", path,
		     ABI_MAJOR(d->abi_version), ABI_MINOR(d->abi_version), CI_ABI_MAJOR,
		     CI_ABI_MINOR);
		return false;
	}
	if (ABI_MINOR(d->abi_version) > CI_ABI_MINOR) {
		fail(name, path, err, errlen,
		     "%s: built for ABI %u.%u, newer than the host's %u.%u: upgrade ci-server",
		     path, ABI_MAJOR(d->abi_version), ABI_MINOR(d->abi_version), CI_ABI_MAJOR,
		     CI_ABI_MINOR);
		return false;
	}
	if (d->struct_size < CI_BACKEND_MIN_SIZE) {
		fail(name, path, err, errlen, "%s: descriptor size %u < minimum %zu", path,
		     (unsigned)d->struct_size, (size_t)CI_BACKEND_MIN_SIZE);
		return false;
	}
	memcpy(&c, d, d->struct_size < sizeof(c) ? d->struct_size : sizeof(c));
	if (!c.name || strcmp(c.name, name)) {
		fail(name, path, err, errlen,
		     "%s: descriptor name '%.64s' does not match the file stem '%s'", path,
		     c.name ? c.name : "(null)", name);
		return false;
	}
	if (!c.version || !*c.version) {
		fail(name, path, err, errlen, "%s: descriptor has no version", path);
		return false;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		void (*fn)(void);

		memcpy(&fn, (const char *)&c + ops[i].off, sizeof(fn));
		if (!fn) {
			fail(name, path, err, errlen, "%s: descriptor mangled: %s is NULL", path,
			     ops[i].member);
			return false;
		}
	}
	return true;
}

static void call_begin(ci_call *call, const char *rid, int64_t deadline_ms)
{
	call->struct_size = sizeof(*call);
	call->request_id = rid ? rid : "-";
	call->deadline_ms =
		deadline_ms > 0 ? deadline_ms : ci_now_ms() + CI_PLUGIN_DEFAULT_TIMEOUT_MS;
	call->err[0] = 0;
}

static struct ci_plugin *plugin_init(struct ci_plugin *p, const struct ci_conf *conf, char *err,
				     size_t errlen)
{
	ci_call call;
	int rc;

	p->host = ci_host_new(p->name, conf);
	if (!p->host)
		return fail(p->name, p->path, err, errlen, "%s: out of memory", p->path);
	call_begin(&call, "init", ci_now_ms() + INIT_DEADLINE);
	rc = p->desc.init(ci_host_table(p->host), &p->be, &call);
	if (!memchr(call.err, 0, sizeof(call.err)))
		snprintf(call.err, sizeof(call.err), "(message not NUL-terminated)");
	if (rc)
		return fail(p->name, p->path, err, errlen, "%s: init failed (%s): %s", p->path,
			    ci_rc_name(rc), call.err[0] ? call.err : "no message");
	return p;
}

static void plugin_free(struct ci_plugin *p)
{
	if (p->dl)
		dlclose(p->dl);
	ci_host_free(p->host);
	if (p->serial)
		pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->health_lock);
	free(p->name);
	free(p->version);
	free(p->path);
	free(p);
}

static struct ci_plugin *load_file(const char *path, const char *name, const struct ci_conf *conf,
				   char *err, size_t errlen)
{
	struct ci_plugin *p;
	const ci_backend *d;
	ci_entry_fn *entry;
	void *sym;

	if (!file_ok(name, path, err, errlen))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p)
		pthread_mutex_init(&p->health_lock, NULL);
	if (!p || !(p->path = strdup(path)) || !(p->name = strdup(name))) {
		fail(name, path, err, errlen, "%s: out of memory", path);
		goto out_free;
	}
	dlerror();
	p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | CI_DL_EXTRA);
	if (!p->dl) {
		fail(name, path, err, errlen, "%s: dlopen: %s", path, dlerror());
		goto out_free;
	}
	sym = dlsym(p->dl, CI_ENTRY_SYMBOL);
	if (!sym) {
		const char *why = dlerror();

		fail(name, path, err, errlen,
		     "%s: not a ci-server backend, or built for another ABI major: %s", path,
		     why ? why : CI_ENTRY_SYMBOL " is NULL");
		goto out_free;
	}
	memcpy(&entry, &sym, sizeof(entry));
	d = entry(CI_ABI_VERSION);
	if (!d) {
		fail(name, path, err, errlen, "%s: plugin refused host ABI %u.%u", path,
		     CI_ABI_MAJOR, CI_ABI_MINOR);
		goto out_free;
	}
	if (!desc_ok(d, name, path, err, errlen))
		goto out_free;
	memcpy(&p->desc, d, d->struct_size < sizeof(p->desc) ? d->struct_size : sizeof(p->desc));
	p->version = strdup(p->desc.version);
	if (!p->version) {
		fail(name, path, err, errlen, "%s: out of memory", path);
		goto out_free;
	}
	if (p->desc.caps & CI_CAP_SERIAL) {
		pthread_mutex_init(&p->lock, NULL);
		p->serial = true;
	}
	if (!plugin_init(p, conf, err, errlen))
		goto out_free; /* no fini: init failed */
	ci_log(CI_LL_INFO, "backend.loaded", "name=%s version=%s abi=%u.%u caps=0x%llx path=%s",
	       p->name, p->version, ABI_MAJOR(p->desc.abi_version), ABI_MINOR(p->desc.abi_version),
	       (unsigned long long)p->desc.caps, p->path);
	return p;

out_free:
	if (p)
		plugin_free(p);
	return NULL;
}

struct ci_plugin *ci_plugin_load(const char *dir, const char *name, const struct ci_conf *conf,
				 char *err, size_t errlen)
{
	char path[PATH_MAX];

	if (!name || !name_ok(name))
		return fail(name ? name : "-", NULL, err, errlen,
			    "backend name '%.80s' must match [a-z0-9_]+ (at most %d characters)",
			    name ? name : "", NAME_MAX_LEN);
	if (!dir || !*dir)
		return fail(name, NULL, err, errlen, "no plugin directory given");
	if (!dir_ok(name, dir, err, errlen))
		return NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/" FILE_PREFIX "%s" FILE_SUFFIX, dir, name) >=
	    sizeof(path))
		return fail(name, NULL, err, errlen, "plugin directory path too long");
	return load_file(path, name, conf, err, errlen);
}

struct ci_plugin *ci_plugin_load_path(const char *path, const struct ci_conf *conf, char *err,
				      size_t errlen)
{
	char dir[PATH_MAX], name[NAME_MAX_LEN + 2];
	const char *base = strrchr(path, '/');
	size_t blen, nlen;

	base = base ? base + 1 : path;
	blen = strlen(base);
	if (strncmp(base, FILE_PREFIX, strlen(FILE_PREFIX)) ||
	    blen <= strlen(FILE_PREFIX) + strlen(FILE_SUFFIX) ||
	    strcmp(base + blen - strlen(FILE_SUFFIX), FILE_SUFFIX))
		return fail("-", path, err, errlen,
			    "%s: a backend plugin file is named " FILE_PREFIX "<name>" FILE_SUFFIX,
			    path);
	nlen = blen - strlen(FILE_PREFIX) - strlen(FILE_SUFFIX);
	if (nlen >= sizeof(name))
		nlen = sizeof(name) - 1; /* name_ok() then refuses it */
	memcpy(name, base + strlen(FILE_PREFIX), nlen);
	name[nlen] = 0;
	if (base == path) {
		strcpy(dir, ".");
	} else if ((size_t)(base - path) >= sizeof(dir)) {
		return fail(name, path, err, errlen, "%s: path too long", path);
	} else {
		size_t dlen = (size_t)(base - path) - 1;

		if (!dlen)
			dlen = 1; /* "/ci-backend-x.so" lives in "/" */
		memcpy(dir, path, dlen);
		dir[dlen] = 0;
	}
	return ci_plugin_load(dir, name, conf, err, errlen);
}

void ci_plugin_unload(struct ci_plugin *p)
{
	size_t leaked;

	if (!p)
		return;
	p->desc.fini(p->be);
	leaked = ci_host_mem_in_use(p->host);
	if (leaked)
		ci_log(CI_LL_WARN, "backend.leak", "name=%s bytes=%zu", p->name, leaked);
	ci_log(CI_LL_INFO, "backend.unloaded", "name=%s", p->name);
	plugin_free(p);
}

/* ---- calls --------------------------------------------------------------- */

static void serial_lock(struct ci_plugin *p)
{
	if (p->serial)
		pthread_mutex_lock(&p->lock);
}

static void serial_unlock(struct ci_plugin *p)
{
	if (p->serial)
		pthread_mutex_unlock(&p->lock);
}

/*
 * Passive health: an unreachable backend is "down" from its first
 * CI_E_UNAVAIL until any call succeeds again. Other failures say nothing
 * about reachability.
 */
static void note_health(struct ci_plugin *p, int rc, const char *err)
{
	if (rc != CI_OK && rc != CI_E_UNAVAIL)
		return;
	pthread_mutex_lock(&p->health_lock);
	if (rc == CI_OK) {
		if (p->down_since_ms)
			ci_log(CI_LL_INFO, "backend.up", "backend=%s", p->name);
		p->down_since_ms = 0;
	} else {
		if (!p->down_since_ms)
			ci_log(CI_LL_WARN, "backend.down", "backend=%s", p->name);
		if (!p->down_since_ms)
			p->down_since_ms = ci_now_ms();
		snprintf(p->down_reason, sizeof(p->down_reason), "%s", err);
	}
	pthread_mutex_unlock(&p->health_lock);
}

bool ci_plugin_health(struct ci_plugin *p, int64_t *down_ms, char *reason, size_t len)
{
	bool up;

	pthread_mutex_lock(&p->health_lock);
	up = !p->down_since_ms;
	if (!up) {
		*down_ms = ci_now_ms() - p->down_since_ms;
		snprintf(reason, len, "%s", p->down_reason);
	}
	pthread_mutex_unlock(&p->health_lock);
	return up;
}

/* Validate what the plugin handed back; log failures. */
static int call_end(struct ci_plugin *p, const char *op, ci_call *call, int rc, const char *id)
{
	char q[CI_ERR_MAX + 64];
	enum ci_log_level level;

	if (!memchr(call->err, 0, sizeof(call->err))) {
		snprintf(call->err, sizeof(call->err),
			 "backend %s: %s left call->err without a terminating NUL", p->name, op);
		rc = CI_E_INTERNAL;
	}
	if (rc < 0 || rc >= CI_RC_COUNT) {
		char was[CI_ERR_MAX];

		memcpy(was, call->err, sizeof(was));
		snprintf(call->err, sizeof(call->err),
			 "backend %s: %s returned %d, not a ci_rc (message: %.160s)", p->name, op,
			 rc, was[0] ? was : "none");
		rc = CI_E_INTERNAL;
	}
	if (rc == CI_OK) {
		note_health(p, rc, NULL);
		return rc;
	}
	if (!call->err[0])
		snprintf(call->err, sizeof(call->err), "backend %s: %s failed (%s)", p->name, op,
			 ci_rc_name(rc));
	note_health(p, rc, call->err);
	switch (rc) {
	case CI_E_INVAL:
	case CI_E_NOTFOUND:
	case CI_E_EXISTS:
	case CI_E_LIMIT:
	case CI_E_UNSUPPORTED:
		level = CI_LL_INFO;
		break;
	default:
		level = CI_LL_WARN;
	}
	ci_log(level, "backend.call_failed", "rid=%s backend=%s op=%s id=%s rc=%s err=%s",
	       call->request_id, p->name, op, id ? id : "-", ci_rc_name(rc),
	       quote(q, sizeof(q), call->err));
	return rc;
}

int ci_plugin_create(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		     const ci_create_spec *spec, char id[CI_ID_MAX])
{
	int rc;

	call_begin(call, rid, deadline_ms);
	memset(id, 0, CI_ID_MAX);
	serial_lock(p);
	rc = p->desc.create(p->be, spec, id, call);
	serial_unlock(p);
	if (rc == CI_OK && (!memchr(id, 0, CI_ID_MAX) || !id[0])) {
		snprintf(call->err, sizeof(call->err),
			 "backend %s: create returned an empty or unterminated sandbox id",
			 p->name);
		memset(id, 0, CI_ID_MAX);
		rc = CI_E_INTERNAL;
	}
	return call_end(p, "create", call, rc, rc ? NULL : id);
}

int ci_plugin_exec(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		   const char *id, const ci_exec_spec *spec, ci_exec_result *res)
{
	int rc;

	call_begin(call, rid, deadline_ms);
	memset(res, 0, sizeof(*res));
	res->struct_size = sizeof(*res);
	serial_lock(p);
	rc = p->desc.exec(p->be, id, spec, res, call);
	serial_unlock(p);
	return call_end(p, "exec", call, rc, id);
}

int ci_plugin_put(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		  const char *id, const char *path, const ci_source *src, uint32_t mode)
{
	int rc;

	call_begin(call, rid, deadline_ms);
	serial_lock(p);
	rc = p->desc.put(p->be, id, path, src, mode, call);
	serial_unlock(p);
	return call_end(p, "put", call, rc, id);
}

int ci_plugin_get(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		  const char *id, const char *path, const ci_sink *out)
{
	int rc;

	call_begin(call, rid, deadline_ms);
	serial_lock(p);
	rc = p->desc.get(p->be, id, path, out, call);
	serial_unlock(p);
	return call_end(p, "get", call, rc, id);
}

int ci_plugin_list(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		   const char *id, const char *dir, ci_entry_cb cb, void *ctx)
{
	int rc;

	call_begin(call, rid, deadline_ms);
	serial_lock(p);
	rc = p->desc.list(p->be, id, dir, cb, ctx, call);
	serial_unlock(p);
	return call_end(p, "list", call, rc, id);
}

int ci_plugin_destroy(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		      const char *id)
{
	int rc;

	call_begin(call, rid, deadline_ms);
	serial_lock(p);
	rc = p->desc.destroy(p->be, id, call);
	serial_unlock(p);
	return call_end(p, "destroy", call, rc, id);
}

int ci_plugin_sweep(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		    const char *owner, int64_t older_than_unix, unsigned *n_removed)
{
	int rc;

	call_begin(call, rid, deadline_ms);
	*n_removed = 0;
	serial_lock(p);
	rc = p->desc.sweep(p->be, owner, older_than_unix, n_removed, call);
	serial_unlock(p);
	return call_end(p, "sweep", call, rc, NULL);
}

int ci_plugin_probe(const char *path, char *out, size_t len)
{
	const ci_backend *d;
	ci_entry_fn *entry;
	void *dl;
	int rc = -1;

	dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	if (!dl) {
		snprintf(out, len, "not loadable: %s", dlerror());
		return -1;
	}
	*(void **)&entry = dlsym(dl, CI_ENTRY_SYMBOL);
	d = entry ? entry(CI_ABI_VERSION) : NULL;
	if (!d || !d->name || !d->version) {
		snprintf(out, len, "not a ci-server backend for ABI %s", CI_ABI_STRING);
	} else {
		snprintf(out, len, "%s %s (abi %u.%u)", d->name, d->version, d->abi_version >> 16,
			 d->abi_version & 0xffff);
		rc = 0;
	}
	dlclose(dl);
	return rc;
}
