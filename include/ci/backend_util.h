/*
 * Header-only helpers for backend plugins. Nothing here is part of the ABI:
 * plugins may copy or ignore these.
 */
#ifndef CI_BACKEND_UTIL_H
#define CI_BACKEND_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * One record of GNU find's -printf '%y %s %T@ %m %P' (the listing every
 * exec-based list() uses, as it reports symlinks without following them):
 * rec[0..len) followed by a NUL. Fills e, whose path points into rec.
 * Returns 0, or -1 when the record is malformed.
 */
static inline int ci_find_record_parse(const char *rec, size_t len, ci_entry *e)
{
	const char *s = rec + 2, *lim = rec + len;
	long long sec, size;
	unsigned long mode;
	int64_t frac = 0;
	int digits = 0;
	char *end;

	if (len < 9 || rec[1] != ' ' || memchr(rec, '\0', len))
		return -1;
	size = strtoll(s, &end, 10);
	if (end == s || *end != ' ' || size < 0)
		return -1;
	s = end + 1;
	sec = strtoll(s, &end, 10);
	if (end == s)
		return -1;
	s = end;
	if (*s == '.') {
		for (s++; s < lim && *s >= '0' && *s <= '9'; s++)
			if (digits < 9) {
				frac = frac * 10 + (*s - '0');
				digits++;
			}
		while (digits++ < 9)
			frac *= 10;
	}
	if (s >= lim || *s != ' ')
		return -1;
	mode = strtoul(++s, &end, 8);
	if (end == s || *end != ' ' || end + 1 >= lim)
		return -1;
	memset(e, 0, sizeof(*e));
	e->path = end + 1;
	e->type = rec[0] == 'f'	  ? CI_ENTRY_FILE
		  : rec[0] == 'd' ? CI_ENTRY_DIR
		  : rec[0] == 'l' ? CI_ENTRY_SYMLINK
				  : CI_ENTRY_OTHER;
	e->size = e->type == CI_ENTRY_FILE ? size : 0;
	e->mtime_ns = (int64_t)sec * 1000000000 + frac;
	e->mode = (uint32_t)(mode & 07777);
	return 0;
}

#endif /* CI_BACKEND_UTIL_H */
