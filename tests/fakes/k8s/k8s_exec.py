"""pods/exec over WebSocket for the fake Kubernetes API server: the server
side of RFC 6455 (written here for the fixture only) and the remotecommand
channel protocols v4.channel.k8s.io and v5.channel.k8s.io.

Every binary message is one channel byte and data: 0 stdin, 1 stdout,
2 stderr, 3 status (a metav1.Status as JSON), 4 resize, and in v5 only
255 = close: [255, ch] half-closes channel ch (the client's stdin EOF).
Like the kubelet, the server sends an empty message on each output channel
first, streams output as it comes, then the status, then a close frame.
Closing the connection does not stop the command (it keeps running in the
pod, as on a real cluster); its pipes are closed, so it gets SIGPIPE or
EPIPE if it writes again.

TEST FIXTURE ONLY.
"""
import base64
import hashlib
import json
import os
import queue
import select
import struct
import subprocess
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
CH_STDIN, CH_STDOUT, CH_STDERR, CH_ERROR, CH_RESIZE, CH_CLOSE = 0, 1, 2, 3, 4, 255
OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def pick_protocol(offered, supported):
    offered = [p.strip() for p in (offered or "").split(",") if p.strip()]
    for p in supported:
        if p in offered:
            return p
    return None


def unmask(data, mask):
    n = len(data)
    if not n:
        return data
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")


class Closed(Exception):
    pass


class WsConn:
    """RFC 6455 server end on an (SSL) socket, driven from one thread: the
    socket is read only when select() (or the TLS layer's pending bytes)
    says so, and frames are parsed from what has arrived. Writes block."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.frag_op, self.frags = None, []
        self.closed = False
        self.eof = False

    def pending(self):
        return hasattr(self.sock, "pending") and self.sock.pending() > 0

    def fill(self):
        """Read what is there (call when readable). False at end of stream."""
        chunk = self.sock.recv(262144)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _frame(self):
        """One complete frame from buf, or None."""
        b = self.buf
        if len(b) < 2:
            return None
        fin, op, masked, n = b[0] & 0x80, b[0] & 0x0F, b[1] & 0x80, b[1] & 0x7F
        if b[0] & 0x70:
            raise Closed("reserved bits set")
        if not masked:
            raise Closed("client frame not masked")
        off = 2
        if n == 126:
            if len(b) < 4:
                return None
            n, off = struct.unpack("!H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, off = struct.unpack("!Q", b[2:10])[0], 10
        if op >= 8 and (n > 125 or not fin):
            raise Closed("bad control frame")
        if len(b) < off + 4 + n:
            return None
        mask = b[off:off + 4]
        data = unmask(b[off + 4:off + 4 + n], mask)
        self.buf = b[off + 4 + n:]
        return bool(fin), op, data

    def messages(self):
        """Complete data messages parsed so far, as (opcode, payload); pings
        are answered, a close comes back as (OP_CLOSE, payload)."""
        out = []
        while True:
            f = self._frame()
            if f is None:
                return out
            fin, op, data = f
            if op == OP_PING:
                self.send(OP_PONG, data)
            elif op == OP_PONG:
                pass
            elif op == OP_CLOSE:
                out.append((OP_CLOSE, data))
                return out
            else:
                if op == OP_CONT:
                    if self.frag_op is None:
                        raise Closed("continuation without a start")
                elif self.frag_op is not None:
                    raise Closed("new message inside a fragmented one")
                else:
                    self.frag_op = op
                self.frags.append(data)
                if fin:
                    out.append((self.frag_op, b"".join(self.frags)))
                    self.frag_op, self.frags = None, []

    def send(self, op, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | op, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | op, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | op, 127, n)
        if self.closed:
            raise Closed("already closed")
        self.sock.sendall(head + payload)

    def close(self, code=1000, reason=b""):
        try:
            self.send(OP_CLOSE, struct.pack("!H", code) + reason)
        except (OSError, Closed):
            pass
        self.closed = True


def exit_status(code):
    """The channel-3 metav1.Status of an exit code, as the kubelet words it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": "command terminated with non-zero exit code: exit status %d" % code,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


class ExecSession:
    """One exec: the process, its pipes and the WebSocket."""

    def __init__(self, ws, proto, argv, want_stdin, want_out, want_err, stats):
        self.ws = ws
        self.v5 = proto.startswith("v5.")
        self.argv = argv
        self.want_stdin, self.want_out, self.want_err = want_stdin, want_out, want_err
        self.stats = stats
        self.stdin_q = queue.Queue()

    def _stdin_writer(self, pipe):
        """Separate thread: a process that does not read its stdin must not
        stop the output pumps."""
        while True:
            data = self.stdin_q.get()
            if data is None:
                break
            try:
                pipe.write(data)
                pipe.flush()
            except OSError:
                break
        try:
            pipe.close()
        except OSError:
            pass

    def _client_input(self):
        """Handle what the client sent; False once it closed or failed."""
        try:
            if not self.ws.fill():
                return False
            for op, data in self.ws.messages():
                if op == OP_CLOSE:
                    return False
                if op not in (OP_BIN, OP_TEXT) or not data:
                    continue
                ch, body = data[0], data[1:]
                if ch == CH_STDIN and self.want_stdin:
                    if body:
                        self.stats["stdin_bytes"] += len(body)
                        self.stdin_q.put(body)
                elif ch == CH_CLOSE and self.v5 and body[:1] == bytes([CH_STDIN]):
                    self.stats["stdin_closes"] += 1
                    self.stdin_q.put(None)
            return True
        except (Closed, OSError, ValueError):
            return False

    def run(self):
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE if self.want_stdin else
                                subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if self.want_stdin:
            threading.Thread(target=self._stdin_writer, args=(proc.stdin,), daemon=True).start()
        fds = {proc.stdout.fileno(): CH_STDOUT, proc.stderr.fileno(): CH_STDERR}
        sock = self.ws.sock.fileno()
        client = True
        try:
            for ch in (CH_STDOUT, CH_STDERR, CH_ERROR):
                self.ws.send(OP_BIN, bytes([ch]))
            while fds and client:
                wait = 0 if self.ws.pending() else 0.2
                r, _, _ = select.select(list(fds) + [sock], [], [], wait)
                if sock in r or self.ws.pending():
                    client = self._client_input()
                for fd in r:
                    if fd not in fds:
                        continue
                    data = os.read(fd, 65536)
                    if not data:
                        del fds[fd]
                        continue
                    ch = fds[fd]
                    if (ch == CH_STDOUT and self.want_out) or (ch == CH_STDERR and self.want_err):
                        self.ws.send(OP_BIN, bytes([ch]) + data)
            if not client:
                return  # the command keeps running, like on a cluster
            code = proc.wait()
            if code < 0:
                code = 128 - code  # killed by a signal: what the runtime reports
            self.ws.send(OP_BIN, bytes([CH_ERROR]) + json.dumps(exit_status(code)).encode())
            self.ws.close()
            # Let the client's close frame arrive before the socket goes.
            for _ in range(10):
                r, _, _ = select.select([sock], [], [], 0.2)
                if not r or not self._client_input():
                    break
        except (Closed, OSError):
            pass
        finally:
            self.stdin_q.put(None)
            proc.stdout.close()
            proc.stderr.close()
            threading.Thread(target=proc.wait, daemon=True).start()
