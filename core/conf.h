/*
 * Configuration: libconfig file + environment overrides -> struct ci_conf.
 * This is the only module that includes libconfig.h. Every limit has a
 * documented default (conf/ci.conf lists them all).
 */
#ifndef CI_CORE_CONF_H
#define CI_CORE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CI_MAX_KEYS 32

struct ci_api_key {
	char *name; /* principal name, e.g. "librechat" */
	char *key;
};

enum ci_auth_mode { CI_AUTH_KEYS = 0, CI_AUTH_NONE };

/* Credential forms accepted together (auth.accept). */
#define CI_ACCEPT_API_KEY (1u << 0)
#define CI_ACCEPT_JWT	  (1u << 1) /* LibreChat-minted JWTs (librechat-api.md §3) */

#define CI_MAX_JWT_KEYS 16

struct ci_jwt_key_conf {
	char *kid;     /* the token header's kid this key verifies */
	char *file;    /* PEM public key */
	unsigned algs; /* CI_JWT_* bits allowed, 0 = every alg of the key's type */
};

/* One entry of the language table (languages = ({ ... }) in ci.conf). */
struct ci_lang {
	char *name;	   /* canonical LibreChat name: "py" */
	char **aliases;	   /* NULL-terminated: "python", ... */
	char *runtime;	   /* runtime profile handed to create(): "python" */
	char *image;	   /* image for container backends, may be NULL */
	char *source_file; /* file the code is written to: "main.py" */
	char *compile;	   /* shell command run first, NULL if none */
	char *run;	   /* shell command that runs the program */
	char *probe;	   /* program whose presence means "installed" (bwrap) */
};

struct ci_conf {
	char *path; /* the file read, or NULL when none */

	/* listen */
	char *host;
	int port;
	int max_connections;
	int connection_timeout_s;
	size_t max_header_bytes;
	size_t max_json_body_bytes;
	int worker_threads;
	int queue_depth;

	/* auth */
	enum ci_auth_mode auth_mode;
	unsigned auth_accept; /* CI_ACCEPT_* */
	struct ci_api_key keys[CI_MAX_KEYS];
	int n_keys;
	struct ci_jwt_key_conf jwt_keys[CI_MAX_JWT_KEYS];
	int n_jwt_keys;
	char *jwt_jwks_file;
	char *jwt_issuer, *jwt_audience; /* "" = not checked */
	int jwt_clock_skew_s, jwt_max_lifetime_s;

	/* backend */
	char *backend;	  /* name of the plugin to load */
	char *plugin_dir; /* NULL: next to the binary, else the install dir */

	/* storage */
	char *storage_path;
	int64_t max_file_size;
	int max_files_per_session;
	int max_files_per_run;
	int file_ttl_hours;

	/* sessions and sandboxes */
	int session_ttl_minutes;
	int session_idle_minutes;
	int reaper_interval_s;
	bool sweep_on_startup;
	char *sandbox_label;

	/* execution limits */
	int max_memory_mb;
	int max_run_timeout_s;
	int default_run_timeout_s;
	int64_t max_output_bytes;
	int max_pids;
	int64_t max_output_file_bytes;
	/* per principal (0 = unlimited) */
	int principal_concurrent_execs;
	int principal_execs_per_minute;
	int64_t principal_stored_bytes;

	char *log_level;

	struct ci_lang *langs;
	int n_langs;

	void *cfg; /* the parsed libconfig tree, kept for backend sections */
};

/*
 * Load path (NULL = defaults only), then apply environment overrides.
 * On error returns -1 and writes "file:line: message" into err.
 * Warnings (unknown keys) are logged.
 */
int ci_conf_load(struct ci_conf *conf, const char *path, char *err, size_t errlen);
void ci_conf_release(struct ci_conf *conf);

/* Fill every field with its default (no file, no environment). */
void ci_conf_defaults(struct ci_conf *conf);

/*
 * Values of backends.<backend>.<key> ('.' separates nested keys).
 * Return 0 on success, 1 when absent, -1 when of another type. Strings
 * stay valid until ci_conf_release().
 */
int ci_conf_backend_str(const struct ci_conf *conf, const char *backend, const char *key,
			const char **out);
int ci_conf_backend_int(const struct ci_conf *conf, const char *backend, const char *key,
			int64_t *out);
int ci_conf_backend_bool(const struct ci_conf *conf, const char *backend, const char *key,
			 int *out);

/*
 * Checks that need the final environment and hold only for a server about
 * to run (an API key exists unless auth is explicitly off). -1 with err.
 */
int ci_conf_check_runnable(const struct ci_conf *conf, char *err, size_t errlen);

/* Language by name or alias (case-insensitive); NULL when unknown. */
const struct ci_lang *ci_conf_find_lang(const struct ci_conf *conf, const char *name);

#endif /* CI_CORE_CONF_H */
