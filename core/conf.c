#include "conf.h"

#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jwt.h"
#include "lang_defaults.h"
#include "log.h"

/* Known keys per group; anything else is warned about (typos are silent otherwise). */
static const char *const top_keys[] = {"listen",    "auth",	"backend", "plugin_dir",
				       "storage",   "sessions", "limits",  "log_level",
				       "languages", "backends", NULL};
static const char *const listen_keys[] = {"host",
					  "port",
					  "max_connections",
					  "connection_timeout_s",
					  "max_header_bytes",
					  "max_json_body_bytes",
					  "worker_threads",
					  "queue_depth",
					  NULL};
static const char *const auth_keys[] = {"mode", "accept", "keys", "jwt", NULL};
static const char *const jwt_keys[] = {"keys",	       "jwks_file",	 "issuer", "audience",
				       "clock_skew_s", "max_lifetime_s", NULL};
static const char *const jwt_key_keys[] = {"kid", "file", "algs", NULL};

/* LibreChat's default CODEAPI_JWT_KID: a key configured without kid gets it. */
#define DEFAULT_JWT_KID "lc-codeapi-2026-05"
static const char *const storage_keys[] = {
	"path", "max_file_size", "max_files_per_session", "max_files_per_run", "file_ttl_hours",
	NULL};
static const char *const session_keys[] = {"ttl_minutes",      "idle_minutes",	"reaper_interval_s",
					   "sweep_on_startup", "sandbox_label", NULL};
static const char *const limit_keys[] = {"max_memory_mb",
					 "max_run_timeout_s",
					 "default_run_timeout_s",
					 "max_output_bytes",
					 "max_pids",
					 "max_output_file_bytes",
					 "principal_concurrent_execs",
					 "principal_execs_per_minute",
					 "principal_stored_bytes",
					 NULL};
static const char *const lang_keys[] = {"name",	   "aliases", "runtime", "image", "source_file",
					"compile", "run",     "probe",	 NULL};

static char *xstrdup(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d) {
		fputs("ci-server: out of memory\n", stderr);
		abort();
	}
	return d;
}

static void set_str(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value);
}

static void lang_release(struct ci_lang *l)
{
	free(l->name);
	if (l->aliases)
		for (char **a = l->aliases; *a; a++)
			free(*a);
	free(l->aliases);
	free(l->runtime);
	free(l->image);
	free(l->source_file);
	free(l->compile);
	free(l->run);
	free(l->probe);
	memset(l, 0, sizeof(*l));
}

static char **split_aliases(const char *csv)
{
	size_t n = 1;
	char **out, *copy, *tok, *save = NULL;

	for (const char *p = csv; *p; p++)
		n += *p == ',';
	out = calloc(n + 1, sizeof(*out));
	copy = xstrdup(csv);
	if (!out)
		abort();
	n = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		out[n++] = xstrdup(tok);
	free(copy);
	return out;
}

static void load_default_langs(struct ci_conf *conf)
{
	size_t n = ci_lang_defaults_count();

	conf->langs = calloc(n, sizeof(*conf->langs));
	if (!conf->langs)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct ci_lang_default *d = &ci_lang_defaults[i];
		struct ci_lang *l = &conf->langs[i];

		l->name = xstrdup(d->name);
		l->aliases = split_aliases(d->aliases);
		l->runtime = xstrdup(d->runtime);
		l->image = xstrdup(d->image);
		l->source_file = xstrdup(d->source_file);
		l->compile = xstrdup(d->compile);
		l->run = xstrdup(d->run);
		l->probe = xstrdup(d->probe);
	}
	conf->n_langs = (int)n;
}

