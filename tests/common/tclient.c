#include "tclient.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>

struct upload {
	const char *data;
	size_t len, off;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct tresp *r = ud;
	char *nb = realloc(r->body, r->len + sz * n + 1);

	if (!nb)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, sz * n);
	r->len += sz * n;
	r->body[r->len] = 0;
	return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct tresp *r = ud;
	size_t have = strlen(r->headers), take = sz * n;

	if (have + take < sizeof(r->headers)) {
		memcpy(r->headers + have, p, take);
		r->headers[have + take] = 0;
	}
	return sz * n;
}

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t take = sz * n < u->len - u->off ? sz * n : u->len - u->off;

	memcpy(buf, u->data + u->off, take);
	u->off += take;
	return take;
}

int tclient_do(const struct treq *rq, struct tresp *rs)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct upload up = {rq->body, rq->body_len, 0};
	curl_mime *mime = NULL;
	int rc;

	memset(rs, 0, sizeof(*rs));
	rs->body = calloc(1, 1);
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method ? rq->method : "GET");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, rs);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	for (int i = 0; rq->headers[i]; i++)
		hl = curl_slist_append(hl, rq->headers[i]);
	if (rq->form_names[0]) {
		mime = curl_mime_init(c);
		for (int i = 0; rq->form_names[i]; i++) {
			curl_mimepart *part = curl_mime_addpart(mime);

			curl_mime_name(part, rq->form_names[i]);
			curl_mime_data(part, rq->form_values[i],
				       rq->form_filenames[i] ? rq->form_lens[i]
							     : CURL_ZERO_TERMINATED);
			if (rq->form_filenames[i])
				curl_mime_filename(part, rq->form_filenames[i]);
		}
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
		if (rq->chunked)
			hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
	} else if (rq->body) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		if (rq->chunked) {
			hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
			curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(c, CURLOPT_READDATA, &up);
		} else {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)rq->body_len);
		}
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	rc = (int)curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
	curl_slist_free_all(hl);
	curl_mime_free(mime);
	curl_easy_cleanup(c);
	return rc;
}

void tresp_free(struct tresp *rs)
{
	free(rs->body);
	rs->body = NULL;
}

int tresp_header(const struct tresp *rs, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = rs->headers; *p;) {
		const char *eol = strstr(p, "\r\n");

		if (!eol)
			break;
		if (!strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;

			while (*v == ' ')
				v++;
			snprintf(out, len, "%.*s", (int)(eol - v), v);
			return 0;
		}
		p = eol + 2;
	}
	return -1;
}
