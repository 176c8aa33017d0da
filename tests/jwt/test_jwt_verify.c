/*
 * ci_jwt_verify against tokens minted like LibreChat's codeapi.ts (by
 * mint.mjs, with node:crypto and with jose) and against tokens built here
 * for every way a token must be refused. The key sets here have no cache,
 * so every call takes the full path; test_jwt_cache.c covers the cache.
 */
/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <stdlib.h>
#include <string.h>

#include "jwt_test.h"

#define SUB "665f1c0a9b1e8a0012345678" /* mint.mjs default user id */

static struct ci_jwt_keys *keys;
static struct ci_jwt_policy pol;

static int setup(void **state)
{
	(void)state;
	keys = tj_pem_keys(0);
	ci_jwt_policy_init(&pol);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ci_jwt_keys_free(keys);
	return 0;
}

/* A token minted by mint.mjs, with the claims LibreChat puts in. */
static void check_librechat(const struct ci_jwt_keys *k, const char *file, unsigned alg,
			    const char *kid)
{
	char *tok = tj_read(file, NULL), principal[128];
	struct ci_jwt_claims c = tj_expect(k, &pol, tok, tj_now, CI_JWT_OK, NULL);

	assert_string_equal(c.sub, SUB);
	assert_string_equal(c.tenant_id, "legacy");
	assert_string_equal(c.iss, "librechat");
	assert_string_equal(c.kid, kid);
	assert_int_equal(c.alg, alg);
	assert_int_equal(strlen(c.jti), 36); /* randomUUID() */
	assert_int_equal(c.iat, tj_now);
	assert_int_equal(c.nbf, tj_now);
	assert_int_equal(c.exp, tj_now + 300);
	assert_int_equal(ci_jwt_principal(&c, principal, sizeof(principal)), 0);
	assert_string_equal(principal, "jwt:legacy:" SUB);
	free(tok);
}

static void test_valid_librechat_eddsa(void **state)
{
	(void)state;
	check_librechat(keys, "librechat-eddsa.tok", CI_JWT_EDDSA, TJ_KID_ED);
}

static void test_valid_jose_eddsa(void **state)
{
	(void)state;
	check_librechat(keys, "jose-eddsa.tok", CI_JWT_EDDSA, TJ_KID_ED);
}

static void test_valid_librechat_rs256(void **state)
{
	(void)state;
	check_librechat(keys, "librechat-rs256.tok", CI_JWT_RS256, TJ_KID_RSA);
}

static void test_valid_jose_rs256(void **state)
{
	(void)state;
	check_librechat(keys, "jose-rs256.tok", CI_JWT_RS256, TJ_KID_RSA);
}

static void test_valid_via_jwks(void **state)
{
	struct ci_jwt_keys *jk = ci_jwt_keys_new(0);
	char why[256];

	(void)state;
	assert_int_equal(ci_jwt_keys_add_jwks(jk, tj_path("jwks.json"), why, sizeof(why)), 3);
	check_librechat(jk, "librechat-eddsa.tok", CI_JWT_EDDSA, TJ_KID_ED);
	check_librechat(jk, "jose-eddsa.tok", CI_JWT_EDDSA, TJ_KID_ED);
	check_librechat(jk, "librechat-rs256.tok", CI_JWT_RS256, TJ_KID_RSA);
	check_librechat(jk, "jose-rs256.tok", CI_JWT_RS256, TJ_KID_RSA);
	ci_jwt_keys_free(jk);
}

static void test_valid_es256(void **state)
{
	char *tok = tj_mint(TJ_SIGN_ES256, "ec.key", "ES256", TJ_KID_EC, tj_claims(tj_now));
	struct ci_jwt_claims c;

	(void)state;
	c = tj_expect(keys, &pol, tok, tj_now, CI_JWT_OK, NULL);
	assert_int_equal(c.alg, CI_JWT_ES256);
	/* Flip the last byte of s. */
	tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
	tj_expect(keys, &pol, tok, tj_now, CI_JWT_E_SIGNATURE, "signature");
	free(tok);
}

