/* Content types of stored files, guessed from their names. */
#ifndef CI_CORE_MIME_H
#define CI_CORE_MIME_H

#include <stdbool.h>

#define CI_MIME_DEFAULT "application/octet-stream"

/*
 * The content type for name's extension (after the last '.' of the last
 * '/'-segment, case-insensitive), or CI_MIME_DEFAULT. Text types carry
 * "; charset=utf-8". Returns a static string; name may be NULL. Thread-safe.
 */
const char *ci_mime_for_name(const char *name);

/*
 * True when s is usable as a stored Content-Type header value: 3..127
 * printable ASCII bytes (no CR/LF or other controls) containing a '/'.
 */
bool ci_mime_is_valid(const char *s);

#endif /* CI_CORE_MIME_H */
