/*
 * One line per event on stderr: "ts level event key=value ...".
 * Values with spaces, quotes or '=' are quoted. Thread-safe.
 */
#ifndef CI_CORE_LOG_H
#define CI_CORE_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum ci_log_level { CI_LL_ERROR = 0, CI_LL_WARN, CI_LL_INFO, CI_LL_DEBUG };

void ci_log_set_level(enum ci_log_level level);
enum ci_log_level ci_log_get_level(void);
/* Parse "error|warn|info|debug"; returns -1 if unknown. */
int ci_log_parse_level(const char *name);

/*
 * ci_log(CI_LL_INFO, "exec.done", "rid=%s exit=%d", rid, code);
 * event is a dotted name, fmt the key=value tail (may be NULL).
 */
void ci_log(enum ci_log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ci_logv(enum ci_log_level level, const char *event, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Redirect output (tests); NULL restores stderr. */
void ci_log_set_stream(FILE *stream);

#endif /* CI_CORE_LOG_H */