static void test_tenant_and_principal(void **state)
{
	char *tok = tj_read("tenant.tok", NULL), principal[128];
	struct ci_jwt_claims c;

	(void)state;
	c = tj_expect(keys, &pol, tok, tj_now, CI_JWT_OK, NULL);
	assert_string_equal(c.tenant_id, "acme:eu");
	assert_int_equal(ci_jwt_principal(&c, principal, sizeof(principal)), 0);
	assert_string_equal(principal, "jwt:acme%3Aeu:user:42");
	free(tok);
}

static void test_expired(void **state)
{
	char *tok = tj_read("librechat-eddsa.tok", NULL);
	struct ci_jwt_policy strict = pol;

	(void)state;
	/* exp = now + 300, default skew 60. */
	tj_expect(keys, &pol, tok, tj_now + 359, CI_JWT_OK, NULL);
	tj_expect(keys, &pol, tok, tj_now + 360, CI_JWT_E_EXPIRED, "expired");
	tj_expect(keys, &pol, tok, tj_now + 86400, CI_JWT_E_EXPIRED, "expired");
	strict.clock_skew_s = 0;
	tj_expect(keys, &strict, tok, tj_now + 299, CI_JWT_OK, NULL);
	tj_expect(keys, &strict, tok, tj_now + 300, CI_JWT_E_EXPIRED, "expired");
	free(tok);
}

static void test_not_yet_valid(void **state)
{
	char *tok = tj_read("librechat-rs256.tok", NULL);
	json_t *c = tj_claims(tj_now);
	char *t2;

	(void)state;
	tj_expect(keys, &pol, tok, tj_now - 60, CI_JWT_OK, NULL);
	tj_expect(keys, &pol, tok, tj_now - 61, CI_JWT_E_NOT_YET, "nbf");
	/* nbf alone in the future, iat now. */
	json_object_set_new(c, "nbf", json_integer(tj_now + 120));
	t2 = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
	tj_expect(keys, &pol, t2, tj_now, CI_JWT_E_NOT_YET, "nbf");
	tj_expect(keys, &pol, t2, tj_now + 60, CI_JWT_OK, NULL);
	free(t2);
	free(tok);
}

static void test_iat_in_future(void **state)
{
	json_t *c = tj_claims(tj_now);
	char *tok;

	(void)state;
	json_object_del(c, "nbf");
	json_object_set_new(c, "iat", json_integer(tj_now + 120));
	tok = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
	tj_expect(keys, &pol, tok, tj_now, CI_JWT_E_NOT_YET, "iat");
	tj_expect(keys, &pol, tok, tj_now + 61, CI_JWT_OK, NULL);
	free(tok);
}

static char *with_times(int64_t iat, int64_t nbf, int64_t exp)
{
	json_t *c = tj_claims(tj_now);

	if (iat < 0)
		json_object_del(c, "iat");
	else
		json_object_set_new(c, "iat", json_integer(iat));
	if (nbf < 0)
		json_object_del(c, "nbf");
	else
		json_object_set_new(c, "nbf", json_integer(nbf));
	json_object_set_new(c, "exp", json_integer(exp));
	return tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
}

static void test_lifetime(void **state)
{
	struct ci_jwt_policy lc = pol;
	char *t;

	(void)state;
	t = with_times(tj_now, tj_now, tj_now + 3600);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_OK, NULL);
	free(t);
	t = with_times(tj_now, tj_now, tj_now + 3601);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_LIFETIME, "lifetime exceeds 3600 s");
	free(t);
	/* No iat: counted from nbf; neither: from now. */
	t = with_times(-1, tj_now, tj_now + 3601);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_LIFETIME, "lifetime");
	free(t);
	t = with_times(-1, -1, tj_now + 4000);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_LIFETIME, "lifetime");
	tj_expect(keys, &pol, t, tj_now + 500, CI_JWT_OK, NULL);
	free(t);
	t = with_times(tj_now, -1, tj_now);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "exp is not after iat");
	free(t);
	/* LibreChat's own cap is 300 s: its tokens pass a 300 s policy, not 299. */
	t = tj_read("librechat-eddsa.tok", NULL);
	lc.max_lifetime_s = 300;
	tj_expect(keys, &lc, t, tj_now, CI_JWT_OK, NULL);
	lc.max_lifetime_s = 299;
	tj_expect(keys, &lc, t, tj_now, CI_JWT_E_LIFETIME, "299");
	free(t);
}

