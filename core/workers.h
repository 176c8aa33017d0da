/*
 * A fixed pool of threads running queued jobs. Slow request handlers run
 * here so the libmicrohttpd event thread never waits on a backend.
 */
#ifndef CI_CORE_WORKERS_H
#define CI_CORE_WORKERS_H

#include <stdbool.h>

struct ci_workers;

typedef void (*ci_job_fn)(void *arg);

/* Start n threads with room for depth queued jobs; NULL on failure. */
struct ci_workers *ci_workers_new(int n, int depth);
/* Queue a job. Returns false when the queue is full (caller answers 429). */
bool ci_workers_submit(struct ci_workers *w, ci_job_fn fn, void *arg);
/* Jobs queued or running right now. */
int ci_workers_busy(struct ci_workers *w);
/* Wait until idle or timeout_ms passes; true when idle. */
bool ci_workers_drain(struct ci_workers *w, int timeout_ms);
/* Run what is queued, join the threads, free the pool. */
void ci_workers_free(struct ci_workers *w);

#endif /* CI_CORE_WORKERS_H */
