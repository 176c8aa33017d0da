#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "http.h"
#include "nanoid.h"

const char *ci_api_scope(const struct ci_req *req)
{
	return ci_req_principal(req);
}

const char *ci_api_owner(const struct ci_req *req, const char *user, char *buf, size_t len)
{
	const char *p = ci_req_principal(req);

	if (!user || !ci_resource_id_is_valid(user) || !strncmp(p, "jwt:", 4))
		return p;
	snprintf(buf, len, "%s/%s", p, user);
	return buf;
}

const char *ci_api_read_user(const struct ci_req *req)
{
	const char *kind = ci_req_query(req, "kind"), *id = ci_req_query(req, "id");

	if (kind && *kind && strcmp(kind, "user"))
		return NULL;
	if (kind && id && *id)
		return id;
	return ci_req_header(req, "User-Id");
}

/* Length of the valid UTF-8 sequence at s (0 when invalid). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

json_t *ci_json_text(const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0, o = 0, bad = 0;
	char *clean;
	json_t *j;

	if (!buf)
		return json_string("");
	for (i = 0; i < len;) {
		size_t n = s[i] ? utf8_seq(s + i, len - i) : 0;

		bad += !n;
		i += n ? n : 1;
	}
	if (!bad)
		return json_stringn(buf, len);
	/* Each bad byte (or NUL) becomes U+FFFD (3 bytes). */
	clean = malloc(len + bad * 2 + 1);
	if (!clean)
		return NULL;
	for (i = 0; i < len;) {
		size_t n = s[i] ? utf8_seq(s + i, len - i) : 0;

		if (n) {
			memcpy(clean + o, s + i, n);
			o += n;
			i += n;
		} else {
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	j = json_stringn(clean, o);
	free(clean);
	return j;
}

void ci_iso8601(int64_t ns, char out[32])
{
	time_t secs = (time_t)(ns / 1000000000LL);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)((ns / 1000000LL) % 1000));
}
