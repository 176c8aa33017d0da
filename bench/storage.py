#!/usr/bin/env python3
"""Storage throughput and memory (issue 4), ci-server beside the disk floor in
one run.

1. A 1 GiB file of random bytes is uploaded (POST /v1/upload, curl streaming
   it from disk) and downloaded (GET /v1/download, curl to /dev/null), beside
   `dd` of the same file: the write floor is `dd conv=fsync` of the source
   (ci-server fsyncs every upload before it answers), the read floor is `dd`
   to /dev/null of the file ci-server stored. A loopback floor is measured
   too: a minimal server that answers with sendfile(2) from that file, read
   by the same curl. Reads are measured cold and warm, in an order that turns
   each round: "cold" evicts the file from the page cache first (fsync +
   posix_fadvise DONTNEED; the machine-wide drop_caches is not used on a
   shared machine). The VM's host still caches the disk, so cold means "not
   in this kernel's page cache"; the first read of a freshly written file,
   slower for every reader, is done once untimed.
   Server memory (VmRSS sampled every 20 ms, and VmHWM) is read from /proc
   during the transfers.
2. 1,000 storage sessions of 10 small files each (POST /v1/upload/batch from
   a few keep-alive clients) on a fresh server: its RSS afterwards, and
   after a restart over the same storage.

Targets: upload >= 200 MB/s, download >= 0.5x the read floor, RSS growth
during the transfers <= 32 MiB, RSS with 1,000 sessions <= 64 MiB.
MB = 10^6 bytes.

Usage: bench/storage.py [--build DIR] [--size-mib 1024] [--rounds 3]
                        [--sessions 1000] [--files 10] [--clients 4] [--dir TMPDIR]
"""
import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import KEY, Server, mib  # noqa: E402

CHUNK = 1 << 20


class RssSampler:
    """Peak VmRSS of a process over a window, sampled every 20 ms."""

    def __init__(self, server):
        self.server = server
        self.peak = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.server.mem()["VmRSS"])
            except (OSError, KeyError):
                pass
            self._stop.wait(0.02)

    def __enter__(self):
        self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join()
        self.peak = max(self.peak, self.server.mem()["VmRSS"])


