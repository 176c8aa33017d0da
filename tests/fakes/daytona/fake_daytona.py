#!/usr/bin/python3
"""A faithful fake Daytona (control-plane API + toolbox proxy) for tests.

Implements ../../../docs/backends/daytona.md's test fixture, following the
project's daytona-fake.md: two HTTP/1.1 listeners on 127.0.0.1 (the API and
the toolbox proxy, on separate ports), the sandbox state machine, real
command execution in a per-sandbox directory, and fault injection through
/__fake/... . Python 3 standard library only.

    fake_daytona.py [--port N] [--toolbox-port N] [--toolbox-prefix /toolbox]
                    [--data-dir DIR] [--config JSON] [--port-file FILE]

Prints "LISTENING <api port>" and "TOOLBOX <toolbox port>" on stdout once
both accept connections. TEST FIXTURE ONLY: it listens on loopback and runs
whatever commands its clients send.
"""

import argparse
import http
import io
import http.server
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakedaytona import api, toolbox  # noqa: E402
from fakedaytona.httpio import BodyError, BodyReader, dumps, iso  # noqa: E402
from fakedaytona.state import Fake  # noqa: E402

FS_EMPTY_STATUSES = (400, 403, 404)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-daytona/1"
    fake = None
    role = "api"
    prefix = "/toolbox"

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_DAYTONA_VERBOSE"):
            sys.stderr.write("fake-daytona: " + (fmt % args) + "\n")

    # --- request helpers -------------------------------------------------
    def bearer(self):
        a = self.headers.get("Authorization") or ""
        return a[7:] if a.startswith("Bearer ") else None

    def qs(self, name):
        v = self.query.get(name)
        return v[0] if v else ""

    def body(self):
        if self._body is None:
            self._body = BodyReader(self.rfile, self.headers)
        return self._body

    def read_body(self):
        data = self.body().read_all()
        self._excerpt = data[:2048].decode("utf-8", "replace")
        return data

    def note_parts(self, names):
        self._parts = names

    # --- responses -------------------------------------------------------
    def _start(self, status, ctype, length, extra=None):
        self._status = status
        # logged before the answer leaves, so a client that reads
        # /__fake/requests right after its reply always finds it
        self._log_entry()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if status != 204 and status >= 200:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def send_bytes(self, status, data, ctype, extra=None):
        self._start(status, ctype, len(data), extra)
        if status != 204 and self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status, obj, extra=None):
        self.send_bytes(status, dumps(obj).encode(), "application/json; charset=utf-8", extra)

    def send_empty(self, status):
        self.send_bytes(status, b"", None)

    def send_file(self, host, name):
        size = os.path.getsize(host)
        q = urllib.parse.quote(name, safe="")
        self._start(200, "application/octet-stream", size, {
            "Content-Disposition": "attachment; filename=\"%s\"; filename*=utf-8''%s" % (name, q),
            "Content-Transfer-Encoding": "binary"})
        with open(host, "rb") as f:
            shutil.copyfileobj(f, self.wfile, 65536)

    def api_error(self, status, message):
        self.send_json(status, {"path": self.path_only, "timestamp": iso(time.time()),
                                "statusCode": status, "error": http.HTTPStatus(status).phrase,
                                "message": message})

    def tbx_body(self, status, message, code):
        return {"statusCode": status, "message": message, "code": code,
                "timestamp": iso(time.time()), "path": self._tbx_path(),
                "method": self.command}

    def _tbx_path(self):
        rest = self.path_only[len(self.prefix):]
        i = rest.find("/", 1)
        return rest[i:] if i > 0 else rest

    def tbx_error(self, status, message, code, fs=False):
        if fs and status in FS_EMPTY_STATUSES and self.fake.config["toolbox_4xx_empty_body"]:
            return self.send_empty(status)
        return self.send_json(status, self.tbx_body(status, message, code))

    # --- dispatch --------------------------------------------------------
    def _handle(self):
        u = urllib.parse.urlsplit(self.path)
        self.path_only = u.path
        self.query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        self._body = None
        self._status = 0
        self._excerpt = ""
        self._parts = None
        self._entry = {"ts": iso(time.time()), "port": self.role, "method": self.command,
                       "path": u.path, "query": u.query,
                       "headers": {k.lower(): v for k, v in self.headers.items()}}
        try:
            if self._fault():
                return
            self._dispatch()
        except BodyError as e:
            self.close_connection = True
            if not self._status:
                self.send_json(400, {"statusCode": 400, "message": str(e),
                                     "code": "INVALID_REQUEST_BODY"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            # an answer sent before the body was read (auth, gating, faults)
            # must not leave the body to be parsed as the next request
            try:
                body = self.body()
                if not body.done and (body.chunked or body.left <= (1 << 20)):
                    body.drain()
            except (BodyError, OSError):
                pass
            if not self.body().done:
                self.close_connection = True
            self._log_entry()

    def _log_entry(self):
        entry, self._entry = self._entry, None
        if entry is None or self.path_only.startswith("/__fake") or \
                isinstance(self.wfile, io.BytesIO):
            if entry is not None and isinstance(self.wfile, io.BytesIO):
                self._entry = entry  # after_dispatch: log the fault's answer instead
            return
        entry.update(status=self._status, body_excerpt=self._excerpt)
        if self._parts is not None:
            entry["parts"] = self._parts
        with self.fake.lock:
            self.fake.log(entry)

    def _fault(self):
        if self.path_only.startswith("/__fake"):
            return False
        with self.fake.lock:
            rule = self.fake.match_fault(self.command, self.path_only)
        if not rule:
            return False
        if rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if rule.get("drop_connection") or rule.get("after_delay_drop"):
            self.close_connection = True
            self._status = -1
            self.connection.shutdown(2)
            return True
        if not rule.get("status"):
            return False
        if rule.get("after_dispatch"):
            # do the real work, then lose its answer (a reply lost in transit)
            real, self.wfile = self.wfile, io.BytesIO()
            try:
                self._dispatch()
            finally:
                self.wfile = real
        self.body().drain()
        body = rule.get("body")
        if rule.get("empty_body") or body is None:
            data, ctype = b"", None
        elif isinstance(body, str):
            data, ctype = body.encode(), "text/plain"
        else:
            data, ctype = dumps(body).encode(), "application/json; charset=utf-8"
        self.send_bytes(int(rule["status"]), data, ctype, rule.get("headers"))
        return True

    def _dispatch(self):
        p = self.path_only
        if p.startswith("/__fake/"):
            return api.handle_control(self, self.fake)
        if self.role == "api":
            if p.startswith("/api/socket.io"):
                # the SDK's event socket: refuse it like the recording fake did
                self.close_connection = True
                self._status = -1
                return
            if p == "/api" or p.startswith("/api/"):
                return api.handle_api(self, self.fake)
        elif p.startswith(self.prefix + "/"):
            return toolbox.handle_toolbox(self, self.fake, self.prefix)
        self.send_json(404, {"statusCode": 404, "message": "Cannot %s %s" % (self.command, p),
                             "error": "Not Found"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(fake, role, port, prefix):
    cls = type("Handler_" + role, (Handler,), {"fake": fake, "role": role, "prefix": prefix})
    return Server(("127.0.0.1", port), cls)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("FAKE_DAYTONA_PORT", "0")))
    ap.add_argument("--toolbox-port", type=int, default=0)
    ap.add_argument("--toolbox-prefix", default="/toolbox")
    ap.add_argument("--data-dir")
    ap.add_argument("--config", default=os.environ.get("FAKE_DAYTONA_CONFIG", "{}"))
    ap.add_argument("--port-file")
    args = ap.parse_args()

    own_dir = args.data_dir is None
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="fake-daytona-")
    fake = Fake(os.path.join(data_dir, "sandboxes"), json.loads(args.config))
    prefix = "/" + args.toolbox_prefix.strip("/")
    api_srv = make_server(fake, "api", args.port, prefix)
    tbx_srv = make_server(fake, "toolbox", args.toolbox_port, prefix)
    tport = tbx_srv.server_address[1]
    fake.toolbox_base = "http://127.0.0.1:%d%s" % (tport, prefix)
    for s in (api_srv, tbx_srv):
        threading.Thread(target=s.serve_forever, daemon=True).start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"api_port": api_srv.server_address[1], "toolbox_port": tport,
                       "pid": os.getpid()}, f)
        os.replace(tmp, args.port_file)
    print("LISTENING %d" % api_srv.server_address[1], flush=True)
    print("TOOLBOX %d" % tport, flush=True)
    stop.wait()
    for s in (api_srv, tbx_srv):
        s.shutdown()
    with fake.lock:
        fake.reset()
    if own_dir:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
