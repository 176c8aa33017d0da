/*
 * The ci_host services table lent to one backend plugin (include/ci/backend.h):
 * logging through ci_log with backend=<name>, configuration scoped to
 * backends.<name>, accounted memory, clocks, and HTTP over libcurl.
 *
 * One struct ci_host_ctx exists per loaded plugin; the loader makes it before
 * init() and frees it after fini(). Its table and the config strings it hands
 * out stay valid until ci_host_free().
 */
#ifndef CI_CORE_HOST_H
#define CI_CORE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "ci/backend.h"

struct ci_conf;
struct ci_host_ctx;

/*
 * Make the table for backend `name`. conf may be NULL (every cfg_* key is then
 * absent); it is borrowed and must outlive the context. Returns NULL only when
 * out of memory.
 */
struct ci_host_ctx *ci_host_new(const char *name, const struct ci_conf *conf);
void ci_host_free(struct ci_host_ctx *h);

/* The table to hand to init(); valid until ci_host_free(). */
const ci_host *ci_host_table(const struct ci_host_ctx *h);

/* Bytes the plugin holds from mem_alloc and has not freed (leak check at unload). */
size_t ci_host_mem_in_use(const struct ci_host_ctx *h);

/* The clocks behind now_ms (CLOCK_MONOTONIC, ms) and wall_unix (seconds). */
int64_t ci_now_ms(void);
int64_t ci_wall_unix(void);

/*
 * The http service without a plugin (same contract as ci_host.http): for the
 * core itself and for tests. call->deadline_ms bounds the exchange.
 */
int ci_host_http(const ci_http_req *req, int *status, const ci_sink *body, ci_call *call);

/*
 * Free the pooled libcurl handles and undo curl_global_init. Call once at
 * exit, after every plugin is unloaded and no thread uses http any more.
 */
void ci_host_http_cleanup(void);

#endif /* CI_CORE_HOST_H */
