/* Key sets: PEM public keys, lookup by kid, and signature checks through EVP. */
#include <errno.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwt_priv.h"

#define KEY_FILE_MAX  (64 * 1024)
#define RSA_BITS_MIN  2048
#define RSA_BITS_MAX  16384
#define ES256_SIG_LEN 64
#define ED_SIG_LEN    64

struct ci_jwt_keys *ci_jwt_keys_new(size_t cache_entries)
{
	struct ci_jwt_keys *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	if (cache_entries) {
		set->cache = ci_jwt_cache_new(cache_entries);
		if (!set->cache) {
			free(set);
			return NULL;
		}
	}
	return set;
}

void ci_jwt_key_release(struct ci_jwt_key *k)
{
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

void ci_jwt_keys_free(struct ci_jwt_keys *set)
{
	if (!set)
		return;
	for (int i = 0; i < set->n; i++)
		ci_jwt_key_release(&set->key[i]);
	ci_jwt_cache_free(set->cache);
	free(set);
}

int ci_jwt_keys_count(const struct ci_jwt_keys *set)
{
	return set ? set->n : 0;
}

void ci_jwt_keys_cache_stats(const struct ci_jwt_keys *set, struct ci_jwt_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (set && set->cache)
		ci_jwt_cache_stats(set->cache, st);
}

unsigned ci_jwt_kty_algs(enum ci_jwt_kty kty)
{
	switch (kty) {
	case CI_JWT_KTY_ED25519:
		return CI_JWT_EDDSA;
	case CI_JWT_KTY_RSA:
		return CI_JWT_RS256 | CI_JWT_RS384 | CI_JWT_RS512;
	case CI_JWT_KTY_EC_P256:
		return CI_JWT_ES256;
	}
	return 0;
}

static const char *kty_name(enum ci_jwt_kty kty)
{
	switch (kty) {
	case CI_JWT_KTY_ED25519:
		return "Ed25519";
	case CI_JWT_KTY_RSA:
		return "RSA";
	case CI_JWT_KTY_EC_P256:
		return "EC P-256";
	}
	return "?";
}

static int fail(char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return -1;
}

static bool kid_ok(const char *kid)
{
	size_t n = strnlen(kid, CI_JWT_KID_MAX + 1);

	if (n > CI_JWT_KID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)kid[i] < 0x20 || kid[i] == 0x7f)
			return false;
	return true;
}

int ci_jwt_key_init(struct ci_jwt_key *k, EVP_PKEY *pkey, const char *kid, unsigned want,
		    const char *origin, char *why, size_t whylen)
{
	char group[64];
	size_t glen = 0;
	unsigned can;

	memset(k, 0, sizeof(*k));
	if (!kid)
		kid = "";
	if (!kid_ok(kid))
		return fail(why, whylen, "kid too long or with control characters");
	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		k->kty = CI_JWT_KTY_ED25519;
	} else if (EVP_PKEY_is_a(pkey, "RSA")) {
		k->kty = CI_JWT_KTY_RSA;
	} else if (EVP_PKEY_is_a(pkey, "EC") &&
		   EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1 &&
		   (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))) {
		k->kty = CI_JWT_KTY_EC_P256;
	} else {
		return fail(why, whylen,
			    "unsupported key type (Ed25519, RSA or EC P-256 expected)");
	}
	k->bits = EVP_PKEY_get_bits(pkey);
	if (k->kty == CI_JWT_KTY_RSA && (k->bits < RSA_BITS_MIN || k->bits > RSA_BITS_MAX))
		return fail(why, whylen, "RSA key must have 2048 to 16384 bits");
	can = ci_jwt_kty_algs(k->kty);
	if (want & ~can) {
		snprintf(why, whylen, "alg list does not fit a %s key (it allows only %s)",
			 kty_name(k->kty),
			 k->kty == CI_JWT_KTY_RSA ? "RS256, RS384, RS512" : ci_jwt_alg_name(can));
		return -1;
	}
	k->algs = want ? want : can;
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
	k->origin = origin;
	k->pkey = pkey;
	return 0;
}

int ci_jwt_keys_append(struct ci_jwt_keys *set, struct ci_jwt_key *keys, int n, const char *path,
		       char *why, size_t whylen)
{
	if (set->n + n > CI_JWT_MAX_KEYS) {
		snprintf(why, whylen, "%s: too many JWT keys (at most %d)", path, CI_JWT_MAX_KEYS);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (!keys[i].kid[0])
			continue;
		for (int j = 0; j < set->n + i; j++) {
			const char *other = j < set->n ? set->key[j].kid : keys[j - set->n].kid;

			if (!strcmp(other, keys[i].kid)) {
				snprintf(why, whylen, "%s: JWT key id \"%s\" is configured twice",
					 path, keys[i].kid);
				return -1;
			}
		}
	}
	memcpy(&set->key[set->n], keys, (size_t)n * sizeof(*keys));
	set->n += n;
	return 0;
}

char *ci_jwt_read_file(const char *path, size_t max, size_t *len, char *why, size_t whylen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		snprintf(why, whylen, "%s: out of memory", path);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		snprintf(why, whylen, "%s: %s", path,
			 ferror(f) ? "read error" : "file too large for a key file");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
}

