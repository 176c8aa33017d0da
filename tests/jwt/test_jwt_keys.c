/* Key sets from PEM and JWKS files, the principal helper, base64url. */
/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_priv.h"
#include "jwt_test.h"

static struct ci_jwt_policy pol;

static void describe(const struct ci_jwt_keys *k, int i, char *buf, size_t len)
{
	assert_int_equal(ci_jwt_keys_describe(k, i, buf, len), 0);
}

static void test_pem_types(void **state)
{
	struct ci_jwt_keys *k = tj_pem_keys(0);
	char why[256], line[256], *t;

	(void)state;
	assert_int_equal(ci_jwt_keys_count(k), 3);
	describe(k, 0, line, sizeof(line));
	assert_non_null(strstr(line, "kid=" TJ_KID_ED " type=Ed25519"));
	assert_non_null(strstr(line, "origin=pem algs=EdDSA"));
	describe(k, 1, line, sizeof(line));
	assert_non_null(strstr(line, "type=RSA bits=2048 origin=pem algs=RS256,RS384,RS512"));
	describe(k, 2, line, sizeof(line));
	assert_non_null(strstr(line, "type=EC P-256 bits=256 origin=pem algs=ES256"));
	assert_int_equal(ci_jwt_keys_describe(k, 3, line, sizeof(line)), -1);
	/* "BEGIN RSA PUBLIC KEY" (PKCS#1) works as well. */
	assert_int_equal(ci_jwt_keys_add_pem(k, "pkcs1", tj_path("rsa.pkcs1.pub"), CI_JWT_RS256,
					     why, sizeof(why)),
			 0);
	t = tj_mint(TJ_SIGN_RS256, "rsa.key", "RS256", "pkcs1", tj_claims(tj_now));
	tj_expect(k, &pol, t, tj_now, CI_JWT_OK, NULL);
	free(t);
	ci_jwt_keys_free(k);
}

static void expect_pem_error(struct ci_jwt_keys *k, const char *kid, const char *file,
			     unsigned algs, const char *want)
{
	int before = ci_jwt_keys_count(k);
	char why[256];

	assert_int_equal(ci_jwt_keys_add_pem(k, kid, tj_path(file), algs, why, sizeof(why)), -1);
	if (!strstr(why, want))
		print_error("%s: reason \"%s\" lacks \"%s\"\n", file, why, want);
	assert_non_null(strstr(why, want));
	assert_non_null(strstr(why, file)); /* the file is named */
	assert_int_equal(ci_jwt_keys_count(k), before);
}

