/*
 * Live sandboxes (architecture.md §2): a cache of backend environments,
 * reused across the execs of one conversation, never shared between
 * scopes (principal + user), destroyed on TTL, idle timeout, DELETE,
 * shutdown, or by the startup sweep. Losing one never loses a stored file.
 *
 * Affinity: every exec maps its new storage session id to the sandbox it
 * ran in, so a later exec that names that session (request session_id, or
 * a files[] entry's storage session) finds the same sandbox again.
 */
#ifndef CI_CORE_SANDBOX_H
#define CI_CORE_SANDBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ci/backend.h"

/* Separates principal and end user in a sandbox scope (never in either). */
#define CI_SCOPE_SEP '\x1f'

struct ci_conf;
struct ci_plugin;
struct ci_sandboxes;

/* What the core knows is in the sandbox's /mnt/data (to skip re-uploads). */
struct ci_sandbox_file {
	char *path; /* relative to /mnt/data */
	int64_t size;
	int64_t mtime_ns; /* -1 when not yet listed */
	char sha256[65];  /* hex, "" when unknown */
};

struct ci_sandbox {
	char id[CI_ID_MAX]; /* the backend's id */
	char *scope;	    /* owner scope: principal, or principal CI_SCOPE_SEP user */
	char *runtime;
	char serial[24];		  /* our own handle, shown by /v1/librechat/sessions */
	int64_t created_ms, last_used_ms; /* monotonic */
	int64_t created_unix, last_used_unix;
	int refs;  /* under the table lock */
	bool dead; /* destroyed, or going to be */
	unsigned execs;
	pthread_mutex_t run_lock; /* held by the one exec running here */
	/* Protected by run_lock: */
	struct ci_sandbox_file *files;
	int n_files, cap_files;
	bool prelude_ready;
	struct ci_sandbox *next;
};

/* Start the table and its reaper thread. */
struct ci_sandboxes *ci_sandboxes_new(const struct ci_conf *conf, struct ci_plugin *plugin);
/* Destroy every sandbox (shutdown) and free the table. */
void ci_sandboxes_free(struct ci_sandboxes *t);

/*
 * Remove what an earlier run of this instance left (backend sweep by owner
 * label); logs the count. Returns the backend's rc.
 */
int ci_sandboxes_sweep(struct ci_sandboxes *t);

/*
 * A sandbox for scope + runtime: the one a hint session id maps to, else a
 * new one. On CI_OK *out is referenced and its run_lock held (execs on one
 * sandbox are serialised); *created says whether it is new. On failure
 * err says why.
 */
int ci_sandboxes_acquire(struct ci_sandboxes *t, const char *scope, const char *runtime,
			 const char *const *hints, int n_hints, const char *rid,
			 struct ci_sandbox **out, bool *created, char *err, size_t errlen);

/*
 * Give the sandbox back: maps new_sid (may be NULL) to it for affinity and
 * unlocks it. broken = the backend lost it: it is destroyed instead.
 */
void ci_sandboxes_release(struct ci_sandboxes *t, struct ci_sandbox *sb, const char *new_sid,
			  bool broken);

/* Known-file bookkeeping (caller holds sb->run_lock). */
struct ci_sandbox_file *ci_sandbox_file_find(struct ci_sandbox *sb, const char *path);
struct ci_sandbox_file *ci_sandbox_file_set(struct ci_sandbox *sb, const char *path, int64_t size,
					    int64_t mtime_ns, const char *sha256);
void ci_sandbox_files_clear(struct ci_sandbox *sb);

struct ci_sandbox_view {
	const char *serial, *backend_id, *runtime, *state;
	const char *const *sessions; /* storage session ids mapped here */
	int n_sessions;
	int64_t created_unix, last_used_unix, expires_unix;
	unsigned execs;
};

/* Call cb for each live sandbox within scope (a principal: all its users'; NULL: all). */
void ci_sandboxes_each(struct ci_sandboxes *t, const char *scope,
		       void (*cb)(void *ctx, const struct ci_sandbox_view *v), void *ctx);

/*
 * Destroy the sandbox within scope that has serial handle or storage session id
 * key. CI_E_NOTFOUND when none; waits for a running exec to finish.
 */
int ci_sandboxes_destroy(struct ci_sandboxes *t, const char *scope, const char *key,
			 const char *rid);

/* Run one reaper pass now (tests); returns how many were destroyed. */
int ci_sandboxes_reap(struct ci_sandboxes *t, int64_t now_ms);

#endif /* CI_CORE_SANDBOX_H */