static EVP_PKEY *decode_public_pem(const char *buf, size_t len)
{
	const unsigned char *data = (const unsigned char *)buf;
	OSSL_DECODER_CTX *dctx;
	EVP_PKEY *pkey = NULL;

	dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL,
					     NULL);
	if (!dctx)
		return NULL;
	if (!OSSL_DECODER_from_data(dctx, &data, &len)) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	OSSL_DECODER_CTX_free(dctx);
	return pkey;
}

int ci_jwt_keys_add_pem(struct ci_jwt_keys *set, const char *kid, const char *path, unsigned algs,
			char *why, size_t whylen)
{
	struct ci_jwt_key k;
	char msg[160];
	EVP_PKEY *pkey;
	size_t len;
	char *buf;
	int rc = -1;

	buf = ci_jwt_read_file(path, KEY_FILE_MAX, &len, why, whylen);
	if (!buf)
		return -1;
	/* A verifier never needs the private half; holding it is a config mistake. */
	if (strstr(buf, "PRIVATE KEY-----")) {
		snprintf(why, whylen,
			 "%s: holds a private key; configure the public key "
			 "(openssl pkey -in KEY -pubout)",
			 path);
		goto out_buf;
	}
	pkey = decode_public_pem(buf, len);
	ERR_clear_error();
	if (!pkey) {
		snprintf(why, whylen, "%s: no PEM public key found", path);
		goto out_buf;
	}
	if (ci_jwt_key_init(&k, pkey, kid, algs, "pem", msg, sizeof(msg))) {
		snprintf(why, whylen, "%s: %s", path, msg);
		EVP_PKEY_free(pkey);
		goto out_buf;
	}
	rc = ci_jwt_keys_append(set, &k, 1, path, why, whylen);
	if (rc)
		ci_jwt_key_release(&k);
out_buf:
	free(buf);
	return rc;
}

int ci_jwt_keys_describe(const struct ci_jwt_keys *set, int i, char *buf, size_t len)
{
	const struct ci_jwt_key *k;
	size_t o;

	if (!set || i < 0 || i >= set->n || !len)
		return -1;
	k = &set->key[i];
	o = (size_t)snprintf(buf, len, "kid=%s type=%s bits=%d origin=%s algs=",
			     k->kid[0] ? k->kid : "(none)", kty_name(k->kty), k->bits, k->origin);
	for (unsigned a = 1; a <= CI_JWT_ES256 && o < len; a <<= 1)
		if (k->algs & a)
			o += (size_t)snprintf(buf + o, len - o, "%s%s",
					      buf[o - 1] == '=' ? "" : ",", ci_jwt_alg_name(a));
	return 0;
}

const struct ci_jwt_key *ci_jwt_keys_find(const struct ci_jwt_keys *set, const char *kid)
{
	if (!kid)
		return set->n == 1 ? &set->key[0] : NULL;
	for (int i = 0; i < set->n; i++)
		if (set->key[i].kid[0] && !strcmp(set->key[i].kid, kid))
			return &set->key[i];
	return NULL;
}

/* JOSE ES256 signatures are raw r || s; EVP wants a DER ECDSA-Sig-Value. */
static int es256_to_der(const unsigned char *sig, unsigned char *der, size_t cap)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, ES256_SIG_LEN / 2, NULL);
	BIGNUM *s = BN_bin2bn(sig + ES256_SIG_LEN / 2, ES256_SIG_LEN / 2, NULL);
	unsigned char *p = der;
	int n = -1;

	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	if (i2d_ECDSA_SIG(es, NULL) <= (int)cap)
		n = i2d_ECDSA_SIG(es, &p);
out:
	ECDSA_SIG_free(es);
	return n;
}

static const EVP_MD *alg_md(unsigned alg)
{
	switch (alg) {
	case CI_JWT_RS256:
	case CI_JWT_ES256:
		return EVP_sha256();
	case CI_JWT_RS384:
		return EVP_sha384();
	case CI_JWT_RS512:
		return EVP_sha512();
	}
	return NULL; /* EdDSA: the signature scheme hashes by itself */
}

int ci_jwt_key_verify(const struct ci_jwt_key *k, unsigned alg, const unsigned char *msg,
		      size_t msglen, const unsigned char *sig, size_t siglen)
{
	unsigned char der[80];
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx;
	int rc = -1, n;

	if (!(k->algs & alg))
		return 0;
	/* Exact lengths: anything else is not a signature of this scheme. */
	if (alg == CI_JWT_EDDSA && siglen != ED_SIG_LEN)
		return 0;
	if (alg & (CI_JWT_RS256 | CI_JWT_RS384 | CI_JWT_RS512) &&
	    siglen != (size_t)EVP_PKEY_get_size(k->pkey))
		return 0;
	if (alg == CI_JWT_ES256) {
		if (siglen != ES256_SIG_LEN)
			return 0;
		n = es256_to_der(sig, der, sizeof(der));
		if (n < 0)
			return -1;
		sig = der;
		siglen = (size_t)n;
	}
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -1;
	if (EVP_DigestVerifyInit(ctx, &pctx, alg_md(alg), NULL, k->pkey) != 1)
		goto out_ctx;
	if (k->kty == CI_JWT_KTY_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
		goto out_ctx;
	/* Only 1 is success; 0 and negative values both mean "not verified". */
	rc = EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
out_ctx:
	EVP_MD_CTX_free(ctx);
	return rc;
}
