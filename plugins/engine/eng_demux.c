/*
 * Demultiplexer of a non-TTY exec stream: frames of
 * [stream(1) 0 0 0 size(4, big-endian)] payload, split arbitrarily across
 * reads. Payload goes to the sink as it arrives; nothing is buffered but
 * the 8-byte header.
 */
#include <string.h>

#include "engine.h"

void eng_demux_init(struct eng_demux *d, const ci_sink *out)
{
	memset(d, 0, sizeof(*d));
	d->out = out;
}

static void deliver(struct eng_demux *d, const unsigned char *p, size_t n)
{
	bool *stop;
	int stream;

	d->bytes[d->stream] += n;
	if (d->stream == 1) {
		stream = CI_STREAM_STDOUT;
		stop = &d->stop_out;
	} else if (d->stream == 2) {
		stream = CI_STREAM_STDERR;
		stop = &d->stop_err;
	} else {
		return; /* 0: stdin echo, never wanted */
	}
	if (*stop || !d->out)
		return;
	if (d->out->write(d->out->ctx, stream, p, n) != 0)
		*stop = true;
}

int eng_demux_feed(struct eng_demux *d, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t take;

	if (d->bad)
		return -1;
	while (len) {
		if (d->left == 0 && d->hdr_len < 8) {
			take = 8 - d->hdr_len;
			if (take > len)
				take = len;
			memcpy(d->hdr + d->hdr_len, p, take);
			d->hdr_len += (unsigned)take;
			p += take;
			len -= take;
			if (d->hdr_len < 8)
				break;
			if (d->hdr[0] > 2 || d->hdr[1] || d->hdr[2] || d->hdr[3]) {
				d->bad = true;
				return -1;
			}
			d->stream = d->hdr[0];
			d->left = (uint32_t)d->hdr[4] << 24 | (uint32_t)d->hdr[5] << 16 |
				  (uint32_t)d->hdr[6] << 8 | d->hdr[7];
			d->hdr_len = 0;
			continue;
		}
		take = d->left < len ? d->left : len;
		deliver(d, p, take);
		d->left -= (uint32_t)take;
		p += take;
		len -= take;
	}
	return 0;
}

bool eng_demux_complete(const struct eng_demux *d)
{
	return !d->bad && d->left == 0 && d->hdr_len == 0;
}
