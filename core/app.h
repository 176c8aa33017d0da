/*
 * The running server: configuration, the loaded backend, storage, sessions
 * and the HTTP front end, wired together. main.c drives its lifecycle.
 */
#ifndef CI_CORE_APP_H
#define CI_CORE_APP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ci_auth;
struct ci_conf;
struct ci_http;
struct ci_limits;
struct ci_plugin;
struct ci_route;
struct ci_sandboxes;
struct ci_store;

struct ci_app {
	struct ci_conf *conf;
	struct ci_auth *auth;
	struct ci_limits *limits; /* per-principal exec limits */
	struct ci_plugin *plugin;
	struct ci_store *store;
	struct ci_sandboxes *sandboxes;
	struct ci_http *http;
	/* Per language (conf->langs order): NULL when usable, else why not. */
	char **lang_missing;
	bool host_toolchains; /* the backend runs the host's interpreters */
	int64_t started_unix;
	pthread_t janitor; /* storage expiry */
	pthread_mutex_t janitor_lock;
	pthread_cond_t janitor_wake;
	bool stopping;
};

/* The route table served by ci-server (health and the LibreChat API). */
const struct ci_route *ci_api_routes(size_t *n);

/* Bring everything up; -1 with err when the server cannot run. */
int ci_app_start(struct ci_app *app, struct ci_conf *conf, char *err, size_t errlen);
/* Stop accepting, finish in-flight work within grace_ms, release everything. */
void ci_app_stop(struct ci_app *app, int grace_ms);

#endif /* CI_CORE_APP_H */
