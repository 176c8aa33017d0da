"""Sandbox state machine, configuration, faults and the request log of the
fake Daytona (daytona-fake.md sections 1, 2, 5 and 6).

All state lives in one Fake object guarded by one lock. Transitions are
computed lazily: every access calls tick(), which advances time-driven
states; transition_mode=poll advances one step per GET /sandbox/{id}.
"""

import os
import shutil
import threading
import time
import uuid

DEFAULT_CONFIG = {
    "api_key": "test-key",
    "org_id": "org-fake",
    "default_snapshot": "daytonaio/sandbox:fake",
    "known_snapshots": ["daytonaio/sandbox:fake", "python-3.12"],
    "transition_mode": "time",
    "creating_ms": 200,
    "starting_ms": 200,
    "stopping_ms": 100,
    "destroying_ms": 100,
    "create_blocks_until_started_ms": 0,
    "create_outcome": "ok",  # ok | error | stuck
    "exec_mode": "local",
    "sandbox_home": "/home/daytona",
    "minute_ms": 60000,
    "unknown_sandbox_toolbox_status": 404,
    "toolbox_4xx_empty_body": False,
    "list_shape": "object",  # object | array
    "list_lag_ms": 0,
    "max_output_bytes": 10 << 20,
    "daemon_version": "0.190.0",
}

TRANSITIONAL = {"creating", "starting", "stopping", "destroying", "pending_build",
                "building_snapshot", "pulling_snapshot", "restoring", "archiving"}
ERRORED = {"error", "build_failed"}
LIST_HIDDEN = ("env", "volumes", "buildInfo", "kvm")


class Sandbox:
    def __init__(self, fake, body, now, wall):
        self.id = str(uuid.uuid4())
        self.root = os.path.join(fake.data_root, self.id)
        home = fake.config["sandbox_home"]
        for d in (home, "/mnt/data", "/tmp"):
            os.makedirs(self.root + d, exist_ok=True)
        labels = body.get("labels") or {}
        self.behavior = labels.get("fake-behavior", "")
        self.pending = True
        self.entered = now
        self.last_activity = now
        self.sessions = {}
        self.created_wall = wall
        self.dto = {
            "id": self.id,
            "organizationId": fake.config["org_id"],
            "name": body.get("name") or self.id,
            "snapshot": body.get("snapshot") or fake.config["default_snapshot"],
            "user": body.get("user") or "daytona",
            "env": body.get("env") or {},
            "labels": labels,
            "public": bool(body.get("public", False)),
            "networkBlockAll": bool(body.get("networkBlockAll", False)),
            "kvm": False,
            "target": body.get("target") or "us",
            "cpu": body.get("cpu") or 1,
            "gpu": body.get("gpu") or 0,
            "memory": body.get("memory") or 1,
            "disk": body.get("disk") or 3,
            "state": "pending_build" if body.get("buildInfo") else "creating",
            "desiredState": "started",
            "recoverable": False,
            "backupState": "None",
            "autoStopInterval": _int_or(body.get("autoStopInterval"), 15),
            "autoArchiveInterval": _int_or(body.get("autoArchiveInterval"), 10080),
            "autoDeleteInterval": _int_or(body.get("autoDeleteInterval"), -1),
            "volumes": body.get("volumes") or [],
            "sandboxClass": "container",
            "daemonVersion": fake.config["daemon_version"],
            "runnerId": "runner-1",
        }
        if "networkAllowList" in body:
            self.dto["networkAllowList"] = body["networkAllowList"]
        if body.get("buildInfo"):
            self.dto["buildInfo"] = body["buildInfo"]
            del self.dto["snapshot"]

    @property
    def state(self):
        return self.dto["state"]


def _int_or(v, default):
    return default if v is None else int(v)


