/*
 * The fake backend's private interface, shared by its source files.
 *
 * Layout under the root directory (config backends.fake.root, else a
 * mkdtemp() directory made at init and removed at fini):
 *	<root>/<id>/meta   owner=, session=, runtime=, created=, disk= lines
 *	<root>/<id>/env    the create spec's env, NUL-separated
 *	<root>/<id>/data/  what the sandbox sees as /mnt/data
 */
#ifndef CI_FAKE_H
#define CI_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ci/backend.h"
#include "ci/backend_util.h"

#define FAKE_MNT     "/mnt/data"
#define FAKE_PATH    4096
#define FAKE_BUFSIZE 65536

struct ci_be {
	const ci_host *host;
	char *root;    /* host->mem_alloc'd */
	int root_fd;   /* O_DIRECTORY fd of root */
	bool own_root; /* made by us: removed at fini */
};

/* fake_fault.c: scripted faults, delays and the call log */

/*
 * Apply backends.fake.{fail,delay_ms}.<op> and the CI_FAKE_SCRIPT file
 * (re-read now): sleep the scripted delay, then return the scripted code
 * with a message in call->err, or CI_OK to go on.
 */
int fake_fault(struct ci_be *be, const char *op, ci_call *call);
/* Append "<op> rid=<rid> <detail> rc=<name>" to the CI_FAKE_LOG file, if any. */
void fake_record(struct ci_be *be, const char *op, const ci_call *call, int rc, const char *fmt,
		 ...) __attribute__((format(printf, 5, 6)));
const char *fake_rc_name(int rc);

/* fake_fs.c: sandbox directories and the /mnt/data view */

bool fake_id_ok(const char *id);
/* fd of <root>/<id>/data, or -1 with CI_E_NOTFOUND in call->err (*rc set). */
int fake_data_fd(struct ci_be *be, const char *id, int *rc, ci_call *call);
/*
 * "/mnt/data/a//./b" -> "a/b" in rel ("" for /mnt/data itself). CI_E_INVAL
 * for paths outside /mnt/data or holding "..".
 */
int fake_rel_path(const char *path, char rel[FAKE_PATH], ci_call *call);
/*
 * Open the directory rel (relative to data_fd) without following any
 * symlink, creating missing directories when mkdirs. Returns an fd or -1
 * with *rc and call->err set.
 */
int fake_open_dir(int data_fd, const char *rel, bool mkdirs, int *rc, ci_call *call);
/* Remove name below dfd recursively, never following symlinks. */
int fake_rm_tree(int dfd, const char *name);
int fake_put(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
	     ci_call *call);
int fake_get(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call);
int fake_list(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx, ci_call *call);

/* fake_exec.c */
int fake_exec(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
	      ci_call *call);

/* Milliseconds left before the call's deadline; <= 0 when it has passed. */
static inline int64_t fake_left_ms(const struct ci_be *be, const ci_call *call)
{
	return call->deadline_ms - be->host->now_ms(be->host->hctx);
}

#endif /* CI_FAKE_H */
