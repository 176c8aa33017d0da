/*
 * The durable file store: uploads and exec outputs, grouped in storage
 * sessions (architecture.md §2), kept on local disk under one root.
 *
 * Layout under the root (owned by one process at a time, flock on .lock):
 *   tmp/                         files being written; emptied at open
 *   sessions/<sid>/<fid>.data    the bytes of one stored file
 *   sessions/<sid>/<fid>.json    its metadata, written by temp + rename
 * A file exists when its .json exists and its .data has the recorded size;
 * anything else found at open is junk from a crash and is removed.
 *
 * Sessions and files are named by 21-char nanoids. Every session belongs to
 * one owner string (the principal, possibly narrowed by user id; compared
 * byte for byte). Every lookup takes the caller's owner and a mismatch is
 * answered exactly like an unknown id (CI_E_NOTFOUND), so one principal can
 * never learn whether another principal's ids exist.
 *
 * Return codes are ci_rc values (ci/backend.h): CI_OK, CI_E_INVAL (bad
 * argument), CI_E_NOTFOUND, CI_E_LIMIT (size or count limit), CI_E_NOMEM,
 * CI_E_UNAVAIL (disk full), CI_E_INTERNAL (other I/O errors, logged). Where
 * a function takes char *err it may be NULL; otherwise it is CI_ERR_MAX
 * bytes and receives a one-line reason whenever the result is not CI_OK.
 *
 * Threading: every function is thread-safe on one struct ci_store, except
 * ci_store_open/ci_store_close, and except that one writer must not be used
 * from two threads at once. The index sits behind a rwlock held only for
 * in-memory work; file data is written and read outside it.
 */
#ifndef CI_CORE_STORE_H
#define CI_CORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "ci/backend.h"
#include "names.h"
#include "nanoid.h"

#define CI_STORE_OWNER_MAX 256 /* bytes, NUL excluded */
#define CI_STORE_CTYPE_MAX 128 /* buffer size, NUL included */
#define CI_STORE_KIND_MAX  16  /* buffer size, NUL included */
#define CI_STORE_SHA_HEX   65  /* 64 hex digits + NUL */

/* ci_store_info.flags and ci_store_put.flags */
#define CI_STORE_F_READ_ONLY (1u << 0) /* never report this file back as an exec output */

struct ci_store;
struct ci_store_writer;

struct ci_store_opts {
	uint64_t max_file_size;		/* default per-file byte limit; 0 = unlimited */
	uint32_t max_files_per_session; /* committed + in-flight files; 0 = unlimited */
	bool no_fsync; /* skip fsync: tests and benchmarks only, never production */
};

/* A copy of one file's metadata, owned by the caller. */
struct ci_store_info {
	char sid[CI_NANOID_SIZE];
	char fid[CI_NANOID_SIZE];
	char name[CI_NAME_SIZE];		  /* sanitised relative path, "docs/two.md" */
	char content_type[CI_STORE_CTYPE_MAX];	  /* safe to emit as a header value */
	char sha256[CI_STORE_SHA_HEX];		  /* lower-case hex of the content */
	char kind[CI_STORE_KIND_MAX];		  /* "user", "agent", ... or "" */
	char resource_id[CI_RESOURCE_ID_MAX + 1]; /* or "" */
	uint64_t size;
	int64_t created_ns; /* CLOCK_REALTIME at commit, ns since the epoch */
	uint32_t flags;	    /* CI_STORE_F_* */
};

/* What to store: every string is borrowed for the call only. */
struct ci_store_put {
	const char *sid;	  /* 21-char nanoid; the session is created if unknown */
	const char *owner;	  /* 1..256 bytes of UTF-8 without control characters */
	const char *name;	  /* must pass ci_name_check() */
	const char *content_type; /* NULL or invalid (ci_mime_is_valid): guessed from name */
	const char *kind;	  /* NULL or "" for none, else [A-Za-z0-9_-]{1,15} */
	const char *resource_id;  /* NULL or "" for none, else ci_resource_id_is_valid() */
	uint64_t max_size;	  /* per-file byte limit for this write; 0 = the store's */
	uint32_t flags;		  /* CI_STORE_F_* */
};

struct ci_store_stats {
	uint64_t sessions;
	uint64_t files;
	uint64_t bytes;	   /* sum of file sizes */
	uint64_t inflight; /* open writers */
};

/* Called once per file; return non-zero to stop. info is valid during the call only. */
typedef int (*ci_store_list_cb)(void *ctx, const struct ci_store_info *info);

/*
 * Whether a session stored under owner `stored` is visible to a request of
 * owner `req`. Owners are "principal" or "principal/user" (an end user
 * narrowing an API key's principal): equal strings match; the principal sees
 * its users' files; a user sees the principal's own files but never another
 * user's. "jwt:..." principals are matched exactly. Writes always need the
 * exact owner.
 */
bool ci_store_owner_matches(const char *stored, const char *req);

/* CLOCK_REALTIME in nanoseconds, the clock of created_ns and of expiry cutoffs. */
int64_t ci_store_now_ns(void);

