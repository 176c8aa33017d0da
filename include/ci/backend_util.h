/*
 * Header-only helpers for backend plugins. Nothing here is part of the ABI:
 * plugins may copy or ignore these.
 */
#ifndef CI_BACKEND_UTIL_H
#define CI_BACKEND_UTIL_H

#include <stdarg.h>
#include <stdio.h>

#include "ci/backend.h"

/*
 * Record a failure in call->err and return rc, git's "return error()" style:
 *	return ci_fail(call, CI_E_BACKEND, "create %s: HTTP %d", image, status);
 */
static inline int ci_fail(ci_call *call, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline int ci_fail(ci_call *call, int rc, const char *fmt, ...)
{
	va_list ap;

	if (call) {
		va_start(ap, fmt);
		vsnprintf(call->err, sizeof(call->err), fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Milliseconds left before the call's deadline (never negative). */
static inline int64_t ci_call_left_ms(const ci_host *host, const ci_call *call)
{
	int64_t left = call->deadline_ms - host->now_ms(host->hctx);

	return left > 0 ? left : 0;
}

#endif /* CI_BACKEND_UTIL_H */
