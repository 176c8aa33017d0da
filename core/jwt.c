/* Compact JWS parsing, header checks and the verification pipeline. */
#include "jwt.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jwt_priv.h"

/* A JSON header larger than this is not something LibreChat sends. */
#define HEADER_MAX 1024

struct jws_parts {
	const char *seg[3];
	size_t len[3];
};

static const struct {
	const char *name;
	unsigned alg;
} alg_names[] = {
	{"EdDSA", CI_JWT_EDDSA}, {"RS256", CI_JWT_RS256}, {"RS384", CI_JWT_RS384},
	{"RS512", CI_JWT_RS512}, {"ES256", CI_JWT_ES256},
};

unsigned ci_jwt_alg_parse(const char *name)
{
	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
		if (!strcmp(name, alg_names[i].name))
			return alg_names[i].alg;
	return 0;
}

const char *ci_jwt_alg_name(unsigned alg)
{
	for (size_t i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
		if (alg == alg_names[i].alg)
			return alg_names[i].name;
	return "?";
}

void ci_jwt_policy_init(struct ci_jwt_policy *pol)
{
	pol->issuer = "librechat";
	pol->audience = "codeapi";
	pol->clock_skew_s = CI_JWT_SKEW_DEFAULT;
	pol->max_lifetime_s = CI_JWT_LIFETIME_DEFAULT;
}

static int b64url_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long ci_jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;

	/* One leftover character can never encode a whole byte. */
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/*
	 * Unused low bits must be zero: otherwise several strings decode to the
	 * same bytes, and a token could be varied without changing its meaning.
	 */
	if (acc)
		return -1;
	return (long)n;
}

json_t *ci_jwt_json_object(const unsigned char *buf, size_t len)
{
	json_error_t jerr;
	json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);

	if (v && !json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Split into three non-empty base64url segments; false on any other shape. */
static bool split(const char *t, size_t len, struct jws_parts *p)
{
	int k = 0;
	size_t start = 0;

	if (!t || len == 0 || len > CI_JWT_TOKEN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && t[i] != '.') {
			if (b64url_value((unsigned char)t[i]) < 0)
				return false;
			continue;
		}
		if (k == 3 || i == start)
			return false;
		p->seg[k] = t + start;
		p->len[k] = i - start;
		k++;
		start = i + 1;
	}
	return k == 3;
}

bool ci_jwt_is_candidate(const char *token, size_t len)
{
	struct jws_parts p;

	return split(token, len, &p);
}

static int fail(int rc, char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return rc;
}

static bool policy_ok(const struct ci_jwt_policy *pol)
{
	return pol->clock_skew_s >= 0 && pol->clock_skew_s <= CI_JWT_SKEW_MAX &&
	       pol->max_lifetime_s >= 1 && pol->max_lifetime_s <= CI_JWT_LIFETIME_MAX;
}

/* Cache key: the policy is part of it, so a different policy never hits. */
static int cache_digest(const struct ci_jwt_policy *pol, const char *token, size_t len,
			unsigned char *digest)
{
	const char *iss = pol->issuer ? pol->issuer : "";
	const char *aud = pol->audience ? pol->audience : "";
	int32_t nums[2] = {pol->clock_skew_s, pol->max_lifetime_s};
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned dlen = 0;
	int ok;

	if (!ctx)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, iss, strlen(iss) + 1) &&
	     EVP_DigestUpdate(ctx, aud, strlen(aud) + 1) &&
	     EVP_DigestUpdate(ctx, nums, sizeof(nums)) && EVP_DigestUpdate(ctx, token, len) &&
	     EVP_DigestFinal_ex(ctx, digest, &dlen) && dlen == CI_JWT_DIGEST_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* The alg named by the header, after refusing what must never be accepted. */