void ci_conf_defaults(struct ci_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->host = xstrdup("127.0.0.1");
	conf->port = 8080;
	conf->max_connections = 512;
	conf->connection_timeout_s = 120;
	conf->max_header_bytes = 16 * 1024;
	conf->max_json_body_bytes = 8 * 1024 * 1024;
	conf->worker_threads = 8;
	conf->queue_depth = 64;
	conf->auth_mode = CI_AUTH_KEYS;
	conf->auth_accept = 0; /* decided after loading: see settle_accept() */
	conf->jwt_issuer = xstrdup("librechat");
	conf->jwt_audience = xstrdup("codeapi");
	conf->jwt_clock_skew_s = 60;
	conf->jwt_max_lifetime_s = 3600;
	conf->backend = xstrdup("bwrap");
	conf->storage_path = xstrdup("/var/lib/ci-server/files");
	conf->max_file_size = 150LL * 1024 * 1024;
	conf->max_files_per_session = 200;
	conf->max_files_per_run = 50;
	conf->file_ttl_hours = 24;
	conf->session_ttl_minutes = 60;
	conf->session_idle_minutes = 30;
	conf->reaper_interval_s = 60;
	conf->sweep_on_startup = true;
	conf->sandbox_label = xstrdup("ci-server");
	conf->max_memory_mb = 512;
	conf->max_run_timeout_s = 120;
	conf->default_run_timeout_s = 30;
	conf->max_output_bytes = 1024 * 1024;
	conf->max_pids = 256;
	conf->max_output_file_bytes = 10 * 1024 * 1024;
	conf->principal_concurrent_execs = 8;
	conf->principal_execs_per_minute = 600;
	conf->principal_stored_bytes = 10LL << 30;
	conf->log_level = xstrdup("info");
	load_default_langs(conf);
}

static void warn_unknown(const config_setting_t *group, const char *const *known)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		bool ok = false;

		if (!name)
			continue;
		for (const char *const *k = known; *k && !ok; k++)
			ok = !strcmp(*k, name);
		if (!ok)
			ci_log(CI_LL_WARN, "config.unknown_key", "file=%s line=%u key=%s",
			       config_setting_source_file(s) ? config_setting_source_file(s) : "-",
			       config_setting_source_line(s), name);
	}
}

static int fail_at(const config_setting_t *s, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s:%u: %s", config_setting_source_file(s),
		 config_setting_source_line(s), what);
	return -1;
}

/* Read an optional integer with a lower bound; -1 with err on bad type/value. */
static int get_int(const config_setting_t *grp, const char *key, int64_t min, int64_t *out,
		   char *err, size_t errlen)
{
	const config_setting_t *s = grp ? config_setting_get_member(grp, key) : NULL;
	char msg[160];
	int64_t v;

	if (!s)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_INT64)
		v = config_setting_get_int64(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT)
		v = config_setting_get_int(s);
	else {
		snprintf(msg, sizeof(msg), "%s must be an integer", key);
		return fail_at(s, err, errlen, msg);
	}
	if (v < min) {
		snprintf(msg, sizeof(msg), "%s must be >= %lld", key, (long long)min);
		return fail_at(s, err, errlen, msg);
	}
	*out = v;
	return 0;
}

static int get_intf(const config_setting_t *grp, const char *key, int64_t min, int *out, char *err,
		    size_t errlen)
{
	int64_t v = *out;

	if (get_int(grp, key, min, &v, err, errlen))
		return -1;
	if (v > 0x7fffffff)
		return fail_at(config_setting_get_member(grp, key), err, errlen, "value too large");
	*out = (int)v;
	return 0;
}

static int get_str(const config_setting_t *grp, const char *key, char **out, char *err,
		   size_t errlen)
{
	const config_setting_t *s = grp ? config_setting_get_member(grp, key) : NULL;
	char msg[160];

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		snprintf(msg, sizeof(msg), "%s must be a string", key);
		return fail_at(s, err, errlen, msg);
	}
	set_str(out, config_setting_get_string(s));
	return 0;
}

static int get_bool(const config_setting_t *grp, const char *key, bool *out, char *err,
		    size_t errlen)
{
	const config_setting_t *s = grp ? config_setting_get_member(grp, key) : NULL;
	char msg[160];

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		snprintf(msg, sizeof(msg), "%s must be true or false", key);
		return fail_at(s, err, errlen, msg);
	}
	*out = config_setting_get_bool(s);
	return 0;
}

static int add_key(struct ci_conf *conf, const char *name, const char *key)
{
	if (conf->n_keys >= CI_MAX_KEYS || strpbrk(name, ":/") || !*name)
		return -1;
	conf->keys[conf->n_keys].name = xstrdup(name);
	conf->keys[conf->n_keys].key = xstrdup(key);
	conf->n_keys++;
	return 0;
}

