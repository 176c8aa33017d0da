/*
 * The output manifest the in-sandbox runner prints on stderr after the
 * program (inline mode, exec.c): saves the backend a listing round trip.
 *
 *   "\n" NONCE "\n"  then records  TYPE " " SIZE " " MTIME " " MODE " " PATH "\0"
 *   NONCE "-end " FIND_STATUS "\n"   (the very last bytes of stderr)
 *
 * The records are GNU find's "%y %s %T@ %m %P\0". Anything unexpected makes
 * the caller fall back to the backend's own list().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ci/backend_util.h"
#include "exec_priv.h"

/* Last occurrence of needle in hay, or NULL. */
static const char *memrmem(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	if (nlen > hlen)
		return NULL;
	for (size_t i = hlen - nlen + 1; i-- > 0;)
		if (!memcmp(hay + i, needle, nlen))
			return hay + i;
	return NULL;
}

bool ci_exec_manifest_find(const char *tail, size_t len, const char *nonce, size_t *block_start,
			   const char **body, size_t *body_len, bool *complete)
{
	char start[64], end[64];
	size_t sl, el;
	const char *s, *e, *nl;

	sl = (size_t)snprintf(start, sizeof(start), "\n%s\n", nonce);
	el = (size_t)snprintf(end, sizeof(end), "%s-end ", nonce);
	if (!len || tail[len - 1] != '\n')
		return false;
	/* The end marker is the last line: "<nonce>-end <status>\n". */
	nl = memrmem(tail, len - 1, "\n", 1);
	e = memrmem(tail, len, end, el);
	if (!e || (nl && e < nl) || (e != tail && e[-1] != '\0' && e[-1] != '\n'))
		return false;
	s = memrmem(tail, (size_t)(e - tail), start, sl);
	if (!s)
		return false;
	*block_start = (size_t)(s - tail);
	*body = s + sl;
	*body_len = (size_t)(e - (s + sl));
	*complete = e[el] == '0' && e[el + 1] == '\n';
	return true;
}

int ci_exec_manifest_each(const char *body, size_t len, ci_entry_cb cb, void *ctx)
{
	const char *p = body, *stop = body + len;

	while (p < stop) {
		const char *rec_end = memchr(p, '\0', (size_t)(stop - p));
		ci_entry e;

		if (!rec_end || ci_find_record_parse(p, (size_t)(rec_end - p), &e))
			return -1;
		if (cb(ctx, &e))
			break;
		p = rec_end + 1;
	}
	return 0;
}
