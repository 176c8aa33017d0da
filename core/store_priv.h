/* Internals shared by store.c (runtime operations) and store_recover.c (open-time scan). */
#ifndef CI_CORE_STORE_PRIV_H
#define CI_CORE_STORE_PRIV_H

#include <pthread.h>

#include "store.h"
#include "store_index.h"

#define CI_STORE_TMP_DIR      "tmp"
#define CI_STORE_SESSIONS_DIR "sessions"
#define CI_STORE_DATA_SUFFIX  ".data"
#define CI_STORE_META_SUFFIX  ".json"
#define CI_STORE_NAME_BUF     48 /* "<nanoid>.json" and temp names, NUL included */

struct ci_store {
	pthread_rwlock_t lock; /* guards idx and inflight */
	struct ci_sindex idx;
	uint64_t inflight;
	struct ci_store_opts opts;
	int root_fd, tmp_fd, sess_fd, lock_fd;
};

/* Index every valid file under sessions/ and remove crash leftovers; logs a summary. */
int ci_store_recover(struct ci_store *st, char *err);

/* snprintf into err (CI_ERR_MAX bytes, may be NULL) and return rc. */
int ci_store_fail(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* CI_CORE_STORE_PRIV_H */
