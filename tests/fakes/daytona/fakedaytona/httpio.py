"""HTTP plumbing for the fake Daytona: request bodies (Content-Length or
chunked, which the real SDK sends for uploads), a streaming multipart reader
(so a 50 MB upload never sits in memory) and small response helpers.

Test fixture only: nothing here is hardened for hostile peers beyond what
the tests need.
"""

import datetime
import json
import re


class BodyError(Exception):
    pass


class BodyReader:
    """Reads a request body framed by Content-Length or chunked encoding."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        te = (headers.get("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in te
        self.left = 0
        self.done = False
        if not self.chunked:
            cl = headers.get("Content-Length")
            try:
                self.left = int(cl) if cl else 0
            except ValueError:
                raise BodyError("bad Content-Length")
            if self.left <= 0:
                self.done = True
        self.total = 0

    def _next_chunk(self):
        line = self.rfile.readline(1024)
        if not line:
            raise BodyError("eof in chunk header")
        size = line.split(b";", 1)[0].strip()
        try:
            n = int(size, 16)
        except ValueError:
            raise BodyError("bad chunk size")
        if n == 0:
            # trailers until the empty line
            while True:
                t = self.rfile.readline(8192)
                if not t or t in (b"\r\n", b"\n"):
                    break
            self.done = True
        self.left = n

    def read(self, n=65536):
        """Up to n bytes; b'' at the end."""
        if self.done:
            return b""
        if self.chunked and self.left == 0:
            self._next_chunk()
            if self.done:
                return b""
        data = self.rfile.read(min(n, self.left))
        if not data:
            raise BodyError("eof in body")
        self.left -= len(data)
        self.total += len(data)
        if self.left == 0:
            if self.chunked:
                self.rfile.readline(16)  # CRLF after the chunk data
            else:
                self.done = True
        return data

    def read_all(self, limit=64 << 20):
        parts = []
        size = 0
        while True:
            d = self.read()
            if not d:
                break
            size += len(d)
            if size > limit:
                raise BodyError("body too large")
            parts.append(d)
        return b"".join(parts)

    def drain(self):
        while self.read():
            pass


def boundary_of(content_type):
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type or "", re.I)
    if not m or not content_type.lower().startswith("multipart/"):
        return None
    return (m.group(1) or m.group(2)).encode()


def parse_disposition(value):
    """Content-Disposition parameters as a dict (name, filename)."""
    out = {}
    for m in re.finditer(r';\s*([A-Za-z0-9_*-]+)=(?:"((?:[^"\\]|\\.)*)"|([^;]*))', value):
        out[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3).strip()
    return out


class MultipartReader:
    """Streams the parts of a multipart body.

    for headers, stream in reader.parts(): stream.read() until b''.
    """

    def __init__(self, body, boundary):
        self.body = body
        self.delim = b"\r\n--" + boundary
        self.buf = b"\r\n"  # so the first boundary matches the delimiter
        self.eof = False
        self.finished = False

    def _fill(self, want):
        while len(self.buf) < want and not self.eof:
            d = self.body.read(65536)
            if not d:
                self.eof = True
                break
            self.buf += d

    def _skip_preamble(self):
        while True:
            i = self.buf.find(self.delim)
            if i >= 0:
                self.buf = self.buf[i + len(self.delim):]
                return
            if self.eof:
                raise BodyError("no multipart boundary")
            self.buf = self.buf[-len(self.delim):]
            self._fill(len(self.buf) + 65536)

    def _after_boundary(self):
        """At the bytes right after a boundary: '--' ends, CRLF starts a part."""
        self._fill(2)
        if self.buf.startswith(b"--"):
            self.finished = True
            return False
        # skip transport padding up to CRLF
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                self.buf = self.buf[i + 2:]
                return True
            if self.eof:
                raise BodyError("truncated multipart")
            self._fill(len(self.buf) + 1024)

    def _headers(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if self.buf.startswith(b"\r\n"):
                i = -2
                break
            if self.eof or len(self.buf) > 65536:
                raise BodyError("bad part headers")
            self._fill(len(self.buf) + 4096)
        raw = self.buf[:max(i, 0)].decode("utf-8", "replace")
        self.buf = self.buf[i + 4:]
        hdrs = {}
        for line in raw.split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        return hdrs

    def parts(self):
        self._fill(len(self.delim) + 2)
        self._skip_preamble()
        while self._after_boundary():
            hdrs = self._headers()
            stream = _PartStream(self)
            yield hdrs, stream
            stream.drain()

    def _part_read(self, n):
        while True:
            i = self.buf.find(self.delim)
            if i >= 0:
                if i == 0:
                    self.buf = self.buf[len(self.delim):]
                    return None
                take = min(i, n)
                out, self.buf = self.buf[:take], self.buf[take:]
                return out
            keep = len(self.delim) - 1
            if len(self.buf) > keep:
                take = min(len(self.buf) - keep, n)
                out, self.buf = self.buf[:take], self.buf[take:]
                return out
            if self.eof:
                raise BodyError("truncated multipart part")
            self._fill(len(self.buf) + 65536)


class _PartStream:
    def __init__(self, reader):
        self.reader = reader
        self.done = False

    def read(self, n=65536):
        if self.done:
            return b""
        d = self.reader._part_read(n)
        if d is None:
            self.done = True
            return b""
        return d

    def read_all(self, limit=1 << 20):
        out = b""
        while True:
            d = self.read()
            if not d:
                return out
            out += d
            if len(out) > limit:
                raise BodyError("part too large")

    def drain(self):
        while self.read():
            pass


def iso(ts):
    """RFC 3339 with milliseconds and Z, like the NestJS API."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def go_time_string(ts):
    """Go's time.Time.String(), which the daemon puts into modTime."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    frac = ("%09d" % (int(round(ts * 1e9)) % 1000000000)).rstrip("0")
    return dt.strftime("%Y-%m-%d %H:%M:%S") + ("." + frac if frac else "") + " +0000 UTC"


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))
