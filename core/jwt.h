/*
 * Verification of LibreChat-minted JWTs (librechat-api.md §3,
 * packages/api/src/auth/codeapi.ts): compact JWS signed with EdDSA
 * (Ed25519) by default, or RS256; RS384/RS512 and ES256 are accepted too
 * when a key allows them. Signatures are checked by libcrypto (EVP) against
 * public keys configured by kid, from PEM files or a JWKS file.
 *
 * Refused always: alg "none", every HMAC alg (HS256 keyed with the public
 * key is the classic confusion), an alg the key's allow-list or type does not
 * permit, unknown kids, a "crit" header, duplicate JSON members, padded or
 * non-canonical base64url, tokens over CI_JWT_TOKEN_MAX bytes. Keys embedded
 * in the token (jwk, jku, x5c, x5u) are never looked at.
 *
 * Claims: exp is required; nbf and iat, when present, must not be in the
 * future beyond the clock skew; the lifetime exp - iat (or exp - nbf, or
 * exp - now when neither is present) must not exceed max_lifetime_s; iss and
 * aud (a string or an array of strings) must match the policy when it sets
 * them; sub is required, 1..CI_JWT_SUB_MAX bytes without control characters.
 * NumericDates must be JSON integers (codeapi.ts mints integers).
 *
 * Cache: a key set owns a small cache of verified tokens, keyed by SHA-256
 * over the policy and the token bytes. A hit skips parsing and signature
 * checking but re-checks exp/nbf/iat against the now passed in, so a cached
 * token stops being accepted exactly when a fresh verification would stop
 * accepting it. Entries are kept until min(exp, verification time +
 * CI_JWT_CACHE_HOLD_S), in a bounded 4-way set-associative table whose
 * victims are the entries that expire first. Only successes are cached.
 *
 * Threading: building a key set (ci_jwt_keys_new/add_*) is single-threaded;
 * afterwards ci_jwt_verify and the other const functions may run on any
 * number of threads at once (the cache has its own lock).
 *
 * Error text: every function taking char *why writes one line, safe to
 * return to a client and log. It never contains any part of the token
 * (not even its kid or alg); key-loading errors name the file.
 */
#ifndef CI_CORE_JWT_H
#define CI_CORE_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CI_JWT_TOKEN_MAX	8192 /* whole compact token, bytes */
#define CI_JWT_KID_MAX		128  /* bytes, NUL excluded (also for out buffers below) */
#define CI_JWT_SUB_MAX		256
#define CI_JWT_TENANT_MAX	128
#define CI_JWT_JTI_MAX		128
#define CI_JWT_ISS_MAX		256
#define CI_JWT_MAX_KEYS		64   /* per key set */
#define CI_JWT_CACHE_DEFAULT	1024 /* entries */
#define CI_JWT_CACHE_HOLD_S	60   /* a verified token is trusted from cache this long */
#define CI_JWT_SKEW_DEFAULT	60
#define CI_JWT_SKEW_MAX		3600
#define CI_JWT_LIFETIME_DEFAULT 3600
#define CI_JWT_LIFETIME_MAX	(30 * 86400)
#define CI_JWT_PRINCIPAL_MIN	76 /* smallest out buffer ci_jwt_principal accepts */

/* JWS algorithms, as bits of an allow-list. */
enum ci_jwt_alg {
	CI_JWT_EDDSA = 1u << 0, /* Ed25519 keys */
	CI_JWT_RS256 = 1u << 1, /* RSA keys (>= 2048 bits), PKCS#1 v1.5 */
	CI_JWT_RS384 = 1u << 2,
	CI_JWT_RS512 = 1u << 3,
	CI_JWT_ES256 = 1u << 4, /* EC P-256 keys */
};
#define CI_JWT_ALGS_ALL 0u /* allow-list argument: every alg the key type supports */

/* ci_jwt_verify results; positive, 0 is success. Append only. */
enum ci_jwt_err {
	CI_JWT_OK = 0,
	CI_JWT_E_MALFORMED, /* not a well-formed compact JWS, or bad header/claims JSON */
	CI_JWT_E_ALG,	    /* none, HMAC, unknown, or not allowed for the key */
	CI_JWT_E_KID,	    /* no configured key matches */
	CI_JWT_E_SIGNATURE, /* signature does not verify */
	CI_JWT_E_EXPIRED,   /* now >= exp + skew */
	CI_JWT_E_NOT_YET,   /* nbf or iat later than now + skew */
	CI_JWT_E_LIFETIME,  /* exp - iat beyond max_lifetime_s */
	CI_JWT_E_ISSUER,    /* iss missing or different */
	CI_JWT_E_AUDIENCE,  /* aud missing or without the expected value */
	CI_JWT_E_CLAIMS,    /* sub missing/invalid, bad tenant_id/jti/iss types or sizes */
	CI_JWT_E_POLICY,    /* the policy itself is out of range (caller bug) */
	CI_JWT_E_INTERNAL,  /* out of memory, libcrypto failure */
};

/* What a policy demands; strings are borrowed for the call. */
struct ci_jwt_policy {
	const char *issuer;   /* iss must equal this; NULL or "" = not checked */
	const char *audience; /* aud must be or contain this; NULL or "" = not checked */
	int clock_skew_s;     /* 0..CI_JWT_SKEW_MAX */
	int max_lifetime_s;   /* 1..CI_JWT_LIFETIME_MAX */
};