static void test_audience(void **state)
{
	char *wrong = tj_read("wrong-aud.tok", NULL), *arr = tj_read("aud-array.tok", NULL), *t;
	struct ci_jwt_policy any = pol;
	json_t *c;

	(void)state;
	tj_expect(keys, &pol, wrong, tj_now, CI_JWT_E_AUDIENCE, "audience");
	tj_expect(keys, &pol, arr, tj_now, CI_JWT_OK, NULL);
	any.audience = NULL;
	tj_expect(keys, &any, wrong, tj_now, CI_JWT_OK, NULL);
	any.audience = "other";
	tj_expect(keys, &any, arr, tj_now, CI_JWT_OK, NULL);
	any.audience = "third";
	tj_expect(keys, &any, arr, tj_now, CI_JWT_E_AUDIENCE, "audience");
	c = tj_claims(tj_now);
	json_object_del(c, "aud");
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_AUDIENCE, "no aud");
	free(t);
	c = tj_claims(tj_now);
	json_object_set_new(c, "aud", json_pack("[i, s]", 7, "codeapi-x"));
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_AUDIENCE, "audience");
	free(t);
	free(wrong);
	free(arr);
}

static void test_issuer(void **state)
{
	char *wrong = tj_read("wrong-iss.tok", NULL), *t;
	struct ci_jwt_policy any = pol;
	json_t *c;

	(void)state;
	tj_expect(keys, &pol, wrong, tj_now, CI_JWT_E_ISSUER, "issuer");
	any.issuer = "";
	tj_expect(keys, &any, wrong, tj_now, CI_JWT_OK, NULL);
	c = tj_claims(tj_now);
	json_object_del(c, "iss");
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_ISSUER, "no iss");
	free(t);
	c = tj_claims(tj_now);
	json_object_set_new(c, "iss", json_integer(1));
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "iss");
	free(t);
	free(wrong);
}

static void test_kid(void **state)
{
	struct ci_jwt_keys *one = ci_jwt_keys_new(0);
	char why[256], *t;

	(void)state;
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", "nope", tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_KID, "matches no configured key");
	free(t);
	/* Right kid, but signed by a key that is not configured. */
	t = tj_mint(TJ_SIGN_ED25519, "ed2.key", "EdDSA", TJ_KID_ED, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_SIGNATURE, "signature");
	free(t);
	/* No kid: ambiguous among three keys, fine with exactly one. */
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", NULL, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_KID, "no kid");
	assert_int_equal(ci_jwt_keys_add_pem(one, TJ_KID_ED, tj_path("ed.pub"), CI_JWT_EDDSA, why,
					     sizeof(why)),
			 0);
	tj_expect(one, &pol, t, tj_now, CI_JWT_OK, NULL);
	free(t);
	/* kid must be a non-empty string. */
	t = tj_mint_raw(TJ_SIGN_ED25519, "ed.key", "{\"alg\":\"EdDSA\",\"kid\":5}",
			"{\"sub\":\"u1\"}");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "kid");
	free(t);
	ci_jwt_keys_free(one);
}

static void test_alg_none(void **state)
{
	static const char *const names[] = {"none", "None", "NONE"};
	char *t, hdr[128];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
			 names[i], TJ_KID_ED);
		t = tj_mint_raw(TJ_SIGN_JUNK, NULL, hdr, "{\"sub\":\"u1\"}");
		tj_expect(keys, &pol, t, tj_now, CI_JWT_E_ALG, "alg none");
		/* The unsecured form proper: empty signature segment. */
		*(strrchr(t, '.') + 1) = 0;
		tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "three base64url segments");
		free(t);
	}
}

