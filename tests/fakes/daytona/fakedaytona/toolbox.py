"""Toolbox (in-sandbox daemon behind the proxy) of the fake Daytona:
/toolbox/<sandboxId>/... (daytona-fake.md section 4)."""

import base64
import json
import os
import re
import tempfile
import urllib.parse
import uuid

from . import sandboxfs
from .httpio import BodyError, MultipartReader, boundary_of, dumps, parse_disposition
from .sandboxfs import FsError
from .state import TRANSITIONAL

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ARTIFACT = "dtn_artifact_k39fd2:"
PNG_1X1 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
           "AAAABJRU5ErkJggg==")
STOPPED = {"stopped", "stopping", "archived", "archiving", "error", "build_failed"}


def handle_toolbox(h, fake, prefix):
    rest = h.path_only[len(prefix):]
    mo = re.match(r"^/([^/]+)(/.*)?$", rest)
    if not mo:
        return h.tbx_error(404, "not found", "NOT_FOUND")
    sid, sub = urllib.parse.unquote(mo.group(1)), mo.group(2) or "/"
    with fake.lock:
        fake.tick_all()
        sb = fake.sandboxes.get(sid)
        if sb is None:
            st = fake.config["unknown_sandbox_toolbox_status"]
            if st == 401:
                return h.tbx_error(401, "Bearer token is invalid", "UNAUTHORIZED")
            return h.tbx_error(404, "sandbox not found", "NOT_FOUND")
        if h.bearer() != fake.config["api_key"]:
            return h.tbx_error(401, "Bearer token is invalid", "UNAUTHORIZED")
        if sb.state in TRANSITIONAL and sb.state not in ("stopping", "archiving"):
            return h.send_empty(502)
        if sb.state in STOPPED:
            return h.tbx_error(400, "no IP address found. Is the Sandbox started?", "BAD_REQUEST")
        if (h.headers.get("X-Daytona-Skip-Last-Activity-Update") or "").lower() != "true":
            fake.touch(sb)
        root, env, sessions = sb.root, dict(sb.dto.get("env") or {}), sb.sessions
    home = fake.config["sandbox_home"]
    ctx = (fake, sb, root, home, env, sessions)
    m = h.command
    try:
        if sub == "/process/execute" and m == "POST":
            return _execute(h, ctx)
        if sub == "/process/code-run" and m == "POST":
            return _code_run(h, ctx)
        if sub == "/process/session" and m == "POST":
            return _session_create(h, ctx)
        mo = re.match(r"^/process/session/([^/]+)(/exec)?$", sub)
        if mo and m == "POST" and mo.group(2):
            return _session_exec(h, ctx, mo.group(1))
        if mo and m == "DELETE" and not mo.group(2):
            with fake.lock:
                if sessions.pop(mo.group(1), None) is None:
                    return h.tbx_error(404, "session not found", "NOT_FOUND")
            return h.send_empty(204)
        if sub == "/files/bulk-upload" and m == "POST":
            return _bulk_upload(h, ctx)
        if sub == "/files/upload" and m == "POST":
            return _upload_one(h, ctx)
        if sub == "/files/download" and m == "GET":
            return _download(h, ctx)
        if sub == "/files/bulk-download" and m == "POST":
            return _bulk_download(h, ctx)
        if sub in ("/files", "/files/") and m == "GET":
            return h.send_json(200, sandboxfs.list_dir(root, home, h.qs("path")))
        if sub in ("/files", "/files/") and m == "DELETE":
            return _delete(h, ctx)
        if sub == "/files/info" and m == "GET":
            host, spath = sandboxfs.resolve(root, home, h.qs("path"))
            if not os.path.exists(host):
                raise FsError(404, "file not found", "FILE_NOT_FOUND")
            return h.send_json(200, sandboxfs.file_info(host, spath, os.path.basename(spath)))
        if sub == "/files/folder" and m == "POST":
            host, _ = sandboxfs.resolve(root, home, h.qs("path"))
            os.makedirs(host, mode=int(h.qs("mode") or "0755", 8), exist_ok=True)
            return h.send_empty(201)
        if sub in ("/work-dir", "/user-home-dir") and m == "GET":
            return h.send_json(200, {"dir": home})
        if sub == "/version" and m == "GET":
            return h.send_json(200, {"version": "fake"})
    except FsError as e:
        return h.tbx_error(e.status, e.message, e.code, fs=True)
    except BodyError as e:
        return h.tbx_error(400, str(e), "INVALID_REQUEST_BODY")
    return h.tbx_error(404, "route not found", "NOT_FOUND")


def _json_body(h):
    try:
        body = json.loads(h.read_body() or b"")
        if isinstance(body, dict):
            return body
    except ValueError:
        pass
    raise BodyError("invalid request body")


def _check_envs(envs):
    if envs is None:
        return {}
    if not isinstance(envs, dict) or any(not ENV_KEY.match(k) for k in envs):
        raise BodyError("invalid env var name")
    return {k: str(v) for k, v in envs.items()}