static int header_alg(json_t *hdr, unsigned *alg, const char **kid, char *why, size_t whylen)
{
	const char *name = json_string_value(json_object_get(hdr, "alg"));
	json_t *typ = json_object_get(hdr, "typ");
	json_t *jkid = json_object_get(hdr, "kid");

	if (!name)
		return fail(CI_JWT_E_MALFORMED, why, whylen, "JWT header has no alg");
	if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT")))
		return fail(CI_JWT_E_MALFORMED, why, whylen, "JWT header typ is not JWT");
	/* We implement no extension, so RFC 7515 §4.1.11 says reject. */
	if (json_object_get(hdr, "crit"))
		return fail(CI_JWT_E_MALFORMED, why, whylen,
			    "JWT header has crit extensions (unsupported)");
	if (jkid && (!json_is_string(jkid) || !json_string_length(jkid) ||
		     json_string_length(jkid) > CI_JWT_KID_MAX))
		return fail(CI_JWT_E_MALFORMED, why, whylen,
			    "JWT header kid is not a valid string");
	*kid = jkid ? json_string_value(jkid) : NULL;
	if (!strcasecmp(name, "none"))
		return fail(CI_JWT_E_ALG, why, whylen, "unsigned JWT (alg none) is not accepted");
	if (!strncasecmp(name, "HS", 2))
		return fail(CI_JWT_E_ALG, why, whylen,
			    "HMAC-signed JWT is not accepted (public keys only)");
	*alg = ci_jwt_alg_parse(name);
	if (!*alg)
		return fail(CI_JWT_E_ALG, why, whylen, "JWT alg is not supported");
	return CI_JWT_OK;
}

/* Decode and check the header, pick the key, check the signature. */
static int verify_signature(const struct ci_jwt_keys *keys, const struct jws_parts *p,
			    unsigned char *buf, struct ci_jwt_claims *out, char *why, size_t whylen)
{
	const struct ci_jwt_key *k;
	const char *kid = NULL;
	unsigned alg = 0;
	json_t *hdr;
	long n;
	int rc;

	if (p->len[0] > HEADER_MAX / 3 * 4)
		return fail(CI_JWT_E_MALFORMED, why, whylen, "JWT header is too large");
	n = ci_jwt_b64url_decode(p->seg[0], p->len[0], buf, HEADER_MAX);
	if (n < 0)
		return fail(CI_JWT_E_MALFORMED, why, whylen, "JWT header is not valid base64url");
	hdr = ci_jwt_json_object(buf, (size_t)n);
	if (!hdr)
		return fail(CI_JWT_E_MALFORMED, why, whylen, "JWT header is not a JSON object");
	rc = header_alg(hdr, &alg, &kid, why, whylen);
	if (rc)
		goto out_hdr;
	k = ci_jwt_keys_find(keys, kid);
	if (!k) {
		rc = fail(CI_JWT_E_KID, why, whylen,
			  kid ? "JWT kid matches no configured key"
			      : "JWT has no kid and more than one key is configured");
		goto out_hdr;
	}
	if (!(k->algs & alg)) {
		rc = fail(CI_JWT_E_ALG, why, whylen, "JWT alg is not allowed for its key");
		goto out_hdr;
	}
	n = ci_jwt_b64url_decode(p->seg[2], p->len[2], buf, CI_JWT_TOKEN_MAX);
	if (n < 0) {
		rc = fail(CI_JWT_E_MALFORMED, why, whylen, "JWT signature is not valid base64url");
		goto out_hdr;
	}
	/* The signing input is the first two segments exactly as sent. */
	switch (ci_jwt_key_verify(k, alg, (const unsigned char *)p->seg[0],
				  p->len[0] + 1 + p->len[1], buf, (size_t)n)) {
	case 1:
		rc = CI_JWT_OK;
		snprintf(out->kid, sizeof(out->kid), "%s", k->kid);
		out->alg = alg;
		break;
	case 0:
		rc = fail(CI_JWT_E_SIGNATURE, why, whylen, "JWT signature is invalid");
		break;
	default:
		rc = fail(CI_JWT_E_INTERNAL, why, whylen, "JWT signature check failed (libcrypto)");
	}
out_hdr:
	json_decref(hdr);
	return rc;
}