static void test_hs256_with_public_key(void **state)
{
	static const char *const pubs[][2] = {
		{"ed.pub", TJ_KID_ED}, {"rsa.pub", TJ_KID_RSA}, {"ec.pub", TJ_KID_EC}};
	char *t;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		t = tj_mint(TJ_SIGN_HS256, pubs[i][0], "HS256", pubs[i][1], tj_claims(tj_now));
		tj_expect(keys, &pol, t, tj_now, CI_JWT_E_ALG, "HMAC");
		free(t);
	}
	t = tj_mint(TJ_SIGN_HS256, "rsa.pub", "HS512", TJ_KID_RSA, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_ALG, "HMAC");
	free(t);
}

static void test_alg_key_mismatch(void **state)
{
	struct ci_jwt_keys *rs256 = ci_jwt_keys_new(0);
	char why[256], *t;

	(void)state;
	/* A valid RS256 signature, but the kid names the Ed25519 key. */
	t = tj_mint(TJ_SIGN_RS256, "rsa.key", "RS256", TJ_KID_ED, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_ALG, "not allowed for its key");
	free(t);
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_RSA, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_ALG, "not allowed for its key");
	free(t);
	t = tj_mint(TJ_SIGN_ES256, "ec.key", "ES256", TJ_KID_RSA, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_ALG, "not allowed for its key");
	free(t);
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "PS256", TJ_KID_ED, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_ALG, "not supported");
	free(t);
	/* The allow-list narrows what the key type could do. */
	t = tj_mint(TJ_SIGN_RS512, "rsa.key", "RS512", TJ_KID_RSA, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_OK, NULL);
	assert_int_equal(ci_jwt_keys_add_pem(rs256, TJ_KID_RSA, tj_path("rsa.pub"), CI_JWT_RS256,
					     why, sizeof(why)),
			 0);
	tj_expect(rs256, &pol, t, tj_now, CI_JWT_E_ALG, "not allowed");
	free(t);
	t = tj_mint(TJ_SIGN_RS384, "rsa.key", "RS384", TJ_KID_RSA, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_OK, NULL);
	tj_expect(rs256, &pol, t, tj_now, CI_JWT_E_ALG, "not allowed");
	free(t);
	/* Header says RS512, signature is RS256: does not verify. */
	t = tj_mint(TJ_SIGN_RS256, "rsa.key", "RS512", TJ_KID_RSA, tj_claims(tj_now));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_SIGNATURE, "signature");
	free(t);
	ci_jwt_keys_free(rs256);
}

/* Replace segment i (0..2) of tok with the base64url of text. */
static char *replace_segment(const char *tok, int i, const char *seg)
{
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	char *out = malloc(strlen(tok) + strlen(seg) + 3);
	int n;

	if (i == 0)
		n = sprintf(out, "%s%s", seg, d1);
	else if (i == 1)
		n = sprintf(out, "%.*s.%s%s", (int)(d1 - tok), tok, seg, d2);
	else
		n = sprintf(out, "%.*s.%s", (int)(d2 - tok), tok, seg);
	assert_true(n > 0);
	return out;
}

static void test_tampered(void **state)
{
	static const char *const files[] = {"librechat-eddsa.tok", "librechat-rs256.tok"};
	static const char *const privs[] = {"ed.key", "rsa.key"};
	static const enum tj_sign how[] = {TJ_SIGN_ED25519, TJ_SIGN_RS256};
	static const char *const evil = "{\"iss\":\"librechat\",\"aud\":\"codeapi\","
					"\"sub\":\"admin\",\"exp\":9999999999}";
	char *enc, *t, *tok, *sig;
	size_t dot, slen;

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		tok = tj_read(files[f], NULL);
		/* Payload rewritten to another user, signature kept. */
		enc = tj_b64url(evil, strlen(evil));
		t = replace_segment(tok, 1, enc);
		tj_expect(keys, &pol, t, tj_now, CI_JWT_E_SIGNATURE, "signature");
		free(t);
		free(enc);
		/* One character of the payload changed. */
		t = strdup(tok);
		dot = (size_t)(strchr(t, '.') - t);
		t[dot + 5] = t[dot + 5] == 'x' ? 'y' : 'x';
		tj_expect(keys, &pol, t, tj_now, CI_JWT_E_SIGNATURE, "signature");
		free(t);
		/* One character of the signature changed (not the last: trailing bits). */
		t = strdup(tok);
		t[strlen(t) - 5] = t[strlen(t) - 5] == 'x' ? 'y' : 'x';
		tj_expect(keys, &pol, t, tj_now, CI_JWT_E_SIGNATURE, "signature");
		free(t);
		/* The signature of another token made with the same key. */
		t = tj_mint(how[f], privs[f], "x", "y", tj_claims(1));
		enc = strdup(strrchr(t, '.') + 1);
		free(t);
		t = replace_segment(tok, 2, enc);
		tj_expect(keys, &pol, t, tj_now, CI_JWT_E_SIGNATURE, "signature");
		free(t);
		free(enc);
		/* Signature cut short by whole base64 quanta, so it still decodes. */
		t = strdup(tok);
		sig = strrchr(t, '.') + 1;
		slen = strlen(sig);
		sig[slen - slen % 4 - 4] = 0;
		tj_expect(keys, &pol, t, tj_now, CI_JWT_E_SIGNATURE, "signature");
		free(t);
		free(tok);
	}
}