static void test_pem_errors(void **state)
{
	struct ci_jwt_keys *k = ci_jwt_keys_new(16);
	char why[256], kid[16];

	(void)state;
	expect_pem_error(k, "a", "missing.pub", 0, "No such file");
	expect_pem_error(k, "a", "ed.key", 0, "private key");
	expect_pem_error(k, "a", "rsa.key", 0, "private key");
	tj_write("junk.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
	expect_pem_error(k, "a", "junk.pub", 0, "no PEM public key");
	tj_write("empty.pub", "");
	expect_pem_error(k, "a", "empty.pub", 0, "no PEM public key");
	expect_pem_error(k, "a", "rsa1024.pub", 0, "2048");
	expect_pem_error(k, "a", "x25519.pub", 0, "unsupported key type");
	expect_pem_error(k, "a", "ed.pub", CI_JWT_RS256, "does not fit a Ed25519 key");
	expect_pem_error(k, "a", "rsa.pub", CI_JWT_EDDSA | CI_JWT_RS256, "does not fit a RSA key");
	expect_pem_error(k, "a", "ec.pub", CI_JWT_EDDSA, "does not fit a EC P-256 key");
	expect_pem_error(k, "a\tb", "ed.pub", 0, "kid");
	assert_int_equal(ci_jwt_keys_add_pem(k, "a", tj_path("ed.pub"), 0, why, sizeof(why)), 0);
	expect_pem_error(k, "a", "rsa.pub", 0, "configured twice");
	for (int i = 1; i < CI_JWT_MAX_KEYS; i++) {
		snprintf(kid, sizeof(kid), "k%d", i);
		assert_int_equal(
			ci_jwt_keys_add_pem(k, kid, tj_path("ed.pub"), 0, why, sizeof(why)), 0);
	}
	expect_pem_error(k, "one-more", "ed.pub", 0, "too many");
	ci_jwt_keys_free(k);
}

static void test_jwks(void **state)
{
	struct ci_jwt_keys *k = ci_jwt_keys_new(0);
	char why[256], line[256];

	(void)state;
	assert_int_equal(ci_jwt_keys_add_jwks(k, tj_path("jwks.json"), why, sizeof(why)), 3);
	describe(k, 0, line, sizeof(line));
	assert_non_null(strstr(line, "type=Ed25519"));
	assert_non_null(strstr(line, "origin=jwks algs=EdDSA"));
	describe(k, 1, line, sizeof(line));
	assert_non_null(strstr(line, "kid=lc-rsa-1 type=RSA bits=2048 origin=jwks "
				     "algs=RS256,RS384,RS512"));
	describe(k, 2, line, sizeof(line));
	assert_non_null(strstr(line, "kid=lc-ec-1 type=EC P-256"));
	/* Loading it again clashes on every kid; nothing is added. */
	assert_int_equal(ci_jwt_keys_add_jwks(k, tj_path("jwks.json"), why, sizeof(why)), -1);
	assert_non_null(strstr(why, "configured twice"));
	assert_int_equal(ci_jwt_keys_count(k), 3);
	ci_jwt_keys_free(k);
}

/* The material's JWKS with key i changed by edit (NULL: key removed), loaded fresh. */
static int load_variant(int i, void (*edit)(json_t *key), int *count, char *why, size_t whylen)
{
	char *text = tj_read("jwks.json", NULL), *out;
	json_t *doc = json_loads(text, 0, NULL), *keys = json_object_get(doc, "keys");
	struct ci_jwt_keys *k = ci_jwt_keys_new(0);
	int rc;

	assert_non_null(keys);
	if (edit)
		edit(json_array_get(keys, (size_t)i));
	else
		json_array_remove(keys, (size_t)i);
	out = json_dumps(doc, 0);
	tj_write("variant.json", out);
	rc = ci_jwt_keys_add_jwks(k, tj_path("variant.json"), why, whylen);
	*count = ci_jwt_keys_count(k);
	ci_jwt_keys_free(k);
	json_decref(doc);
	free(out);
	free(text);
	return rc;
}

static void add_d(json_t *key)
{
	json_object_set_new(key, "d", json_string("AAAA"));
}
static void use_enc(json_t *key)
{
	json_object_set_new(key, "use", json_string("enc"));
}
static void ops_encrypt(json_t *key)
{
	json_object_set_new(key, "key_ops", json_pack("[s]", "encrypt"));
}
static void ops_verify(json_t *key)
{
	json_object_set_new(key, "key_ops", json_pack("[s, s]", "sign", "verify"));
}
static void alg_ps256(json_t *key)
{
	json_object_set_new(key, "alg", json_string("PS256"));
}
static void alg_eddsa(json_t *key)
{
	json_object_set_new(key, "alg", json_string("EdDSA"));
}
static void alg_rs384(json_t *key)
{
	json_object_set_new(key, "alg", json_string("RS384"));
}
static void x_junk(json_t *key)
{
	json_object_set_new(key, "x", json_string("!!!!"));
}
static void x_short(json_t *key)
{
	json_object_set_new(key, "x", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
}
static void y_off_curve(json_t *key)
{
	char y[64];

	snprintf(y, sizeof(y), "%s", json_string_value(json_object_get(key, "y")));
	y[10] = y[10] == 'A' ? 'B' : 'A';
	json_object_set_new(key, "y", json_string(y));
}
static void kid_number(json_t *key)
{
	json_object_set_new(key, "kid", json_integer(1));
}
static void no_kty(json_t *key)
{
	json_object_del(key, "kty");
}
static void crv_x25519(json_t *key)
{
	json_object_set_new(key, "crv", json_string("X25519"));
}
static void to_oct(json_t *key)
{
	json_object_clear(key);
	json_object_set_new(key, "kty", json_string("oct"));
	json_object_set_new(key, "k", json_string("c2VjcmV0"));
}

/* n of the 1024-bit key, read back with libcrypto. */
static void n_1024(json_t *key)
{
	FILE *f = fopen(tj_path("rsa1024.pub"), "r");
	EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	BIGNUM *n = NULL;
	unsigned char buf[128];
	char *enc;

	fclose(f);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(BN_bn2bin(n, buf), 128);
	enc = tj_b64url(buf, 128);
	json_object_set_new(key, "n", json_string(enc));
	free(enc);
	BN_free(n);
	EVP_PKEY_free(pk);
}

static void test_jwks_variants(void **state)
{
	static const struct {
		int key;
		void (*edit)(json_t *key);
		int rc;
		const char *why;
	} cases[] = {
		{0, add_d, -1, "private key material"},
		{1, add_d, -1, "private key material"},
		{0, use_enc, 2, NULL},
		{0, ops_encrypt, 2, NULL},
		{0, ops_verify, 3, NULL},
		{1, alg_ps256, 2, NULL},
		{1, alg_rs384, 3, NULL},
		{1, alg_eddsa, -1, "does not fit a RSA key"},
		{0, x_junk, -1, "malformed key parameters"},
		{0, x_short, -1, "malformed key parameters"},
		{2, y_off_curve, -1, "malformed key parameters"},
		{1, n_1024, -1, "2048"},
		{0, kid_number, -1, "must be strings"},
		{2, no_kty, -1, "without kty"},
		{0, crv_x25519, 2, NULL},
		{0, to_oct, 2, NULL},
		{0, NULL, 2, NULL},
	};
	char why[256];
	int count;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = load_variant(cases[i].key, cases[i].edit, &count, why, sizeof(why));

		if (rc != cases[i].rc || (cases[i].why && !strstr(why, cases[i].why)))
			print_error("case %zu: rc %d (%s)\n", i, rc, rc < 0 ? why : "");
		assert_int_equal(rc, cases[i].rc);
		assert_int_equal(count, rc < 0 ? 0 : rc);
		if (rc < 0) {
			assert_non_null(strstr(why, cases[i].why));
			assert_non_null(strstr(why, "variant.json"));
		}
	}
}

static void test_jwks_files(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} cases[] = {
		{"not json", "not a JWKS"},
		{"[]", "not a JWKS"},
		{"{\"keys\": {}}", "not a JWKS"},
		{"{\"keys\": []}", "no usable signature key"},
		{"{\"keys\": [{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", "no usable signature key"},
		{"{\"keys\": [1]}", "without kty"},
		{"{\"keys\": [], \"keys\": []}", "not a JWKS"},
	};
	struct ci_jwt_keys *k = ci_jwt_keys_new(0);
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tj_write("bad.json", cases[i].text);
		assert_int_equal(ci_jwt_keys_add_jwks(k, tj_path("bad.json"), why, sizeof(why)),
				 -1);
		if (!strstr(why, cases[i].why))
			print_error("case %zu: %s\n", i, why);
		assert_non_null(strstr(why, cases[i].why));
	}
	assert_int_equal(ci_jwt_keys_add_jwks(k, tj_path("nope.json"), why, sizeof(why)), -1);
	assert_non_null(strstr(why, "nope.json"));
	assert_int_equal(ci_jwt_keys_count(k), 0);
	ci_jwt_keys_free(k);
}