def make_source(path, size):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(CHUNK, left))
            h.update(b)
            f.write(b)
            left -= len(b)
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def evict(path):
    """Drop one file's pages from the page cache (written back first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed_run(cmd, **kw):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, **kw)
    return time.perf_counter() - t0, out


def dd_write(src, dst):
    return timed_run(["dd", "if=" + src, "of=" + dst, "bs=1M", "conv=fsync"])[0]


def dd_read(path):
    return timed_run(["dd", "if=" + path, "of=/dev/null", "bs=1M"])[0]


def curl_upload(server, src):
    dt, out = timed_run(["curl", "-sS", "--fail-with-body", "-H", "X-API-Key: " + KEY,
                         "-F", "file=@%s;filename=big.bin" % src, "-w", "\n%{http_code}",
                         server.url("/v1/upload")])
    body, code = out.stdout.decode().rsplit("\n", 1)
    if code != "200":
        raise RuntimeError("upload: HTTP %s %s" % (code, body))
    ans = json.loads(body)
    return dt, ans["session_id"], ans["files"][0]["fileId"]


def curl_download(server, sid, fid, size):
    dt, out = timed_run(["curl", "-sS", "--fail", "-H", "X-API-Key: " + KEY, "-o", "/dev/null",
                         "-w", "%{http_code} %{size_download}",
                         server.url("/v1/download/%s/%s" % (sid, fid))])
    code, got = out.stdout.decode().split()
    if code != "200" or int(got) != size:
        raise RuntimeError("download: HTTP %s, %s of %d bytes" % (code, got, size))
    return dt


def download_sha(server, sid, fid):
    """Streams the stored file through sha256 (integrity, not timed)."""
    c = server.conn()
    c.request("GET", "/v1/download/%s/%s" % (sid, fid), headers={"X-API-Key": KEY})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError("download: HTTP %d" % r.status)
    h = hashlib.sha256()
    while True:
        b = r.read(CHUNK)
        if not b:
            break
        h.update(b)
    c.close()
    return h.hexdigest()


class SendfileFloor:
    """The loopback floor of a download: a minimal HTTP/1.1 server that answers
    every GET with the file through sendfile(2), as fast as one socket goes."""

    def __init__(self):
        self.path = None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    b = c.recv(4096)
                    if not b:
                        break
                    buf += b
                with open(self.path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                              b"Connection: close\r\n\r\n" % size)
                    off = 0
                    while off < size:
                        off += os.sendfile(c.fileno(), f.fileno(), off, size - off)

    def get(self, path, size):
        self.path = path
        dt, out = timed_run(["curl", "-sS", "--fail", "-o", "/dev/null", "-w",
                             "%{size_download}", "http://127.0.0.1:%d/" % self.port])
        if int(out.stdout) != size:
            raise RuntimeError("sendfile floor: short read")
        return dt

    def close(self):
        self.sock.close()


def stored_path(root, fid):
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith(fid) and f.endswith(".data"):
                return os.path.join(d, f)
    raise RuntimeError("stored file %s not found under %s" % (fid, root))


def delete_file(server, sid, fid):
    c = server.conn()
    c.request("DELETE", "/v1/files/%s/%s" % (sid, fid), headers={"X-API-Key": KEY})
    r = c.getresponse()
    r.read()
    c.close()
    if r.status >= 300:
        raise RuntimeError("delete: HTTP %d" % r.status)


def big_file(args, work):
    size = args.size_mib << 20
    src = os.path.join(work, "src.bin")
    floor = os.path.join(work, "floor.bin")
    print("writing a %d MiB random source file ..." % args.size_mib, flush=True)
    sha = make_source(src, size)
    srv = Server(args.build, work, args.backend, name="big",
                 env={"CI_MAX_FILE_SIZE_BYTES": str(size + (64 << 20))}).start()
    res = {k: [] for k in ("w_floor", "up", "r_floor_cold", "sf_cold", "down_cold",
                           "r_floor_warm", "sf_warm", "down_warm")}
    sf = None
    try:
        time.sleep(0.5)
        base = srv.mem()
        peak = base["VmRSS"]
        for rnd in range(args.rounds):
            res["w_floor"].append(dd_write(src, floor))
            os.unlink(floor)
            with RssSampler(srv) as s:
                dt, sid, fid = curl_upload(srv, src)
            res["up"].append(dt)
            peak = max(peak, s.peak)
            # Every reader reads the one file ci-server stored. Its first
            # read after the write is slower than any later one here,
            # whoever reads it (the VM host's cache), so it is untimed.
            stored = stored_path(srv.env["CI_FILE_STORAGE_PATH"], fid)
            sf = sf or SendfileFloor()
            dd_read(stored)

            def ci(key):
                with RssSampler(srv) as smp:
                    res[key].append(curl_download(srv, sid, fid, size))
                return smp.peak

            readers = [lambda k: res[k].append(dd_read(stored)),
                       lambda k: res[k].append(sf.get(stored, size)), ci]
            keys = ("r_floor_", "sf_", "down_")
            for temp in ("cold", "warm"):
                for i in range(3):  # the order turns each round
                    j = (i + rnd) % 3
                    if temp == "cold":
                        evict(stored)
                    peak = max(peak, readers[j](keys[j] + temp) or 0)
            if rnd == 0 and download_sha(srv, sid, fid) != sha:
                raise RuntimeError("downloaded bytes differ from the upload")
            delete_file(srv, sid, fid)
        end = srv.mem()
    finally:
        srv.stop()
        if sf:
            sf.close()
        os.unlink(src)

    def rate(key):
        return size / 1e6 / statistics.median(res[key])

    print("\n1. %d MiB file over loopback, median of %d rounds (MB/s, MB = 10^6 B)" %
          (args.size_mib, args.rounds))
    print("  %-26s %9s %9s %9s" % ("", "write", "read cold", "read warm"))
    print("  %-26s %9.0f %9.0f %9.0f" % ("floor: dd (write fsynced)", rate("w_floor"),
                                         rate("r_floor_cold"), rate("r_floor_warm")))
    print("  %-26s %9s %9.0f %9.0f" % ("loopback: sendfile + curl", "-", rate("sf_cold"),
                                       rate("sf_warm")))
    print("  %-26s %9.0f %9.0f %9.0f" % ("ci-server + curl", rate("up"), rate("down_cold"),
                                         rate("down_warm")))
    print("  %-26s %8.2fx %8.2fx %8.2fx" % ("ci-server / dd", rate("up") / rate("w_floor"),
                                            rate("down_cold") / rate("r_floor_cold"),
                                            rate("down_warm") / rate("r_floor_warm")))
    print("  %-26s %9s %8.2fx %8.2fx" % ("ci-server / loopback", "-",
                                         rate("down_cold") / rate("sf_cold"),
                                         rate("down_warm") / rate("sf_warm")))
    up = rate("up")
    print("  upload %.0f MB/s (target >= 200): %s" % (up, "ok" if up >= 200 else "MISSED"))
    for label, c, f in (("cold", "down_cold", "r_floor_cold"),
                        ("warm", "down_warm", "r_floor_warm")):
        r = rate(c) / rate(f)
        print("  download / dd floor, %s: %.2fx (target >= 0.5): %s" %
              (label, r, "ok" if r >= 0.5 else "MISSED"))
    growth = mib(peak - base["VmRSS"])
    print("  server RSS: %.1f MiB before, peak %.1f MiB during transfers, %.1f MiB after; "
          "VmHWM %.1f -> %.1f MiB" % (mib(base["VmRSS"]), mib(peak), mib(end["VmRSS"]),
                                      mib(base["VmHWM"]), mib(end["VmHWM"])))
    print("  RSS growth %.1f MiB (target <= 32): %s" % (growth,
                                                         "ok" if growth <= 32 else "MISSED"))
    print("  integrity: sha256 of a download equals the source's")


def multipart(nfiles, size, rnd):
    boundary = "----ci-bench-" + uuid.uuid4().hex
    parts = []
    for i in range(nfiles):
        data = ("%s file %d\n" % (rnd, i)).encode().ljust(size, b"x")
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                      "filename=\"dir/f%02d.txt\"\r\nContent-Type: text/plain\r\n\r\n" %
                      (boundary, i)).encode() + data + b"\r\n")
    body = b"".join(parts) + ("--%s--\r\n" % boundary).encode()
    return body, "multipart/form-data; boundary=" + boundary


def many_sessions(args, work):
    work = os.path.join(work, "sessions")
    os.mkdir(work)
    srv = Server(args.build, work, args.backend, name="sessions").start()
    sids = []
    errors = []
    lock = threading.Lock()
    todo = iter(range(args.sessions))

    def worker():
        c = srv.conn()
        try:
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                body, ctype = multipart(args.files, args.file_bytes, "s%d" % i)
                c.request("POST", "/v1/upload/batch", body,
                          {"X-API-Key": KEY, "Content-Type": ctype})
                r = c.getresponse()
                ans = json.loads(r.read())
                if r.status != 200 or ans.get("succeeded") != args.files:
                    raise RuntimeError("batch upload: HTTP %d %s" % (r.status, ans))
                with lock:
                    sids.append(ans["storage_session_id"])
        except Exception as exc:  # reported, never hidden
            errors.append(exc)
        finally:
            c.close()

    try:
        time.sleep(0.5)
        base = srv.mem()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        if errors:
            raise errors[0]
        time.sleep(0.5)
        after = srv.mem()
        # every session is live and holds its files
        c = srv.conn()
        for sid in sids[:: max(1, len(sids) // 20)]:
            c.request("GET", "/v1/files/%s?detail=simple" % sid, headers={"X-API-Key": KEY})
            r = c.getresponse()
            got = json.loads(r.read())
            if r.status != 200 or len(got) != args.files:
                raise RuntimeError("session %s: HTTP %d, %s" % (sid, r.status, got))
        c.close()
        srv.stop()
        srv.start()
        time.sleep(0.5)
        c = srv.conn()
        c.request("GET", "/v1/files/%s?detail=simple" % sids[0], headers={"X-API-Key": KEY})
        r = c.getresponse()
        if r.status != 200 or len(json.loads(r.read())) != args.files:
            raise RuntimeError("session lost over a restart")
        c.close()
        restarted = srv.mem()
    finally:
        srv.stop()
    n = len(sids)
    print("\n2. %d storage sessions x %d files of %d B (POST /upload/batch, %d keep-alive "
          "clients)" % (n, args.files, args.file_bytes, args.clients))
    print("  %.1f s, %.0f uploads/s (%.0f files/s, each fsynced)" % (dt, n / dt,
                                                                      n * args.files / dt))
    print("  server RSS: %.1f MiB before, %.1f MiB with %d sessions (VmHWM %.1f MiB); "
          "%.1f MiB after a restart over the same storage" %
          (mib(base["VmRSS"]), mib(after["VmRSS"]), n, mib(after["VmHWM"]),
           mib(restarted["VmRSS"])))
    rss = mib(max(after["VmRSS"], restarted["VmRSS"]))
    print("  RSS %.1f MiB (target <= 64): %s" % (rss, "ok" if rss <= 64 else "MISSED"))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--backend", default="fake", help="storage does not use it (fake|bwrap)")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--file-bytes", type=int, default=2048)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--dir", default=None, help="where the temporary files go (default TMPDIR)")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-sessions", action="store_true")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    for tool in ("curl", "dd"):
        if not shutil.which(tool):
            sys.exit("bench: %s is missing" % tool)
    work = tempfile.mkdtemp(prefix="ci-bench-storage-", dir=args.dir)
    try:
        print("ci-server storage bench, %s, %d cores, load %.1f; backend %s" %
              (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), os.getloadavg()[0],
               args.backend))
        if not args.skip_big:
            big_file(args, work)
        if not args.skip_sessions:
            many_sessions(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
