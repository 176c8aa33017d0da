/* JWKS files (RFC 7517, key parameters from RFC 7518 §6 and RFC 8037). */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_priv.h"

#define JWKS_FILE_MAX (1024 * 1024)
#define RSA_BYTES_MAX 2048 /* 16384-bit modulus */
#define COORD_LEN     32   /* Ed25519 keys, P-256 coordinates */

/* Members that only private (or symmetric) keys have. */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", NULL};

enum { JWK_ERROR = -1, JWK_SKIP = 0, JWK_OK = 1 };

static int jwk_fail(char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return JWK_ERROR;
}

/* A base64url member of exactly len bytes (len 0: any length up to cap). */
static long member_bytes(json_t *jwk, const char *name, unsigned char *out, size_t cap, size_t len)
{
	const char *s = json_string_value(json_object_get(jwk, name));
	long n;

	if (!s)
		return -1;
	n = ci_jwt_b64url_decode(s, strlen(s), out, cap);
	if (n <= 0 || (len && (size_t)n != len))
		return -1;
	return n;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static EVP_PKEY *rsa_key(json_t *jwk)
{
	unsigned char *nb = malloc(RSA_BYTES_MAX), eb[8];
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;
	long nlen, elen;

	if (!nb)
		return NULL;
	nlen = member_bytes(jwk, "n", nb, RSA_BYTES_MAX, 0);
	elen = member_bytes(jwk, "e", eb, sizeof(eb), 0);
	if (nlen < 0 || elen < 0)
		goto out;
	n = BN_bin2bn(nb, (int)nlen, NULL);
	e = BN_bin2bn(eb, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!n || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		goto out;
	pkey = from_params("RSA", bld);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(nb);
	return pkey;
}

static EVP_PKEY *p256_key(json_t *jwk)
{
	unsigned char pub[1 + 2 * COORD_LEN];
	OSSL_PARAM_BLD *bld;
	EVP_PKEY_CTX *chk;
	EVP_PKEY *pkey = NULL;

	pub[0] = 0x04; /* uncompressed point */
	if (member_bytes(jwk, "x", pub + 1, COORD_LEN, COORD_LEN) < 0 ||
	    member_bytes(jwk, "y", pub + 1 + COORD_LEN, COORD_LEN, COORD_LEN) < 0)
		return NULL;
	bld = OSSL_PARAM_BLD_new();
	if (bld &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
		pkey = from_params("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	if (!pkey)
		return NULL;
	/* fromdata does not promise the point is on the curve; make sure. */
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!chk || EVP_PKEY_public_check(chk) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(chk);
	return pkey;
}

static EVP_PKEY *ed25519_key(json_t *jwk)
{
	unsigned char x[COORD_LEN];

	if (member_bytes(jwk, "x", x, sizeof(x), sizeof(x)) < 0)
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof(x));
}

/* Not meant for verifying signatures, per "use" or "key_ops". */
static bool not_for_verify(json_t *jwk)
{
	json_t *use = json_object_get(jwk, "use"), *ops = json_object_get(jwk, "key_ops"), *v;
	size_t i;

	if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig")))
		return true;
	if (!ops)
		return false;
	json_array_foreach(ops, i, v) if (json_is_string(v) &&
					  !strcmp(json_string_value(v), "verify")) return false;
	return true;
}

/* One JWK into k: JWK_OK, JWK_SKIP (not a key we can use) or JWK_ERROR with why. */
static int jwk_to_key(json_t *jwk, struct ci_jwt_key *k, char *why, size_t whylen)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	json_t *kid = json_object_get(jwk, "kid"), *alg = json_object_get(jwk, "alg");
	EVP_PKEY *pkey = NULL;
	unsigned want = 0;

	if (!json_is_object(jwk) || !kty)
		return jwk_fail(why, whylen, "key without kty");
	if ((kid && !json_is_string(kid)) || (alg && !json_is_string(alg)))
		return jwk_fail(why, whylen, "kid and alg must be strings");
	if (!strcmp(kty, "oct") || not_for_verify(jwk))
		return JWK_SKIP;
	for (int i = 0; private_members[i]; i++)
		if (json_object_get(jwk, private_members[i]))
			return jwk_fail(why, whylen,
					"holds private key material (publish only "
					"the public JWK)");
	if (alg) {
		want = ci_jwt_alg_parse(json_string_value(alg));
		if (!want)
			return JWK_SKIP; /* PS256, RSA-OAEP, ...: not ours */
	}
	if (!strcmp(kty, "OKP") && crv && !strcmp(crv, "Ed25519"))
		pkey = ed25519_key(jwk);
	else if (!strcmp(kty, "RSA"))
		pkey = rsa_key(jwk);
	else if (!strcmp(kty, "EC") && crv && !strcmp(crv, "P-256"))
		pkey = p256_key(jwk);
	else
		return JWK_SKIP;
	ERR_clear_error();
	if (!pkey)
		return jwk_fail(why, whylen, "malformed key parameters");
	if (ci_jwt_key_init(k, pkey, json_string_value(kid), want, "jwks", why, whylen)) {
		EVP_PKEY_free(pkey);
		return JWK_ERROR;
	}
	return JWK_OK;
}

int ci_jwt_keys_add_jwks(struct ci_jwt_keys *set, const char *path, char *why, size_t whylen)
{
	struct ci_jwt_key *tmp = calloc(CI_JWT_MAX_KEYS, sizeof(*tmp));
	json_t *root = NULL, *list, *jwk;
	char msg[160];
	int n = 0, rc = -1;
	size_t i, len;
	char *buf;

	if (!tmp)
		return jwk_fail(why, whylen, "out of memory");
	buf = ci_jwt_read_file(path, JWKS_FILE_MAX, &len, why, whylen);
	if (!buf)
		goto out_tmp;
	root = ci_jwt_json_object((const unsigned char *)buf, len);
	list = json_object_get(root, "keys");
	if (!json_is_array(list)) {
		snprintf(why, whylen, "%s: not a JWKS (a JSON object with a \"keys\" array)", path);
		goto out_buf;
	}
	json_array_foreach(list, i, jwk)
	{
		if (n == CI_JWT_MAX_KEYS) {
			snprintf(why, whylen, "%s: too many keys (at most %d)", path,
				 CI_JWT_MAX_KEYS);
			goto out_keys;
		}
		switch (jwk_to_key(jwk, &tmp[n], msg, sizeof(msg))) {
		case JWK_OK:
			n++;
			break;
		case JWK_ERROR:
			snprintf(why, whylen, "%s: key %zu: %s", path, i, msg);
			goto out_keys;
		}
	}
	if (!n) {
		snprintf(why, whylen, "%s: no usable signature key (Ed25519, RSA or P-256)", path);
		goto out_keys;
	}
	if (!ci_jwt_keys_append(set, tmp, n, path, why, whylen))
		rc = n;
out_keys:
	if (rc < 0)
		for (int j = 0; j < n; j++)
			ci_jwt_key_release(&tmp[j]);
out_buf:
	json_decref(root);
	free(buf);
out_tmp:
	free(tmp);
	return rc;
}
