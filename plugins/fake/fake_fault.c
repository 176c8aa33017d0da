/*
 * Scripted faults and the call log: what makes the fake a test seam.
 *
 * A fault comes from the config (backends.fake.fail.<op> = "unavail";
 * backends.fake.delay_ms.<op> = 500) and, overriding it, from the file named
 * by $CI_FAKE_SCRIPT (or backends.fake.script), re-read at every call:
 *	# comment
 *	create=unavail
 *	exec.delay_ms=500
 *	put.msg=disk quota of the test
 * Codes: ok inval notfound exists nomem limit timeout unavail unsupported
 * backend internal (the host's rc names "not_found", ... are accepted too).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake.h"

static const struct {
	const char *code, *alias;
	int rc;
} codes[] = {
	{"ok", "ok", CI_OK},
	{"inval", "invalid", CI_E_INVAL},
	{"notfound", "not_found", CI_E_NOTFOUND},
	{"exists", "exists", CI_E_EXISTS},
	{"nomem", "no_memory", CI_E_NOMEM},
	{"limit", "limit", CI_E_LIMIT},
	{"timeout", "timeout", CI_E_TIMEOUT},
	{"unavail", "unavailable", CI_E_UNAVAIL},
	{"unsupported", "unsupported", CI_E_UNSUPPORTED},
	{"backend", "backend_error", CI_E_BACKEND},
	{"internal", "internal", CI_E_INTERNAL},
};

struct fault {
	int rc;
	int64_t delay_ms;
	char msg[160];
};

const char *fake_rc_name(int rc)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].rc == rc)
			return codes[i].code;
	return "?";
}

static int parse_code(const char *s)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(s, codes[i].code) || !strcmp(s, codes[i].alias))
			return codes[i].rc;
	return -1;
}

static const char *script_path(struct ci_be *be)
{
	const char *s = getenv("CI_FAKE_SCRIPT");

	if (s && *s)
		return s;
	if (be->host->cfg_str(be->host->hctx, "script", &s) == CI_OK && *s)
		return s;
	return NULL;
}

/* One "key=value" line of the script, for operation op. */
static void script_line(struct ci_be *be, char *line, const char *op, struct fault *f)
{
	size_t oplen = strlen(op);
	char *eq = strchr(line, '='), *key = line, *val;
	char *end;
	int rc;

	if (!eq)
		return;
	*eq = 0;
	val = eq + 1;
	key[strcspn(key, " \t")] = 0;
	if (strncmp(key, op, oplen) || (key[oplen] && key[oplen] != '.'))
		return;
	if (!key[oplen]) {
		val[strcspn(val, " \t\r")] = 0;
		rc = parse_code(val);
		if (rc < 0) {
			be->host->log(be->host->hctx, CI_LOG_WARN,
				      "fake.script unknown code '%s' for %s: using internal", val,
				      op);
			rc = CI_E_INTERNAL;
		}
		f->rc = rc;
	} else if (!strcmp(key + oplen, ".delay_ms")) {
		f->delay_ms = strtoll(val, &end, 10);
	} else if (!strcmp(key + oplen, ".msg")) {
		val[strcspn(val, "\r")] = 0;
		snprintf(f->msg, sizeof(f->msg), "%s", val);
	}
}

static void script_read(struct ci_be *be, const char *path, const char *op, struct fault *f)
{
	char text[16384], *line, *save;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			be->host->log(be->host->hctx, CI_LOG_WARN, "fake.script path=%s err=%s",
				      path, strerror(errno));
		return;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line += strspn(line, " \t");
		if (*line && *line != '#')
			script_line(be, line, op, f);
	}
}

static void config_read(struct ci_be *be, const char *op, struct fault *f)
{
	const ci_host *h = be->host;
	char key[64];
	const char *s;
	int64_t v;

	snprintf(key, sizeof(key), "fail.%s", op);
	if (h->cfg_str(h->hctx, key, &s) == CI_OK) {
		f->rc = parse_code(s);
		if (f->rc < 0)
			f->rc = CI_E_INTERNAL;
	}
	snprintf(key, sizeof(key), "delay_ms.%s", op);
	if (h->cfg_int(h->hctx, key, &v) == CI_OK)
		f->delay_ms = v;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int fake_fault(struct ci_be *be, const char *op, ci_call *call)
{
	struct fault f = {.rc = CI_OK};
	const char *script = script_path(be);
	int64_t left;

	config_read(be, op, &f);
	if (script)
		script_read(be, script, op, &f);
	if (f.delay_ms > 0) {
		left = call ? fake_left_ms(be, call) : f.delay_ms;
		sleep_ms(f.delay_ms < left ? f.delay_ms : (left > 0 ? left : 0));
		if (call && f.delay_ms >= left)
			return ci_fail(call, CI_E_TIMEOUT,
				       "fake: scripted %s delay of %lld ms ran past the deadline",
				       op, (long long)f.delay_ms);
	}
	if (f.rc == CI_OK)
		return CI_OK;
	return ci_fail(call, f.rc, "fake: %s", f.msg[0] ? f.msg : "scripted failure");
}

void fake_record(struct ci_be *be, const char *op, const ci_call *call, int rc, const char *fmt,
		 ...)
{
	const char *path = getenv("CI_FAKE_LOG");
	char line[2048];
	va_list ap;
	size_t n;
	int fd;

	if ((!path || !*path) &&
	    (be->host->cfg_str(be->host->hctx, "call_log", &path) != CI_OK || !*path))
		return;
	n = (size_t)snprintf(line, sizeof(line), "%s rid=%s ", op,
			     call && call->request_id ? call->request_id : "-");
	if (fmt && n < sizeof(line)) {
		va_start(ap, fmt);
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
	}
	if (n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, " rc=%s", fake_rc_name(rc));
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write() per line with O_APPEND: concurrent calls never interleave. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, n) < 0)
		be->host->log(be->host->hctx, CI_LOG_WARN, "fake.call_log path=%s err=%s", path,
			      strerror(errno));
	close(fd);
}
