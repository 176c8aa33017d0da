/* Registered and LibreChat claims of a JWT whose signature has been verified. */
#include <stdio.h>
#include <string.h>

#include "jwt_priv.h"

/* aud arrays longer than this are not something we need to search. */
#define AUD_MAX 32

static int fail(int rc, char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return rc;
}

/* 1 = present and valid (into *v), 0 = absent, -1 = present but not a NumericDate. */
static int get_date(json_t *obj, const char *name, int64_t *v)
{
	json_t *j = json_object_get(obj, name);

	if (!j)
		return 0;
	if (!json_is_integer(j) || json_integer_value(j) < 0 ||
	    json_integer_value(j) > CI_JWT_DATE_MAX)
		return -1;
	*v = (int64_t)json_integer_value(j);
	return 1;
}

/* No C0 controls or DEL: these strings end up in owner ids and log lines. */
static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * Copy an optional string claim. 0 when absent or copied; -1 when present
 * but not a string, empty, too long or with control characters.
 */
static int get_string(json_t *obj, const char *name, char *dst, size_t cap)
{
	json_t *j = json_object_get(obj, name);
	size_t n;

	dst[0] = 0;
	if (!j)
		return 0;
	if (!json_is_string(j))
		return -1;
	n = json_string_length(j);
	/* jansson rejects NUL inside strings unless JSON_ALLOW_NUL, so n is the C length. */
	if (n == 0 || n >= cap || !printable(json_string_value(j), n))
		return -1;
	memcpy(dst, json_string_value(j), n + 1);
	return 0;
}

static bool aud_matches(json_t *aud, const char *want)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	if (!json_is_array(aud) || json_array_size(aud) > AUD_MAX)
		return false;
	json_array_foreach(aud, i, v) if (json_is_string(v) &&
					  !strcmp(json_string_value(v), want)) return true;
	return false;
}

static int parse_dates(json_t *p, struct ci_jwt_claims *out, char *why, size_t whylen)
{
	int r;

	r = get_date(p, "exp", &out->exp);
	if (r == 0)
		return fail(CI_JWT_E_CLAIMS, why, whylen, "JWT has no exp claim");
	if (r < 0)
		return fail(CI_JWT_E_CLAIMS, why, whylen, "JWT exp is not an integer NumericDate");
	out->nbf = out->iat = -1;
	if (get_date(p, "nbf", &out->nbf) < 0)
		return fail(CI_JWT_E_CLAIMS, why, whylen, "JWT nbf is not an integer NumericDate");
	if (get_date(p, "iat", &out->iat) < 0)
		return fail(CI_JWT_E_CLAIMS, why, whylen, "JWT iat is not an integer NumericDate");
	if (out->iat >= 0 && out->exp <= out->iat)
		return fail(CI_JWT_E_CLAIMS, why, whylen, "JWT exp is not after iat");
	return CI_JWT_OK;
}

int ci_jwt_claims_parse(json_t *p, const struct ci_jwt_policy *pol, struct ci_jwt_claims *out,
			char *why, size_t whylen)
{
	json_t *aud;
	int rc;

	rc = parse_dates(p, out, why, whylen);
	if (rc)
		return rc;
	if (get_string(p, "iss", out->iss, sizeof(out->iss)))
		return fail(CI_JWT_E_CLAIMS, why, whylen, "JWT iss is not a valid string");
	if (pol->issuer && pol->issuer[0] && strcmp(out->iss, pol->issuer))
		return fail(CI_JWT_E_ISSUER, why, whylen,
			    out->iss[0] ? "JWT issuer is not accepted" : "JWT has no iss claim");
	aud = json_object_get(p, "aud");
	if (pol->audience && pol->audience[0] && !(aud && aud_matches(aud, pol->audience)))
		return fail(CI_JWT_E_AUDIENCE, why, whylen,
			    aud ? "JWT audience is not accepted" : "JWT has no aud claim");
	if (!json_object_get(p, "sub"))
		return fail(CI_JWT_E_CLAIMS, why, whylen, "JWT has no sub claim");
	if (get_string(p, "sub", out->sub, sizeof(out->sub)))
		return fail(CI_JWT_E_CLAIMS, why, whylen,
			    "JWT sub must be a string of 1-256 printable bytes");
	if (get_string(p, "tenant_id", out->tenant_id, sizeof(out->tenant_id)))
		return fail(CI_JWT_E_CLAIMS, why, whylen,
			    "JWT tenant_id must be a string of 1-128 printable bytes");
	if (get_string(p, "jti", out->jti, sizeof(out->jti)))
		return fail(CI_JWT_E_CLAIMS, why, whylen,
			    "JWT jti must be a string of 1-128 printable bytes");
	return CI_JWT_OK;
}

int ci_jwt_claims_check_times(const struct ci_jwt_claims *c, const struct ci_jwt_policy *pol,
			      int64_t now, char *why, size_t whylen)
{
	int64_t skew = pol->clock_skew_s, start;

	if (now >= c->exp + skew)
		return fail(CI_JWT_E_EXPIRED, why, whylen, "JWT has expired");
	if (c->nbf >= 0 && c->nbf > now + skew)
		return fail(CI_JWT_E_NOT_YET, why, whylen, "JWT is not valid yet (nbf)");
	if (c->iat >= 0 && c->iat > now + skew)
		return fail(CI_JWT_E_NOT_YET, why, whylen, "JWT was issued in the future (iat)");
	/*
	 * Without iat the lifetime counts from nbf, and without either from
	 * now: a token must never be usable for longer than the policy allows.
	 */
	start = c->iat >= 0 ? c->iat : c->nbf >= 0 ? c->nbf : now;
	if (c->exp - start > pol->max_lifetime_s) {
		snprintf(why, whylen, "JWT lifetime exceeds %d s", pol->max_lifetime_s);
		return CI_JWT_E_LIFETIME;
	}
	return CI_JWT_OK;
}