static int verify_fresh(const struct ci_jwt_keys *keys, const struct ci_jwt_policy *pol,
			const struct jws_parts *p, int64_t now, struct ci_jwt_claims *out,
			char *why, size_t whylen)
{
	unsigned char *buf = malloc(CI_JWT_TOKEN_MAX);
	json_t *payload;
	long n;
	int rc;

	if (!buf)
		return fail(CI_JWT_E_INTERNAL, why, whylen, "out of memory");
	rc = verify_signature(keys, p, buf, out, why, whylen);
	if (rc)
		goto out_buf;
	/* Claims are only looked at once the signature vouches for them. */
	n = ci_jwt_b64url_decode(p->seg[1], p->len[1], buf, CI_JWT_TOKEN_MAX);
	if (n < 0) {
		rc = fail(CI_JWT_E_MALFORMED, why, whylen, "JWT payload is not valid base64url");
		goto out_buf;
	}
	payload = ci_jwt_json_object(buf, (size_t)n);
	if (!payload) {
		rc = fail(CI_JWT_E_MALFORMED, why, whylen, "JWT payload is not a JSON object");
		goto out_buf;
	}
	rc = ci_jwt_claims_parse(payload, pol, out, why, whylen);
	json_decref(payload);
	if (!rc)
		rc = ci_jwt_claims_check_times(out, pol, now, why, whylen);
out_buf:
	free(buf);
	return rc;
}

int ci_jwt_verify(const struct ci_jwt_keys *keys, const struct ci_jwt_policy *pol,
		  const char *token, size_t len, int64_t now_unix, struct ci_jwt_claims *out,
		  char *why, size_t whylen)
{
	unsigned char digest[CI_JWT_DIGEST_LEN];
	struct jws_parts p;
	bool cacheable;
	int rc;

	memset(out, 0, sizeof(*out));
	if (whylen)
		why[0] = 0;
	if (!keys || !pol || !policy_ok(pol) || now_unix < 0 || now_unix > CI_JWT_DATE_MAX)
		return fail(CI_JWT_E_POLICY, why, whylen, "JWT verification is misconfigured");
	if (len > CI_JWT_TOKEN_MAX)
		return fail(CI_JWT_E_MALFORMED, why, whylen, "JWT is too long");
	if (!split(token, len, &p))
		return fail(CI_JWT_E_MALFORMED, why, whylen,
			    "JWT is not three base64url segments separated by dots");
	cacheable = keys->cache && !cache_digest(pol, token, len, digest);
	if (cacheable && ci_jwt_cache_get(keys->cache, digest, now_unix, out)) {
		rc = ci_jwt_claims_check_times(out, pol, now_unix, why, whylen);
		goto out;
	}
	rc = verify_fresh(keys, pol, &p, now_unix, out, why, whylen);
	if (!rc && cacheable)
		ci_jwt_cache_put(keys->cache, digest,
				 out->exp < now_unix + CI_JWT_CACHE_HOLD_S
					 ? out->exp
					 : now_unix + CI_JWT_CACHE_HOLD_S,
				 out);
out:
	/* Failed EVP calls leave entries in this thread's queue; others must not see them. */
	ERR_clear_error();
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

static bool tenant_needs_escape(int c)
{
	return c == '%' || c == ':';
}

int ci_jwt_principal(const struct ci_jwt_claims *claims, char *out, size_t outlen)
{
	const char *tenant = claims->tenant_id[0] ? claims->tenant_id : "default";
	unsigned char md[CI_JWT_DIGEST_LEN];
	size_t need = 4 + 1 + strlen(claims->sub) + 1, o = 0;
	EVP_MD_CTX *ctx;
	unsigned mdlen = 0;
	int ok;

	if (outlen < CI_JWT_PRINCIPAL_MIN)
		return -1;
	for (const char *s = tenant; *s; s++)
		need += tenant_needs_escape((unsigned char)*s) ? 3 : 1;
	if (need <= outlen) {
		o = (size_t)snprintf(out, outlen, "jwt:");
		for (const char *s = tenant; *s; s++) {
			if (tenant_needs_escape((unsigned char)*s))
				o += (size_t)snprintf(out + o, outlen - o, "%%%02X",
						      (unsigned char)*s);
			else
				out[o++] = *s;
		}
		snprintf(out + o, outlen - o, ":%s", claims->sub);
		return 0;
	}
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, tenant, strlen(tenant) + 1) &&
	     EVP_DigestUpdate(ctx, claims->sub, strlen(claims->sub)) &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == sizeof(md);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	o = (size_t)snprintf(out, outlen, "jwt-sha256:");
	for (size_t i = 0; i < sizeof(md); i++)
		o += (size_t)snprintf(out + o, outlen - o, "%02x", md[i]);
	return 0;
}
