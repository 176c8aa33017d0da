/*
 * Request authentication (static API keys; JWTs come later). Accepted forms:
 *   X-API-Key: KEY
 *   Authorization: Bearer KEY
 *   Authorization: Basic base64(KEY) or base64(KEY:anything)  (http://KEY@host/)
 * Keys are compared in constant time. The principal is the key's name.
 */
#ifndef CI_CORE_AUTH_H
#define CI_CORE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct ci_conf;

#define CI_PRINCIPAL_MAX 128

/*
 * Check the credentials of one request (header values may be NULL).
 * Returns 0 and fills principal, or -1 with a reason in why (safe to show
 * the client: never echoes the credential).
 */
int ci_auth_check(const struct ci_conf *conf, const char *x_api_key, const char *authorization,
		  char principal[CI_PRINCIPAL_MAX], char *why, size_t whylen);

/* Constant-time equality of two byte strings, whatever their lengths. */
bool ci_secret_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Decode standard base64 (padding optional). Returns length or -1. */
long ci_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap);

#endif /* CI_CORE_AUTH_H */
