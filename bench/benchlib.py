"""Helpers shared by the Python benchmarks in bench/ (storage.py,
exec_engine.py): start ci-server from a build dir on a free loopback port,
read its memory from /proc, percentiles.

Not a benchmark itself.
"""
import http.client
import os
import socket
import subprocess
import time

KEY = "bench-key-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(samples, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(samples)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def proc_status(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, val = line.split(":", 1)
                out[key] = int(val.split()[0])
    return out


def mib(kib):
    return kib / 1024.0


class Server:
    """ci-server started from a build dir; stopped (SIGTERM, which destroys
    its sandboxes) by stop()."""

    def __init__(self, build, work, backend, conf_text="", env=None, name="server"):
        self.build = build
        self.port = free_port()
        self.log_path = os.path.join(work, name + ".log")
        self.conf = os.path.join(work, name + ".conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.env = dict(os.environ, CI_API_KEY=KEY, CI_PORT=str(self.port), CI_BACKEND=backend,
                        CI_LOG_LEVEL="warn", CI_PLUGIN_DIR=os.path.join(build, "plugins"),
                        CI_FILE_STORAGE_PATH=os.path.join(work, "files"))
        self.env.update(env or {})
        self.proc = None

    def start(self, timeout=60):
        self.proc = subprocess.Popen([os.path.join(self.build, "ci-server"), "-c", self.conf],
                                     env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path, "a"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ci-server exited (%d) at start:\n%s" %
                                   (self.proc.returncode, self.log_tail()))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/health")
                c.getresponse().read()
                c.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("ci-server did not answer within %ds:\n%s" % (timeout,
                                                                         self.log_tail()))

    @property
    def pid(self):
        return self.proc.pid

    def mem(self):
        return proc_status(self.proc.pid)

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def log_tail(self, n=20):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=120):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