/*
 * Open the store rooted at root (created with mode 0700 if missing; its
 * parent must exist) and recover it: temp files are deleted, metadata
 * without data (or with data of the wrong size), data without metadata and
 * unreadable metadata are removed, empty session directories are removed,
 * every valid file is indexed. What was done is logged (store.recover).
 * opts may be NULL (no limits). Fails with CI_E_UNAVAIL if another process
 * holds the store, CI_E_INTERNAL on I/O errors. Not thread-safe: call before
 * sharing the store.
 */
int ci_store_open(const char *root, const struct ci_store_opts *opts, struct ci_store **out,
		  char *err);

/*
 * Free the index and release the root. Every writer must have been committed
 * or aborted. Files stay on disk. NULL is a no-op.
 */
void ci_store_close(struct ci_store *st);

/*
 * Mint a fresh session id for owner and reserve it (an empty session, kept
 * in memory until it has files or until expiry removes it). CI_E_INVAL for a
 * bad owner.
 */
int ci_store_session_new(struct ci_store *st, const char *owner, char sid[CI_NANOID_SIZE]);

/*
 * Start storing one file. Validates put (CI_E_INVAL with the reason in err),
 * checks the session's owner (another owner's session: CI_E_NOTFOUND),
 * reserves a slot against max_files_per_session (CI_E_LIMIT when full) and
 * creates a temp file. On CI_OK *out is a writer that the caller must end
 * with exactly one ci_store_commit() or ci_store_abort().
 */
int ci_store_begin(struct ci_store *st, const struct ci_store_put *put,
		   struct ci_store_writer **out, char *err);

/*
 * Append len bytes. CI_E_LIMIT when the file would exceed its size limit
 * (nothing of this call is written), CI_E_UNAVAIL on a full disk,
 * CI_E_INTERNAL on other I/O errors. After any failure the writer is dead:
 * further writes fail again and the caller must ci_store_abort() it.
 */
int ci_store_write(struct ci_store_writer *w, const void *buf, size_t len, char *err);

/*
 * Make the file durable and visible: fsync the data, rename it into its
 * session, write the metadata (temp + fsync + rename + fsync of the
 * directory), then index it. Always consumes w: on CI_OK info (may be NULL)
 * receives the stored file's metadata including its new file id; on failure
 * everything is removed as by ci_store_abort().
 */
int ci_store_commit(struct ci_store_writer *w, struct ci_store_info *info, char *err);

/* Drop an unfinished write and its temp file; frees w. NULL is a no-op. */
void ci_store_abort(struct ci_store_writer *w);

/*
 * begin + write everything read from fd (until EOF, from its current
 * position) + commit. Used for exec outputs. fd stays open and owned by the
 * caller. Same codes as the three calls; nothing is left behind on failure.
 */
int ci_store_put_fd(struct ci_store *st, const struct ci_store_put *put, int fd,
		    struct ci_store_info *info, char *err);

/* Metadata of (sid, fid) if owner owns sid. CI_E_NOTFOUND otherwise. */
int ci_store_stat(struct ci_store *st, const char *sid, const char *fid, const char *owner,
		  struct ci_store_info *info);

/*
 * Open (sid, fid) for reading: *fd receives an O_RDONLY|O_CLOEXEC descriptor
 * the caller must close (sendfile-ready, positioned at 0). info may be NULL.
 * A file deleted or expired meanwhile stays readable through an already
 * opened fd. CI_E_NOTFOUND as for ci_store_stat.
 */
int ci_store_file_open(struct ci_store *st, const char *sid, const char *fid, const char *owner,
		       int *fd, struct ci_store_info *info);

/*
 * Find file fid in any session of owner (legacy clients that pair a file id
 * with the wrong session id). Linear in the number of sessions.
 */
int ci_store_find(struct ci_store *st, const char *fid, const char *owner,
		  struct ci_store_info *info);

/*
 * Call cb for every committed file of session sid, oldest first, from a
 * snapshot taken under the lock (cb may call back into the store). Returns
 * CI_OK (also for an existing empty session), CI_E_NOTFOUND for an unknown
 * session or another owner's, CI_E_NOMEM.
 */
int ci_store_list(struct ci_store *st, const char *sid, const char *owner, ci_store_list_cb cb,
		  void *ctx);

/* Committed files of session sid in *n; CI_E_NOTFOUND like ci_store_list. */
int ci_store_count(struct ci_store *st, const char *sid, const char *owner, unsigned *n);

/*
 * Remove file (sid, fid): gone from the index at once, then from disk.
 * CI_E_NOTFOUND as for ci_store_stat.
 */
int ci_store_delete(struct ci_store *st, const char *sid, const char *fid, const char *owner);

/*
 * Remove every file created before older_than_ns (a CLOCK_REALTIME cutoff,
 * e.g. ci_store_now_ns() - 24 h), then every session left empty whose last
 * activity is older than the cutoff and that has no write in flight. The
 * count of removed files goes to *n_removed (may be NULL). Meant to run
 * periodically from one thread; readers and writers proceed meanwhile.
 */
int ci_store_expire(struct ci_store *st, int64_t older_than_ns, unsigned *n_removed);

/* Bytes of every committed file of owner's sessions (quotas). Linear in sessions. */
uint64_t ci_store_owner_bytes(struct ci_store *st, const char *owner);

/* A consistent snapshot of the counters. */
void ci_store_get_stats(struct ci_store *st, struct ci_store_stats *stats);

#endif /* CI_CORE_STORE_H */