static int parse_algs(const config_setting_t *arr, unsigned *out, char *err, size_t errlen)
{
	*out = 0;
	if (!arr)
		return 0;
	if (!config_setting_is_array(arr) && !config_setting_is_list(arr))
		return fail_at(arr, err, errlen, "algs must be an array of names like \"EdDSA\"");
	for (int i = 0; i < config_setting_length(arr); i++) {
		const char *name = config_setting_get_string_elem(arr, i);
		unsigned a = name ? ci_jwt_alg_parse(name) : 0;
		char msg[160];

		if (!a) {
			snprintf(msg, sizeof(msg),
				 "unsupported JWT alg '%s' (EdDSA, RS256, RS384, "
				 "RS512, ES256; none and HS* are never accepted)",
				 name ? name : "?");
			return fail_at(arr, err, errlen, msg);
		}
		*out |= a;
	}
	return 0;
}

static int add_jwt_key(struct ci_conf *conf, const char *kid, const char *file, unsigned algs)
{
	struct ci_jwt_key_conf *k;

	if (conf->n_jwt_keys >= CI_MAX_JWT_KEYS)
		return -1;
	k = &conf->jwt_keys[conf->n_jwt_keys++];
	k->kid = xstrdup(kid && *kid ? kid : DEFAULT_JWT_KID);
	k->file = xstrdup(file);
	k->algs = algs;
	return 0;
}

static int load_jwt(struct ci_conf *conf, const config_setting_t *grp, char *err, size_t errlen)
{
	const config_setting_t *keys;

	if (!grp)
		return 0;
	if (!config_setting_is_group(grp))
		return fail_at(grp, err, errlen, "auth.jwt must be a group");
	warn_unknown(grp, jwt_keys);
	if (get_str(grp, "jwks_file", &conf->jwt_jwks_file, err, errlen) ||
	    get_str(grp, "issuer", &conf->jwt_issuer, err, errlen) ||
	    get_str(grp, "audience", &conf->jwt_audience, err, errlen) ||
	    get_intf(grp, "clock_skew_s", 0, &conf->jwt_clock_skew_s, err, errlen) ||
	    get_intf(grp, "max_lifetime_s", 1, &conf->jwt_max_lifetime_s, err, errlen))
		return -1;
	if (conf->jwt_clock_skew_s > CI_JWT_SKEW_MAX)
		return fail_at(grp, err, errlen, "auth.jwt.clock_skew_s is too large (max 3600)");
	if (conf->jwt_max_lifetime_s > CI_JWT_LIFETIME_MAX)
		return fail_at(grp, err, errlen,
			       "auth.jwt.max_lifetime_s is too large (max 30 days)");
	keys = config_setting_get_member(grp, "keys");
	if (!keys)
		return 0;
	if (!config_setting_is_list(keys))
		return fail_at(keys, err, errlen, "auth.jwt.keys must be a list of { kid; file; }");
	for (int i = 0; i < config_setting_length(keys); i++) {
		const config_setting_t *k = config_setting_get_elem(keys, (unsigned)i);
		const char *kid = NULL, *file = NULL;
		unsigned algs;

		if (!config_setting_is_group(k) || !config_setting_lookup_string(k, "file", &file))
			return fail_at(k, err, errlen,
				       "each auth.jwt key needs a file (PEM public "
				       "key)");
		warn_unknown(k, jwt_key_keys);
		config_setting_lookup_string(k, "kid", &kid);
		if (parse_algs(config_setting_get_member(k, "algs"), &algs, err, errlen))
			return -1;
		if (add_jwt_key(conf, kid, file, algs))
			return fail_at(k, err, errlen, "too many auth.jwt keys");
	}
	return 0;
}

static int parse_accept_word(const char *w, size_t n, unsigned *out)
{
	if (n == 7 && !strncmp(w, "api_key", 7))
		*out |= CI_ACCEPT_API_KEY;
	else if (n == 13 && !strncmp(w, "librechat_jwt", 13))
		*out |= CI_ACCEPT_JWT;
	else
		return -1;
	return 0;
}

