/*
 * Request authentication. Accepted forms (auth.accept combines them):
 *   X-API-Key: KEY
 *   Authorization: Bearer KEY
 *   Authorization: Basic base64(KEY) or base64(KEY:anything)  (http://KEY@host/)
 *   Authorization: Bearer <JWT minted by LibreChat>           (EdDSA / RS256 ...)
 * Keys are compared in constant time. The principal is the key's name, or
 * "jwt:<tenant>:<sub>" for a verified token.
 */
#ifndef CI_CORE_AUTH_H
#define CI_CORE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct ci_auth;
struct ci_conf;

#define CI_PRINCIPAL_MAX 128

/*
 * The verifier for conf (borrowed; must outlive it): loads the JWT keys.
 * NULL with err when a key file cannot be used.
 */
struct ci_auth *ci_auth_new(const struct ci_conf *conf, char *err, size_t errlen);
void ci_auth_free(struct ci_auth *a);

/*
 * Check the credentials of one request (header values may be NULL).
 * Returns 0 and fills principal, or -1 with a reason in why (safe to show
 * the client: never echoes the credential). Thread-safe.
 */
int ci_auth_check(const struct ci_auth *a, const char *x_api_key, const char *authorization,
		  char principal[CI_PRINCIPAL_MAX], char *why, size_t whylen);

/* Constant-time equality of two byte strings, whatever their lengths. */
bool ci_secret_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Decode standard base64 (padding optional). Returns length or -1. */
long ci_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap);

#endif /* CI_CORE_AUTH_H */
