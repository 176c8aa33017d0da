/*
 * Small helpers: a bounded growable buffer, URL escaping, sandbox path
 * normalisation, and the Kubernetes name and label value rules.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "k8s.h"

int k8s_buf_add(struct k8s_buf *b, const void *p, size_t n)
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

int k8s_buf_printf(struct k8s_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256], *big;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return k8s_buf_add(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = k8s_buf_add(b, big, (size_t)n);
	free(big);
	return rc;
}

const char *k8s_buf_str(const struct k8s_buf *b)
{
	return b->data ? b->data : "";
}

void k8s_buf_release(struct k8s_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int k8s_url_escape(struct k8s_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			if (k8s_buf_add(b, s, 1))
				return -1;
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (k8s_buf_add(b, e, 3))
			return -1;
	}
	return 0;
}

int k8s_path_check(const char *path, char *out, size_t cap, ci_call *call)
{
	static const char root[] = K8S_DATA_DIR;
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
	for (const char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20)
			return ci_fail(call, CI_E_INVAL, "path holds a control character");
	return CI_OK;
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool k8s_label_value_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return true;
	if (n > K8S_NAME_MAX || !alnum(s[0]) || !alnum(s[n - 1]))
		return false;
	for (; *s; s++)
		if (!alnum(*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

void k8s_label_value(const char *s, char out[K8S_NAME_MAX + 1])
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	if (k8s_label_value_ok(s)) {
		snprintf(out, K8S_NAME_MAX + 1, "%s", s);
		return;
	}
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	snprintf(out, K8S_NAME_MAX + 1, "h-%016llx", (unsigned long long)h);
}

bool k8s_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > K8S_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return false;
	return true;
}

ssize_t k8s_mem_read(void *ctx, void *buf, size_t cap)
{
	struct k8s_mem *m = ctx;
	size_t n = m->left < cap ? m->left : cap;

	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}
