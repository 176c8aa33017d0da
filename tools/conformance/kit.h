/*
 * ci-backend-conformance: the semantics every backend plugin must honour,
 * checked through the real loader and host table. TAP on stdout, the
 * server's log lines on stderr.
 */
#ifndef CI_KIT_H
#define CI_KIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ci/backend.h"

#define KIT_CALL_MS 60000  /* deadline of an ordinary call */
#define KIT_BIG_MS  300000 /* deadline of the 50 MB put and get */
#define KIT_EXEC_MS 20000  /* program timeout of ordinary execs */
#define KIT_CAPTURE (16u << 20)

struct ci_plugin;

struct kit {
	struct ci_plugin *p;
	int n, failed, skipped;
	char owner[96];	      /* owner label of this run's sandboxes */
	char id[CI_ID_MAX];   /* the sandbox most checks use; "" if create failed */
	char gone[CI_ID_MAX]; /* a sandbox created and destroyed */
	const char *runtime;  /* --runtime, handed to create() */
	const char *image;    /* --image */
};

/* TAP: one numbered result line; a failing one is followed by "# " lines. */
bool kit_ok(struct kit *k, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kit_skip(struct kit *k, const char *why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kit_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growing capture buffer: keeps at most KIT_CAPTURE bytes, counts all. */
struct kit_buf {
	char *data;
	size_t len, cap;
	int64_t total;
	int chunks;
};
void kit_buf_add(struct kit_buf *b, const void *p, size_t n);
void kit_buf_free(struct kit_buf *b);
bool kit_buf_is(const struct kit_buf *b, const void *p, size_t n);

/* One exec and everything observed about it. */
struct kit_run {
	int rc;
	char err[CI_ERR_MAX];
	ci_exec_result res;
	struct kit_buf out, err_out;
	int64_t call_ms;       /* how long exec() took */
	int64_t first_out_ms;  /* first stdout byte, from the call's start; -1 if none */
	int stop_stdout_after; /* >0: the sink declines stdout after this many chunks */
	int out_after_stop;    /* stdout deliveries after declining */
};
void kit_run_free(struct kit_run *run);

int kit_create(struct kit *k, const char *owner, const char *const *env, char id[CI_ID_MAX],
	       char err[CI_ERR_MAX]);
int kit_destroy(struct kit *k, const char *id, char err[CI_ERR_MAX]);
/* put from memory; through_fd also hands the plugin a file descriptor. */
int kit_put(struct kit *k, const char *id, const char *path, const void *data, size_t len,
	    uint32_t mode, bool through_fd, char err[CI_ERR_MAX]);
int kit_get(struct kit *k, const char *id, const char *path, struct kit_buf *out,
	    char err[CI_ERR_MAX]);
/* argv is NULL-terminated; env, cwd and stdin may be NULL. */
int kit_exec(struct kit *k, const char *id, const char *const *argv, const char *const *env,
	     const char *cwd, const void *in, size_t in_len, int64_t timeout_ms,
	     struct kit_run *run);
/* Run `sh -c script` in k->id; true when it exited 0. */
bool kit_sh(struct kit *k, const char *script);

/* One reported list() entry, copied. */
struct kit_entry {
	char path[256];
	int type;
	int64_t size;
	uint32_t mode;
};
struct kit_list {
	struct kit_entry e[256];
	int n, calls, stop_after;
};
int kit_list(struct kit *k, const char *id, const char *dir, struct kit_list *l,
	     char err[CI_ERR_MAX]);
const struct kit_entry *kit_list_find(const struct kit_list *l, const char *path);

/* The check groups, in the order they run. */
void kit_check_lifecycle(struct kit *k);
void kit_check_files(struct kit *k);
void kit_check_big(struct kit *k);
void kit_check_list(struct kit *k);
void kit_check_exec(struct kit *k);
void kit_check_timeout(struct kit *k);
void kit_check_errors(struct kit *k);
void kit_check_sweep(struct kit *k);

const char *kit_rc(int rc);
int64_t kit_now_ms(void);

#endif /* CI_KIT_H */
