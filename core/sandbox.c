#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "host.h"
#include "loader.h"
#include "log.h"

#define CREATE_TIMEOUT_MS  120000
#define DESTROY_TIMEOUT_MS 30000

struct affinity {
	char sid[22];
	struct ci_sandbox *sb;
};

struct ci_sandboxes {
	const struct ci_conf *conf;
	struct ci_plugin *plugin;
	pthread_mutex_t lock; /* the list, refs, dead flags, affinity */
	struct ci_sandbox *all;
	int count;
	struct affinity *aff;
	int n_aff, cap_aff;
	unsigned long next_serial;
	pthread_t reaper;
	pthread_cond_t wake;
	bool stopping;
};

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		abort();
	return d;
}

/* A sandbox of principal's: its scope is the principal, or principal US user. */
static bool scope_within(const char *scope, const char *principal)
{
	size_t n = strlen(principal);

	return !strncmp(scope, principal, n) && (!scope[n] || scope[n] == CI_SCOPE_SEP);
}

static void sandbox_free(struct ci_sandbox *sb)
{
	ci_sandbox_files_clear(sb);
	free(sb->files);
	free(sb->scope);
	free(sb->runtime);
	pthread_mutex_destroy(&sb->run_lock);
	free(sb);
}

/* Drop every affinity entry of sb and unlink it (table lock held). */
static void unlink_locked(struct ci_sandboxes *t, struct ci_sandbox *sb)
{
	struct ci_sandbox **pp;
	int j = 0;

	for (int i = 0; i < t->n_aff; i++)
		if (t->aff[i].sb != sb)
			t->aff[j++] = t->aff[i];
	t->n_aff = j;
	for (pp = &t->all; *pp; pp = &(*pp)->next)
		if (*pp == sb) {
			*pp = sb->next;
			t->count--;
			break;
		}
}

static void backend_destroy(struct ci_sandboxes *t, struct ci_sandbox *sb, const char *rid,
			    const char *why)
{
	ci_call call;
	int rc = ci_plugin_destroy(t->plugin, &call, rid, ci_now_ms() + DESTROY_TIMEOUT_MS, sb->id);

	if (rc && rc != CI_E_NOTFOUND)
		ci_log(CI_LL_WARN, "sandbox.destroy_failed", "rid=%s sandbox=%s id=%s err=\"%s\"",
		       rid, sb->serial, sb->id, call.err);
	else
		ci_log(CI_LL_INFO, "sandbox.destroyed",
		       "rid=%s sandbox=%s id=%s reason=%s execs=%u", rid, sb->serial, sb->id, why,
		       sb->execs);
}

static int64_t expiry_ms(const struct ci_sandboxes *t, const struct ci_sandbox *sb)
{
	int64_t ttl = sb->created_ms + (int64_t)t->conf->session_ttl_minutes * 60000;
	int64_t idle = sb->last_used_ms + (int64_t)t->conf->session_idle_minutes * 60000;

	return ttl < idle ? ttl : idle;
}

int ci_sandboxes_reap(struct ci_sandboxes *t, int64_t now_ms)
{
	struct ci_sandbox *victims = NULL, *sb, *next;
	int n = 0;

	pthread_mutex_lock(&t->lock);
	for (sb = t->all; sb; sb = next) {
		next = sb->next;
		if (sb->refs || expiry_ms(t, sb) > now_ms)
			continue;
		sb->dead = true;
		unlink_locked(t, sb);
		sb->next = victims;
		victims = sb;
	}
	pthread_mutex_unlock(&t->lock);
	for (sb = victims; sb; sb = next) {
		next = sb->next;
		backend_destroy(t, sb, "reaper", "expired");
		sandbox_free(sb);
		n++;
	}
	return n;
}

