"""Pod "containers" of the fake Kubernetes API server.

TEST FIXTURE ONLY: not a container runtime, and not a security boundary
for hostile code. Each pod's main process runs under bubblewrap with the
host's / read-only, a per-pod directory bind-mounted at /mnt/data and
another at /tmp, private pid/net/ipc/uts namespaces (so no network at all,
not even loopback to the host) and uid/gid 1000 -- the shape of the pod
spec the k8s backend asks for (readOnlyRootFilesystem, emptyDirs,
runAsUser 1000). Execs enter the pod's namespaces with nsenter and drop to
uid 1000 with setpriv, like `kubectl exec` into a running container: their
processes live on in the pod until they exit or the pod goes away.
Needs root (nsenter, bind mounts), bwrap, nsenter and setpriv.
"""
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time

UID = 1000
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _Spawner:
    """bwrap --die-with-parent uses PR_SET_PDEATHSIG, which fires when the
    *thread* that forked the child ends. So every pod is started from this
    one long-lived thread, and pods die with the fake, not with a request."""

    def __init__(self):
        self.q = queue.Queue()
        threading.Thread(target=self._run, daemon=True, name="pod-spawner").start()

    def _run(self):
        while True:
            fn, box, done = self.q.get()
            try:
                box.append(fn())
            except Exception as e:  # noqa: BLE001 - handed to the caller
                box.append(e)
            done.set()

    def call(self, fn):
        box, done = [], threading.Event()
        self.q.put((fn, box, done))
        done.wait()
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]


_spawner = None
_spawner_lock = threading.Lock()


def spawn(fn):
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.call(fn)


class Container:
    def __init__(self, root, pod):
        self.dir = root
        self.data = os.path.join(root, "data")
        self.tmp = os.path.join(root, "tmp")
        self.proc = None
        self.pid = None  # host pid of a process inside the pod's namespaces
        spec = pod["spec"]
        c = spec["containers"][0]
        self.name = c["name"]
        self.env = {"PATH": PATH, "HOSTNAME": pod["metadata"]["name"], "HOME": "/"}
        for e in c.get("env") or []:
            if "value" in e:
                self.env[e["name"]] = e["value"]
        self.workdir = c.get("workingDir") or "/"
        self.cmd = (c.get("command") or ["sleep", "infinity"]) + (c.get("args") or [])
        sc = dict(spec.get("securityContext") or {})
        sc.update(c.get("securityContext") or {})
        self.uid = int(sc.get("runAsUser", UID))
        self.gid = int(sc.get("runAsGroup", self.uid))
        self.exited = threading.Event()
        self.exit_code = None

    def start(self):
        for d in (self.data, self.tmp):
            os.makedirs(d, exist_ok=True)
            os.chown(d, self.uid, self.gid)
            os.chmod(d, 0o1777 if d == self.tmp else 0o755)
        r, w = os.pipe()
        argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--tmpfs", "/mnt", "--bind", self.data, "/mnt/data", "--bind", self.tmp, "/tmp",
                "--unshare-pid", "--as-pid-1", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--die-with-parent", "--info-fd", str(w), "--chdir", self.workdir,
                "--"] + self.priv() + self.cmd
        try:
            self.proc = spawn(lambda: subprocess.Popen(
                argv, pass_fds=(w,), env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True))
        finally:
            os.close(w)
        info = b""
        with os.fdopen(r, "rb") as f:
            while True:
                chunk = f.read1(4096) if hasattr(f, "read1") else f.read(4096)
                if not chunk:
                    break
                info += chunk
                try:
                    self.pid = json.loads(info.decode())["child-pid"]
                    break
                except ValueError:
                    continue
        if not self.pid:
            err = self.proc.stderr.read().decode(errors="replace")
            self.proc.wait()
            raise RuntimeError("bwrap failed: " + err.strip())
        # bwrap reports the pid before the sandbox's mounts are done; an
        # exec that entered the namespaces then would find an empty root.
        # Running means the pod's own command has replaced bwrap.
        bwrap = os.path.realpath(shutil.which("bwrap") or "/usr/bin/bwrap")
        for _ in range(500):
            try:
                if os.readlink("/proc/%d/exe" % self.pid) != bwrap:
                    break
            except OSError:
                break
            time.sleep(0.01)
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self):
        self.proc.stderr.read()
        self.exit_code = self.proc.wait()
        self.exited.set()

    def priv(self):
        return ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid, "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]

    def exec_argv(self, command):
        """argv (host side) that runs command inside this pod."""
        env = ["%s=%s" % kv for kv in sorted(self.env.items())]
        return (["nsenter", "-t", str(self.pid), "-m", "-p", "-n", "-i", "-u"] +
                self.priv() + ["env", "-i"] + env + list(command))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.exited.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