static void test_truncated(void **state)
{
	char *tok = tj_read("jose-rs256.tok", NULL), why[256];
	size_t len = strlen(tok);
	struct ci_jwt_claims c;

	(void)state;
	/* Every proper prefix, including the empty one. */
	for (size_t n = 0; n < len; n++)
		assert_int_not_equal(
			ci_jwt_verify(keys, &pol, tok, n, tj_now, &c, why, sizeof(why)), CI_JWT_OK);
	assert_int_equal(ci_jwt_verify(keys, &pol, tok, len, tj_now, &c, why, sizeof(why)),
			 CI_JWT_OK);
	free(tok);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"",
		"abc",
		"a.b",
		"a.b.c.d",
		"..",
		"eyJ..x",
		".eyJ.x",
		"a b.c.d",
		"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0=.AAAA", /* padding */
		"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.AA+A",  /* base64, not base64url */
		"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.AA/A",
		"Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.AAAA",
		"e.eyJzdWIiOiJ1In0.AAAA",	    /* header: 1 char mod 4 */
		"eyJ.eyJzdWIiOiJ1In0.AAAA",	    /* header: non-canonical trailing bits */
		"bm90IGpzb24.eyJzdWIiOiJ1In0.AAAA", /* header "not json" */
		"WzFd.eyJzdWIiOiJ1In0.AAAA",	    /* header [1] */
		"e30.eyJzdWIiOiJ1In0.AAAA",	    /* header {}: no alg */
	};
	const char *nul = "eyJhbGciOiJFZERTQSJ9\0.eyJzdWIiOiJ1In0.AAAA";
	const char *hdr = "{\"alg\":\"EdDSA\",\"kid\":\"" TJ_KID_ED "\"}";
	char why[256], *big, *h, *t;
	struct ci_jwt_claims c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = ci_jwt_verify(keys, &pol, bad[i], strlen(bad[i]), tj_now, &c, why,
				       sizeof(why));

		if (rc != CI_JWT_E_MALFORMED)
			print_error("case %zu: rc %d (%s)\n", i, rc, why);
		assert_int_equal(rc, CI_JWT_E_MALFORMED);
		assert_false(ci_jwt_is_candidate(bad[i], strlen(bad[i])) && i < 12);
	}
	assert_int_equal(ci_jwt_verify(keys, &pol, nul, 41, tj_now, &c, why, sizeof(why)),
			 CI_JWT_E_MALFORMED);
	assert_int_equal(ci_jwt_verify(keys, &pol, NULL, 0, tj_now, &c, why, sizeof(why)),
			 CI_JWT_E_MALFORMED);
	/* Properly signed, but the signed payload segment is not strict base64url. */
	h = tj_b64url(hdr, strlen(hdr));
	t = tj_mint_segments(TJ_SIGN_ED25519, "ed.key", h, "e");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "payload is not valid base64url");
	free(t);
	t = tj_mint_segments(TJ_SIGN_ED25519, "ed.key", h, "eyJ");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "payload is not valid base64url");
	free(t);
	/* A signature segment with non-canonical trailing bits. */
	t = malloc(strlen(h) + 16);
	sprintf(t, "%s.e30.AAB", h);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "signature is not valid base64url");
	free(t);
	free(h);
	/* Huge: well-shaped, over the cap. */
	big = malloc(CI_JWT_TOKEN_MAX + 2);
	memset(big, 'A', CI_JWT_TOKEN_MAX + 1);
	big[10] = big[20] = '.';
	big[CI_JWT_TOKEN_MAX + 1] = 0;
	tj_expect(keys, &pol, big, tj_now, CI_JWT_E_MALFORMED, "too long");
	assert_false(ci_jwt_is_candidate(big, CI_JWT_TOKEN_MAX + 1));
	free(big);
}

