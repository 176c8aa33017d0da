/*
 * Helpers for the JWT tests: the material directory made by
 * make_material.sh (keys, JWKS, LibreChat-minted tokens, the "now" they were
 * minted at), and tokens built here, signed with libcrypto, for the cases
 * no honest issuer produces.
 */
#ifndef CI_TESTS_JWT_TEST_H
#define CI_TESTS_JWT_TEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

#define TJ_KID_ED  "lc-codeapi-2026-05" /* LibreChat's default kid */
#define TJ_KID_RSA "lc-rsa-1"
#define TJ_KID_EC  "lc-ec-1"

extern int64_t tj_now; /* when the material's tokens were minted */

/* Read the material directory from argv[1]; exits on failure. */
void tj_init(int argc, char **argv);

/* Full path of a material file (static buffer, overwritten by the next call). */
const char *tj_path(const char *name);
/* A material file's bytes, trailing newline removed; malloc'd. */
char *tj_read(const char *name, size_t *len);
/* Write bytes to a material file (for variants of keys and JWKS). */
void tj_write(const char *name, const char *data);

char *tj_b64url(const void *data, size_t len);

enum tj_sign {
	TJ_SIGN_ED25519, /* key: a private PEM file */
	TJ_SIGN_RS256,
	TJ_SIGN_RS384,
	TJ_SIGN_RS512,
	TJ_SIGN_ES256,
	TJ_SIGN_HS256, /* key: any file, its bytes are the HMAC secret */
	TJ_SIGN_JUNK,  /* 64 random-looking bytes */
};

/* header.payload.signature from raw JSON texts; malloc'd. */
char *tj_mint_raw(enum tj_sign how, const char *key, const char *header, const char *payload);
/* seg0.seg1.signature, the segments taken as they are (to sign malformed base64url). */
char *tj_mint_segments(enum tj_sign how, const char *key, const char *seg0, const char *seg1);
/* Same with header {alg, typ: JWT, kid} (kid NULL = none) and claims (stolen). */
char *tj_mint(enum tj_sign how, const char *key, const char *alg, const char *kid, json_t *claims);
/* LibreChat-like claims at now: iss, aud, sub "u1", iat, nbf, exp now+300, jti, tenant_id. */
json_t *tj_claims(int64_t now);

/* Keys from the PEM files: ed (all algs), rsa (all), ec (all). */
struct ci_jwt_keys *tj_pem_keys(size_t cache_entries);

/*
 * Assert ci_jwt_verify gives code (and, on failure, a why containing
 * want_why and no 12-byte run of the token). Returns the claims.
 */
struct ci_jwt_claims tj_expect_at(const struct ci_jwt_keys *keys, const struct ci_jwt_policy *pol,
				  const char *token, int64_t now, int code, const char *want_why,
				  const char *file, int line);
#define tj_expect(keys, pol, token, now, code, want_why) \
	tj_expect_at(keys, pol, token, now, code, want_why, __FILE__, __LINE__)

#endif /* CI_TESTS_JWT_TEST_H */