static void drop_kid(json_t *doc_key)
{
	json_object_del(doc_key, "kid");
}

static void test_kidless_key(void **state)
{
	char *text = tj_read("jwks.json", NULL), *out, why[256], *t;
	json_t *doc = json_loads(text, 0, NULL), *keys = json_object_get(doc, "keys");
	struct ci_jwt_keys *k = ci_jwt_keys_new(0);

	(void)state;
	json_array_remove(keys, 2);
	json_array_remove(keys, 1);
	drop_kid(json_array_get(keys, 0));
	out = json_dumps(doc, 0);
	tj_write("kidless.json", out);
	assert_int_equal(ci_jwt_keys_add_jwks(k, tj_path("kidless.json"), why, sizeof(why)), 1);
	t = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", NULL, tj_claims(tj_now));
	tj_expect(k, &pol, t, tj_now, CI_JWT_OK, NULL);
	free(t);
	/* A kid in the token never matches a key without one. */
	t = tj_read("librechat-eddsa.tok", NULL);
	tj_expect(k, &pol, t, tj_now, CI_JWT_E_KID, "kid");
	free(t);
	ci_jwt_keys_free(k);
	json_decref(doc);
	free(out);
	free(text);
}

static void test_alg_names(void **state)
{
	static const char *const good[] = {"EdDSA", "RS256", "RS384", "RS512", "ES256"};
	static const char *const bad[] = {"none", "HS256", "eddsa", "PS256", "ES384", ""};

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		unsigned a = ci_jwt_alg_parse(good[i]);

		assert_int_not_equal(a, 0);
		assert_string_equal(ci_jwt_alg_name(a), good[i]);
	}
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(ci_jwt_alg_parse(bad[i]), 0);
	assert_int_equal(ci_jwt_alg_parse(NULL), 0);
	assert_string_equal(ci_jwt_alg_name(CI_JWT_EDDSA | CI_JWT_RS256), "?");
}

