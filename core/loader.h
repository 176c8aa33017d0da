/*
 * Backend plugins: find, dlopen, validate and initialise ci-backend-<name>.so,
 * and call its operations.
 *
 * The core never calls a descriptor member itself: it goes through the
 * ci_plugin_* wrappers below, which fill the ci_call, take the plugin's global
 * lock when it asked for CI_CAP_SERIAL, check what came back (rc in range,
 * id and err NUL-terminated) and log failures.
 */
#ifndef CI_CORE_LOADER_H
#define CI_CORE_LOADER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ci/backend.h"

struct ci_conf;
struct ci_host_ctx;

/* Deadline used by the wrappers when the caller passes deadline_ms <= 0. */
#define CI_PLUGIN_DEFAULT_TIMEOUT_MS 60000

/* One loaded plugin. Read-only for everyone but the loader. */
struct ci_plugin {
	void *dl;	 /* dlopen() handle */
	ci_backend desc; /* the plugin's descriptor, zero-extended to our sizeof */
	char *name;	 /* copies of desc.name / desc.version */
	char *version;
	char *path;		  /* the file loaded */
	ci_be *be;		  /* what init() returned */
	struct ci_host_ctx *host; /* the ci_host table lent to the plugin */
	bool serial;		  /* CI_CAP_SERIAL: every call under lock */
	pthread_mutex_t lock;
	pthread_mutex_t health_lock; /* guards the two fields below */
	int64_t down_since_ms;	     /* first CI_E_UNAVAIL since the last success, or 0 */
	char down_reason[CI_ERR_MAX];
};

/*
 * The plugin directory to use: configured (conf->plugin_dir, which also
 * carries CI_PLUGIN_DIR) when non-NULL and non-empty, else
 * <directory of /proc/self/exe>/plugins when that directory exists (running
 * from the build tree), else CI_INSTALL_PLUGIN_DIR. Returns a malloc'd string
 * (NULL only when out of memory).
 */
char *ci_plugin_dir(const char *configured);

/*
 * Load <dir>/ci-backend-<name>.so, validate its descriptor and call init()
 * with a host table whose cfg_* read backends.<name> of conf (conf may be
 * NULL; it is borrowed and must outlive the plugin). On failure returns NULL,
 * writes the reason into err and logs backend.load_failed.
 */
struct ci_plugin *ci_plugin_load(const char *dir, const char *name, const struct ci_conf *conf,
				 char *err, size_t errlen);

/* Same, for an explicit file path (…/ci-backend-<name>.so): the conformance kit. */
struct ci_plugin *ci_plugin_load_path(const char *path, const struct ci_conf *conf, char *err,
				      size_t errlen);

/*
 * "name version (abi x.y)" of the plugin at path, read from its descriptor
 * without init() (--version). -1 with the reason in out when it is no
 * usable backend.
 */
int ci_plugin_probe(const char *path, char *out, size_t len);

/* fini(), then dlclose(). NULL is ignored. No call may be in flight. */
void ci_plugin_unload(struct ci_plugin *p);

/*
 * Operation wrappers. Each fills *call (struct_size, request_id = rid or "-",
 * deadline_ms: absolute on ci_now_ms(), or now + CI_PLUGIN_DEFAULT_TIMEOUT_MS
 * when <= 0) and returns a ci_rc in [0, CI_RC_COUNT). On failure call->err
 * holds a message (never empty). Arguments and ownership are those of the
 * descriptor member of the same name in include/ci/backend.h.
 */
int ci_plugin_create(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		     const ci_create_spec *spec, char id[CI_ID_MAX]);
int ci_plugin_exec(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		   const char *id, const ci_exec_spec *spec, ci_exec_result *res);
int ci_plugin_put(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		  const char *id, const char *path, const ci_source *src, uint32_t mode);
int ci_plugin_get(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		  const char *id, const char *path, const ci_sink *out);
int ci_plugin_list(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		   const char *id, const char *dir, ci_entry_cb cb, void *ctx);
int ci_plugin_destroy(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		      const char *id);
int ci_plugin_sweep(struct ci_plugin *p, ci_call *call, const char *rid, int64_t deadline_ms,
		    const char *owner, int64_t older_than_unix, unsigned *n_removed);

/*
 * Whether the backend answered its last call (true), or has answered only
 * CI_E_UNAVAIL since then: *down_ms and reason say for how long and why.
 */
bool ci_plugin_health(struct ci_plugin *p, int64_t *down_ms, char *reason, size_t len);

/* "ok", "invalid", "not_found", ...; "internal" for anything out of range. */
const char *ci_rc_name(int rc);

/* HTTP status for a ci_rc: INVAL 400, NOTFOUND 404, EXISTS 409, LIMIT 413,
 * UNSUPPORTED 501, BACKEND 502, UNAVAIL 503, TIMEOUT 504, OK 200, else 500. */
int ci_rc_http_status(int rc);

#endif /* CI_CORE_LOADER_H */
