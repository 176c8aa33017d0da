#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "jwt.h"
#include "log.h"

struct ci_auth {
	const struct ci_conf *conf;
	struct ci_jwt_keys *jwt; /* NULL unless librechat_jwt is accepted */
	struct ci_jwt_policy policy;
};

struct ci_auth *ci_auth_new(const struct ci_conf *conf, char *err, size_t errlen)
{
	struct ci_auth *a = calloc(1, sizeof(*a));
	char why[256], desc[256];

	if (!a)
		return NULL;
	a->conf = conf;
	if (conf->auth_mode == CI_AUTH_NONE || !(conf->auth_accept & CI_ACCEPT_JWT))
		return a;
	a->jwt = ci_jwt_keys_new(CI_JWT_CACHE_DEFAULT);
	if (!a->jwt)
		goto fail_oom;
	for (int i = 0; i < conf->n_jwt_keys; i++) {
		const struct ci_jwt_key_conf *k = &conf->jwt_keys[i];

		if (ci_jwt_keys_add_pem(a->jwt, k->kid, k->file, k->algs, why, sizeof(why))) {
			snprintf(err, errlen, "JWT key %s (kid %s): %s", k->file, k->kid, why);
			goto fail;
		}
	}
	if (conf->jwt_jwks_file &&
	    ci_jwt_keys_add_jwks(a->jwt, conf->jwt_jwks_file, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "JWKS %s: %s", conf->jwt_jwks_file, why);
		goto fail;
	}
	ci_jwt_policy_init(&a->policy);
	a->policy.issuer = conf->jwt_issuer;
	a->policy.audience = conf->jwt_audience;
	a->policy.clock_skew_s = conf->jwt_clock_skew_s;
	a->policy.max_lifetime_s = conf->jwt_max_lifetime_s;
	for (int i = 0; i < ci_jwt_keys_count(a->jwt); i++) {
		ci_jwt_keys_describe(a->jwt, i, desc, sizeof(desc));
		ci_log(CI_LL_INFO, "auth.jwt_key", "key=\"%s\"", desc);
	}
	return a;
fail_oom:
	snprintf(err, errlen, "out of memory");
fail:
	ci_auth_free(a);
	return NULL;
}

void ci_auth_free(struct ci_auth *a)
{
	if (!a)
		return;
	ci_jwt_keys_free(a->jwt);
	free(a);
}

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

/* Verify a Bearer JWT; the principal on success. */
static int match_jwt(const struct ci_auth *a, const char *token, char *principal, char *why,
		     size_t whylen)
{
	struct ci_jwt_claims claims;
	char reason[160];

	if (ci_jwt_verify(a->jwt, &a->policy, token, strlen(token), (int64_t)time(NULL), &claims,
			  reason, sizeof(reason))) {
		snprintf(why, whylen, "invalid token: %s", reason);
		return -1;
	}
	if (ci_jwt_principal(&claims, principal, CI_PRINCIPAL_MAX)) {
		snprintf(why, whylen, "invalid token: subject too long");
		return -1;
	}
	return 0;
}

static const char *match_authorization(const struct ci_auth *a, const char *h, char *principal,
				       char *why, size_t whylen)
{
	const struct ci_conf *conf = a->conf;
	unsigned char buf[512];
	const unsigned char *colon;
	const char *name;
	long n;

	while (*h == ' ')
		h++;
	if (!strncasecmp(h, "Bearer ", 7)) {
		h += 7;
		while (*h == ' ')
			h++;
		name = (conf->auth_accept & CI_ACCEPT_API_KEY) ? match_key(conf, h, strlen(h))
							       : NULL;
		/* Not a key: anything dotted is taken for a token, so its flaw is named. */
		if (name || !a->jwt || !strchr(h, '.'))
			return name;
		return match_jwt(a, h, principal, why, whylen) ? NULL : principal;
	}
	if (!(conf->auth_accept & CI_ACCEPT_API_KEY))
		return NULL;
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

int ci_auth_check(const struct ci_auth *a, const char *x_api_key, const char *authorization,
		  char principal[CI_PRINCIPAL_MAX], char *why, size_t whylen)
{
	const struct ci_conf *conf = a->conf;
	const char *name = NULL;

	why[0] = 0;
	if (conf->auth_mode == CI_AUTH_NONE) {
		snprintf(principal, CI_PRINCIPAL_MAX, "anonymous");
		return 0;
	}
	if (x_api_key && *x_api_key && (conf->auth_accept & CI_ACCEPT_API_KEY))
		name = match_key(conf, x_api_key, strlen(x_api_key));
	if (!name && authorization && *authorization)
		name = match_authorization(a, authorization, principal, why, whylen);
	if (name) {
		if (name != principal)
			snprintf(principal, CI_PRINCIPAL_MAX, "%s", name);
		return 0;
	}
	if (!why[0])
		snprintf(why, whylen,
			 (x_api_key || authorization) ? "invalid API key" : "missing credentials");
	return -1;
}
