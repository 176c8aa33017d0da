/*
 * Streaming multipart/form-data parser for a request (libmicrohttpd's post
 * processor): every field and file part is delivered in chunks as it
 * arrives, never buffered whole.
 */
#ifndef CI_CORE_HTTP_MULTIPART_H
#define CI_CORE_HTTP_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

struct ci_req;
struct ci_multipart;

/*
 * One chunk of a part. filename is NULL for plain fields. off is the
 * chunk's offset within the part (0 = a new part starts). Return 0 to go
 * on, non-zero to stop parsing.
 */
typedef int (*ci_part_fn)(void *ctx, const char *field, const char *filename,
			  const char *content_type, uint64_t off, const char *data, size_t size);

/* NULL when the request is not multipart/form-data (or out of memory). */
struct ci_multipart *ci_multipart_new(struct ci_req *req, ci_part_fn fn, void *ctx);
/* Feed body bytes; -1 when the body is malformed or fn stopped. */
int ci_multipart_feed(struct ci_multipart *m, const char *data, size_t len);
/* Flush and free; -1 when the body ended malformed. */
int ci_multipart_finish(struct ci_multipart *m);

#endif /* CI_CORE_HTTP_MULTIPART_H */