def _run(h, ctx, command, cwd, envs, timeout, split=False):
    fake, sb, root, home, env, _ = ctx
    if fake.config["exec_mode"] != "local":
        return (0, "", "") if split else (0, "")
    return sandboxfs.run(root, sb.id, home, command, cwd, envs, env, timeout,
                         fake.config["max_output_bytes"], split=split)


def _execute(h, ctx):
    body = _json_body(h)
    cmd = body.get("command")
    if not isinstance(cmd, str) or not cmd.strip():
        return h.tbx_error(400, "command cannot be empty or whitespace-only", "BAD_REQUEST")
    envs = _check_envs(body.get("envs"))
    try:
        code, out = _run(h, ctx, cmd, body.get("cwd"), envs, body.get("timeout"))
    except TimeoutError:
        return h.tbx_error(408, "command execution timeout", "REQUEST_TIMEOUT")
    return h.send_json(200, {"exitCode": code, "result": out})


def _code_run(h, ctx):
    body = _json_body(h)
    lang = body.get("language")
    code = body.get("code") or ""
    b64 = base64.b64encode(code.encode()).decode()
    argv = " ".join("'" + str(a).replace("'", "'\\''") + "'" for a in body.get("argv") or [])
    if lang == "python":
        cmd = "printf '%%s' '%s' | base64 -d | python3 -u - %s" % (b64, argv)
        if "plt.show()" in code:
            chart = {"type": "chart", "value": {"type": "line", "title": "fake",
                                                "png": sandboxfs_png(), "elements": []}}
            cmd += "\nprintf '%%s\\n' '%s%s'" % (ARTIFACT, dumps(chart))
    elif lang == "javascript":
        cmd = "printf '%%s' '%s' | base64 -d | node - %s" % (b64, argv)
    elif lang == "typescript":
        cmd = "printf '%%s' '%s' | base64 -d > /tmp/dtn_$$.ts && npx ts-node -T /tmp/dtn_$$.ts %s" \
            % (b64, argv)
    else:
        return h.tbx_error(400, "unsupported language: %s" % lang, "BAD_REQUEST")
    envs = _check_envs(body.get("envs"))
    try:
        ec, out = _run(h, ctx, cmd, None, envs, body.get("timeout"))
    except TimeoutError:
        return h.tbx_error(408, "command execution timeout", "REQUEST_TIMEOUT")
    charts, lines = [], []
    for line in out.split("\n"):
        if line.startswith(ARTIFACT):
            try:
                art = json.loads(line[len(ARTIFACT):])
                if art.get("type") == "chart":
                    charts.append(art.get("value"))
            except ValueError:
                pass
            continue
        lines.append(line)
    resp = {"exitCode": ec, "result": "\n".join(lines)}
    if charts:
        resp["artifacts"] = {"charts": charts}
    return h.send_json(200, resp)


def sandboxfs_png():
    return PNG_1X1


def _session_create(h, ctx):
    fake, sessions = ctx[0], ctx[5]
    sid = _json_body(h).get("sessionId")
    if not isinstance(sid, str) or not sid:
        return h.tbx_error(400, "sessionId is required", "BAD_REQUEST")
    with fake.lock:
        if sid in sessions:
            return h.tbx_error(409, "session already exists", "CONFLICT")
        sessions[sid] = {"cwd": None}
    return h.send_empty(201)


def _version_at_least(v, want=(0, 167, 0)):
    try:
        parts = tuple(int(x) for x in v.split("-")[0].split(".")[:3])
    except ValueError:
        return False
    return parts >= want


def _session_exec(h, ctx, sid):
    fake, sessions = ctx[0], ctx[5]
    if sid not in sessions:
        return h.tbx_error(404, "session not found", "NOT_FOUND")
    body = _json_body(h)
    cmd = body.get("command")
    if not isinstance(cmd, str) or not cmd.strip():
        return h.tbx_error(400, "command cannot be empty or whitespace-only", "BAD_REQUEST")
    code, out, err = _run(h, ctx, cmd, None, {}, 3600, split=True)
    marked = "".join("\x01\x01\x01" + ln + "\n" for ln in out.splitlines()) + \
        "".join("\x02\x02\x02" + ln + "\n" for ln in err.splitlines())
    cmd_id = str(uuid.uuid4())
    if body.get("runAsync") or body.get("async"):
        return h.send_json(202, {"cmdId": cmd_id})
    ver = h.headers.get("X-Daytona-SDK-Version") or ""
    resp = {"cmdId": cmd_id, "exitCode": code}
    if ver and _version_at_least(ver):
        resp.update(output=marked, stdout=out, stderr=err)
    elif (h.headers.get("X-Daytona-Split-Output") or "").lower() == "true":
        resp["output"] = marked
    else:
        resp["output"] = out + err
    return h.send_json(200, resp)


