"""Control-plane API (/api/...) and the test-control API (/__fake/...) of
the fake Daytona (daytona-fake.md sections 3 and 6)."""

import base64
import json
import re
import time
import urllib.parse

from .state import ERRORED, TRANSITIONAL

SANDBOX = re.compile(r"^/api/sandbox/([^/]+)$")
SANDBOX_OP = re.compile(r"^/api/sandbox/([^/]+)/(stop|start|toolbox-proxy-url|last-activity|labels)$")
SANDBOX_AUTO = re.compile(r"^/api/sandbox/([^/]+)/(autostop|autodelete|autoarchive)/(-?\d+)$")
RESOURCE_KEYS = ("cpu", "memory", "disk", "gpu")
INTERVALS = ("autoStopInterval", "autoArchiveInterval", "autoDeleteInterval")


def handle_api(h, fake):
    if h.bearer() != fake.config["api_key"]:
        return h.api_error(401, "Invalid credentials")
    m, p = h.command, h.path_only
    with fake.lock:
        fake.tick_all()
        if p == "/api/sandbox" and m == "POST":
            return _create(h, fake)
        if p == "/api/sandbox" and m == "GET":
            return _list(h, fake)
        if p == "/api/sandbox/paginated" and m == "GET":
            return _paginated(h, fake)
        if p == "/api/config" and m == "GET":
            return h.send_json(200, {"proxyToolboxUrl": fake.toolbox_base,
                                     "defaultSnapshot": fake.config["default_snapshot"]})
        mo = SANDBOX_AUTO.match(p)
        if mo and m == "POST":
            sb = fake.find(urllib.parse.unquote(mo.group(1)))
            if not sb:
                return _notfound(h, mo.group(1))
            key = {"autostop": "autoStopInterval", "autodelete": "autoDeleteInterval",
                   "autoarchive": "autoArchiveInterval"}[mo.group(2)]
            sb.dto[key] = int(mo.group(3))
            fake.touch(sb)
            return h.send_empty(200)
        mo = SANDBOX_OP.match(p)
        if mo:
            return _sandbox_op(h, fake, urllib.parse.unquote(mo.group(1)), mo.group(2), m)
        mo = SANDBOX.match(p)
        if mo:
            key = urllib.parse.unquote(mo.group(1))
            if m == "GET":
                sb = fake.find(key)
                if not sb:
                    return _notfound(h, key)
                fake.poll_step(sb)
                if sb.id not in fake.sandboxes:
                    return _notfound(h, key)
                return h.send_json(200, fake.dto(sb))
            if m == "DELETE":
                return _delete(h, fake, key)
    return h.api_error(404, "Cannot %s %s" % (m, p))


def _notfound(h, key):
    return h.api_error(404, "Sandbox with ID or name %s not found" % key)


