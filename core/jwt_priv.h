/* Internals shared by jwt.c, jwt_claims.c, jwt_keys.c, jwt_jwks.c and jwt_cache.c. */
#ifndef CI_CORE_JWT_PRIV_H
#define CI_CORE_JWT_PRIV_H

#include <jansson.h>
#include <openssl/evp.h>

#include "jwt.h"

#define CI_JWT_DIGEST_LEN 32 /* SHA-256: cache keys */
/* NumericDates past year 9999 are nonsense; bounding them keeps sums from overflowing. */
#define CI_JWT_DATE_MAX	  253402300799LL

enum ci_jwt_kty { CI_JWT_KTY_ED25519 = 1, CI_JWT_KTY_RSA, CI_JWT_KTY_EC_P256 };

struct ci_jwt_key {
	char kid[CI_JWT_KID_MAX + 1]; /* "" = none */
	EVP_PKEY *pkey;
	enum ci_jwt_kty kty;
	unsigned algs; /* allow-list, a subset of what kty can do */
	int bits;
	const char *origin; /* "pem" or "jwks" */
};

struct ci_jwt_cache;

struct ci_jwt_keys {
	struct ci_jwt_key key[CI_JWT_MAX_KEYS];
	int n;
	struct ci_jwt_cache *cache; /* NULL = disabled; mutable behind a const set */
};

/* Strict base64url (RFC 7515 §2): no padding, canonical trailing bits. Length or -1. */
long ci_jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

/* Parse JSON bytes into an object, refusing duplicate members. NULL if not an object. */
json_t *ci_jwt_json_object(const unsigned char *buf, size_t len);

/* Whole file into a NUL-terminated malloc'd buffer of at most max bytes; NULL with why. */
char *ci_jwt_read_file(const char *path, size_t max, size_t *len, char *why, size_t whylen);

/* Algs a key type can do. */
unsigned ci_jwt_kty_algs(enum ci_jwt_kty kty);

/*
 * Classify pkey and fill k (kid, algs narrowed by want, origin). Takes
 * ownership of pkey only on success. 0 or -1 with why.
 */
int ci_jwt_key_init(struct ci_jwt_key *k, EVP_PKEY *pkey, const char *kid, unsigned want,
		    const char *origin, char *why, size_t whylen);
/* Append keys[0..n) to the set after checking count and kid clashes; all or nothing. */
int ci_jwt_keys_append(struct ci_jwt_keys *set, struct ci_jwt_key *keys, int n, const char *path,
		       char *why, size_t whylen);
void ci_jwt_key_release(struct ci_jwt_key *k);

/* The key for a token's kid (NULL = the header has none), or NULL. */
const struct ci_jwt_key *ci_jwt_keys_find(const struct ci_jwt_keys *set, const char *kid);

/* 1 when sig over msg verifies with k under alg, 0 when not, -1 on libcrypto failure. */
int ci_jwt_key_verify(const struct ci_jwt_key *k, unsigned alg, const unsigned char *msg,
		      size_t msglen, const unsigned char *sig, size_t siglen);

/* Claims of a verified payload into out (times not yet checked). ci_jwt_err. */
int ci_jwt_claims_parse(json_t *payload, const struct ci_jwt_policy *pol, struct ci_jwt_claims *out,
			char *why, size_t whylen);
/* exp/nbf/iat/lifetime against now. ci_jwt_err. */
int ci_jwt_claims_check_times(const struct ci_jwt_claims *c, const struct ci_jwt_policy *pol,
			      int64_t now, char *why, size_t whylen);

struct ci_jwt_cache *ci_jwt_cache_new(size_t entries);
void ci_jwt_cache_free(struct ci_jwt_cache *c);
/* Copy the claims held for digest into out if held and now < hold time. */
bool ci_jwt_cache_get(struct ci_jwt_cache *c, const unsigned char *digest, int64_t now,
		      struct ci_jwt_claims *out);
void ci_jwt_cache_put(struct ci_jwt_cache *c, const unsigned char *digest, int64_t until,
		      const struct ci_jwt_claims *claims);
void ci_jwt_cache_stats(struct ci_jwt_cache *c, struct ci_jwt_cache_stats *st);

#endif /* CI_CORE_JWT_PRIV_H */
