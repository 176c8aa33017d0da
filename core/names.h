/*
 * File names supplied by clients. A stored file keeps its relative path
 * ("docs/two.md") because it is mounted at /mnt/data/<name> in the sandbox,
 * so names are validated, never rewritten: a name is accepted as-is or
 * refused with a reason.
 */
#ifndef CI_CORE_NAMES_H
#define CI_CORE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define CI_NAME_MAX	     256 /* bytes, NUL excluded */
#define CI_NAME_SIZE	     (CI_NAME_MAX + 1)
#define CI_NAME_SEGMENTS_MAX 10
#define CI_NAME_SEGMENT_MAX  255 /* NAME_MAX of every Linux file system */

/*
 * Why the len bytes at in are not an acceptable name, or NULL when they are.
 * Rules: 1..256 bytes; valid UTF-8 without control characters (C0, DEL, C1);
 * no NUL or backslash; relative ('/' not first); '/'-separated segments, at
 * most 10, each 1..255 bytes and neither "." nor "..". The result is a static
 * string. Thread-safe.
 */
const char *ci_name_check_n(const char *in, size_t len);
const char *ci_name_check(const char *in); /* NUL-terminated in; NULL in -> "missing" */

/*
 * Validate in (NUL-terminated) and copy it to out (outlen bytes). Returns 0,
 * or -1 when the name is refused or out is too small; out is then "".
 * ci_name_sanitize_n takes an explicit length so that names parsed from JSON
 * with an embedded NUL ("a\u0000b") are refused instead of truncated.
 */
int ci_name_sanitize(const char *in, char *out, size_t outlen);
int ci_name_sanitize_n(const char *in, size_t inlen, char *out, size_t outlen);

/* True when the len bytes at s are valid UTF-8 (no overlongs, no surrogates). */
bool ci_utf8_is_valid(const char *s, size_t len);

/*
 * True when a file found in the sandbox after a run may be returned as an
 * output: its extension (after the last '.' of the last segment) is in the
 * allowlist of librechat-api.md §4.4, compared case-insensitively, or the
 * whole base name is one of the extension-less names of that list
 * (Dockerfile, Jenkinsfile, Vagrantfile, Helmfile). ".env", ".gitignore"
 * and friends match through their extension. path may contain '/'.
 */
bool ci_name_is_output_allowed(const char *path);

#endif /* CI_CORE_NAMES_H */
