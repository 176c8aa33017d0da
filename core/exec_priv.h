/* Shared state of the exec pipeline's parts (exec*.c); not an API. */
#ifndef CI_CORE_EXEC_PRIV_H
#define CI_CORE_EXEC_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "exec.h"
#include "store.h"

/* Our files inside the sandbox: program text and preludes. Never outputs. */
#define CI_EXEC_META_NAME ".ci"
#define CI_EXEC_META_DIR  "/mnt/data/" CI_EXEC_META_NAME

struct ci_lang;
struct ci_sandbox;

struct ci_exec_resolved {
	char name[CI_NAME_SIZE]; /* where it goes under /mnt/data */
	struct ci_store_info info;
};

struct ci_exec_ctx {
	struct ci_app *app;
	const struct ci_exec_req *req;
	const struct ci_lang *lang;
	struct ci_exec_resolved *inputs; /* de-duplicated by name, last wins */
	int n_inputs;
	struct ci_sandbox *sb;
	int64_t timeout_ms, deadline_ms;
	int64_t us_sync, us_run, us_collect; /* stage timings for the log */
	int n_put, skipped_outputs;
	char nonce[CI_NANOID_SIZE]; /* inline mode: the runner's manifest markers */
	char err[1024];		    /* room for a path and the backend's own message */
};

/* Language and input checks; 400/404-class failures with a message. */
int ci_exec_prepare(struct ci_exec_ctx *x, int *http_status, char *err, size_t errlen);
void ci_exec_ctx_release(struct ci_exec_ctx *x);

/*
 * List /mnt/data (from manifest when non-NULL, else through the backend),
 * store new/changed files, note deleted inputs.
 */
int ci_exec_collect_outputs(struct ci_exec_ctx *x, struct ci_exec_resp *resp, const char *manifest,
			    size_t manifest_len);

/*
 * The runner's manifest at the end of stderr (exec_manifest.c): true when
 * the block is there, with its offset in tail and its records; complete is
 * false when the listing itself failed.
 */
bool ci_exec_manifest_find(const char *tail, size_t len, const char *nonce, size_t *block_start,
			   const char **body, size_t *body_len, bool *complete);
/* Each record as a ci_entry; -1 when a record is malformed. */
int ci_exec_manifest_each(const char *body, size_t len, ci_entry_cb cb, void *ctx);
/* Forget (and delete from storage) outputs of a failed attempt. */
void ci_exec_outputs_discard(struct ci_exec_ctx *x, struct ci_exec_resp *resp);

int ci_exec_put_bytes(struct ci_exec_ctx *x, const char *path, const char *data, size_t len,
		      uint32_t mode);

#endif /* CI_CORE_EXEC_PRIV_H */