/* What a verified token says. Strings are NUL-terminated copies. */
struct ci_jwt_claims {
	char sub[CI_JWT_SUB_MAX + 1];
	char tenant_id[CI_JWT_TENANT_MAX + 1]; /* "" when absent */
	char jti[CI_JWT_JTI_MAX + 1];	       /* "" when absent */
	char iss[CI_JWT_ISS_MAX + 1];	       /* "" when absent */
	char kid[CI_JWT_KID_MAX + 1];	       /* kid of the key that verified, "" if it has none */
	unsigned alg;			       /* one enum ci_jwt_alg bit */
	int64_t exp;
	int64_t nbf; /* -1 when absent */
	int64_t iat; /* -1 when absent */
};

struct ci_jwt_keys; /* opaque key set + its cache */

struct ci_jwt_cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions; /* occupied slots taken over by another token */
	size_t entries;	    /* slots in use (some may be past their hold time) */
	size_t capacity;
};

/* LibreChat's defaults: issuer "librechat", audience "codeapi", skew 60, lifetime 3600. */
void ci_jwt_policy_init(struct ci_jwt_policy *pol);

/* "EdDSA", "RS256", "RS384", "RS512", "ES256" -> its bit; 0 for anything else ("none", "HS256"). */
unsigned ci_jwt_alg_parse(const char *name);
/* The JOSE name of one alg bit, or "?" */
const char *ci_jwt_alg_name(unsigned alg);

/*
 * An empty key set whose cache holds up to cache_entries verified tokens
 * (rounded up to a multiple of 4; 0 disables the cache). NULL when out of
 * memory. Free with ci_jwt_keys_free (NULL is fine).
 */
struct ci_jwt_keys *ci_jwt_keys_new(size_t cache_entries);
void ci_jwt_keys_free(struct ci_jwt_keys *keys);

/*
 * Add the public key in the PEM file at path ("BEGIN PUBLIC KEY", or
 * "BEGIN RSA PUBLIC KEY"), matched by kid (NULL or "" = a key without kid,
 * usable only by kid-less tokens while it is the only key). The type gives
 * the algs: Ed25519 -> EdDSA; RSA (>= 2048 bits) -> RS256/384/512; EC P-256
 * -> ES256. algs narrows them (CI_JWT_ALGS_ALL = all of the type's); an alg
 * the type cannot do is an error. Private-key files are refused. Returns 0,
 * or -1 with why (the set is unchanged).
 */
int ci_jwt_keys_add_pem(struct ci_jwt_keys *keys, const char *kid, const char *path, unsigned algs,
			char *why, size_t whylen);

/*
 * Add every usable key of the JWKS (RFC 7517) file at path: kty OKP with
 * crv Ed25519 and x; kty RSA with n and e; kty EC with crv P-256, x and y.
 * "alg", when present, becomes the key's only alg; "use" other than "sig" or
 * a "key_ops" without "verify" skips the key, as do other key types (oct,
 * X25519, Ed448, ...). A key with private members (d, p, ...) or broken
 * fields fails the whole file. Returns the number of keys added (>= 1), or
 * -1 with why and nothing added (also when no key was usable).
 */
int ci_jwt_keys_add_jwks(struct ci_jwt_keys *keys, const char *path, char *why, size_t whylen);

int ci_jwt_keys_count(const struct ci_jwt_keys *keys);

/* One line about key i for the startup log: kid, type, bits, algs, origin. 0 or -1. */
int ci_jwt_keys_describe(const struct ci_jwt_keys *keys, int i, char *buf, size_t len);

/* Cache counters (all zero when the cache is disabled). */
void ci_jwt_keys_cache_stats(const struct ci_jwt_keys *keys, struct ci_jwt_cache_stats *st);

/*
 * True when token has the shape of a compact JWS (three non-empty
 * base64url segments, <= CI_JWT_TOKEN_MAX bytes), so "Bearer X" can be
 * routed to JWT verification rather than API-key matching. Says nothing
 * about validity.
 */
bool ci_jwt_is_candidate(const char *token, size_t len);

/*
 * Verify token (len bytes, need not be NUL-terminated) at time now_unix
 * (seconds since the epoch) against keys and pol. Returns CI_JWT_OK with
 * *out filled, or an enum ci_jwt_err with a reason in why (out is then
 * zeroed). Uses and feeds the key set's cache (see the top of this file).
 */
int ci_jwt_verify(const struct ci_jwt_keys *keys, const struct ci_jwt_policy *pol,
		  const char *token, size_t len, int64_t now_unix, struct ci_jwt_claims *out,
		  char *why, size_t whylen);

/*
 * The principal of verified claims: "jwt:<tenant>:<sub>", tenant being
 * tenant_id or "default" when absent, with '%' and ':' in the tenant
 * written as %25 and %3A so distinct (tenant, sub) pairs never collide.
 * When that does not fit in outlen, "jwt-sha256:<64 hex>" (SHA-256 of
 * tenant NUL sub) instead. Returns 0, or -1 if outlen < CI_JWT_PRINCIPAL_MIN.
 */
int ci_jwt_principal(const struct ci_jwt_claims *claims, char *out, size_t outlen);

#endif /* CI_CORE_JWT_H */
