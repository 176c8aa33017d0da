#!/usr/bin/env python3
"""Exec through ci-server on a container engine (issue 5) beside a raw Engine
API exec on the same engine and image, in one run.

(a) Warm exec of python print(1): ci-server POST /v1/exec (CI_BACKEND=docker
    or podman, the same session every time) interleaved with a raw exec in a
    container this bench starts itself from the same image with
    `sleep infinity`: POST /containers/{id}/exec, POST /exec/{eid}/start
    (stream read to the end and demultiplexed), GET /exec/{eid}/json, over
    the engine's unix socket from one keep-alive client (start needs a
    connection of its own: the engine hijacks it). p50/p90 of each, the p50
    overhead, and where ci-server spends its time (from its exec.done log
    lines: putting the program and inputs, the engine exec, collecting
    outputs; the rest is HTTP, JSON and sandbox lookup).
(b) First exec of a new session (no session_id: a new sandbox) against warm
    execs, with the warm pool off and on (backends.<engine>.pool.python = 2).
    Each new session is deleted after its first exec; with the pool on, the
    bench waits for the pool to be full again before the next one.
(c) Concurrency 8 (one session per client) for --seconds (default 60): raw
    Engine API execs and ci-server execs, execs/s, p50, p99 and errors
    (ci-server must have none). Afterwards, with every server stopped (which
    destroys its sandboxes), no container or volume with this run's owner
    label may remain.

Targets: p50 overhead <= 10 ms; first exec with the pool on <= 1.25x a warm
exec; zero errors and zero leaks.

Usage: bench/exec_engine.py --engine docker|podman [--build DIR] [--n 50]
                            [--first 8] [--seconds 60] [--conc 8] [--socket PATH]
"""
import argparse
import http.client
import io
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import KEY, Server, pct  # noqa: E402

SOCKETS = {"docker": "/var/run/docker.sock", "podman": "/run/podman/podman.sock"}
IMAGE = "ci-sandbox-python"
POOL = 2


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Engine:
    """A minimal Engine API client; one keep-alive connection."""

    def __init__(self, path):
        self.path = path
        self.conn = UnixConnection(path)

    def call(self, method, url, body=None, ok=(200, 201, 204)):
        data = json.dumps(body) if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, url, data, hdrs)
        r = self.conn.getresponse()
        raw = r.read()
        if r.status not in ok:
            raise RuntimeError("engine %s %s: HTTP %d %s" % (method, url, r.status, raw[:300]))
        return json.loads(raw) if raw else None

    def list(self, kind, labels):
        filt = urllib.parse.quote(json.dumps({"label": labels}))
        if kind == "containers":
            return self.call("GET", "/containers/json?all=1&filters=" + filt)
        return self.call("GET", "/volumes?filters=" + filt).get("Volumes") or []

    def close(self):
        self.conn.close()