static void *reaper_main(void *arg)
{
	struct ci_sandboxes *t = arg;
	struct timespec until;

	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += t->conf->reaper_interval_s;
		pthread_cond_timedwait(&t->wake, &t->lock, &until);
		if (t->stopping)
			break;
		pthread_mutex_unlock(&t->lock);
		ci_sandboxes_reap(t, ci_now_ms());
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct ci_sandboxes *ci_sandboxes_new(const struct ci_conf *conf, struct ci_plugin *plugin)
{
	struct ci_sandboxes *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;

	if (!t)
		return NULL;
	t->conf = conf;
	t->plugin = plugin;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_cond_init(&t->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t->reaper, NULL, reaper_main, t)) {
		pthread_mutex_destroy(&t->lock);
		pthread_cond_destroy(&t->wake);
		free(t);
		return NULL;
	}
	return t;
}

void ci_sandboxes_free(struct ci_sandboxes *t)
{
	struct ci_sandbox *sb, *next;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->reaper, NULL);
	/* Shutdown: workers are joined, so nothing holds a sandbox any more. */
	for (sb = t->all; sb; sb = next) {
		next = sb->next;
		backend_destroy(t, sb, "shutdown", "shutdown");
		sandbox_free(sb);
	}
	free(t->aff);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->wake);
	free(t);
}

int ci_sandboxes_sweep(struct ci_sandboxes *t)
{
	unsigned n = 0;
	ci_call call;
	int rc;

	/* Everything with our label predates this process: a cutoff of "now" takes it all. */
	rc = ci_plugin_sweep(t->plugin, &call, "startup", ci_now_ms() + CREATE_TIMEOUT_MS,
			     t->conf->sandbox_label, ci_wall_unix() + 1, &n);
	if (rc)
		ci_log(CI_LL_WARN, "sandbox.sweep_failed", "owner=%s err=\"%s\"",
		       t->conf->sandbox_label, call.err);
	else
		ci_log(CI_LL_INFO, "sandbox.swept", "owner=%s removed=%u", t->conf->sandbox_label,
		       n);
	return rc;
}

/* The live sandbox a hint maps to, referenced (table lock held). */
static struct ci_sandbox *find_locked(struct ci_sandboxes *t, const char *scope,
				      const char *runtime, const char *const *hints, int n_hints)
{
	for (int h = 0; h < n_hints; h++) {
		if (!hints[h])
			continue;
		for (int i = t->n_aff - 1; i >= 0; i--) {
			struct ci_sandbox *sb = t->aff[i].sb;

			if (strcmp(t->aff[i].sid, hints[h]) || sb->dead ||
			    strcmp(sb->scope, scope) || strcmp(sb->runtime, runtime))
				continue;
			sb->refs++;
			return sb;
		}
	}
	return NULL;
}

static void set_affinity_locked(struct ci_sandboxes *t, const char *sid, struct ci_sandbox *sb)
{
	for (int i = 0; i < t->n_aff; i++)
		if (!strcmp(t->aff[i].sid, sid)) {
			t->aff[i].sb = sb;
			return;
		}
	if (t->n_aff == t->cap_aff) {
		int cap = t->cap_aff ? t->cap_aff * 2 : 64;
		struct affinity *n = realloc(t->aff, sizeof(*n) * (size_t)cap);

		if (!n)
			return; /* affinity is an optimisation: losing one entry is harmless */
		t->aff = n;
		t->cap_aff = cap;
	}
	snprintf(t->aff[t->n_aff].sid, sizeof(t->aff[t->n_aff].sid), "%s", sid);
	t->aff[t->n_aff++].sb = sb;
}

