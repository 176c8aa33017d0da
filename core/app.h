/*
 * The running server: configuration, the loaded backend, storage, sessions
 * and the HTTP front end, wired together. main.c drives its lifecycle.
 */
#ifndef CI_CORE_APP_H
#define CI_CORE_APP_H

#include <stddef.h>
#include <stdint.h>

struct ci_conf;
struct ci_http;
struct ci_route;

struct ci_app {
	struct ci_conf *conf;
	struct ci_http *http;
	int64_t started_unix;
};

/* The route table served by ci-server (health and the LibreChat API). */
const struct ci_route *ci_api_routes(size_t *n);

/* Bring everything up; -1 with err when the server cannot run. */
int ci_app_start(struct ci_app *app, struct ci_conf *conf, char *err, size_t errlen);
/* Stop accepting, finish in-flight work within grace_ms, release everything. */
void ci_app_stop(struct ci_app *app, int grace_ms);

#endif /* CI_CORE_APP_H */