class RawExec:
    """The floor: exec create + start + inspect on a container of our own."""

    def __init__(self, sock, cid):
        self.sock = sock
        self.cid = cid
        self.eng = Engine(sock)

    def run(self, cmd=("python3", "-c", "print(1)"), want=b"1\n"):
        ex = self.eng.call("POST", "/containers/%s/exec" % self.cid, {
            "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Tty": False,
            "User": "1000:1000", "WorkingDir": "/tmp", "Cmd": list(cmd)})
        eid = ex["Id"]
        c = UnixConnection(self.sock)
        c.request("POST", "/exec/%s/start" % eid, json.dumps({"Detach": False, "Tty": False}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        raw = r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError("exec start: HTTP %d %s" % (r.status, raw[:200]))
        out = demux(raw)
        st = self.eng.call("GET", "/exec/%s/json" % eid)
        if out[1] != want or st.get("ExitCode") != 0:
            raise RuntimeError("raw exec: stdout %r, exit %r" % (out[1], st.get("ExitCode")))

    def noop(self):
        """One exec round trip with a trivial program."""
        self.run(("/bin/sh", "-c", "true"), b"")

    def put(self):
        """One archive PUT of a small file (what ci-server does per program)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = b"print(1)\n"
            info = tarfile.TarInfo("ci-bench-main.py")
            info.size, info.uid, info.gid, info.mtime = len(data), 1000, 1000, time.time()
            tar.addfile(info, io.BytesIO(data))
        self.eng.conn.request("PUT", "/containers/%s/archive?path=/tmp" % self.cid,
                              buf.getvalue(), {"Content-Type": "application/x-tar"})
        r = self.eng.conn.getresponse()
        raw = r.read()
        if r.status != 200:
            raise RuntimeError("archive PUT: HTTP %d %s" % (r.status, raw[:200]))


def demux(raw):
    """Docker's multiplexed stream: 8-byte headers (stream, 0, 0, 0, size)."""
    out = {1: b"", 2: b""}
    i = 0
    while i + 8 <= len(raw):
        kind, size = raw[i], struct.unpack(">I", raw[i + 4:i + 8])[0]
        out[kind] = out.get(kind, b"") + raw[i + 8:i + 8 + size]
        i += 8 + size
    return out


class Client:
    """One keep-alive connection to ci-server; continues its own session."""

    def __init__(self, server):
        self.server = server
        self.conn = server.conn(timeout=120)
        self.session = None

    def run(self, new=False):
        body = {"lang": "py", "code": "print(1)"}
        if self.session and not new:
            body["session_id"] = self.session
        self.conn.request("POST", "/v1/exec", json.dumps(body),
                          {"X-API-Key": KEY, "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        raw = resp.read()
        try:
            out = json.loads(raw)
        except ValueError:
            out = raw[:200]
        if resp.status != 200 or out.get("stdout") != "1\n":
            raise RuntimeError("bad exec answer: %s %s" % (resp.status, out))
        if not new:
            self.session = out["session_id"]
        return out["session_id"]

    def delete(self, sid):
        self.conn.request("DELETE", "/v1/librechat/sessions/" + sid, headers={"X-API-Key": KEY})
        r = self.conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError("delete session %s: HTTP %d" % (sid, r.status))


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def load(fns, seconds):
    """Each fn in its own thread for `seconds`; latencies (ms) and errors."""
    lat = [[] for _ in fns]
    errors = []
    stop = time.monotonic() + seconds

    def worker(i):
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                fns[i]()
            except Exception as exc:  # counted and shown, never hidden
                errors.append(exc)
                # the connection may be unusable after an error
                time.sleep(0.1)
                continue
            lat[i].append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(fns))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return [x for sub in lat for x in sub], errors, elapsed


def log_breakdown(path, since, new_sandbox=False):
    """p50 of us_sync/us_run/us_collect (ms) of the exec.done lines after byte
    `since`, of warm execs or of the first ones in a new sandbox."""
    keys = ("us_sync", "us_run", "us_collect")
    vals = {k: [] for k in keys + ("sum",)}
    tag = "new_sandbox=%d" % new_sandbox
    with open(path) as f:
        f.seek(since)
        for line in f:
            if "exec.done" not in line or tag not in line:
                continue
            got = {}
            for k in keys:
                m = re.search(r"\b%s=(\d+)" % k, line)
                if m:
                    got[k] = int(m.group(1)) / 1000.0
            if len(got) == len(keys):
                for k in keys:
                    vals[k].append(got[k])
                vals["sum"].append(sum(got.values()))
    return {k: (statistics.median(v) if v else float("nan")) for k, v in vals.items()}


def cpu_ms(pid):
    """User + system CPU time of a process so far, in ms."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def wait_pool(eng, owner, want, timeout=120):
    labels = ["ci.owner=" + owner, "ci.pool=1"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [c for c in eng.list("containers", labels) if c.get("State") == "running"]
        if len(running) >= want:
            return
        time.sleep(0.2)
    raise RuntimeError("the warm pool did not fill within %ds" % timeout)


def start_raw(eng, owner, conc):
    ids = []
    for i in range(conc):
        c = eng.call("POST", "/containers/create?name=ci-bench-raw-%s-%d" % (owner, i), {
            "Image": IMAGE, "Cmd": ["sleep", "infinity"], "User": "65534:65534",
            "Labels": {"ci-bench.owner": owner},
            "HostConfig": {"NetworkMode": "none", "Init": True}})
        ids.append(c["Id"])
        eng.call("POST", "/containers/%s/start" % c["Id"])
    return ids


def server_conf(engine, sock, pool):
    return ("limits = { principal_concurrent_execs = 0; principal_execs_per_minute = 0; };\n"
            "backends = { %s = { socket = \"%s\"; pool = { python = %d; }; }; };\n" %
            (engine, sock, pool))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", required=True, choices=sorted(SOCKETS))
    ap.add_argument("--socket", default=None)
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--n", type=int, default=50, help="warm execs of each side")
    ap.add_argument("--first", type=int, default=8, help="new sessions per pool mode")
    ap.add_argument("--seconds", type=float, default=60, help="concurrency phase, each side")
    ap.add_argument("--conc", type=int, default=8)
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    sock = args.socket or SOCKETS[args.engine]
    owner = "ci-bench-%d" % os.getpid()
    args.load = os.getloadavg()[0]  # before the bench adds its own
    eng = Engine(sock)
    try:
        ver = eng.call("GET", "/version")
    except OSError as exc:
        sys.exit("bench: %s does not answer on %s (%s); scripts/start-engines.sh %s" %
                 (args.engine, sock, exc, args.engine))
    work = tempfile.mkdtemp(prefix="ci-bench-engine-")
    env = {"CI_SANDBOX_LABEL": owner, "CI_LOG_LEVEL": "info"}
    raw_ids = []
    servers = []
    res = {}
    try:
        raw_ids = start_raw(eng, owner, args.conc)
        raws = [RawExec(sock, cid) for cid in raw_ids]

        # (a) warm exec, pool off
        srv = Server(args.build, work, args.engine, server_conf(args.engine, sock, 0), env,
                     name="pool-off").start()
        servers.append(srv)
        cl = Client(srv)
        cl.run()  # the session's sandbox: every later run is warm
        for _ in range(3):
            raws[0].run()
            cl.run()
        since = os.path.getsize(srv.log_path)
        ours, floor, noop, put = [], [], [], []
        for _ in range(args.n):  # interleaved so all see the same machine
            floor.append(timed(raws[0].run))
            ours.append(timed(cl.run))
            noop.append(timed(raws[0].noop))
            put.append(timed(raws[0].put))
        res["warm_off"] = ours
        res["raw"] = floor
        res["noop"], res["put"] = noop, put
        res["breakdown"] = log_breakdown(srv.log_path, since)

        # (b) first exec, pool off
        firsts = []
        for _ in range(args.first):
            t0 = time.perf_counter()
            sid = cl.run(new=True)
            firsts.append((time.perf_counter() - t0) * 1000)
            cl.delete(sid)
        res["first_off"] = firsts
        srv.stop()

        # (b) first exec, pool on; then (c)
        srv = Server(args.build, work, args.engine, server_conf(args.engine, sock, POOL), env,
                     name="pool-on").start()
        servers.append(srv)
        cl = Client(srv)
        cl.run()
        wait_pool(eng, owner, POOL)
        since = os.path.getsize(srv.log_path)
        warm, firsts = [], []
        for _ in range(args.first):
            time.sleep(0.5)  # the pool thread is idle, as a pool usually is
            t0 = time.perf_counter()
            sid = cl.run(new=True)
            firsts.append((time.perf_counter() - t0) * 1000)
            cl.delete(sid)
            for _ in range(max(1, args.n // args.first)):
                warm.append(timed(cl.run))
            wait_pool(eng, owner, POOL)
        res["first_on"], res["warm_on"] = firsts, warm
        res["first_steps"] = log_breakdown(srv.log_path, since, new_sandbox=True)

        # (c) concurrency
        clients = [Client(srv) for _ in range(args.conc)]
        for c in clients:
            c.run()
        res["conc_raw"] = load([r.run for r in raws], args.seconds)
        cpu0 = cpu_ms(srv.pid)
        res["conc_ci"] = load([c.run for c in clients], args.seconds)
        res["conc_cpu"] = (cpu_ms(srv.pid) - cpu0) / max(1, len(res["conc_ci"][0]))
        srv.stop()
    finally:
        for s in servers:
            s.stop()
        for cid in raw_ids:
            try:
                eng.call("DELETE", "/containers/%s?force=1&v=1" % cid, ok=(200, 204, 404))
            except (OSError, RuntimeError) as exc:
                print("bench: could not remove %s: %s" % (cid[:12], exc), file=sys.stderr)
    leaked_c = eng.list("containers", ["ci.owner=" + owner])
    leaked_v = eng.list("volumes", ["ci.owner=" + owner])
    leaked_raw = eng.list("containers", ["ci-bench.owner=" + owner])
    shutil.rmtree(work, ignore_errors=True)
    report(args, ver, owner, res, leaked_c, leaked_v, leaked_raw)
    eng.close()
    return 0 if not res["conc_ci"][1] and not leaked_c and not leaked_v else 1


def report(args, ver, owner, res, leaked_c, leaked_v, leaked_raw):
    ok = lambda cond: "ok" if cond else "MISSED"  # noqa: E731
    print("ci-server exec bench: %s %s (API %s), image %s, %d cores, load %.1f, %s" %
          (args.engine, ver.get("Version"), ver.get("ApiVersion"), IMAGE, os.cpu_count(),
           args.load, time.strftime("%Y-%m-%d %H:%M")))
    raw, warm = res["raw"], res["warm_off"]
    print("(a) warm exec of python print(1), %d runs each, interleaved (ms)" % len(raw))
    print("  %-40s p50 %7.1f   p90 %7.1f" % ("raw Engine API (create+start+inspect)",
                                             statistics.median(raw), pct(raw, 90)))
    print("  %-40s p50 %7.1f   p90 %7.1f" % ("ci-server POST /exec, same session",
                                             statistics.median(warm), pct(warm, 90)))
    over = statistics.median(warm) - statistics.median(raw)
    print("  p50 overhead: %.1f ms (target <= 10): %s" % (over, ok(over <= 10)))
    b = res["breakdown"]
    rest = statistics.median(warm) - b["sum"]
    print("  ci-server p50 by step (its log): put program+inputs %.1f, engine exec %.1f,\n"
          "  collect outputs %.1f, rest (HTTP, JSON, sandbox lookup) ~%.1f" %
          (b["us_sync"], b["us_run"], b["us_collect"], rest))
    noop, put = statistics.median(res["noop"]), statistics.median(res["put"])
    print("  engine primitives, raw (p50): exec of sh -c true %.1f, archive PUT of a small "
          "file %.1f" % (noop, put))
    print("  a warm ci-server exec makes 1 engine exec: the program travels on stdin, the\n"
          "  output manifest comes back on stderr (before that: 3 execs + 1 PUT = %.1f)" %
          (statistics.median(raw) + 2 * noop + put))
    print("(b) first exec of a new session vs warm exec (ms, p50; %d new sessions each)" %
          len(res["first_off"]))
    for label, first, w, target in (("pool off", res["first_off"], res["warm_off"], False),
                                    ("pool on (python = %d)" % POOL, res["first_on"],
                                     res["warm_on"], True)):
        r = statistics.median(first) / statistics.median(w)
        print("  %-22s first %7.1f (max %7.1f)  warm %7.1f  ratio %5.2f%s" %
              (label, statistics.median(first), max(first), statistics.median(w), r,
               "  (target <= 1.25): " + ok(r <= 1.25) if target else ""))
    b = res["first_steps"]
    print("  pool on, first exec p50 by step (its log): put prelude+program %.1f, engine exec "
          "%.1f, collect outputs %.1f" % (b["us_sync"], b["us_run"], b["us_collect"]))
    print("(c) concurrency %d for %.0f s each, one session/container per client" %
          (args.conc, args.seconds))
    for label, key in (("raw Engine API", "conc_raw"), ("ci-server /exec", "conc_ci")):
        lat, errs, el = res[key]
        print("  %-16s %7.1f execs/s   p50 %7.1f   p99 %7.1f ms   errors %d" %
              (label, len(lat) / el, statistics.median(lat) if lat else 0,
               pct(lat, 99) if lat else 0, len(errs)))
        for e in errs[:3]:
            print("    error: %s" % e)
    r = (len(res["conc_ci"][0]) / res["conc_ci"][2]) / (len(res["conc_raw"][0]) /
                                                       res["conc_raw"][2])
    print("  throughput ci-server / raw: %.2f; ci-server CPU %.1f ms per exec; "
          "ci-server errors: %s" % (r, res["conc_cpu"], ok(not res["conc_ci"][1])))
    print("leaks after the servers stopped (owner label ci.owner=%s): containers %d, "
          "volumes %d: %s; the bench's own raw containers left: %d" %
          (owner, len(leaked_c), len(leaked_v), ok(not leaked_c and not leaked_v),
           len(leaked_raw)))


if __name__ == "__main__":
    sys.exit(main())
