/*
 * Small helpers of the engine client: a bounded growable buffer, URL
 * escaping, sandbox path normalisation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "engine.h"

int eng_buf_append(struct eng_buf *b, const void *p, size_t n)
{
	size_t cap;
	char *nd;

	if (b->max && b->len + n > b->max)
		return -1;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		nd = realloc(b->data, cap);
		if (!nd)
			return -1;
		b->data = nd;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int eng_buf_printf(struct eng_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	char *big;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return eng_buf_append(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = eng_buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

const char *eng_buf_str(struct eng_buf *b)
{
	return b->data ? b->data : "";
}

void eng_buf_release(struct eng_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int eng_url_escape(struct eng_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
			if (eng_buf_append(b, s, 1))
				return -1;
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (eng_buf_append(b, e, 3))
			return -1;
	}
	return 0;
}

int eng_path_check(const char *path, char *out, size_t cap, ci_call *call)
{
	static const char root[] = ENG_DATA_DIR;
	const char *p = path, *seg;
	size_t n = 0, len;

	if (!path || path[0] != '/')
		return ci_fail(call, CI_E_INVAL, "path must be absolute: '%s'", path ? path : "");
	if (cap < 2)
		return ci_fail(call, CI_E_INVAL, "path buffer too small");
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		seg = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - seg);
		if (len == 1 && seg[0] == '.')
			continue;
		if (len == 2 && seg[0] == '.' && seg[1] == '.')
			return ci_fail(call, CI_E_INVAL, "path may not contain '..': '%s'", path);
		if (n + 1 + len + 1 > cap)
			return ci_fail(call, CI_E_INVAL, "path too long");
		out[n++] = '/';
		memcpy(out + n, seg, len);
		n += len;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	if (strncmp(out, root, sizeof(root) - 1) != 0 ||
	    (out[sizeof(root) - 1] != '\0' && out[sizeof(root) - 1] != '/'))
		return ci_fail(call, CI_E_INVAL, "path outside %s: '%s'", root, path);
	return CI_OK;
}