static void test_bad_json(void **state)
{
	char *t, pad[1024], hdr[1200];

	(void)state;
	/* Validly signed, but the header has two algs. */
	t = tj_mint_raw(TJ_SIGN_ED25519, "ed.key",
			"{\"alg\":\"EdDSA\",\"alg\":\"HS256\",\"kid\":\"" TJ_KID_ED "\"}",
			"{\"sub\":\"u1\"}");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "header is not a JSON object");
	free(t);
	/* Two subs in the payload. */
	t = tj_mint_raw(TJ_SIGN_ED25519, "ed.key", "{\"alg\":\"EdDSA\",\"kid\":\"" TJ_KID_ED "\"}",
			"{\"sub\":\"u1\",\"sub\":\"admin\",\"exp\":9999999999}");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "payload is not a JSON object");
	free(t);
	t = tj_mint_raw(TJ_SIGN_ED25519, "ed.key", "{\"alg\":\"EdDSA\",\"kid\":\"" TJ_KID_ED "\"}",
			"not json");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "payload");
	free(t);
	t = tj_mint_raw(TJ_SIGN_ED25519, "ed.key",
			"{\"alg\":\"EdDSA\",\"kid\":\"" TJ_KID_ED "\",\"crit\":[\"exp\"]}",
			"{\"sub\":\"u1\"}");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "crit");
	free(t);
	t = tj_mint_raw(TJ_SIGN_ED25519, "ed.key",
			"{\"alg\":\"EdDSA\",\"kid\":\"" TJ_KID_ED "\",\"typ\":\"at+jwt\"}",
			"{\"sub\":\"u1\"}");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "typ");
	free(t);
	/* A header padded past 1 KiB, in an otherwise fine token. */
	memset(pad, ' ', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = 0;
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"EdDSA\",\"kid\":\"" TJ_KID_ED "\"%s}", pad);
	t = tj_mint_raw(TJ_SIGN_ED25519, "ed.key", hdr, "{\"sub\":\"u1\"}");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "header is too large");
	free(t);
	t = tj_mint_raw(TJ_SIGN_ED25519, "ed.key", "{\"alg\":[\"EdDSA\"]}", "{}");
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_MALFORMED, "no alg");
	free(t);
}

static char *mint_with(const char *name, json_t *value)
{
	json_t *c = tj_claims(tj_now);

	if (value)
		json_object_set_new(c, name, value);
	else
		json_object_del(c, name);
	return tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
}