static int load_accept(struct ci_conf *conf, const config_setting_t *arr, char *err, size_t errlen)
{
	if (!arr)
		return 0;
	if (!config_setting_is_array(arr) && !config_setting_is_list(arr))
		return fail_at(arr, err, errlen,
			       "auth.accept must be an array: [\"api_key\", "
			       "\"librechat_jwt\"]");
	conf->auth_accept = 0;
	for (int i = 0; i < config_setting_length(arr); i++) {
		const char *w = config_setting_get_string_elem(arr, i);

		if (!w || parse_accept_word(w, strlen(w), &conf->auth_accept))
			return fail_at(arr, err, errlen,
				       "auth.accept takes \"api_key\" and "
				       "\"librechat_jwt\"");
	}
	if (!conf->auth_accept)
		return fail_at(arr, err, errlen,
			       "auth.accept is empty: use auth.mode = \"none\" "
			       "to accept everyone");
	return 0;
}

static int load_auth(struct ci_conf *conf, const config_setting_t *grp, char *err, size_t errlen)
{
	const config_setting_t *keys;
	char *mode = NULL;

	if (!grp)
		return 0;
	warn_unknown(grp, auth_keys);
	if (get_str(grp, "mode", &mode, err, errlen))
		return -1;
	if (mode) {
		if (!strcmp(mode, "none"))
			conf->auth_mode = CI_AUTH_NONE;
		else if (!strcmp(mode, "keys"))
			conf->auth_mode = CI_AUTH_KEYS;
		else {
			free(mode);
			return fail_at(config_setting_get_member(grp, "mode"), err, errlen,
				       "auth.mode must be \"keys\" or \"none\"");
		}
		free(mode);
	}
	if (load_accept(conf, config_setting_get_member(grp, "accept"), err, errlen) ||
	    load_jwt(conf, config_setting_get_member(grp, "jwt"), err, errlen))
		return -1;
	keys = config_setting_get_member(grp, "keys");
	if (!keys)
		return 0;
	if (!config_setting_is_list(keys))
		return fail_at(keys, err, errlen, "auth.keys must be a list of { name; key; }");
	for (int i = 0; i < config_setting_length(keys); i++) {
		const config_setting_t *k = config_setting_get_elem(keys, (unsigned)i);
		const char *name = NULL, *key = NULL;

		if (!config_setting_is_group(k) ||
		    !config_setting_lookup_string(k, "name", &name) ||
		    !config_setting_lookup_string(k, "key", &key))
			return fail_at(k, err, errlen, "each auth key needs name and key strings");
		if (strlen(key) < 16)
			return fail_at(k, err, errlen,
				       "auth key too short (16 characters minimum)");
		if (strpbrk(name, ":/") || !*name)
			return fail_at(k, err, errlen,
				       "auth key names must be non-empty, without ':' "
				       "(jwt: principals) or '/' (principal/user)");
		if (add_key(conf, name, key))
			return fail_at(k, err, errlen, "too many auth keys");
	}
	return 0;
}