static int create_sandbox(struct ci_sandboxes *t, const char *scope, const char *runtime,
			  const struct ci_lang *lang, const char *rid, struct ci_sandbox **out,
			  char *err, size_t errlen)
{
	struct ci_sandbox *sb = calloc(1, sizeof(*sb));
	ci_create_spec spec = {.struct_size = sizeof(spec)};
	ci_call call;
	int rc;

	if (!sb)
		return CI_E_NOMEM;
	pthread_mutex_lock(&t->lock);
	snprintf(sb->serial, sizeof(sb->serial), "sb-%lu", ++t->next_serial);
	pthread_mutex_unlock(&t->lock);
	spec.runtime = runtime;
	spec.image = lang ? lang->image : NULL;
	spec.owner = t->conf->sandbox_label;
	spec.session = sb->serial;
	spec.mem_bytes = (int64_t)t->conf->max_memory_mb << 20;
	spec.pids = t->conf->max_pids;
	rc = ci_plugin_create(t->plugin, &call, rid, ci_now_ms() + CREATE_TIMEOUT_MS, &spec,
			      sb->id);
	if (rc) {
		snprintf(err, errlen, "cannot create a sandbox: %s", call.err);
		free(sb);
		return rc;
	}
	sb->scope = xstrdup(scope);
	sb->runtime = xstrdup(runtime);
	sb->created_ms = sb->last_used_ms = ci_now_ms();
	sb->created_unix = sb->last_used_unix = ci_wall_unix();
	sb->refs = 1;
	pthread_mutex_init(&sb->run_lock, NULL);
	pthread_mutex_lock(&t->lock);
	sb->next = t->all;
	t->all = sb;
	t->count++;
	pthread_mutex_unlock(&t->lock);
	{
		/* Shown as principal/user: the separator is a control character. */
		char shown[256];
		size_t i;

		for (i = 0; scope[i] && i < sizeof(shown) - 1; i++)
			shown[i] = scope[i] == CI_SCOPE_SEP ? '/' : scope[i];
		shown[i] = 0;
		ci_log(CI_LL_INFO, "sandbox.created", "rid=%s sandbox=%s id=%s runtime=%s scope=%s",
		       rid, sb->serial, sb->id, runtime, shown);
	}
	*out = sb;
	return CI_OK;
}

int ci_sandboxes_acquire(struct ci_sandboxes *t, const char *scope, const char *runtime,
			 const char *const *hints, int n_hints, const char *rid,
			 struct ci_sandbox **out, bool *created, char *err, size_t errlen)
{
	const struct ci_lang *lang = NULL;
	struct ci_sandbox *sb;
	int rc;

	for (int i = 0; i < t->conf->n_langs && !lang; i++)
		if (!strcmp(t->conf->langs[i].runtime, runtime))
			lang = &t->conf->langs[i];
	*created = false;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		sb = find_locked(t, scope, runtime, hints, n_hints);
		pthread_mutex_unlock(&t->lock);
		if (!sb)
			break;
		pthread_mutex_lock(&sb->run_lock);
		if (!sb->dead) {
			*out = sb;
			return CI_OK;
		}
		/* Deleted while we waited for it: let go and look again. */
		ci_sandboxes_release(t, sb, NULL, false);
	}
	rc = create_sandbox(t, scope, runtime, lang, rid, &sb, err, errlen);
	if (rc)
		return rc;
	*created = true;
	pthread_mutex_lock(&sb->run_lock);
	*out = sb;
	return CI_OK;
}

void ci_sandboxes_release(struct ci_sandboxes *t, struct ci_sandbox *sb, const char *new_sid,
			  bool broken)
{
	bool destroy = false;

	sb->execs++;
	pthread_mutex_unlock(&sb->run_lock);
	pthread_mutex_lock(&t->lock);
	sb->last_used_ms = ci_now_ms();
	sb->last_used_unix = ci_wall_unix();
	if (broken && !sb->dead) {
		sb->dead = true;
		unlink_locked(t, sb);
	}
	if (!sb->dead && new_sid)
		set_affinity_locked(t, new_sid, sb);
	destroy = --sb->refs == 0 && sb->dead;
	pthread_mutex_unlock(&t->lock);
	if (destroy) {
		if (broken)
			ci_log(CI_LL_WARN, "sandbox.lost", "sandbox=%s id=%s", sb->serial, sb->id);
		backend_destroy(t, sb, "release", broken ? "lost" : "deleted");
		sandbox_free(sb);
	}
}