static void test_claim_types(void **state)
{
	char long_sub[CI_JWT_SUB_MAX + 2], principal[128];
	struct ci_jwt_claims c;
	char *t;

	(void)state;
	memset(long_sub, 's', sizeof(long_sub) - 1);
	long_sub[sizeof(long_sub) - 1] = 0;
	t = mint_with("sub", NULL);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "no sub");
	free(t);
	t = mint_with("sub", json_string(""));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "sub");
	free(t);
	t = mint_with("sub", json_integer(42));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "sub");
	free(t);
	t = mint_with("sub", json_string("a\nb"));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "sub");
	free(t);
	t = mint_with("sub", json_string(long_sub)); /* 257 bytes */
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "sub");
	free(t);
	long_sub[CI_JWT_SUB_MAX] = 0; /* 256 bytes: the maximum */
	t = mint_with("sub", json_string(long_sub));
	c = tj_expect(keys, &pol, t, tj_now, CI_JWT_OK, NULL);
	assert_string_equal(c.sub, long_sub);
	/* Too long for "jwt:legacy:<sub>" in 128 bytes: hashed form. */
	assert_int_equal(ci_jwt_principal(&c, principal, sizeof(principal)), 0);
	assert_int_equal(strlen(principal), 11 + 64);
	assert_memory_equal(principal, "jwt-sha256:", 11);
	free(t);
	t = mint_with("exp", NULL);
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "no exp");
	free(t);
	t = mint_with("exp", json_real((double)tj_now + 100.5));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "exp");
	free(t);
	t = mint_with("exp", json_string("tomorrow"));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "exp");
	free(t);
	t = mint_with("exp", json_integer(INT64_MAX));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "exp");
	free(t);
	t = mint_with("nbf", json_integer(-5));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "nbf");
	free(t);
	t = mint_with("tenant_id", json_integer(3));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "tenant_id");
	free(t);
	t = mint_with("jti", json_pack("{}"));
	tj_expect(keys, &pol, t, tj_now, CI_JWT_E_CLAIMS, "jti");
	free(t);
	/* No tenant_id: "" in the claims, "default" in the principal. */
	t = mint_with("tenant_id", NULL);
	c = tj_expect(keys, &pol, t, tj_now, CI_JWT_OK, NULL);
	assert_string_equal(c.tenant_id, "");
	assert_int_equal(ci_jwt_principal(&c, principal, sizeof(principal)), 0);
	assert_string_equal(principal, "jwt:default:u1");
	free(t);
}

static void test_policy_checked(void **state)
{
	char *tok = tj_read("librechat-eddsa.tok", NULL);
	struct ci_jwt_policy p = pol;

	(void)state;
	p.clock_skew_s = -1;
	tj_expect(keys, &p, tok, tj_now, CI_JWT_E_POLICY, "misconfigured");
	p = pol;
	p.max_lifetime_s = 0;
	tj_expect(keys, &p, tok, tj_now, CI_JWT_E_POLICY, "misconfigured");
	tj_expect(keys, &pol, tok, -1, CI_JWT_E_POLICY, "misconfigured");
	tj_expect(NULL, &pol, tok, tj_now, CI_JWT_E_POLICY, "misconfigured");
	free(tok);
}

/* Random single-byte mutations of valid tokens are never accepted, and never crash. */
static void test_mutations(void **state)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \"{";
	static const char *const files[] = {"librechat-eddsa.tok", "jose-rs256.tok"};
	uint32_t rnd = 12345;
	struct ci_jwt_claims c;
	char why[256];

	(void)state;
	for (size_t f = 0; f < 2; f++) {
		char *tok = tj_read(files[f], NULL);
		size_t len = strlen(tok);

		for (int i = 0; i < 600; i++) {
			char *t = strdup(tok);
			size_t pos;
			char ch;

			rnd = rnd * 1103515245u + 12345u;
			pos = (rnd >> 8) % len;
			rnd = rnd * 1103515245u + 12345u;
			ch = alphabet[(rnd >> 8) % (sizeof(alphabet) - 1)];
			if (t[pos] == ch) {
				free(t);
				continue;
			}
			t[pos] = ch;
			assert_int_not_equal(
				ci_jwt_verify(keys, &pol, t, len, tj_now, &c, why, sizeof(why)),
				CI_JWT_OK);
			free(t);
		}
		free(tok);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_librechat_eddsa),
		cmocka_unit_test(test_valid_jose_eddsa),
		cmocka_unit_test(test_valid_librechat_rs256),
		cmocka_unit_test(test_valid_jose_rs256),
		cmocka_unit_test(test_valid_via_jwks),
		cmocka_unit_test(test_valid_es256),
		cmocka_unit_test(test_tenant_and_principal),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_not_yet_valid),
		cmocka_unit_test(test_iat_in_future),
		cmocka_unit_test(test_lifetime),
		cmocka_unit_test(test_audience),
		cmocka_unit_test(test_issuer),
		cmocka_unit_test(test_kid),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_hs256_with_public_key),
		cmocka_unit_test(test_alg_key_mismatch),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_claim_types),
		cmocka_unit_test(test_policy_checked),
		cmocka_unit_test(test_mutations),
	};

	tj_init(argc, argv);
	return cmocka_run_group_tests(tests, setup, teardown);
}
