/*
 * The tar streams of put and get. Both are ustar/GNU tar as GNU tar in the
 * sandbox image reads and writes them:
 *   - out (put): one regular file member, streamed from a ci_source, padded
 *     to whole 10240-byte records so that `tar -x` on a v4 server (stdin
 *     never closes) stops by itself after the end-of-archive blocks; names
 *     longer than the header field go in a pax extended header;
 *   - in (get): a push parser (bytes arrive frame by frame) that streams the
 *     single regular member called name into the sink and refuses anything
 *     else -- a symlink, a directory, another name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ci/backend_util.h"
#include "k8s.h"

#define BLK    512
#define RECORD 10240

struct k8s_tar_out {
	const ci_source *data;
	unsigned char head[3 * BLK]; /* [pax header + pax data] + file header */
	size_t head_len;
	int64_t off;	  /* bytes produced */
	int64_t data_got; /* bytes the source gave */
	int64_t total;
	bool short_src, src_err;
};

static void octal(char *field, size_t width, uint64_t v)
{
	snprintf(field, width, "%0*llo", (int)width - 1, (unsigned long long)v);
}

static void header(unsigned char *h, const char *name, uint32_t mode, int64_t size, int64_t mtime,
		   char type)
{
	unsigned sum = 0;

	memset(h, 0, BLK);
	snprintf((char *)h, 100, "%s", name);
	octal((char *)h + 100, 8, mode & 07777);
	octal((char *)h + 108, 8, 1000);
	octal((char *)h + 116, 8, 1000);
	if ((uint64_t)size < 077777777777ull) {
		octal((char *)h + 124, 12, (uint64_t)size);
	} else {
		/* GNU base-256 for 8 GiB and more */
		h[124] = 0x80;
		for (int i = 0; i < 8; i++)
			h[135 - i] = (unsigned char)((uint64_t)size >> (8 * i));
	}
	octal((char *)h + 136, 12, (uint64_t)(mtime > 0 ? mtime : 0));
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (int i = 0; i < BLK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

static ssize_t out_read(void *ctx, void *buf, size_t cap)
{
	struct k8s_tar_out *t = ctx;
	unsigned char *p = buf;
	size_t done = 0;
	int64_t data_end = (int64_t)t->head_len + t->data->size;

	while (done < cap && t->off < t->total) {
		if (t->off < (int64_t)t->head_len) {
			size_t n = t->head_len - (size_t)t->off;

			n = n < cap - done ? n : cap - done;
			memcpy(p + done, t->head + t->off, n);
			done += n;
			t->off += (int64_t)n;
		} else if (t->off < data_end) {
			size_t n = (size_t)(data_end - t->off) < cap - done
					   ? (size_t)(data_end - t->off)
					   : cap - done;
			ssize_t r = t->data->fd >= 0
					    ? pread(t->data->fd, p + done, n, (off_t)t->data_got)
					    : t->data->read(t->data->ctx, p + done, n);

			if (r < 0) {
				t->src_err = true;
				return -1;
			}
			if (r == 0) {
				t->short_src = true;
				return -1;
			}
			done += (size_t)r;
			t->off += r;
			t->data_got += r;
			if (done)
				break; /* hand over what the source gave */
		} else {
			/* padding, end-of-archive blocks, record fill: zeros */
			size_t n = (size_t)(t->total - t->off) < cap - done
					   ? (size_t)(t->total - t->off)
					   : cap - done;

			memset(p + done, 0, n);
			done += n;
			t->off += (int64_t)n;
		}
	}
	return (ssize_t)done;
}

int k8s_tar_out_new(const char *rel, uint32_t mode, int64_t mtime, const ci_source *data,
		    struct k8s_tar_out **tp, ci_source *out, ci_call *call)
{
	struct k8s_tar_out *t;
	size_t nlen = strlen(rel);
	int64_t body;

	*tp = NULL;
	if (!nlen || data->size < 0)
		return ci_fail(call, CI_E_INVAL, "tar: empty name or negative size");
	t = calloc(1, sizeof(*t));
	if (!t)
		return ci_fail(call, CI_E_NOMEM, "out of memory");
	t->data = data;
	if (nlen < 100) {
		header(t->head, rel, mode, data->size, mtime, '0');
		t->head_len = BLK;
	} else {
		/* pax: "<len> path=<name>\n", len counting itself */
		char rec[BLK], num[24];
		size_t rest = nlen + 7, len = 0; /* " path=" + name + "\n" */

		if (nlen > BLK - 32) {
			free(t);
			return ci_fail(call, CI_E_INVAL, "tar: name too long");
		}
		/* the record's length counts its own digits */
		for (size_t d = 1; d < 8; d++) {
			len = rest + d;
			if ((size_t)snprintf(num, sizeof(num), "%zu", len) == d)
				break;
		}
		snprintf(rec, sizeof(rec), "%zu path=%s\n", len, rel);
		header(t->head, "././@PaxHeader", 0644, (int64_t)strlen(rec), mtime, 'x');
		memcpy(t->head + BLK, rec, strlen(rec));
		memset(t->head + BLK + strlen(rec), 0, BLK - strlen(rec));
		header(t->head + 2 * BLK, "ci-long-name", mode, data->size, mtime, '0');
		t->head_len = 3 * BLK;
	}
	body = (int64_t)t->head_len + (data->size + BLK - 1) / BLK * BLK + 2 * BLK;
	t->total = (body + RECORD - 1) / RECORD * RECORD;
	*tp = t;
	*out = (ci_source){.read = out_read, .ctx = t, .size = t->total, .fd = -1};
	return CI_OK;
}

void k8s_tar_out_free(struct k8s_tar_out *t)
{
	free(t);
}

int k8s_tar_out_status(const struct k8s_tar_out *t, ci_call *call)
{
	if (t->src_err)
		return ci_fail(call, CI_E_INVAL, "reading the source failed after %lld bytes",
			       (long long)t->data_got);
	if (t->short_src || t->data_got != t->data->size)
		return ci_fail(call, CI_E_INVAL, "the source ended after %lld of %lld bytes",
			       (long long)t->data_got, (long long)t->data->size);
	return CI_OK;
}

/* ---- in ---------------------------------------------------------------- */

enum { IN_HDR, IN_EXT, IN_DATA, IN_SKIP, IN_END };

void k8s_tar_in_init(struct k8s_tar_in *t, const char *name, const ci_sink *out)
{
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->out = out;
	t->ext.max = 64 * 1024;
	t->state = IN_HDR;
}

void k8s_tar_in_release(struct k8s_tar_in *t)
{
	k8s_buf_release(&t->ext);
}

static int in_fail(struct k8s_tar_in *t, int rc, const char *why)
{
	if (t->rc == CI_OK) {
		t->rc = rc;
		snprintf(t->err, sizeof(t->err), "%s", why);
	}
	return -1;
}

static int64_t field_num(const unsigned char *f, size_t w)
{
	int64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {
		for (i = 1; i < w; i++)
			v = v << 8 | f[i];
		return v;
	}
	while (i < w && f[i] == ' ')
		i++;
	for (; i < w && f[i] >= '0' && f[i] <= '7'; i++)
		v = v * 8 + (f[i] - '0');
	return v;
}

static bool checksum_ok(const unsigned char *h)
{
	unsigned sum = 0;

	for (int i = 0; i < BLK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return (int64_t)sum == field_num(h + 148, 8);
}

/* "N key=value\n" records: take path= as the next member's name. */
static void pax_path(struct k8s_tar_in *t)
{
	const char *p = k8s_buf_str(&t->ext), *end = p + t->ext.len;

	while (p < end) {
		char *sp;
		long n = strtol(p, &sp, 10);

		if (n <= 0 || sp >= end || *sp != ' ' || p + n > end)
			return;
		if (!strncmp(sp + 1, "path=", 5)) {
			size_t len = (size_t)(p + n - (sp + 6)) - 1;

			if (len < sizeof(t->longname)) {
				memcpy(t->longname, sp + 6, len);
				t->longname[len] = '\0';
				t->have_longname = true;
			}
		}
		p += n;
	}
}

static int in_header(struct k8s_tar_in *t)
{
	const unsigned char *h = t->hdr;
	char name[256 + 2];
	char type = (char)h[156];
	int64_t size;
	bool zero = true;

	for (int i = 0; i < BLK && zero; i++)
		zero = h[i] == 0;
	if (zero) {
		if (!t->done)
			return in_fail(t, CI_E_BACKEND, "tar: no file in the archive");
		t->state = IN_END;
		return 0;
	}
	if (!checksum_ok(h))
		return in_fail(t, CI_E_BACKEND, "tar: bad header checksum");
	size = field_num(h + 124, 12);
	if (size < 0)
		return in_fail(t, CI_E_BACKEND, "tar: bad size");
	if (type == 'x' || type == 'L' || type == 'g') {
		t->ext.len = 0;
		t->left = (uint64_t)size;
		t->pad = (BLK - (uint64_t)size % BLK) % BLK;
		t->state = type == 'g' ? IN_SKIP : IN_EXT;
		t->hdr[0] = (unsigned char)type; /* remember what the payload is */
		return 0;
	}
	if (t->done) {
		/* trailing members after ours: not expected; skip */
		t->left = (uint64_t)size;
		t->pad = (BLK - (uint64_t)size % BLK) % BLK;
		t->state = IN_SKIP;
		return 0;
	}
	if (t->have_longname) {
		snprintf(name, sizeof(name), "%s", t->longname);
	} else if (h[345] && !memcmp(h + 257, "ustar", 5)) {
		snprintf(name, sizeof(name), "%.155s/%.100s", (const char *)h + 345,
			 (const char *)h);
	} else {
		snprintf(name, sizeof(name), "%.100s", (const char *)h);
	}
	t->have_longname = false;
	if (strcmp(name, t->name))
		return in_fail(t, CI_E_BACKEND, "tar: unexpected member name");
	if (type == '2' || type == '1')
		return in_fail(t, CI_E_INVAL, "is a link (not followed)");
	if (type == '5')
		return in_fail(t, CI_E_INVAL, "is a directory");
	if (type != '0' && type != '\0' && type != '7')
		return in_fail(t, CI_E_INVAL, "not a regular file");
	t->left = (uint64_t)size;
	t->pad = (BLK - (uint64_t)size % BLK) % BLK;
	t->state = IN_DATA;
	t->done = true; /* from now on the file counts as found */
	return 0;
}

int k8s_tar_in_feed(struct k8s_tar_in *t, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t n;

	if (t->rc != CI_OK)
		return -1;
	while (len) {
		switch (t->state) {
		case IN_HDR:
			n = BLK - t->hdr_len < len ? BLK - t->hdr_len : len;
			memcpy(t->hdr + t->hdr_len, p, n);
			t->hdr_len += n;
			p += n;
			len -= n;
			if (t->hdr_len == BLK) {
				t->hdr_len = 0;
				if (in_header(t))
					return -1;
			}
			break;
		case IN_EXT:
		case IN_DATA:
		case IN_SKIP:
			if (t->left) {
				n = t->left < len ? (size_t)t->left : len;
				if (t->state == IN_EXT && k8s_buf_add(&t->ext, p, n))
					return in_fail(t, CI_E_BACKEND, "tar: oversized header");
				if (t->state == IN_DATA) {
					t->delivered += n;
					if (!t->stopped && t->out &&
					    t->out->write(t->out->ctx, CI_STREAM_DATA, p, n))
						t->stopped = true;
				}
				t->left -= n;
			} else {
				n = t->pad < len ? (size_t)t->pad : len;
				t->pad -= n;
			}
			p += n;
			len -= n;
			if (!t->left && !t->pad) {
				if (t->state == IN_EXT) {
					if (t->hdr[0] == 'L') {
						snprintf(t->longname, sizeof(t->longname), "%s",
							 k8s_buf_str(&t->ext));
						t->have_longname = true;
					} else {
						pax_path(t);
					}
				}
				t->state = IN_HDR;
			}
			break;
		default: /* IN_END: the rest is padding */
			return 0;
		}
	}
	/* A zero-length member needs no data bytes to be complete. */
	if (t->state == IN_DATA && !t->left && !t->pad)
		t->state = IN_HDR;
	return 0;
}
