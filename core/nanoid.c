#include "nanoid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

/* 64 symbols, so the low 6 bits of a uniform byte pick one without bias. */
static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

static bool is_id_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

void ci_nanoid(char out[CI_NANOID_SIZE])
{
	unsigned char rnd[CI_NANOID_LEN];
	size_t got = 0;

	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ci_log(CI_LL_ERROR, "nanoid.random", "error=\"%s\"", strerror(errno));
			abort();
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < CI_NANOID_LEN; i++)
		out[i] = alphabet[rnd[i] & 63];
	out[CI_NANOID_LEN] = '\0';
}

static size_t id_span(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n] && is_id_char((unsigned char)s[n]))
		n++;
	return n;
}

bool ci_nanoid_is_valid(const char *s)
{
	return s && id_span(s, CI_NANOID_LEN) == CI_NANOID_LEN && s[CI_NANOID_LEN] == '\0';
}

bool ci_resource_id_is_valid(const char *s)
{
	size_t n;

	if (!s)
		return false;
	n = id_span(s, CI_RESOURCE_ID_MAX);
	return n >= 1 && n <= CI_RESOURCE_ID_MAX && s[n] == '\0';
}
