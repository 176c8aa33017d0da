/*
 * A small ci_host for the Daytona plugin tests: configuration from a
 * table, malloc'ed memory, and http done with libcurl right here (the
 * core's host.c is not needed). Also a client for the fake's /__fake API.
 */
#ifndef CI_TESTS_DT_TEST_HOST_H
#define CI_TESTS_DT_TEST_HOST_H

#include <stdint.h>

#include "ci/backend.h"

struct th_cfg {
	const char *key;
	char type; /* 's', 'i' or 'b' */
	const char *s;
	int64_t i;
};

/* Fill h; cfg is borrowed, NULL-key terminated. */
void th_host(ci_host *h, const struct th_cfg *cfg);
/* Seconds added to wall_unix() (sandbox ages for sweep tests). */
extern int64_t th_wall_offset;
/* Number of log lines at CI_LOG_WARN or worse since the last reset. */
extern int th_warnings;

void th_call(const ci_host *h, ci_call *c, int64_t ms);
/* "http://127.0.0.1:N/api" of the fake named by $DT_FAKE_DIR. */
const char *th_api_url(void);
/* One request to the fake's test-control API; returns the status, body in *out (malloc). */
int th_ctl(const char *method, const char *path, const char *json, char **out);
/* Same, to any URL with a bearer. */
int th_request(const char *method, const char *url, const char *bearer, const char *json,
	       char **out);

#endif /* CI_TESTS_DT_TEST_HOST_H */
