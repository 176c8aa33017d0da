#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "conf.h"
#include "host.h"
#include "http.h"
#include "loader.h"
#include "log.h"
#include "rate_limit.h"
#include "sandbox.h"
#include "store.h"

#define JANITOR_INTERVAL_S 600

/* mkdir -p, mode 0700 for what it creates. */
static int make_dirs(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0700) && errno != EEXIST ? -1 : 0;
}

/* Backends that run the host's own interpreters, so the host must have them. */
static bool runs_host_toolchains(const char *backend)
{
	return !strcmp(backend, "bwrap") || !strcmp(backend, "fake");
}

static bool on_sandbox_path(const char *prog)
{
	static const char *const dirs[] = {"/usr/local/bin", "/usr/bin", "/bin", NULL};
	char path[512];

	for (int i = 0; dirs[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], prog);
		if (!access(path, X_OK))
			return true;
	}
	return false;
}

static void probe_languages(struct ci_app *app)
{
	const struct ci_conf *conf = app->conf;
	char missing[512] = "", why[256];

	app->lang_missing = calloc((size_t)conf->n_langs + 1, sizeof(char *));
	if (!app->lang_missing || !app->host_toolchains)
		return;
	for (int i = 0; i < conf->n_langs; i++) {
		const struct ci_lang *l = &conf->langs[i];

		if (!l->probe || on_sandbox_path(l->probe))
			continue;
		snprintf(why, sizeof(why),
			 "%s is not installed (run scripts/install-languages.sh %s)", l->probe,
			 l->name);
		app->lang_missing[i] = strdup(why);
		if (strlen(missing) + strlen(l->name) + 2 < sizeof(missing)) {
			strcat(missing, missing[0] ? "," : "");
			strcat(missing, l->name);
		}
	}
	if (missing[0])
		ci_log(CI_LL_WARN, "languages.missing",
		       "langs=%s msg=\"answered with 400 until "
		       "installed\"",
		       missing);
}

static void *janitor_main(void *arg)
{
	struct ci_app *app = arg;
	struct timespec until;
	unsigned n;

	pthread_mutex_lock(&app->janitor_lock);
	while (!app->stopping) {
		pthread_mutex_unlock(&app->janitor_lock);
		n = 0;
		ci_store_expire(app->store,
				ci_store_now_ns() -
					(int64_t)app->conf->file_ttl_hours * 3600LL * 1000000000LL,
				&n);
		if (n)
			ci_log(CI_LL_INFO, "store.expired", "files=%u", n);
		pthread_mutex_lock(&app->janitor_lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += JANITOR_INTERVAL_S;
		if (!app->stopping)
			pthread_cond_timedwait(&app->janitor_wake, &app->janitor_lock, &until);
	}
	pthread_mutex_unlock(&app->janitor_lock);
	return NULL;
}

static int open_store(struct ci_app *app, char *err, size_t errlen)
{
	struct ci_store_opts opts = {.max_file_size = (uint64_t)app->conf->max_file_size,
				     .max_files_per_session =
					     (uint32_t)app->conf->max_files_per_session};
	char serr[CI_ERR_MAX] = "";

	if (make_dirs(app->conf->storage_path)) {
		snprintf(err, errlen, "cannot create storage directory %s: %s",
			 app->conf->storage_path, strerror(errno));
		return -1;
	}
	if (ci_store_open(app->conf->storage_path, &opts, &app->store, serr)) {
		snprintf(err, errlen, "cannot open storage %s: %s", app->conf->storage_path, serr);
		return -1;
	}
	return 0;
}

int ci_app_start(struct ci_app *app, struct ci_conf *conf, char *err, size_t errlen)
{
	const struct ci_route *routes;
	char *dir;
	size_t n;

	memset(app, 0, sizeof(*app));
	app->conf = conf;
	app->started_unix = (int64_t)time(NULL);
	pthread_mutex_init(&app->janitor_lock, NULL);
	pthread_cond_init(&app->janitor_wake, NULL);
	app->auth = ci_auth_new(conf, err, errlen);
	if (!app->auth)
		goto out;
	app->limits =
		ci_limits_new(conf->principal_concurrent_execs, conf->principal_execs_per_minute);
	if (!app->limits) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (open_store(app, err, errlen))
		goto out;
	dir = ci_plugin_dir(conf->plugin_dir);
	app->plugin = dir ? ci_plugin_load(dir, conf->backend, conf, err, errlen) : NULL;
	free(dir);
	if (!app->plugin)
		goto out;
	app->host_toolchains = runs_host_toolchains(conf->backend);
	probe_languages(app);
	app->sandboxes = ci_sandboxes_new(conf, app->plugin);
	if (!app->sandboxes) {
		snprintf(err, errlen, "cannot start the sandbox reaper");
		goto out;
	}
	if (conf->sweep_on_startup)
		ci_sandboxes_sweep(app->sandboxes);
	if (pthread_create(&app->janitor, NULL, janitor_main, app)) {
		snprintf(err, errlen, "cannot start the storage janitor");
		goto out;
	}
	routes = ci_api_routes(&n);
	app->http = ci_http_start(conf, app->auth, routes, n, app, err, errlen);
	if (!app->http)
		goto out;
	ci_log(CI_LL_INFO, "server.listening", "host=%s port=%d backend=%s version=%s auth=%s",
	       conf->host, ci_http_port(app->http), app->plugin->name, app->plugin->version,
	       conf->auth_mode == CI_AUTH_NONE		? "none"
	       : conf->auth_accept == CI_ACCEPT_API_KEY ? "api_key"
	       : conf->auth_accept == CI_ACCEPT_JWT	? "librechat_jwt"
							: "api_key,librechat_jwt");
	return 0;
out:
	ci_app_stop(app, 0);
	return -1;
}

void ci_app_stop(struct ci_app *app, int grace_ms)
{
	/* Order: no new requests, in-flight ones done, then what they used. */
	ci_http_stop(app->http, grace_ms);
	app->http = NULL;
	if (app->janitor) {
		pthread_mutex_lock(&app->janitor_lock);
		app->stopping = true;
		pthread_cond_broadcast(&app->janitor_wake);
		pthread_mutex_unlock(&app->janitor_lock);
		pthread_join(app->janitor, NULL);
		app->janitor = 0;
	}
	ci_sandboxes_free(app->sandboxes);
	app->sandboxes = NULL;
	ci_plugin_unload(app->plugin);
	app->plugin = NULL;
	ci_store_close(app->store);
	app->store = NULL;
	ci_auth_free(app->auth);
	app->auth = NULL;
	ci_limits_free(app->limits);
	app->limits = NULL;
	if (app->lang_missing)
		for (int i = 0; i < app->conf->n_langs; i++)
			free(app->lang_missing[i]);
	free(app->lang_missing);
	app->lang_missing = NULL;
	pthread_mutex_destroy(&app->janitor_lock);
	pthread_cond_destroy(&app->janitor_wake);
}
