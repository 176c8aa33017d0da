#!/usr/bin/env python3
"""Warm exec of python print(1): ci-server (bwrap backend, full HTTP path)
beside the raw floor (the same kind of bwrap sandbox + python3 run directly),
in one run.

Targets (issue 3): p50 ratio <= 1.15; at concurrency 8, execs/s >= 0.85x the
floor's parallel throughput.

Usage: bench/exec_bwrap.py [--build DIR] [--n 60] [--seconds 10] [--conc 8]
"""
import argparse
import http.client
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

KEY = "bench-key-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def floor_cmd(data_dir):
    """bwrap with the isolation the plugin uses (minus seccomp and cgroups)."""
    cmd = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns",
           "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--hostname", "sandbox", "--uid", "1000", "--gid", "1000",
           "--ro-bind", "/usr", "/usr"]
    for d in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        p = "/" + d
        if os.path.islink(p):
            cmd += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            cmd += ["--ro-bind", p, p]
    cmd += ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--bind", data_dir, "/mnt/data", "--chdir", "/mnt/data",
            "--setenv", "HOME", "/mnt/data", "--", "/usr/bin/python3", "-c", "print(1)"]
    return cmd


class Client:
    """One keep-alive connection; each run continues its own sandbox."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.session = None

    def run(self):
        body = {"lang": "py", "code": "print(1)"}
        if self.session:
            body["session_id"] = self.session
        self.conn.request("POST", "/v1/exec", json.dumps(body),
                          {"X-API-Key": KEY, "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        out = json.loads(resp.read())
        if resp.status != 200 or out.get("stdout") != "1\n":
            raise RuntimeError("bad exec answer: %s %s" % (resp.status, out))
        self.session = out["session_id"]


def timed(fn, n):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def throughput(make_fn, conc, seconds):
    counts = [0] * conc
    stop = time.monotonic() + seconds
    errors = []

    def worker(i):
        fn = make_fn(i)
        try:
            while time.monotonic() < stop:
                fn()
                counts[i] += 1
        except Exception as exc:  # reported, never hidden
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts) / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--conc", type=int, default=8)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="ci-bench-")
    port = free_port()
    env = dict(os.environ, CI_API_KEY=KEY, CI_PORT=str(port), CI_BACKEND="bwrap",
               CI_LOG_LEVEL="warn", CI_FILE_STORAGE_PATH=os.path.join(work, "files"),
               CI_PLUGIN_DIR=os.path.join(args.build, "plugins"))
    conf = os.path.join(work, "ci.conf")
    with open(conf, "w") as f:
        f.write('backends = { bwrap = { root = "%s/bwrap"; }; };\n' % work)
    server = subprocess.Popen([os.path.join(args.build, "ci-server"), "-c", conf], env=env,
                              stderr=open(os.path.join(work, "log"), "w"))
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        floor_dirs = [tempfile.mkdtemp(dir=work) for _ in range(args.conc)]
        for d in floor_dirs:
            os.chmod(d, 0o777)

        def floor_once(d=floor_dirs[0]):
            out = subprocess.run(floor_cmd(d), capture_output=True, check=True)
            assert out.stdout == b"1\n", out

        client = Client(port)
        client.run()  # creates the sandbox: later runs are warm
        floor_once()
        ours, floor = [], []
        for _ in range(args.n):  # interleaved so both see the same machine
            ours += timed(client.run, 1)
            floor += timed(floor_once, 1)
        p50_o, p50_f = statistics.median(ours), statistics.median(floor)
        p90_o = sorted(ours)[int(len(ours) * 0.9)]
        p90_f = sorted(floor)[int(len(floor) * 0.9)]
        print("sequential warm exec of print(1), %d runs each (ms)" % args.n)
        print("  %-22s p50 %7.2f   p90 %7.2f" % ("raw bwrap + python3", p50_f, p90_f))
        print("  %-22s p50 %7.2f   p90 %7.2f" % ("ci-server /exec", p50_o, p90_o))
        print("  p50 ratio: %.2f (target <= 1.15)" % (p50_o / p50_f))

        clients = [Client(port) for _ in range(args.conc)]
        t_floor = throughput(lambda i: (lambda: floor_once(floor_dirs[i])), args.conc,
                             args.seconds)
        t_ours = throughput(lambda i: clients[i].run, args.conc, args.seconds)
        print("concurrency %d for %.0fs (execs/s)" % (args.conc, args.seconds))
        print("  %-22s %8.1f" % ("raw bwrap + python3", t_floor))
        print("  %-22s %8.1f" % ("ci-server /exec", t_ours))
        print("  throughput ratio: %.2f (target >= 0.85)" % (t_ours / t_floor))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
