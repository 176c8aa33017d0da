/*
 * A small ci_host for the engine tests, in two flavours:
 *  - scripted: http() answers from a queue of canned responses (no daemon),
 *    delivering bodies in small chunks to exercise split reads;
 *  - live: http() is a real libcurl request on the engine's unix socket
 *    (tests only; the plugins themselves never link libcurl).
 * Configuration comes from a NULL-terminated "key=value" table.
 */
#ifndef CI_TESTS_ENGINE_TEST_HOST_H
#define CI_TESTS_ENGINE_TEST_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "ci/backend.h"

#define TH_MAX_STEPS 32

struct th_step {
	const char *method;   /* expected method */
	const char *url_part; /* expected substring of the URL */
	int rc;		      /* host rc to return (CI_OK, CI_E_UNAVAIL, CI_E_TIMEOUT) */
	int status;
	const void *body;
	size_t body_len; /* 0: strlen(body) */
	/* recorded */
	char *req_body; /* request body as sent (body or body_src drained) */
	size_t req_len;
	char url[1024];
};

struct th_host {
	ci_host host;
	const char *const *cfg; /* "key=value", NULL-terminated */
	bool live;
	bool verbose;
	size_t chunk; /* scripted: deliver bodies in pieces of this size */
	struct th_step steps[TH_MAX_STEPS];
	int n_steps, next;
	int unexpected;	  /* requests beyond or against the script */
	int64_t clock_ms; /* scripted clock; advanced by clock_step per now_ms */
	int64_t clock_step;
	char last_log[512];
};

void th_init(struct th_host *th, bool live, const char *const *cfg);
void th_release(struct th_host *th);
struct th_step *th_expect(struct th_host *th, const char *method, const char *url_part, int status,
			  const char *body);
ci_call th_call(struct th_host *th, int64_t ms);

#endif /* CI_TESTS_ENGINE_TEST_HOST_H */
