/* A small libcurl client for tests that talk HTTP to a server on loopback. */
#ifndef CI_TESTS_TCLIENT_H
#define CI_TESTS_TCLIENT_H

#include <stddef.h>

struct tresp {
	long status;
	char *body; /* NUL-terminated, malloc'd */
	size_t len;
	char headers[4096];
};

struct treq {
	const char *method;
	const char *url;
	const char *headers[8]; /* NULL-terminated */
	const char *body;
	size_t body_len;
	int chunked; /* send the body without Content-Length */
	/* multipart: parallel arrays, NULL-terminated names */
	const char *form_names[8];
	const char *form_values[8];    /* field value, or file bytes */
	size_t form_lens[8];	       /* file length (0: plain field) */
	const char *form_filenames[8]; /* non-NULL: a file part */
};

/* Perform the request; returns curl's result code (0 = a response came). */
int tclient_do(const struct treq *rq, struct tresp *rs);
void tresp_free(struct tresp *rs);
/* The value of header name in rs (case-insensitive), copied to out. */
int tresp_header(const struct tresp *rs, const char *name, char *out, size_t len);

#endif /* CI_TESTS_TCLIENT_H */
