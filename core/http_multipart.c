#include "http_multipart.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "http_priv.h"

struct ci_multipart {
	struct MHD_PostProcessor *pp;
	ci_part_fn fn;
	void *ctx;
	int stopped;
};

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *filename, const char *content_type,
			       const char *transfer_encoding, const char *data, uint64_t off,
			       size_t size)
{
	struct ci_multipart *m = cls;

	(void)kind;
	(void)transfer_encoding;
	if (m->stopped)
		return MHD_NO;
	if (m->fn(m->ctx, key, filename, content_type, off, data, size)) {
		m->stopped = 1;
		return MHD_NO;
	}
	return MHD_YES;
}

struct ci_multipart *ci_multipart_new(struct ci_req *req, ci_part_fn fn, void *ctx)
{
	const char *ct = ci_req_header(req, "Content-Type");
	struct ci_multipart *m;

	if (!ct || strncasecmp(ct, "multipart/form-data", 19))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->fn = fn;
	m->ctx = ctx;
	m->pp = MHD_create_post_processor(ci_req_connection(req), 64 * 1024, on_part, m);
	if (!m->pp) {
		free(m);
		return NULL;
	}
	return m;
}

int ci_multipart_feed(struct ci_multipart *m, const char *data, size_t len)
{
	if (m->stopped)
		return -1;
	if (MHD_post_process(m->pp, data, len) != MHD_YES || m->stopped)
		return -1;
	return 0;
}

int ci_multipart_finish(struct ci_multipart *m)
{
	int rc;

	if (!m)
		return 0;
	rc = MHD_destroy_post_processor(m->pp) == MHD_YES && !m->stopped ? 0 : -1;
	free(m);
	return rc;
}