static int load_lang(struct ci_conf *conf, const config_setting_t *s, char *err, size_t errlen)
{
	struct ci_lang tmp = {0}, *slot = NULL;
	const config_setting_t *al;
	const char *name = NULL;

	if (!config_setting_is_group(s) || !config_setting_lookup_string(s, "name", &name))
		return fail_at(s, err, errlen, "each language needs a name");
	warn_unknown(s, lang_keys);
	for (int i = 0; i < conf->n_langs && !slot; i++)
		if (!strcasecmp(conf->langs[i].name, name))
			slot = &conf->langs[i];
	if (!slot) {
		struct ci_lang *n = realloc(conf->langs, sizeof(*n) * (size_t)(conf->n_langs + 1));

		if (!n)
			abort();
		conf->langs = n;
		slot = &conf->langs[conf->n_langs++];
		memset(slot, 0, sizeof(*slot));
		slot->name = xstrdup(name);
		slot->aliases = calloc(1, sizeof(char *));
	}
	tmp = *slot;
	if (get_str(s, "runtime", &tmp.runtime, err, errlen) ||
	    get_str(s, "image", &tmp.image, err, errlen) ||
	    get_str(s, "source_file", &tmp.source_file, err, errlen) ||
	    get_str(s, "compile", &tmp.compile, err, errlen) ||
	    get_str(s, "run", &tmp.run, err, errlen) ||
	    get_str(s, "probe", &tmp.probe, err, errlen)) {
		*slot = tmp;
		return -1;
	}
	al = config_setting_get_member(s, "aliases");
	if (al) {
		int n = config_setting_length(al);
		char **list;

		if (!config_setting_is_array(al) && !config_setting_is_list(al)) {
			*slot = tmp;
			return fail_at(al, err, errlen, "aliases must be an array of strings");
		}
		list = calloc((size_t)n + 1, sizeof(*list));
		if (!list)
			abort();
		for (int i = 0; i < n; i++)
			list[i] = xstrdup(config_setting_get_string_elem(al, i));
		if (tmp.aliases)
			for (char **a = tmp.aliases; *a; a++)
				free(*a);
		free(tmp.aliases);
		tmp.aliases = list;
	}
	if (tmp.compile && !*tmp.compile) {
		free(tmp.compile);
		tmp.compile = NULL;
	}
	*slot = tmp;
	if (!slot->run || !slot->source_file || !slot->runtime)
		return fail_at(s, err, errlen, "a new language needs runtime, source_file and run");
	return 0;
}

static int load_file(struct ci_conf *conf, config_t *cfg, char *err, size_t errlen)
{
	const config_setting_t *root = config_root_setting(cfg), *g, *langs, *be;
	int64_t v;

	warn_unknown(root, top_keys);
	if (get_str(root, "backend", &conf->backend, err, errlen) ||
	    get_str(root, "plugin_dir", &conf->plugin_dir, err, errlen) ||
	    get_str(root, "log_level", &conf->log_level, err, errlen))
		return -1;

	g = config_setting_get_member(root, "listen");
	if (g) {
		warn_unknown(g, listen_keys);
		v = (int64_t)conf->max_header_bytes;
		if (get_str(g, "host", &conf->host, err, errlen) ||
		    get_intf(g, "port", 0, &conf->port, err, errlen) ||
		    get_intf(g, "max_connections", 1, &conf->max_connections, err, errlen) ||
		    get_intf(g, "connection_timeout_s", 1, &conf->connection_timeout_s, err,
			     errlen) ||
		    get_int(g, "max_header_bytes", 1024, &v, err, errlen))
			return -1;
		conf->max_header_bytes = (size_t)v;
		v = (int64_t)conf->max_json_body_bytes;
		if (get_int(g, "max_json_body_bytes", 1024, &v, err, errlen) ||
		    get_intf(g, "worker_threads", 1, &conf->worker_threads, err, errlen) ||
		    get_intf(g, "queue_depth", 1, &conf->queue_depth, err, errlen))
			return -1;
		conf->max_json_body_bytes = (size_t)v;
	}
	if (load_auth(conf, config_setting_get_member(root, "auth"), err, errlen))
		return -1;

	g = config_setting_get_member(root, "storage");
	if (g) {
		warn_unknown(g, storage_keys);
		if (get_str(g, "path", &conf->storage_path, err, errlen) ||
		    get_int(g, "max_file_size", 1, &conf->max_file_size, err, errlen) ||
		    get_intf(g, "max_files_per_session", 1, &conf->max_files_per_session, err,
			     errlen) ||
		    get_intf(g, "max_files_per_run", 1, &conf->max_files_per_run, err, errlen) ||
		    get_intf(g, "file_ttl_hours", 1, &conf->file_ttl_hours, err, errlen))
			return -1;
	}
	g = config_setting_get_member(root, "sessions");
	if (g) {
		warn_unknown(g, session_keys);
		if (get_intf(g, "ttl_minutes", 1, &conf->session_ttl_minutes, err, errlen) ||
		    get_intf(g, "idle_minutes", 1, &conf->session_idle_minutes, err, errlen) ||
		    get_intf(g, "reaper_interval_s", 1, &conf->reaper_interval_s, err, errlen) ||
		    get_bool(g, "sweep_on_startup", &conf->sweep_on_startup, err, errlen) ||
		    get_str(g, "sandbox_label", &conf->sandbox_label, err, errlen))
			return -1;
	}
	g = config_setting_get_member(root, "limits");
	if (g) {
		warn_unknown(g, limit_keys);
		if (get_intf(g, "max_memory_mb", 16, &conf->max_memory_mb, err, errlen) ||
		    get_intf(g, "max_run_timeout_s", 1, &conf->max_run_timeout_s, err, errlen) ||
		    get_intf(g, "default_run_timeout_s", 1, &conf->default_run_timeout_s, err,
			     errlen) ||
		    get_int(g, "max_output_bytes", 1024, &conf->max_output_bytes, err, errlen) ||
		    get_intf(g, "max_pids", 8, &conf->max_pids, err, errlen) ||
		    get_int(g, "max_output_file_bytes", 1, &conf->max_output_file_bytes, err,
			    errlen) ||
		    get_intf(g, "principal_concurrent_execs", 0, &conf->principal_concurrent_execs,
			     err, errlen) ||
		    get_intf(g, "principal_execs_per_minute", 0, &conf->principal_execs_per_minute,
			     err, errlen) ||
		    get_int(g, "principal_stored_bytes", 0, &conf->principal_stored_bytes, err,
			    errlen))
			return -1;
	}
	langs = config_setting_get_member(root, "languages");
	if (langs) {
		if (!config_setting_is_list(langs))
			return fail_at(langs, err, errlen, "languages must be a list of groups");
		for (int i = 0; i < config_setting_length(langs); i++)
			if (load_lang(conf, config_setting_get_elem(langs, (unsigned)i), err,
				      errlen))
				return -1;
	}
	be = config_setting_get_member(root, "backends");
	if (be && !config_setting_is_group(be))
		return fail_at(be, err, errlen, "backends must be a group of per-backend groups");
	return 0;
}

