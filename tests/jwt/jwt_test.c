#define _GNU_SOURCE /* memmem */
#include "jwt_test.h"

/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t tj_now;
static const char *dir;

void tj_init(int argc, char **argv)
{
	char *s;

	if (argc < 2) {
		fprintf(stderr, "usage: %s MATERIAL_DIR (made by make_material.sh)\n", argv[0]);
		exit(2);
	}
	dir = argv[1];
	s = tj_read("now", NULL);
	tj_now = strtoll(s, NULL, 10);
	free(s);
	if (tj_now < 1700000000) {
		fprintf(stderr, "%s: bad material (now)\n", argv[0]);
		exit(2);
	}
}

const char *tj_path(const char *name)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

char *tj_read(const char *name, size_t *len)
{
	FILE *f = fopen(tj_path(name), "rb");
	char *buf = malloc(1 << 20);
	size_t n;

	if (!f || !buf) {
		fprintf(stderr, "cannot read %s\n", tj_path(name));
		exit(2);
	}
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	while (n && buf[n - 1] == '\n')
		n--;
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

void tj_write(const char *name, const char *data)
{
	FILE *f = fopen(tj_path(name), "wb");

	if (!f || fputs(data, f) < 0 || fclose(f)) {
		fprintf(stderr, "cannot write %s\n", tj_path(name));
		exit(2);
	}
}

char *tj_b64url(const void *data, size_t len)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = malloc(len * 4 / 3 + 4), *o = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*o++ = a[p[i] >> 2];
		*o++ = a[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = a[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		*o++ = a[p[i + 2] & 63];
	}
	if (len - i == 1) {
		*o++ = a[p[i] >> 2];
		*o++ = a[(p[i] & 3) << 4];
	} else if (len - i == 2) {
		*o++ = a[p[i] >> 2];
		*o++ = a[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = a[(p[i + 1] & 15) << 2];
	}
	*o = 0;
	return out;
}

static EVP_PKEY *private_key(const char *name)
{
	FILE *f = fopen(tj_path(name), "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	if (!k) {
		fprintf(stderr, "cannot load private key %s\n", name);
		exit(2);
	}
	return k;
}

/* DER ECDSA-Sig-Value -> JOSE r || s (32 bytes each). */
static void der_to_raw(const unsigned char *der, size_t len, unsigned char *raw)
{
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &der, (long)len);

	assert_non_null(es);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
	ECDSA_SIG_free(es);
}

static size_t sign(enum tj_sign how, const char *key, const char *input, unsigned char *sig,
		   size_t cap)
{
	const EVP_MD *md = NULL;
	unsigned char der[128];
	EVP_MD_CTX *ctx;
	EVP_PKEY *pk;
	size_t n = cap;

	switch (how) {
	case TJ_SIGN_HS256: {
		unsigned char secret[16384];
		FILE *f = fopen(tj_path(key), "rb");
		size_t klen;

		assert_non_null(f);
		klen = fread(secret, 1, sizeof(secret), f);
		fclose(f);
		/* The classic confusion: the verifier's public key file, byte for byte, as HMAC
		 * key. */
		assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, klen,
					  (const unsigned char *)input, strlen(input), sig, cap,
					  &n));
		return n;
	}
	case TJ_SIGN_JUNK:
		for (n = 0; n < 64; n++)
			sig[n] = (unsigned char)(n * 37 + 11);
		return n;
	case TJ_SIGN_RS256:
	case TJ_SIGN_ES256:
		md = EVP_sha256();
		break;
	case TJ_SIGN_RS384:
		md = EVP_sha384();
		break;
	case TJ_SIGN_RS512:
		md = EVP_sha512();
		break;
	case TJ_SIGN_ED25519:
		break;
	}
	pk = private_key(key);
	ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, pk), 1);
	if (how == TJ_SIGN_ES256) {
		n = sizeof(der);
		assert_int_equal(
			EVP_DigestSign(ctx, der, &n, (const unsigned char *)input, strlen(input)),
			1);
		der_to_raw(der, n, sig);
		n = 64;
	} else {
		assert_int_equal(
			EVP_DigestSign(ctx, sig, &n, (const unsigned char *)input, strlen(input)),
			1);
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return n;
}