def _create(h, fake):
    try:
        body = json.loads(h.read_body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        return h.api_error(400, "Invalid JSON body")
    if body.get("buildInfo") and body.get("snapshot"):
        return h.api_error(400, "Cannot specify both snapshot and buildInfo")
    if not body.get("buildInfo") and any(body.get(k) for k in RESOURCE_KEYS):
        return h.api_error(400, "Cannot specify Sandbox resources when using a snapshot")
    snap = body.get("snapshot")
    if snap and snap not in fake.config["known_snapshots"]:
        return h.api_error(400, "Snapshot %s not found" % snap)
    for k in INTERVALS:
        v = body.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            return h.api_error(400, "%s must be an integer number" % k)
    labels = body.get("labels")
    if labels is not None and (not isinstance(labels, dict) or
                               any(not isinstance(v, str) for v in labels.values())):
        return h.api_error(400, "labels must be an object of strings")
    name = body.get("name")
    if name is not None:
        if not isinstance(name, str) or not name or re.search(r"[\x00-\x1f<>]|://", name):
            return h.api_error(400, "Invalid sandbox name")
        if fake.name_taken(name):
            return h.api_error(409, "Sandbox with name %s already exists" % name)
    sb = fake.create(body)
    wait = fake.config["create_blocks_until_started_ms"]
    if wait > 0:
        deadline = time.monotonic() + wait / 1000.0
        fake.lock.release()
        try:
            while time.monotonic() < deadline:
                with fake.lock:
                    fake.tick(sb)
                    if sb.state == "started" or sb.state in ERRORED:
                        break
                time.sleep(0.02)
        finally:
            fake.lock.acquire()
    return h.send_json(200, fake.dto(sb))


def _matching(h, fake):
    q = h.query
    want = {}
    if "labels" in q:
        try:
            want = json.loads(q["labels"][0])
            if not isinstance(want, dict):
                raise ValueError
        except ValueError:
            return None
    lag = fake.config["list_lag_ms"]
    out = []
    for sb in fake.sandboxes.values():
        if lag and (time.time() - sb.created_wall) * 1000 < lag:
            continue
        labels = sb.dto.get("labels") or {}
        if all(labels.get(k) == v for k, v in want.items()):
            out.append(sb)
    out.sort(key=lambda s: s.last_activity, reverse=True)
    return out


def _list(h, fake):
    items = _matching(h, fake)
    if items is None:
        return h.api_error(400, "Invalid labels JSON format")
    try:
        limit = int(h.query.get("limit", ["100"])[0])
    except ValueError:
        limit = 0
    if limit < 1 or limit > 200:
        return h.api_error(400, "limit must not be greater than 200, limit must not be less than 1")
    cap = fake.config.get("page_limit_cap")  # test knob: force pagination
    if cap:
        limit = min(limit, int(cap))
    start = 0
    if "cursor" in h.query:
        try:
            start = int(base64.b64decode(h.query["cursor"][0]).decode())
        except ValueError:
            return h.api_error(400, "Invalid cursor")
    page = [fake.dto(s, listing=True) for s in items[start:start + limit]]
    if fake.config["list_shape"] == "array":
        return h.send_json(200, [fake.dto(s) for s in items])
    nxt = None
    if start + limit < len(items):
        nxt = base64.b64encode(str(start + limit).encode()).decode()
    return h.send_json(200, {"items": page, "nextCursor": nxt})


def _paginated(h, fake):
    items = _matching(h, fake)
    if items is None:
        return h.api_error(400, "Invalid labels JSON format")
    page = int(h.query.get("page", ["1"])[0])
    limit = int(h.query.get("limit", ["10"])[0])
    total = len(items)
    sl = items[(page - 1) * limit:page * limit]
    return h.send_json(200, {"items": [fake.dto(s, listing=True) for s in sl], "total": total,
                             "page": page, "totalPages": max(1, (total + limit - 1) // limit)})


def _delete(h, fake, key):
    sb = fake.find(key)
    if not sb:
        return _notfound(h, key)
    if sb.pending or sb.state in TRANSITIONAL:
        return h.api_error(409, "Sandbox state change in progress")
    fake.request_destroy(sb)
    return h.send_json(200, fake.dto(sb))


def _sandbox_op(h, fake, key, op, m):
    sb = fake.find(key)
    if not sb:
        return _notfound(h, key)
    if op == "toolbox-proxy-url" and m == "GET":
        return h.send_json(200, {"url": fake.toolbox_base})
    if op == "last-activity" and m == "POST":
        fake.touch(sb)
        return h.send_empty(201)
    if op == "labels" and m == "PUT":
        try:
            labels = json.loads(h.read_body() or b"{}").get("labels")
        except (ValueError, AttributeError):
            labels = None
        if not isinstance(labels, dict):
            return h.api_error(400, "labels must be an object")
        sb.dto["labels"] = labels
        return h.send_json(200, fake.dto(sb))
    if op == "stop" and m == "POST":
        if sb.state in ERRORED:
            return h.api_error(400, "Sandbox is in an errored state")
        if sb.pending or sb.state != sb.dto["desiredState"]:
            return h.api_error(409, "Sandbox state change in progress")
        if sb.state != "started":
            return h.api_error(400, "Sandbox is not in a stoppable state")
        fake.request_stop(sb)
        return h.send_json(200, fake.dto(sb))
    if op == "start" and m == "POST":
        if sb.state == "started" and sb.dto["desiredState"] == "started":
            return h.send_json(200, fake.dto(sb))
        if sb.state in ERRORED:
            return h.api_error(400, "Sandbox is in an errored state")
        if sb.pending or sb.state != sb.dto["desiredState"]:
            return h.api_error(409, "Sandbox state change in progress")
        if sb.state not in ("stopped", "archived", "archiving", "paused"):
            return h.api_error(400, "Sandbox is not in valid state")
        fake.request_start(sb)
        return h.send_json(200, fake.dto(sb))
    return h.api_error(404, "Cannot %s %s" % (m, h.path_only))


# --- /__fake ---------------------------------------------------------------

def handle_control(h, fake):
    m, p = h.command, h.path_only
    with fake.lock:
        if p == "/__fake/reset" and m == "POST":
            fake.reset()
            return h.send_json(200, {"ok": True})
        if p == "/__fake/config":
            if m == "POST":
                try:
                    fake.config.update(json.loads(h.read_body() or b"{}"))
                except (ValueError, TypeError):
                    return h.send_json(400, {"error": "bad json"})
            return h.send_json(200, fake.config)
        if p == "/__fake/faults":
            if m == "POST":
                try:
                    rule = json.loads(h.read_body())
                    if not isinstance(rule, dict):
                        raise ValueError
                except ValueError:
                    return h.send_json(400, {"error": "bad json"})
                fake.faults.append(rule)
                return h.send_json(200, {"faults": len(fake.faults)})
            if m == "DELETE":
                fake.faults.clear()
                return h.send_empty(204)
            return h.send_json(200, fake.faults)
        if p == "/__fake/requests" and m == "GET":
            return h.send_json(200, fake.requests)
        if p == "/__fake/requests" and m == "DELETE":
            fake.requests.clear()
            return h.send_empty(204)
        if p == "/__fake/sandboxes" and m == "GET":
            fake.tick_all()
            return h.send_json(200, [dict(fake.dto(s), _pending=s.pending, _root=s.root)
                                     for s in fake.sandboxes.values()])
        if p == "/__fake/advance" and m == "POST":
            body = json.loads(h.read_body() or b"{}")
            fake.offset_ms += float(body.get("minutes", 0)) * fake.config["minute_ms"] + \
                float(body.get("ms", 0))
            fake.tick_all()
            return h.send_json(200, {"offset_ms": fake.offset_ms})
        mo = re.match(r"^/__fake/sandbox/([^/]+)/(state|destroy|age)$", p)
        if mo and m == "POST":
            sb = fake.find(urllib.parse.unquote(mo.group(1)))
            if not sb:
                return h.send_json(404, {"error": "no such sandbox"})
            body = json.loads(h.read_body() or b"{}")
            if mo.group(2) == "destroy":
                fake.enter(sb, "destroyed")
            elif mo.group(2) == "age":
                # backdate creation for sweep tests: createdAt only
                sb.created_wall -= float(body.get("seconds", 0))
                from .httpio import iso
                sb.dto["createdAt"] = iso(sb.created_wall)
            else:
                st = body.get("state", "started")
                if "errorReason" in body:
                    sb.dto["errorReason"] = body["errorReason"]
                if st in ("started", "stopped"):
                    sb.dto["desiredState"] = st
                fake.enter(sb, st)
                if st not in TRANSITIONAL:
                    sb.pending = False
            return h.send_json(200, fake.dto(sb))
    return h.send_json(404, {"error": "unknown control path"})