int ci_sandboxes_destroy(struct ci_sandboxes *t, const char *scope, const char *key,
			 const char *rid)
{
	struct ci_sandbox *sb, *found = NULL;
	bool last;

	pthread_mutex_lock(&t->lock);
	for (sb = t->all; sb && !found; sb = sb->next)
		if (scope_within(sb->scope, scope) && !sb->dead && !strcmp(sb->serial, key))
			found = sb;
	for (int i = 0; i < t->n_aff && !found; i++)
		if (!strcmp(t->aff[i].sid, key) && scope_within(t->aff[i].sb->scope, scope) &&
		    !t->aff[i].sb->dead)
			found = t->aff[i].sb;
	if (!found) {
		pthread_mutex_unlock(&t->lock);
		return CI_E_NOTFOUND;
	}
	found->dead = true;
	unlink_locked(t, found);
	found->refs++;
	pthread_mutex_unlock(&t->lock);
	/* Wait for a running exec to finish with it. */
	pthread_mutex_lock(&found->run_lock);
	pthread_mutex_unlock(&found->run_lock);
	pthread_mutex_lock(&t->lock);
	last = --found->refs == 0;
	pthread_mutex_unlock(&t->lock);
	if (last) {
		backend_destroy(t, found, rid, "deleted");
		sandbox_free(found);
	}
	return CI_OK;
}

void ci_sandboxes_each(struct ci_sandboxes *t, const char *scope,
		       void (*cb)(void *ctx, const struct ci_sandbox_view *v), void *ctx)
{
	const char *sids[64];

	pthread_mutex_lock(&t->lock);
	for (struct ci_sandbox *sb = t->all; sb; sb = sb->next) {
		struct ci_sandbox_view v = {0};
		int64_t left_ms = expiry_ms(t, sb) - ci_now_ms();

		if (sb->dead || (scope && !scope_within(sb->scope, scope)))
			continue;
		for (int i = 0; i < t->n_aff && v.n_sessions < 64; i++)
			if (t->aff[i].sb == sb)
				sids[v.n_sessions++] = t->aff[i].sid;
		v.serial = sb->serial;
		v.backend_id = sb->id;
		v.runtime = sb->runtime;
		v.state = sb->refs ? "busy" : "idle";
		v.sessions = sids;
		v.created_unix = sb->created_unix;
		v.last_used_unix = sb->last_used_unix;
		v.expires_unix = ci_wall_unix() + (left_ms > 0 ? left_ms / 1000 : 0);
		v.execs = sb->execs;
		cb(ctx, &v);
	}
	pthread_mutex_unlock(&t->lock);
}

struct ci_sandbox_file *ci_sandbox_file_find(struct ci_sandbox *sb, const char *path)
{
	for (int i = 0; i < sb->n_files; i++)
		if (!strcmp(sb->files[i].path, path))
			return &sb->files[i];
	return NULL;
}

struct ci_sandbox_file *ci_sandbox_file_set(struct ci_sandbox *sb, const char *path, int64_t size,
					    int64_t mtime_ns, const char *sha256)
{
	struct ci_sandbox_file *f = ci_sandbox_file_find(sb, path);

	if (!f) {
		if (sb->n_files == sb->cap_files) {
			int cap = sb->cap_files ? sb->cap_files * 2 : 16;
			struct ci_sandbox_file *n = realloc(sb->files, sizeof(*n) * (size_t)cap);

			if (!n)
				return NULL;
			sb->files = n;
			sb->cap_files = cap;
		}
		f = &sb->files[sb->n_files++];
		f->path = xstrdup(path);
	}
	f->size = size;
	f->mtime_ns = mtime_ns;
	snprintf(f->sha256, sizeof(f->sha256), "%s", sha256 ? sha256 : "");
	return f;
}

void ci_sandbox_files_clear(struct ci_sandbox *sb)
{
	for (int i = 0; i < sb->n_files; i++)
		free(sb->files[i].path);
	sb->n_files = 0;
}