static int env_int(const char *name, int64_t min, int64_t *out, char *err, size_t errlen)
{
	const char *s = getenv(name);
	char *end;
	long long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min) {
		snprintf(err, errlen, "environment %s=%s: expected an integer >= %lld", name, s,
			 (long long)min);
		return -1;
	}
	*out = v;
	return 0;
}

static int env_intf(const char *name, int64_t min, int *out, char *err, size_t errlen)
{
	int64_t v = *out;

	if (env_int(name, min, &v, err, errlen))
		return -1;
	if (v > 0x7fffffff) {
		snprintf(err, errlen, "environment %s: value too large", name);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static void env_str(const char *name, char **out)
{
	const char *s = getenv(name);

	if (s && *s)
		set_str(out, s);
}

static int apply_env(struct ci_conf *conf, char *err, size_t errlen)
{
	const char *s;

	env_str("CI_BACKEND", &conf->backend);
	env_str("CI_FILE_STORAGE_PATH", &conf->storage_path);
	env_str("CI_HOST", &conf->host);
	env_str("CI_SANDBOX_LABEL", &conf->sandbox_label);
	env_str("CI_PLUGIN_DIR", &conf->plugin_dir);
	env_str("CI_LOG_LEVEL", &conf->log_level);
	if (env_intf("CI_PORT", 0, &conf->port, err, errlen) ||
	    env_intf("CI_SESSION_TTL_MINUTES", 1, &conf->session_ttl_minutes, err, errlen) ||
	    env_intf("CI_MAX_MEMORY_MB", 16, &conf->max_memory_mb, err, errlen) ||
	    env_intf("CI_MAX_RUN_TIMEOUT_SECONDS", 1, &conf->max_run_timeout_s, err, errlen) ||
	    env_intf("CI_DEFAULT_RUN_TIMEOUT_SECONDS", 1, &conf->default_run_timeout_s, err,
		     errlen) ||
	    env_int("CI_MAX_FILE_SIZE_BYTES", 1, &conf->max_file_size, err, errlen) ||
	    env_intf("CI_MAX_FILES_PER_SESSION", 1, &conf->max_files_per_session, err, errlen) ||
	    env_intf("CI_MAX_FILES_PER_RUN", 1, &conf->max_files_per_run, err, errlen))
		return -1;
	s = getenv("CI_SANDBOX_SWEEP_ON_STARTUP");
	if (s && *s) {
		if (!strcasecmp(s, "true") || !strcmp(s, "1"))
			conf->sweep_on_startup = true;
		else if (!strcasecmp(s, "false") || !strcmp(s, "0"))
			conf->sweep_on_startup = false;
		else {
			snprintf(err, errlen,
				 "environment CI_SANDBOX_SWEEP_ON_STARTUP=%s: expected "
				 "true or false",
				 s);
			return -1;
		}
	}
	s = getenv("CI_AUTH_MODE");
	if (s && *s) {
		if (!strcmp(s, "none"))
			conf->auth_mode = CI_AUTH_NONE;
		else if (!strcmp(s, "keys"))
			conf->auth_mode = CI_AUTH_KEYS;
		else {
			snprintf(err, errlen, "environment CI_AUTH_MODE=%s: expected keys or none",
				 s);
			return -1;
		}
	}
	s = getenv("CI_AUTH_ACCEPT");
	if (s && *s) {
		unsigned acc = 0;

		for (const char *p = s; *p;) {
			size_t n = strcspn(p, ",");

			if (parse_accept_word(p, n, &acc)) {
				snprintf(err, errlen,
					 "environment CI_AUTH_ACCEPT=%s: expected "
					 "api_key and/or librechat_jwt, comma-separated",
					 s);
				return -1;
			}
			p += n + (p[n] == ',');
		}
		conf->auth_accept = acc;
	}
	env_str("CI_JWT_JWKS_FILE", &conf->jwt_jwks_file);
	s = getenv("CI_JWT_PUBLIC_KEY_FILE");
	if (s && *s && add_jwt_key(conf, getenv("CI_JWT_KID"), s, 0)) {
		snprintf(err, errlen, "too many JWT keys");
		return -1;
	}
	env_str("CI_JWT_ISSUER", &conf->jwt_issuer);
	env_str("CI_JWT_AUDIENCE", &conf->jwt_audience);
	s = getenv("CI_API_KEY");
	if (s && *s) {
		if (strlen(s) < 16) {
			snprintf(err, errlen,
				 "environment CI_API_KEY: too short (16 characters "
				 "minimum)");
			return -1;
		}
		if (add_key(conf, "default", s)) {
			snprintf(err, errlen, "too many auth keys");
			return -1;
		}
	}
	return 0;
}

static int validate(struct ci_conf *conf, char *err, size_t errlen)
{
	const char *where = conf->path ? conf->path : "configuration";

	/*
	 * auth.accept defaults to what is configured: API keys, plus LibreChat
	 * JWTs as soon as a verification key exists.
	 */
	if (!conf->auth_accept)
		conf->auth_accept = CI_ACCEPT_API_KEY |
				    (conf->n_jwt_keys || conf->jwt_jwks_file ? CI_ACCEPT_JWT : 0);
	if ((conf->auth_accept & CI_ACCEPT_JWT) && !conf->n_jwt_keys && !conf->jwt_jwks_file) {
		snprintf(err, errlen,
			 "%s: auth.accept includes librechat_jwt but no key verifies "
			 "tokens: set auth.jwt.keys or auth.jwt.jwks_file "
			 "(or CI_JWT_PUBLIC_KEY_FILE)",
			 where);
		return -1;
	}
	/* A lower maximum (e.g. CI_MAX_RUN_TIMEOUT_SECONDS=10) lowers the default too. */
	if (conf->default_run_timeout_s > conf->max_run_timeout_s)
		conf->default_run_timeout_s = conf->max_run_timeout_s;

	if (ci_log_parse_level(conf->log_level) < 0) {
		snprintf(err, errlen, "%s: log_level must be error, warn, info or debug", where);
		return -1;
	}
	for (const char *p = conf->backend; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
			snprintf(err, errlen, "%s: backend name '%s' must match [a-z0-9_]+", where,
				 conf->backend);
			return -1;
		}
	if (!*conf->backend) {
		snprintf(err, errlen, "%s: backend must not be empty", where);
		return -1;
	}
	return 0;
}

int ci_conf_load(struct ci_conf *conf, const char *path, char *err, size_t errlen)
{
	config_t *cfg;

	ci_conf_defaults(conf);
	if (path) {
		cfg = calloc(1, sizeof(*cfg));
		if (!cfg)
			abort();
		config_init(cfg);
		conf->cfg = cfg;
		conf->path = xstrdup(path);
		if (!config_read_file(cfg, path)) {
			if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			else
				snprintf(err, errlen, "%s:%d: %s",
					 config_error_file(cfg) ? config_error_file(cfg) : path,
					 config_error_line(cfg), config_error_text(cfg));
			return -1;
		}
		if (load_file(conf, cfg, err, errlen))
			return -1;
	}
	if (apply_env(conf, err, errlen))
		return -1;
	return validate(conf, err, errlen);
}

void ci_conf_release(struct ci_conf *conf)
{
	free(conf->path);
	free(conf->host);
	for (int i = 0; i < conf->n_keys; i++) {
		free(conf->keys[i].name);
		free(conf->keys[i].key);
	}
	for (int i = 0; i < conf->n_jwt_keys; i++) {
		free(conf->jwt_keys[i].kid);
		free(conf->jwt_keys[i].file);
	}
	free(conf->jwt_jwks_file);
	free(conf->jwt_issuer);
	free(conf->jwt_audience);
	free(conf->backend);
	free(conf->plugin_dir);
	free(conf->storage_path);
	free(conf->sandbox_label);
	free(conf->log_level);
	for (int i = 0; i < conf->n_langs; i++)
		lang_release(&conf->langs[i]);
	free(conf->langs);
	if (conf->cfg) {
		config_destroy(conf->cfg);
		free(conf->cfg);
	}
	memset(conf, 0, sizeof(*conf));
}

static const config_setting_t *backend_setting(const struct ci_conf *conf, const char *backend,
					       const char *key)
{
	char path[256];

	if (!conf->cfg)
		return NULL;
	if ((size_t)snprintf(path, sizeof(path), "backends.%s.%s", backend, key) >= sizeof(path))
		return NULL;
	return config_lookup(conf->cfg, path);
}

int ci_conf_backend_str(const struct ci_conf *conf, const char *backend, const char *key,
			const char **out)
{
	const config_setting_t *s = backend_setting(conf, backend, key);

	if (!s)
		return 1;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return -1;
	*out = config_setting_get_string(s);
	return 0;
}

int ci_conf_backend_int(const struct ci_conf *conf, const char *backend, const char *key,
			int64_t *out)
{
	const config_setting_t *s = backend_setting(conf, backend, key);

	if (!s)
		return 1;
	if (config_setting_type(s) == CONFIG_TYPE_INT)
		*out = config_setting_get_int(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT64)
		*out = config_setting_get_int64(s);
	else
		return -1;
	return 0;
}

int ci_conf_backend_bool(const struct ci_conf *conf, const char *backend, const char *key, int *out)
{
	const config_setting_t *s = backend_setting(conf, backend, key);

	if (!s)
		return 1;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return -1;
	*out = config_setting_get_bool(s);
	return 0;
}

int ci_conf_check_runnable(const struct ci_conf *conf, char *err, size_t errlen)
{
	if (conf->auth_mode == CI_AUTH_KEYS && conf->n_keys == 0 &&
	    !(conf->auth_accept & CI_ACCEPT_JWT)) {
		snprintf(err, errlen,
			 "no API key configured: set auth.keys in %s, or CI_API_KEY, "
			 "or auth.mode = \"none\" explicitly",
			 conf->path ? conf->path : "the config file");
		return -1;
	}
	return 0;
}

const struct ci_lang *ci_conf_find_lang(const struct ci_conf *conf, const char *name)
{
	for (int i = 0; i < conf->n_langs; i++) {
		const struct ci_lang *l = &conf->langs[i];

		if (!strcasecmp(l->name, name))
			return l;
		for (char **a = l->aliases; a && *a; a++)
			if (!strcasecmp(*a, name))
				return l;
	}
	return NULL;
}
