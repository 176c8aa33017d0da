/*
 * The exec pipeline (architecture.md §3), independent of HTTP and JSON:
 * resolve the language, check the input files, take a sandbox, sync only
 * what changed, run with limits, detect new or changed files, store them
 * under a fresh storage session before answering.
 */
#ifndef CI_CORE_EXEC_H
#define CI_CORE_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ci/backend.h"

struct ci_app;

struct ci_exec_input {
	const char *sid;  /* storage session holding the bytes */
	const char *fid;  /* file id */
	const char *name; /* path under /mnt/data */
};

struct ci_exec_req {
	const char *rid;
	const char *scope;     /* storage owner: principal, or principal/user */
	const char *principal; /* who authenticated: limits, sandbox scope */
	const char *user;      /* end user (body user_id / User-Id header), may be NULL */
	const char *lang;
	const char *code;
	const char *const *args;
	int n_args;
	const struct ci_exec_input *files;
	int n_files;
	const char *session_hint; /* request session_id, may be NULL */
	int64_t timeout_ms;	  /* 0: the configured default */
};

struct ci_exec_file {
	char fid[22];
	char name[512];
	char from_sid[22], from_fid[22]; /* set when it replaced an input */
};

struct ci_exec_resp {
	char session_id[22];
	char *out, *err; /* NUL-terminated; truncation marked in the text */
	size_t out_len, err_len;
	int exit_code, signal;
	bool timed_out;
	int64_t wall_ms;
	struct ci_exec_file *files;
	int n_files;
	char **deleted; /* input names the program removed */
	int n_deleted;
	int delivery_failed; /* outputs that could not be stored */
};

/*
 * Run one request. CI_OK with resp filled (also for failing programs), or
 * a ci_rc with *http_status and a client-facing message in err.
 */
int ci_exec_run(struct ci_app *app, const struct ci_exec_req *req, struct ci_exec_resp *resp,
		int *http_status, char *err, size_t errlen);
void ci_exec_resp_release(struct ci_exec_resp *resp);

#endif /* CI_CORE_EXEC_H */