class Fake:
    def __init__(self, data_root, config=None):
        self.lock = threading.RLock()
        self.data_root = data_root
        os.makedirs(data_root, exist_ok=True)
        self.config = dict(DEFAULT_CONFIG)
        if config:
            self.config.update(config)
        self.toolbox_base = None  # set by the server once ports are known
        self.offset_ms = 0
        self.sandboxes = {}
        self.faults = []
        self.requests = []

    # --- clock ------------------------------------------------------------
    def now_ms(self):
        return time.monotonic() * 1000 + self.offset_ms

    def wall(self):
        return time.time() + self.offset_ms / 1000.0

    def wall_of(self, ms):
        """Wall-clock seconds of a now_ms() value."""
        return self.wall() - (self.now_ms() - ms) / 1000.0

    # --- lookup -----------------------------------------------------------
    def find(self, id_or_name):
        sb = self.sandboxes.get(id_or_name)
        if sb:
            return sb
        for s in self.sandboxes.values():
            if s.dto["name"] == id_or_name:
                return s
        return None

    def name_taken(self, name):
        return any(s.dto["name"] == name for s in self.sandboxes.values())

    # --- transitions ------------------------------------------------------
    def enter(self, sb, state, now=None):
        sb.dto["state"] = state
        sb.entered = self.now_ms() if now is None else now
        sb.dto["updatedAt"] = self._iso_now()
        if state == "stopped" or state in ERRORED or state == "destroyed":
            sb.sessions.clear()
        if state == "destroyed":
            self.sandboxes.pop(sb.id, None)
            shutil.rmtree(sb.root, ignore_errors=True)
        if state in ERRORED or (state not in TRANSITIONAL and state == self._settled(sb)):
            sb.pending = False

    def _settled(self, sb):
        d = sb.dto["desiredState"]
        return {"started": "started", "stopped": "stopped", "destroyed": "destroyed"}.get(d, d)

    def _outcome(self, sb):
        return sb.outcome

    def step(self, sb):
        """The next state and its dwell time in ms, or None when settled."""
        c = self.config
        s, d = sb.state, sb.dto["desiredState"]
        if d == "destroyed":
            if s == "destroying":
                return "destroyed", c["destroying_ms"]
            return "destroying", 0
        if s == "pending_build":
            return "building_snapshot", c["creating_ms"]
        if s == "building_snapshot":
            return "creating", c["creating_ms"]
        if s == "creating":
            out = self._outcome(sb)
            if out == "stuck":
                return None
            if out == "error":
                return "error", c["creating_ms"]
            return "starting", c["creating_ms"]
        if s == "starting":
            return "started", c["starting_ms"]
        if s == "started" and d == "stopped":
            return "stopping", 0
        if s == "stopping":
            return "stopped", c["stopping_ms"]
        return None

    def tick(self, sb, now=None):
        now = self.now_ms() if now is None else now
        if self.config["transition_mode"] == "time":
            while sb.id in self.sandboxes:
                nxt = self.step(sb)
                if nxt is None or now - sb.entered < nxt[1]:
                    break
                self._advance(sb, nxt[0], sb.entered + nxt[1])
        self._timers(sb, now)

    def poll_step(self, sb):
        if self.config["transition_mode"] == "poll":
            nxt = self.step(sb)
            if nxt:
                self._advance(sb, nxt[0])

    def _advance(self, sb, state, at=None):
        if state == "error":
            sb.dto["errorReason"] = "runner out of capacity (fake)"
        self.enter(sb, state, at)

    def _timers(self, sb, now):
        if sb.id not in self.sandboxes:
            return
        c, dto = self.config, sb.dto
        if sb.state == "started" and dto["desiredState"] == "started" and not sb.pending:
            stop = dto["autoStopInterval"]
            if stop > 0 and now - sb.last_activity > stop * c["minute_ms"]:
                self.request_stop(sb)
                self.tick(sb, now)
        if sb.state == "stopped" and not sb.pending:
            dele = dto["autoDeleteInterval"]
            if dele >= 0 and now - sb.entered >= dele * c["minute_ms"]:
                self.enter(sb, "destroyed")

    def tick_all(self):
        now = self.now_ms()
        for sb in list(self.sandboxes.values()):
            self.tick(sb, now)

    def request_stop(self, sb):
        sb.pending = True
        if sb.dto["autoDeleteInterval"] == 0:
            self.request_destroy(sb)
        else:
            sb.dto["desiredState"] = "stopped"
            sb.entered = self.now_ms()

    def request_destroy(self, sb):
        sb.pending = True
        sb.dto["desiredState"] = "destroyed"
        sb.dto["name"] = "DESTROYED_%s_%d" % (sb.dto["name"], int(self.wall() * 1000))
        sb.entered = self.now_ms()

    def request_start(self, sb):
        sb.pending = True
        sb.dto["desiredState"] = "started"
        self.enter(sb, "starting")

    def touch(self, sb):
        sb.last_activity = self.now_ms()
        sb.dto["lastActivityAt"] = self._iso_now()

    def _iso_now(self):
        from .httpio import iso
        return iso(self.wall())

    def create(self, body):
        sb = Sandbox(self, body, self.now_ms(), self.wall())
        # fixed at creation, so changing create_outcome later affects new sandboxes only
        sb.outcome = {"error": "error", "stuck-creating": "stuck"}.get(
            sb.behavior, self.config["create_outcome"])
        now_iso = self._iso_now()
        sb.dto["createdAt"] = sb.dto["updatedAt"] = sb.dto["lastActivityAt"] = now_iso
        self.sandboxes[sb.id] = sb
        return sb

    def dto(self, sb, listing=False):
        out = dict(sb.dto)
        if sb.behavior != "omit-proxy-url":
            out["toolboxProxyUrl"] = self.toolbox_base
        if listing:
            for k in LIST_HIDDEN:
                out.pop(k, None)
        return out

    # --- faults and log ---------------------------------------------------
    def match_fault(self, method, path):
        import re
        for f in self.faults:
            if f.get("times", 1) == 0:
                continue
            m = f.get("method")
            if m and m != "*" and m.upper() != method:
                continue
            if f.get("path_regex") and not re.search(f["path_regex"], path):
                continue
            if f.get("times", 1) > 0:
                f["times"] = f.get("times", 1) - 1
            return dict(f)
        return None

    def log(self, entry):
        self.requests.append(entry)
        if len(self.requests) > 5000:
            del self.requests[:1000]

    def reset(self):
        for sb in list(self.sandboxes.values()):
            shutil.rmtree(sb.root, ignore_errors=True)
        self.sandboxes.clear()
        self.faults.clear()
        self.requests.clear()
        self.offset_ms = 0
