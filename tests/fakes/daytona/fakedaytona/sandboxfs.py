"""Per-sandbox filesystem and command execution of the fake Daytona.

A sandbox is a host directory ROOT; sandbox path P lives at ROOT + P.

Commands really run (exec_mode=local). When the machine allows it (root,
unshare(1) with mount and network namespaces) each command runs in fresh
namespaces where ROOT/home/daytona, ROOT/mnt/data and ROOT/tmp are bind
mounted at /home/daytona, /mnt/data and /tmp (tmpfs hides the rest of /home
and /mnt) and the only network interface is a downed loopback. Otherwise
the spec's fallback is used: the mapped prefixes are rewritten in the
command and cwd and back in the output ("translate" mode).

This is a TEST FIXTURE, not a security boundary: commands run as the
fake's own user and can see the host's other directories. Only run test
code through it.
"""

import os
import re
import signal
import stat as stmod
import subprocess
import threading

from .httpio import go_time_string, iso

MAPPED = ("/home/daytona", "/mnt/data", "/tmp")

_ns_ok = None


class FsError(Exception):
    def __init__(self, status, message, code):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def namespaces_usable():
    """True when unshare can build the mount+net namespace (probed once)."""
    global _ns_ok
    if _ns_ok is None:
        try:
            r = subprocess.run(["unshare", "--mount", "--net", "--fork", "--", "/bin/sh", "-c",
                                "mount --make-rprivate / && mount -t tmpfs tmpfs /mnt"],
                               capture_output=True, timeout=10)
            _ns_ok = r.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _ns_ok = False
    return _ns_ok


def resolve(root, home, path, follow_last=True):
    """(host path, sandbox path) of a sandbox path, symlinks resolved
    inside ROOT the way the sandbox's kernel would (absolute targets are
    relative to ROOT), so nothing resolves outside ROOT."""
    if not path:
        raise FsError(400, "path is required", "BAD_REQUEST")
    if not path.startswith("/"):
        path = home.rstrip("/") + "/" + path
    todo = [x for x in path.split("/") if x and x != "."]
    cur = []
    hops = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            if cur:
                cur.pop()
            continue
        cand = cur + [name]
        host = root + "/" + "/".join(cand)
        if (follow_last or todo) and os.path.islink(host):
            hops += 1
            if hops > 40:
                raise FsError(400, "too many levels of symbolic links", "BAD_REQUEST")
            target = os.readlink(host)
            if target.startswith("/"):
                cur = []
            todo = [x for x in target.split("/") if x and x != "."] + todo
            continue
        cur = cand
    return root + "/" + "/".join(cur), "/" + "/".join(cur)


def go_mode_string(mode):
    if stmod.S_ISDIR(mode):
        t = "d"
    elif stmod.S_ISLNK(mode):
        t = "L"
    elif stmod.S_ISFIFO(mode):
        t = "p"
    elif stmod.S_ISSOCK(mode):
        t = "S"
    elif stmod.S_ISBLK(mode):
        t = "D"
    elif stmod.S_ISCHR(mode):
        t = "Dc"
    else:
        t = "-"
    rwx = ""
    for i in range(9):
        bit = 1 << (8 - i)
        rwx += "rwx"[i % 3] if mode & bit else "-"
    return t + rwx


def file_info(host, spath, name):
    """FileInfo of host (stat follows symlinks, as the daemon's does)."""
    st = os.stat(host)
    return {
        "name": name,
        "size": st.st_size,
        "mode": go_mode_string(st.st_mode),
        "modTime": go_time_string(st.st_mtime),
        "modifiedAt": iso(st.st_mtime),
        "isDir": stmod.S_ISDIR(st.st_mode),
        "owner": "daytona",
        "group": "daytona",
        "permissions": "0%o" % (st.st_mode & 0o777),
        "path": spath,
    }