char *tj_mint_segments(enum tj_sign how, const char *key, const char *seg0, const char *seg1)
{
	size_t ilen = strlen(seg0) + 1 + strlen(seg1) + 1;
	char *input = malloc(ilen), *s, *tok;
	unsigned char sig[1024];
	size_t n;

	snprintf(input, ilen, "%s.%s", seg0, seg1);
	n = sign(how, key, input, sig, sizeof(sig));
	s = tj_b64url(sig, n);
	tok = malloc(ilen + strlen(s) + 1);
	sprintf(tok, "%s.%s", input, s);
	free(input);
	free(s);
	return tok;
}

char *tj_mint_raw(enum tj_sign how, const char *key, const char *header, const char *payload)
{
	char *h = tj_b64url(header, strlen(header)), *p = tj_b64url(payload, strlen(payload));
	char *tok = tj_mint_segments(how, key, h, p);

	free(h);
	free(p);
	return tok;
}

char *tj_mint(enum tj_sign how, const char *key, const char *alg, const char *kid, json_t *claims)
{
	json_t *hdr = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
	char *h, *p, *tok;

	if (kid)
		json_object_set_new(hdr, "kid", json_string(kid));
	h = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	p = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
	tok = tj_mint_raw(how, key, h, p);
	free(h);
	free(p);
	json_decref(hdr);
	json_decref(claims);
	return tok;
}

json_t *tj_claims(int64_t now)
{
	static int seq;
	char jti[32];

	snprintf(jti, sizeof(jti), "jti-%d", ++seq);
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "iss", "librechat", "aud",
			 "codeapi", "sub", "u1", "iat", (json_int_t)now, "nbf", (json_int_t)now,
			 "exp", (json_int_t)(now + 300), "jti", jti, "tenant_id", "legacy");
}

struct ci_jwt_keys *tj_pem_keys(size_t cache_entries)
{
	struct ci_jwt_keys *keys = ci_jwt_keys_new(cache_entries);
	char why[256];

	assert_non_null(keys);
	assert_int_equal(ci_jwt_keys_add_pem(keys, TJ_KID_ED, tj_path("ed.pub"), CI_JWT_ALGS_ALL,
					     why, sizeof(why)),
			 0);
	assert_int_equal(ci_jwt_keys_add_pem(keys, TJ_KID_RSA, tj_path("rsa.pub"), CI_JWT_ALGS_ALL,
					     why, sizeof(why)),
			 0);
	assert_int_equal(ci_jwt_keys_add_pem(keys, TJ_KID_EC, tj_path("ec.pub"), CI_JWT_ALGS_ALL,
					     why, sizeof(why)),
			 0);
	return keys;
}

/* A reason must never repeat the credential; 12 bytes would already be a leak. */
static void assert_no_echo(const char *why, const char *token, const char *file, int line)
{
	size_t tl = strlen(token);

	for (size_t i = 0; i + 12 <= tl; i++) {
		if (memmem(why, strlen(why), token + i, 12)) {
			print_error("reason \"%s\" echoes the token\n", why);
			_fail(file, line);
		}
	}
}

struct ci_jwt_claims tj_expect_at(const struct ci_jwt_keys *keys, const struct ci_jwt_policy *pol,
				  const char *token, int64_t now, int code, const char *want_why,
				  const char *file, int line)
{
	struct ci_jwt_claims c;
	char why[256];
	int rc;

	rc = ci_jwt_verify(keys, pol, token, strlen(token), now, &c, why, sizeof(why));
	if (rc != code)
		print_error("verify gave %d (%s), want %d\n", rc, why, code);
	_assert_int_equal((uintmax_t)rc, (uintmax_t)code, file, line);
	if (code) {
		if (want_why && !strstr(why, want_why)) {
			print_error("reason \"%s\" lacks \"%s\"\n", why, want_why);
			_fail(file, line);
		}
		assert_no_echo(why, token, file, line);
		_assert_true(c.sub[0] == 0 && c.exp == 0, "claims zeroed on failure", file, line);
	} else {
		_assert_true(why[0] == 0, "no reason on success", file, line);
	}
	return c;
}