static void principal(const char *tenant, const char *sub, char *out, size_t len)
{
	struct ci_jwt_claims c;

	memset(&c, 0, sizeof(c));
	snprintf(c.tenant_id, sizeof(c.tenant_id), "%s", tenant);
	snprintf(c.sub, sizeof(c.sub), "%s", sub);
	assert_int_equal(ci_jwt_principal(&c, out, len), 0);
}

static void test_principal(void **state)
{
	char a[128], b[128], small[CI_JWT_PRINCIPAL_MIN], sub[CI_JWT_PRINCIPAL_MIN];
	struct ci_jwt_claims c;

	(void)state;
	principal("legacy", "665f", a, sizeof(a));
	assert_string_equal(a, "jwt:legacy:665f");
	principal("", "665f", a, sizeof(a));
	assert_string_equal(a, "jwt:default:665f");
	/* Separators in the tenant are escaped, so these pairs stay apart. */
	principal("a:b", "c", a, sizeof(a));
	principal("a", "b:c", b, sizeof(b));
	assert_string_equal(a, "jwt:a%3Ab:c");
	assert_string_equal(b, "jwt:a:b:c");
	principal("a%3Ab", "c", b, sizeof(b));
	assert_string_equal(b, "jwt:a%253Ab:c");
	/* Exactly filling the buffer is fine; one more byte switches to the hash. */
	memset(sub, 's', sizeof(sub));
	sub[CI_JWT_PRINCIPAL_MIN - 7] = 0; /* "jwt:t:" + sub + NUL = 76 */
	principal("t", sub, small, sizeof(small));
	assert_int_equal(strlen(small), CI_JWT_PRINCIPAL_MIN - 1);
	assert_memory_equal(small, "jwt:t:sss", 9);
	sub[CI_JWT_PRINCIPAL_MIN - 7] = 's';
	sub[CI_JWT_PRINCIPAL_MIN - 6] = 0;
	principal("t", sub, a, sizeof(small));
	assert_memory_equal(a, "jwt-sha256:", 11);
	assert_int_equal(strlen(a), 75);
	principal("u", sub, b, sizeof(small));
	assert_memory_equal(b, "jwt-sha256:", 11);
	assert_string_not_equal(a, b);
	memset(&c, 0, sizeof(c));
	strcpy(c.sub, "x");
	assert_int_equal(ci_jwt_principal(&c, small, sizeof(small) - 1), -1);
}

static void test_b64url(void **state)
{
	unsigned char out[8];

	(void)state;
	assert_int_equal(ci_jwt_b64url_decode("", 0, out, sizeof(out)), 0);
	assert_int_equal(ci_jwt_b64url_decode("QQ", 2, out, sizeof(out)), 1);
	assert_int_equal(out[0], 'A');
	assert_int_equal(ci_jwt_b64url_decode("-_8", 3, out, sizeof(out)), 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(ci_jwt_b64url_decode("QR", 2, out, sizeof(out)), -1);	 /* trailing bits */
	assert_int_equal(ci_jwt_b64url_decode("QQ==", 4, out, sizeof(out)), -1); /* padding */
	assert_int_equal(ci_jwt_b64url_decode("Q", 1, out, sizeof(out)), -1);
	assert_int_equal(ci_jwt_b64url_decode("+/", 2, out, sizeof(out)), -1);
	assert_int_equal(ci_jwt_b64url_decode("QUFBQUFBQUFB", 12, out, sizeof(out)), -1); /* cap */
	assert_int_equal(ci_jwt_b64url_decode("QUFBQUFBQUE", 11, out, sizeof(out)), 8);
}

static void test_is_candidate(void **state)
{
	char *t = tj_read("librechat-eddsa.tok", NULL);

	(void)state;
	assert_true(ci_jwt_is_candidate(t, strlen(t)));
	assert_false(ci_jwt_is_candidate(t, strlen(t) - strlen(strrchr(t, '.'))));
	assert_false(ci_jwt_is_candidate("sekret-0123456789", 17));
	assert_false(ci_jwt_is_candidate("a.b.c=", 6));
	assert_true(ci_jwt_is_candidate("a.b.c", 5)); /* shape only */
	free(t);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pem_types),  cmocka_unit_test(test_pem_errors),
		cmocka_unit_test(test_jwks),	   cmocka_unit_test(test_jwks_variants),
		cmocka_unit_test(test_jwks_files), cmocka_unit_test(test_kidless_key),
		cmocka_unit_test(test_alg_names),  cmocka_unit_test(test_principal),
		cmocka_unit_test(test_b64url),	   cmocka_unit_test(test_is_candidate),
	};

	tj_init(argc, argv);
	ci_jwt_policy_init(&pol);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
