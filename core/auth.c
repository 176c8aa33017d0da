#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf.h"

bool ci_secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];

	/*
	 * Hash first so the comparison time depends on neither length nor
	 * the position of the first differing byte.
	 */
	SHA256(a, alen, da);
	SHA256(b, blen, db);
	return CRYPTO_memcmp(da, db, sizeof(da)) == 0 && alen == blen;
}

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long ci_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap)
{
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;

	while (inlen && in[inlen - 1] == '=')
		inlen--;
	for (size_t i = 0; i < inlen; i++) {
		int v = b64_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= outcap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return (long)n;
}

/* The key's name when token matches a configured key, else NULL. */
static const char *match_key(const struct ci_conf *conf, const void *token, size_t len)
{
	const char *found = NULL;

	/* Compare against every key so timing does not reveal which matched. */
	for (int i = 0; i < conf->n_keys; i++)
		if (ci_secret_equal(token, len, conf->keys[i].key, strlen(conf->keys[i].key)) &&
		    !found)
			found = conf->keys[i].name;
	return found;
}

static const char *match_authorization(const struct ci_conf *conf, const char *h, char *why,
				       size_t whylen)
{
	unsigned char buf[512];
	const unsigned char *colon;
	long n;

	while (*h == ' ')
		h++;
	if (!strncasecmp(h, "Bearer ", 7)) {
		h += 7;
		while (*h == ' ')
			h++;
		return match_key(conf, h, strlen(h));
	}
	if (!strncasecmp(h, "Basic ", 6)) {
		h += 6;
		while (*h == ' ')
			h++;
		n = ci_base64_decode(h, strlen(h), buf, sizeof(buf));
		if (n < 0) {
			snprintf(why, whylen, "malformed Basic credentials");
			return NULL;
		}
		/* http://KEY@host sends "KEY" (node-fetch) or "KEY:" (axios). */
		colon = memchr(buf, ':', (size_t)n);
		return match_key(conf, buf, colon ? (size_t)(colon - buf) : (size_t)n);
	}
	snprintf(why, whylen, "unsupported Authorization scheme");
	return NULL;
}

int ci_auth_check(const struct ci_conf *conf, const char *x_api_key, const char *authorization,
		  char principal[CI_PRINCIPAL_MAX], char *why, size_t whylen)
{
	const char *name = NULL;

	why[0] = 0;
	if (conf->auth_mode == CI_AUTH_NONE) {
		snprintf(principal, CI_PRINCIPAL_MAX, "anonymous");
		return 0;
	}
	if (x_api_key && *x_api_key)
		name = match_key(conf, x_api_key, strlen(x_api_key));
	if (!name && authorization && *authorization)
		name = match_authorization(conf, authorization, why, whylen);
	if (name) {
		snprintf(principal, CI_PRINCIPAL_MAX, "%s", name);
		return 0;
	}
	if (!why[0])
		snprintf(why, whylen, (x_api_key || authorization) ? "invalid API key"
								   : "missing API key");
	return -1;
}
