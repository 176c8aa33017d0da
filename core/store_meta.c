#include "store_meta.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "store_index.h"

bool ci_store_owner_is_valid(const char *owner)
{
	size_t n;

	if (!owner)
		return false;
	n = strnlen(owner, CI_STORE_OWNER_MAX + 1);
	if (n == 0 || n > CI_STORE_OWNER_MAX || !ci_utf8_is_valid(owner, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)owner[i] < 0x20 || owner[i] == 0x7f)
			return false;
	return true;
}

bool ci_store_kind_is_valid(const char *kind)
{
	size_t n;

	if (!kind || !kind[0])
		return true;
	n = strnlen(kind, CI_STORE_KIND_MAX);
	/* Same alphabet as resource ids, shorter. */
	return n < CI_STORE_KIND_MAX && ci_resource_id_is_valid(kind);
}

const char *ci_store_info_check(const struct ci_store_info *info)
{
	if (!ci_nanoid_is_valid(info->sid))
		return "bad session id";
	if (!ci_nanoid_is_valid(info->fid))
		return "bad file id";
	if (ci_name_check(info->name))
		return ci_name_check(info->name);
	if (!ci_mime_is_valid(info->content_type))
		return "bad content type";
	if (!ci_store_kind_is_valid(info->kind))
		return "bad kind";
	if (info->resource_id[0] && !ci_resource_id_is_valid(info->resource_id))
		return "bad resource id";
	if (ci_sha256_from_hex(info->sha256, NULL))
		return "bad sha256";
	return NULL;
}

int ci_store_meta_encode(const struct ci_store_info *info, const char *owner, char **buf,
			 size_t *len)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:b, s:s, s:s}", "v",
			      CI_STORE_META_VERSION, "sid", info->sid, "fid", info->fid, "owner",
			      owner, "name", info->name, "content_type", info->content_type, "size",
			      (json_int_t)info->size, "sha256", info->sha256, "created_ns",
			      (json_int_t)info->created_ns, "read_only",
			      (info->flags & CI_STORE_F_READ_ONLY) != 0, "kind", info->kind,
			      "resource_id", info->resource_id);
	char *text;

	if (!o)
		return CI_E_NOMEM;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return CI_E_NOMEM;
	*buf = text;
	*len = strlen(text);
	return CI_OK;
}

static int copy_field(json_t *o, const char *key, char *dst, size_t cap)
{
	json_t *v = json_object_get(o, key);
	size_t n;

	if (!json_is_string(v))
		return -1;
	n = json_string_length(v);
	if (n >= cap || strlen(json_string_value(v)) != n)
		return -1;
	memcpy(dst, json_string_value(v), n + 1);
	return 0;
}

static int meta_fail(char *err, const char *why)
{
	if (err)
		snprintf(err, CI_ERR_MAX, "%s", why);
	return CI_E_INVAL;
}

int ci_store_meta_decode(const char *buf, size_t len, struct ci_store_info *info, char *owner,
			 char *err)
{
	json_error_t jerr;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr), *v;
	const char *why = NULL;

	memset(info, 0, sizeof(*info));
	if (!o) {
		if (err)
			snprintf(err, CI_ERR_MAX, "bad JSON: %s", jerr.text);
		return CI_E_INVAL;
	}
	if (!json_is_object(o) ||
	    json_integer_value(json_object_get(o, "v")) != CI_STORE_META_VERSION) {
		why = "not a metadata document of version 1";
		goto out;
	}
	if (copy_field(o, "sid", info->sid, sizeof(info->sid)) ||
	    copy_field(o, "fid", info->fid, sizeof(info->fid)) ||
	    copy_field(o, "owner", owner, CI_STORE_OWNER_MAX + 1) ||
	    copy_field(o, "name", info->name, sizeof(info->name)) ||
	    copy_field(o, "content_type", info->content_type, sizeof(info->content_type)) ||
	    copy_field(o, "sha256", info->sha256, sizeof(info->sha256)) ||
	    copy_field(o, "kind", info->kind, sizeof(info->kind)) ||
	    copy_field(o, "resource_id", info->resource_id, sizeof(info->resource_id))) {
		why = "missing or oversized string field";
		goto out;
	}
	v = json_object_get(o, "size");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		why = "bad size";
		goto out;
	}
	info->size = (uint64_t)json_integer_value(v);
	v = json_object_get(o, "created_ns");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		why = "bad created_ns";
		goto out;
	}
	info->created_ns = json_integer_value(v);
	v = json_object_get(o, "read_only");
	if (!json_is_boolean(v)) {
		why = "bad read_only";
		goto out;
	}
	info->flags = json_is_true(v) ? CI_STORE_F_READ_ONLY : 0;
	if (!ci_store_owner_is_valid(owner))
		why = "bad owner";
	else
		why = ci_store_info_check(info);
out:
	json_decref(o);
	return why ? meta_fail(err, why) : CI_OK;
}
