#!/usr/bin/env python3
"""Warm exec of python print(1): ci-server (bwrap backend, full HTTP path)
beside the raw floor in one run. The floor is the plugin's own bwrap command
line (recorded once through the plugin's `bwrap` path setting: same
namespaces, mounts, seccomp program, environment and host uid) with the
program replaced by python3 -c 'print(1)', run directly.

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
# A benchmark is one principal hammering the server: per-principal limits off.
NO_LIMITS = "limits = { principal_concurrent_execs = 0; principal_execs_per_minute = 0; };\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


RECORDER = r"""#!/bin/sh
# Records how the bwrap plugin starts bwrap (argv, environment, host uid,
# the seccomp program on fd 3; the last call wins), then runs the real
# bwrap unchanged.
d=%(dir)s
cat <&3 >"$d/seccomp.bpf.$$"
exec 3<"$d/seccomp.bpf.$$"
mv "$d/seccomp.bpf.$$" "$d/seccomp.bpf"
cat /proc/self/environ >"$d/environ"
echo "$(id -u) $(id -g)" >"$d/ids"
printf '%%s\0' "$@" >"$d/argv"
exec %(bwrap)s "$@"
"""


def record_plugin_command(args, work):
    """The exact bwrap command line the plugin runs for print(1), with its
    seccomp program, environment and host uid: the floor replays it."""
    rec = os.path.join(work, "rec")
    os.makedirs(rec)
    os.chmod(rec, 0o777)
    os.chmod(work, 0o755)
    script = os.path.join(work, "bwrap-recorder")
    with open(script, "w") as f:
        f.write(RECORDER % {"dir": rec, "bwrap": shutil.which("bwrap")})
    os.chmod(script, 0o755)
    conf = os.path.join(work, "rec.conf")
    with open(conf, "w") as f:
        f.write('backends = { bwrap = { root = "%s/rec-root"; bwrap = "%s"; }; };\n'
                % (work, script))
    server, port = start_server(args, work, conf, "rec")
    try:
        Client(port).run()
    finally:
        stop_server(server)
    with open(os.path.join(rec, "argv"), "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
    with open(os.path.join(rec, "environ"), "rb") as f:
        env = dict(e.decode().split("=", 1) for e in f.read().split(b"\0") if b"=" in e)
    with open(os.path.join(rec, "ids")) as f:
        uid, gid = (int(x) for x in f.read().split())
    # Same command, the program replaced; fresh directories for the binds of
    # /mnt/data and /tmp (the recorded sandbox is gone with its server).
    cut = argv.index("--")
    argv = argv[:cut + 1] + ["/usr/bin/python3", "-c", "print(1)"]
    for i in range(len(argv) - 2):
        if argv[i] == "--bind" and argv[i + 2] in ("/mnt/data", "/tmp"):
            d = tempfile.mkdtemp(dir=work)
            os.chown(d, uid, gid)
            argv[i + 1] = d
    return {"argv": [shutil.which("bwrap")] + argv, "env": env, "uid": uid, "gid": gid,
            "seccomp": os.path.join(rec, "seccomp.bpf")}


def floor_runner(cmd):
    import fcntl

    def child():
        # fd 3: the seccomp program, fd 4: bwrap's info output, as the plugin
        # passes them. Opened high first so neither dup2 clobbers the other.
        prog = fcntl.fcntl(os.open(cmd["seccomp"], os.O_RDONLY), fcntl.F_DUPFD, 10)
        info = fcntl.fcntl(os.open(os.devnull, os.O_WRONLY), fcntl.F_DUPFD, 10)
        os.dup2(prog, 3)
        os.dup2(info, 4)
        os.setgroups([])
        os.setgid(cmd["gid"])
        os.setuid(cmd["uid"])

    def run():
        out = subprocess.run(cmd["argv"], env=cmd["env"], capture_output=True,
                             stdin=subprocess.DEVNULL, preexec_fn=child, close_fds=False)
        if out.stdout != b"1\n":
            raise RuntimeError("floor failed: %r %r" % (out.stdout, out.stderr[-300:]))
    return run


def start_server(args, work, conf, tag):
    port = free_port()
    env = dict(os.environ, CI_API_KEY=KEY, CI_PORT=str(port), CI_BACKEND="bwrap",
               CI_LOG_LEVEL="warn", CI_FILE_STORAGE_PATH=os.path.join(work, "files-" + tag),
               CI_PLUGIN_DIR=os.path.join(args.build, "plugins"))
    server = subprocess.Popen([os.path.join(args.build, "ci-server"), "-c", conf], env=env,
                              stderr=open(os.path.join(work, "log-" + tag), "w"))
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("server did not start: see " + os.path.join(work, "log-" + tag))


def stop_server(server):
    server.terminate()
    server.wait(timeout=30)


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
    server = None
    try:
        cmd = record_plugin_command(args, work)
        conf = os.path.join(work, "ci.conf")
        with open(conf, "w") as f:
            f.write('backends = { bwrap = { root = "%s/bwrap"; }; };\n%s' % (work, NO_LIMITS))
        server, port = start_server(args, work, conf, "bench")
        floor_once = floor_runner(cmd)
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
        print("  %-22s p50 %7.2f   p90 %7.2f" % ("plugin's bwrap, direct", p50_f, p90_f))
        print("  %-22s p50 %7.2f   p90 %7.2f" % ("ci-server /exec", p50_o, p90_o))
        print("  p50 ratio: %.2f (target <= 1.15)" % (p50_o / p50_f))

        clients = [Client(port) for _ in range(args.conc)]
        t_floor = throughput(lambda i: floor_once, args.conc, args.seconds)
        t_ours = throughput(lambda i: clients[i].run, args.conc, args.seconds)
        print("concurrency %d for %.0fs (execs/s)" % (args.conc, args.seconds))
        print("  %-22s %8.1f" % ("plugin's bwrap, direct", t_floor))
        print("  %-22s %8.1f" % ("ci-server /exec", t_ours))
        print("  throughput ratio: %.2f (target >= 0.85)" % (t_ours / t_floor))
    finally:
        if server:
            stop_server(server)
        if os.environ.get("CI_BENCH_KEEP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
