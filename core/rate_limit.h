/*
 * Per-principal limits: concurrent execs and execs per minute (a token
 * bucket). Answers "wait N seconds" rather than queueing, so one principal
 * can never starve the others of the worker pool. Thread-safe.
 */
#ifndef CI_CORE_RATE_LIMIT_H
#define CI_CORE_RATE_LIMIT_H

#include <stdint.h>

struct ci_limits;

/* 0 for either limit disables it. */
struct ci_limits *ci_limits_new(int concurrent, int per_minute);
void ci_limits_free(struct ci_limits *l);

/*
 * Take one exec slot for principal at now_ms (monotonic). 0 on success
 * (release with ci_limits_exec_end), else the seconds to wait (>= 1).
 */
int ci_limits_exec_begin(struct ci_limits *l, const char *principal, int64_t now_ms);
void ci_limits_exec_end(struct ci_limits *l, const char *principal);

#endif /* CI_CORE_RATE_LIMIT_H */