def _write_stream(root, home, spath, stream):
    """Stream a part into spath (parents created, file replaced atomically)."""
    host, real = sandboxfs.resolve(root, home, spath)
    if os.path.isdir(host):
        raise FsError(400, "path is a directory: " + spath, "BAD_REQUEST")
    os.makedirs(os.path.dirname(host), mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(host), prefix=".upload-")
    n = 0
    try:
        with os.fdopen(fd, "wb") as f:
            while True:
                d = stream.read()
                if not d:
                    break
                f.write(d)
                n += len(d)
        os.chmod(tmp, 0o644)
        os.replace(tmp, host)
    except BaseException:
        os.unlink(tmp)
        raise
    return n


def _bulk_upload(h, ctx):
    fake, root, home = ctx[0], ctx[2], ctx[3]
    b = boundary_of(h.headers.get("Content-Type"))
    if not b:
        h.body().drain()
        return h.send_json(400, {"errors": ["invalid multipart form"]})
    paths, done, errors, names = {}, [], [], []
    for hdrs, stream in MultipartReader(h.body(), b).parts():
        name = parse_disposition(hdrs.get("content-disposition", "")).get("name", "")
        names.append(name)
        mo = re.match(r"^files\[(\d+)\]\.(path|file)$", name)
        if not mo:
            stream.drain()
            continue
        idx = mo.group(1)
        if mo.group(2) == "path":
            paths[idx] = stream.read_all().decode("utf-8", "replace")
            continue
        if idx not in paths:
            stream.drain()
            errors.append("files[%s]: missing .path metadata" % idx)
            continue
        try:
            n = _write_stream(root, home, paths[idx], stream)
            done.append({"path": paths[idx], "bytes": n})
        except (FsError, OSError) as e:
            stream.drain()
            errors.append("%s: %s" % (paths[idx], e))
    h.note_parts(names)
    if errors:
        return h.send_json(400, {"errors": errors, "files": done})
    return h.send_json(200, {"files": done})


def _upload_one(h, ctx):
    root, home = ctx[2], ctx[3]
    path = h.qs("path")
    b = boundary_of(h.headers.get("Content-Type"))
    if not path or not b:
        h.body().drain()
        return h.tbx_error(400, "path and multipart file are required", "BAD_REQUEST", fs=True)
    ok = False
    for hdrs, stream in MultipartReader(h.body(), b).parts():
        if parse_disposition(hdrs.get("content-disposition", "")).get("name") == "file":
            _write_stream(root, home, path, stream)
            ok = True
    if not ok:
        return h.tbx_error(400, "file is required", "BAD_REQUEST", fs=True)
    return h.send_empty(200)


def _download(h, ctx):
    root, home = ctx[2], ctx[3]
    path = h.qs("path")
    if not path:
        raise FsError(400, "path is required", "BAD_REQUEST")
    host, _ = sandboxfs.resolve(root, home, path)
    if not os.path.exists(host):
        raise FsError(404, "file not found: " + path, "FILE_NOT_FOUND")
    if os.path.isdir(host):
        raise FsError(400, "path must be a file", "BAD_REQUEST")
    return h.send_file(host, os.path.basename(host))


def _bulk_download(h, ctx):
    root, home = ctx[2], ctx[3]
    paths = _json_body(h).get("paths")
    if not isinstance(paths, list) or not paths:
        return h.send_json(400, {"error": 'request body must be {"paths": [ ... ]} and non-empty'})
    bnd = "DAYTONA-FILE-BOUNDARY"
    out = b""
    for p in paths:
        enc = urllib.parse.quote(p, safe="")
        try:
            host, _ = sandboxfs.resolve(root, home, p)
            with open(host, "rb") as f:
                data = f.read()
            out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"; "
                    "filename*=utf-8''%s\r\nContent-Length: %d\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n" %
                    (bnd, p, enc, len(data))).encode() + data + b"\r\n"
        except (OSError, FsError):
            err = dumps(h.tbx_body(404, "file not found: " + p, "FILE_NOT_FOUND"))
            out += ("--%s\r\nContent-Disposition: form-data; name=\"error\"; filename=\"%s\"; "
                    "filename*=utf-8''%s\r\nContent-Type: application/json; charset=utf-8\r\n\r\n"
                    "%s\r\n" % (bnd, p, enc, err)).encode()
    out += ("--%s--\r\n" % bnd).encode()
    return h.send_bytes(200, out, "multipart/form-data; boundary=" + bnd)


def _delete(h, ctx):
    root, home = ctx[2], ctx[3]
    path = h.qs("path")
    host, _ = sandboxfs.resolve(root, home, path, follow_last=False)
    if not os.path.lexists(host):
        raise FsError(404, "file not found: " + path, "FILE_NOT_FOUND")
    if os.path.isdir(host) and not os.path.islink(host):
        if h.qs("recursive") != "true":
            raise FsError(400, "cannot delete directory without recursive flag", "BAD_REQUEST")
        import shutil
        shutil.rmtree(host)
    else:
        os.unlink(host)
    return h.send_empty(204)