def list_dir(root, home, path):
    host, spath = resolve(root, home, path)
    if not os.path.exists(host):
        raise FsError(404, "directory not found: " + path, "FILE_NOT_FOUND")
    if not os.path.isdir(host):
        raise FsError(400, "path is not a directory", "BAD_REQUEST")
    out = []
    for name in sorted(os.listdir(host)):
        try:
            out.append(file_info(host + "/" + name, spath.rstrip("/") + "/" + name, name))
        except OSError:
            continue  # the daemon skips entries whose stat fails
    return out


# --- command execution -------------------------------------------------------

def _translate_in(root, text):
    for p in MAPPED:
        text = re.sub(r"(?<![A-Za-z0-9_.-])" + re.escape(p) + r"(?=/|\b|$)",
                      lambda m: root + p, text)
    return text


def _translate_out(root, text):
    return text.replace(root + "/", "/")


def _reader(stream, cap, sink):
    size = 0
    while True:
        d = stream.read(65536)
        if not d:
            break
        if size < cap:
            sink.append(d[:cap - size])
        size += len(d)


def run(sb_root, sandbox_id, home, command, cwd, envs, sandbox_env, timeout_s, cap,
        split=False):
    """Run command with /bin/sh -s. Returns (exit code, combined output) or,
    with split, (exit code, stdout, stderr); raises TimeoutError on timeout
    after killing the process group."""
    ns = namespaces_usable()
    # a sandbox's PATH, not the test runner's (pyenv shims and the like)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8",
           "DAYTONA_SANDBOX_ID": sandbox_id}
    env.update(sandbox_env or {})
    env.update(envs or {})
    work = cwd or home
    if ns:
        env["HOME"] = home
        setup = (
            "exec 3<\"$1\"/mnt/data 4<\"$1\"/home/daytona 5<\"$1\"/tmp || exit 126\n"
            "mount --make-rprivate / && mount -t tmpfs tmpfs /mnt && mkdir -p /mnt/data &&"
            " mount --bind /proc/self/fd/3 /mnt/data &&"
            " mount -t tmpfs tmpfs /home && mkdir -p /home/daytona &&"
            " mount --bind /proc/self/fd/4 /home/daytona &&"
            " mount --bind /proc/self/fd/5 /tmp || exit 126\n"
            "exec 3<&- 4<&- 5<&-\n"
            "ip link set lo up 2>/dev/null\n"
            "cd \"$2\" 2>/dev/null || { echo \"cd: $2: no such directory\"; exit 1; }\n"
            "exec /bin/sh -s\n")
        argv = ["unshare", "--mount", "--net", "--fork", "--", "/bin/sh", "-c", setup, "sh",
                sb_root, work]
        host_cwd = sb_root
    else:
        env["HOME"] = sb_root + home
        env["TMPDIR"] = sb_root + "/tmp"
        command = _translate_in(sb_root, command)
        host_cwd = _translate_in(sb_root, work)
        if not os.path.isdir(host_cwd):
            return (1, "", "cd: %s: no such directory\n" % work) if split else \
                (1, "cd: %s: no such directory\n" % work)
        argv = ["/bin/sh", "-s"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if split else subprocess.STDOUT,
                            cwd=host_cwd, env=env, start_new_session=True)
    out, err = [], []
    threads = [threading.Thread(target=_reader, args=(proc.stdout, cap, out), daemon=True)]
    if split:
        threads.append(threading.Thread(target=_reader, args=(proc.stderr, cap, err),
                                        daemon=True))
    for t in threads:
        t.start()
    try:
        proc.stdin.write(command.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    limit = timeout_s if timeout_s and timeout_s > 0 else 3600
    try:
        proc.wait(timeout=limit)
        for t in threads:
            t.join(timeout=limit)
            if t.is_alive():
                raise subprocess.TimeoutExpired(argv, limit)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise TimeoutError("command execution timeout")

    def text(chunks):
        s = b"".join(chunks).decode("utf-8", "replace")
        return s if ns else _translate_out(sb_root, s)

    code = proc.returncode
    if code < 0:
        code = 128 - code
    if split:
        return code, text(out), text(err)
    return code, text(out)
