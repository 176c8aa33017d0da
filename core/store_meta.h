/*
 * The per-file metadata document (sessions/<sid>/<fid>.json) and the
 * validation shared by new writes and by recovery. Internal to the store.
 */
#ifndef CI_CORE_STORE_META_H
#define CI_CORE_STORE_META_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define CI_STORE_META_VERSION 1

/* 1..256 bytes of UTF-8 without control characters. */
bool ci_store_owner_is_valid(const char *owner);
/* NULL, "" or [A-Za-z0-9_-]{1,15}. */
bool ci_store_kind_is_valid(const char *kind);

/*
 * Check every field of info (ids, name, content type, kind, resource id,
 * hash). Returns NULL or a static reason.
 */
const char *ci_store_info_check(const struct ci_store_info *info);

/* Serialise info + owner to a malloc'd JSON text (*buf, *len). CI_OK or CI_E_NOMEM. */
int ci_store_meta_encode(const struct ci_store_info *info, const char *owner, char **buf,
			 size_t *len);

/*
 * Parse and validate a metadata document. On CI_OK info and owner
 * (CI_STORE_OWNER_MAX + 1 bytes) are filled; otherwise CI_E_INVAL with a
 * reason in err (CI_ERR_MAX bytes, may be NULL).
 */
int ci_store_meta_decode(const char *buf, size_t len, struct ci_store_info *info, char *owner,
			 char *err);

#endif /* CI_CORE_STORE_META_H */
