#!/usr/bin/python3
"""A fake Kubernetes API server for ci-server's tests.

TEST FIXTURE ONLY -- loopback only, root only, never for real workloads.

It serves the slice of the core/v1 API that the k8s backend and Debian's
clients use, with the real wire shapes: TLS with a CA made at start by the
openssl CLI, bearer-token auth (401 metav1.Status otherwise), discovery
(/api, /apis, /api/v1, /version), pods create/get/list/delete/
deletecollection with label selectors (equality and set-based) and field
selectors, watches (chunked, newline-delimited events) following a
realistic phase progression (Pending -> ContainerCreating -> Running),
metav1.Status errors (401, 403, 404, 409, 410, 422), image pull errors
(an image name containing "no-such-image" goes to ErrImagePull, then
ImagePullBackOff), activeDeadlineSeconds, and pods/exec over WebSocket
(v5.channel.k8s.io and v4.channel.k8s.io) running the command for real in
the pod (k8s_runtime.py: bubblewrap, per-pod /mnt/data and /tmp, no
network).

A second, plain-HTTP listener on 127.0.0.1 is the test-control endpoint:
  GET  /state            pods, accepted tokens, counters (JSON)
  POST /fault  {...}     any of:
       "down": bool             close / reopen the API listener (and its
                                connections): clients get "connection refused"
       "tokens": [str]          the bearer tokens accepted from now on
       "forbid": bool           answer 403 Forbidden to authenticated calls
       "ready_delay_ms": int    Pending -> Running delay of new pods
       "watch_delay_ms": int    hold every watch event back this long
       "exec_protocols": [str]  subprotocols exec accepts (e.g. v4 only)
       "exec_stall": bool       execs upgrade, then never answer (a hung node)
       "evict": name            kill the pod's container, phase Failed/Evicted
       "delete": name           delete the pod underneath its client
  POST /reset            all faults off

Usage: fake_k8s.py --state-dir DIR [--token T]... [--ready-delay-ms N]
Writes DIR/ca.crt, DIR/token, DIR/api-port, DIR/control-port and
DIR/kubeconfig, then prints "fake-k8s ready https://127.0.0.1:PORT".
"""
import argparse
import base64
import http.server
import json
import os
import secrets
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_exec  # noqa: E402
import k8s_objects as ko  # noqa: E402
import k8s_runtime  # noqa: E402

RESOURCES = {
    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
    "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                   "watch"], "shortNames": ["po"], "categories": ["all"]},
        {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
         "verbs": ["create", "get"]},
        {"name": "namespaces", "singularName": "namespace", "namespaced": False,
         "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]},
    ]}


class State:
    def __init__(self, args):
        self.args = args
        self.store = ko.Store()
        self.tokens = set(args.token)
        self.forbid = False
        self.ready_delay = args.ready_delay_ms / 1000.0
        self.watch_delay = 0.0
        self.exec_protocols = list(k8s_exec.PROTOCOLS)
        self.exec_stall = False
        self.containers = {}
        self.clock = threading.Lock()
        self.stats = {"requests": 0, "unauthorized": 0, "watches": 0, "execs": 0,
                      "exec_protocols": {}, "stdin_bytes": 0, "stdin_closes": 0,
                      "creates": 0, "deletes": 0, "tokens_seen": []}
        self.pod_root = os.path.join(args.state_dir, "pods")
        os.makedirs(self.pod_root, exist_ok=True)

    def reset(self):
        self.tokens = set(self.args.token)
        self.forbid = False
        self.ready_delay = self.args.ready_delay_ms / 1000.0
        self.watch_delay = 0.0
        self.exec_protocols = list(k8s_exec.PROTOCOLS)
        self.exec_stall = False


# ---- pod lifecycle -------------------------------------------------------

def set_status(st, ns, name, fn):
    return st.store.update(ns, name, fn)


def pod_lifecycle(st, ns, name):
    """Scheduling, image pull, container start: the kubelet's part."""
    delay = st.ready_delay
    time.sleep(delay / 2)
    pod = st.store.get(ns, name)
    if not pod:
        return
    c0 = pod["spec"]["containers"][0]
    image = c0["image"]

    def scheduled(p):
        p["spec"]["nodeName"] = "fake-node-1"
        p["status"].update({
            "hostIP": "192.0.2.10", "startTime": ko.now_rfc3339(),
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Initialized", "status": "True"},
                           {"type": "ContainersReady", "status": "False",
                            "reason": "ContainersNotReady"},
                           {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": [{"name": c0["name"], "image": image, "imageID": "",
                                   "ready": False, "started": False, "restartCount": 0,
                                   "state": {"waiting": {"reason": "ContainerCreating"}}}]})
    if not set_status(st, ns, name, scheduled):
        return
    time.sleep(delay / 2)
    if "no-such-image" in image:
        def pull_err(reason, msg):
            def fn(p):
                p["status"]["containerStatuses"][0]["state"] = {
                    "waiting": {"reason": reason, "message": msg}}
            return fn
        set_status(st, ns, name, pull_err(
            "ErrImagePull", 'rpc error: code = NotFound desc = failed to pull and unpack image '
            '"%s": not found' % image))
        time.sleep(1.0)
        set_status(st, ns, name, pull_err("ImagePullBackOff", 'Back-off pulling image "%s"' % image))
        return
    pod = st.store.get(ns, name)
    if not pod:
        return
    cont = k8s_runtime.Container(os.path.join(st.pod_root, "%s_%s" % (ns, name)), pod)
    try:
        cont.start()
    except Exception as e:  # noqa: BLE001 - reported in the pod status
        def failed(p):
            p["status"]["phase"] = "Failed"
            p["status"]["containerStatuses"][0]["state"] = {"terminated": {
                "exitCode": 128, "reason": "StartError", "message": str(e)}}
        set_status(st, ns, name, failed)
        return
    with st.clock:
        if not st.store.get(ns, name):
            cont.stop()
            return
        st.containers[(ns, name)] = cont

    def running(p):
        cs = p["status"]["containerStatuses"][0]
        cs.update({"ready": True, "started": True, "imageID": "docker.io/library/" + image,
                   "containerID": "containerd://" + secrets.token_hex(32),
                   "state": {"running": {"startedAt": ko.now_rfc3339()}}})
        p["status"]["phase"] = "Running"
        p["status"]["podIP"] = "198.51.100.%d" % (len(st.containers) % 250 + 2)
        for c in p["status"]["conditions"]:
            c["status"] = "True"
            c.pop("reason", None)
    set_status(st, ns, name, running)
    threading.Thread(target=watch_container, args=(st, ns, name, cont, pod), daemon=True).start()


def watch_container(st, ns, name, cont, pod):
    deadline = pod["spec"].get("activeDeadlineSeconds")
    ended = cont.exited.wait(deadline if deadline else None)
    if not st.store.get(ns, name) or st.containers.get((ns, name)) is not cont:
        return
    if not ended:
        cont.stop()

        def expired(p):
            p["status"].update({"phase": "Failed", "reason": "DeadlineExceeded",
                                "message": "Pod was active on the node longer than the "
                                           "specified deadline"})
        set_status(st, ns, name, expired)
        return
    code = cont.exit_code if cont.exit_code is not None else 137
    code = 128 - code if code < 0 else code

    def terminated(p):
        if p["status"].get("reason") == "Evicted":
            return
        p["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
        cs = p["status"]["containerStatuses"][0]
        cs.update({"ready": False, "state": {"terminated": {
            "exitCode": code, "reason": "Completed" if code == 0 else "Error"}}})
    set_status(st, ns, name, terminated)


def stop_container(st, ns, name):
    with st.clock:
        cont = st.containers.pop((ns, name), None)
    if cont:
        threading.Thread(target=cont.stop, daemon=True).start()


def evict(st, ns, name):
    with st.clock:
        cont = st.containers.pop((ns, name), None)

    def fn(p):
        p["status"].update({"phase": "Failed", "reason": "Evicted",
                            "message": "The node was low on resource: memory."})
        for cs in p["status"].get("containerStatuses", []):
            cs.update({"ready": False, "state": {"terminated": {"exitCode": 137,
                                                                "reason": "Error"}}})
    r = st.store.update(ns, name, fn)
    if cont:
        cont.stop()
    return r


# ---- the API -------------------------------------------------------------

class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver/1.30"

    def log_message(self, fmt, *args):
        if self.server.st.args.verbose:
            sys.stderr.write("fake-k8s: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        self.server.conns.add(self.request)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.conns.discard(self.request)

    # -- replies
    def reply(self, code, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", secrets.token_hex(8))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def fail(self, s):
        self.reply(s["code"], s)

    def read_body(self):
        """Read the request body before anything else: an answer that leaves
        it unread would desync the keep-alive connection."""
        n = int(self.headers.get("Content-Length") or 0)
        self.raw_body = b""
        if n > (3 << 20):
            self.close_connection = True
            return False
        self.raw_body = self.rfile.read(n) if n else b""
        return True

    def body(self):
        raw = self.raw_body
        if not raw:
            return {}, None
        try:
            return json.loads(raw), None
        except ValueError as e:
            return None, ko.status(400, "BadRequest", "error decoding body: %s" % e)

    def auth(self):
        st = self.server.st
        st.stats["requests"] += 1
        h = self.headers.get("Authorization", "")
        tok = h[7:] if h.startswith("Bearer ") else None
        if tok and tok[-6:] not in st.stats["tokens_seen"]:
            st.stats["tokens_seen"] = (st.stats["tokens_seen"] + [tok[-6:]])[-20:]
        if not tok or tok not in st.tokens:
            st.stats["unauthorized"] += 1
            self.fail(ko.status(401, "Unauthorized", "Unauthorized"))
            return False
        if st.forbid:
            self.fail(ko.status(403, "Forbidden", 'pods is forbidden: User '
                                '"system:serviceaccount:ci:ci-server" cannot %s resource "pods" '
                                'in API group "" in the namespace' % self.command.lower(),
                                {"kind": "pods"}))
            return False
        return True

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def do_PUT(self):
        self.route("PUT")

    def do_PATCH(self):
        self.route("PATCH")

    def route(self, method):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        parts = [urllib.parse.unquote(p) for p in u.path.strip("/").split("/") if p]
        if not self.read_body():
            return self.fail(ko.status(413, "RequestEntityTooLarge", "request body too large"))
        if not self.auth():
            return
        st = self.server.st
        if parts == ["version"]:
            return self.reply(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake",
                                    "platform": "linux/amd64"})
        if parts == ["api"]:
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": [
                                        {"clientCIDR": "0.0.0.0/0",
                                         "serverAddress": "127.0.0.1"}]})
        if parts == ["apis"]:
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if parts == ["api", "v1"]:
            return self.reply(200, RESOURCES)
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 4 and method == "GET":
            return self.reply(200, {"kind": "Namespace", "apiVersion": "v1",
                                    "metadata": {"name": parts[3]},
                                    "status": {"phase": "Active"}})
        if parts[:3] == ["api", "v1", "pods"] and len(parts) == 3 and method == "GET":
            return self.pods_collection(None, method, q)
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5 or parts[4] != "pods":
            return self.fail(ko.status(404, "NotFound",
                                       "the server could not find the requested resource"))
        ns = parts[3]
        if len(parts) == 5:
            return self.pods_collection(ns, method, q)
        name = parts[5]
        if len(parts) == 6:
            return self.pod_item(ns, name, method, q)
        if len(parts) == 7 and parts[6] == "exec" and method in ("GET", "POST"):
            return self.pod_exec(ns, name, q)
        if len(parts) == 7 and parts[6] == "status" and method == "GET":
            return self.pod_item(ns, name, method, q)
        return self.fail(ko.status(405 if len(parts) == 7 else 404,
                                   "MethodNotAllowed" if len(parts) == 7 else "NotFound",
                                   "the server does not allow this method on the requested "
                                   "resource"))

    def selectors(self, q):
        try:
            return (ko.parse_label_selector(q.get("labelSelector", [""])[0]),
                    ko.parse_field_selector(q.get("fieldSelector", [""])[0]))
        except ko.SelectorError as e:
            self.fail(ko.status(400, "BadRequest", "unable to parse requirement: %s" % e))
            return None, None

    def pods_collection(self, ns, method, q):
        st = self.server.st
        if method == "POST":
            pod, err = self.body()
            if err:
                return self.fail(err)
            if not isinstance(pod, dict) or pod.get("kind", "Pod") != "Pod":
                return self.fail(ko.status(400, "BadRequest", "the body is not a Pod"))
            err = ko.validate_pod(pod, ns)
            if err:
                return self.fail(err)
            if q.get("dryRun"):
                return self.reply(201, pod)
            made, err = st.store.create(ns, pod)
            if err:
                return self.fail(err)
            st.stats["creates"] += 1
            threading.Thread(target=pod_lifecycle, args=(st, ns, made["metadata"]["name"]),
                             daemon=True).start()
            return self.reply(201, made)
        lsel, fsel = self.selectors(q)
        if not lsel:
            return
        if method == "DELETE":
            items, rv = st.store.list(ns, lsel, fsel)
            gone = []
            for p in items:
                d = st.store.delete(p["metadata"]["namespace"], p["metadata"]["name"])
                if d:
                    st.stats["deletes"] += 1
                    stop_container(st, d["metadata"]["namespace"], d["metadata"]["name"])
                    gone.append(d)
            return self.reply(200, {"kind": "PodList", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": str(st.store.rv)},
                                    "items": gone})
        if method != "GET":
            return self.fail(ko.status(405, "MethodNotAllowed", "method not allowed"))
        if q.get("watch", [""])[0] in ("true", "1"):
            return self.watch(ns, q, lsel, fsel)
        items, rv = st.store.list(ns, lsel, fsel)
        meta = {"resourceVersion": rv}
        start = 0
        if q.get("continue", [""])[0]:
            try:
                start = int(base64.urlsafe_b64decode(q["continue"][0]).decode())
            except ValueError:
                return self.fail(ko.status(400, "BadRequest", "invalid continue token"))
        limit = int(q.get("limit", ["0"])[0] or 0)
        if limit > 0 and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        else:
            items = items[start:]
        return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": meta,
                                "items": items})

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, ns, q, lsel, fsel):
        st = self.server.st
        st.stats["watches"] += 1
        timeout = float(q.get("timeoutSeconds", ["1800"])[0] or 1800)
        rv_s = q.get("resourceVersion", [""])[0]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        end = time.monotonic() + timeout
        try:
            if rv_s in ("", "0"):
                items, rv = st.store.list(ns, lsel, fsel)
                rv = int(rv)
                for p in items:
                    self.chunk(json.dumps({"type": "ADDED", "object": p}).encode() + b"\n")
            else:
                rv = int(rv_s)
                oldest = st.store.events[0][0] if st.store.events else st.store.rv
                if rv < oldest - 1:
                    self.chunk(json.dumps({"type": "ERROR", "object": ko.status(
                        410, "Expired", "too old resource version: %d (%d)" % (rv, oldest))
                    }).encode() + b"\n")
                    end = 0
            while time.monotonic() < end and not self.server.down:
                evs, rv = st.store.events_after(rv, ns, lsel, fsel,
                                                min(1.0, max(0.0, end - time.monotonic())))
                for r, t, p in evs:
                    if st.watch_delay:
                        time.sleep(st.watch_delay)
                    self.chunk(json.dumps({"type": t, "object": p}).encode() + b"\n")
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, ValueError):
            pass
        self.close_connection = True

    def pod_item(self, ns, name, method, q):
        st = self.server.st
        if method == "GET":
            p = st.store.get(ns, name)
            return self.reply(200, p) if p else self.fail(ko.not_found(name))
        if method == "DELETE":
            self.body()
            p = st.store.delete(ns, name)
            if not p:
                return self.fail(ko.not_found(name))
            st.stats["deletes"] += 1
            stop_container(st, ns, name)
            return self.reply(200, p)
        return self.fail(ko.status(405, "MethodNotAllowed", "method not allowed"))

    def pod_exec(self, ns, name, q):
        st = self.server.st
        pod = st.store.get(ns, name)
        if not pod:
            return self.fail(ko.not_found(name))
        cname = pod["spec"]["containers"][0]["name"]
        if q.get("container", [cname])[0] != cname:
            return self.fail(ko.status(400, "BadRequest", "container %s is not valid for pod %s"
                                       % (q["container"][0], name)))
        phase = pod["status"].get("phase")
        with st.clock:
            cont = st.containers.get((ns, name))
        if phase in ("Succeeded", "Failed"):
            return self.fail(ko.status(400, "BadRequest", "cannot exec into a container in a "
                                       "completed pod; current phase is %s" % phase))
        if phase != "Running" or not cont or not cont.alive():
            return self.fail(ko.status(400, "BadRequest",
                                       'unable to upgrade connection: container not found ("%s")'
                                       % cname))
        cmd = q.get("command", [])
        if not cmd:
            return self.fail(ko.status(400, "BadRequest", "you must specify at least 1 command"))
        # Go's strconv.ParseBool, as the API server parses these
        flag = {k: q.get(k, ["false"])[0] in ("1", "t", "T", "TRUE", "true", "True")
                for k in ("stdin", "stdout", "stderr", "tty")}
        if flag["tty"]:
            return self.fail(ko.status(400, "BadRequest", "the fake does not do tty"))
        if not (flag["stdin"] or flag["stdout"] or flag["stderr"]):
            return self.fail(ko.status(400, "BadRequest", "you must specify at least one of "
                                       "stdin, stdout, stderr"))
        if self.headers.get("Upgrade", "").lower() != "websocket" or \
                "upgrade" not in self.headers.get("Connection", "").lower():
            return self.fail(ko.status(400, "BadRequest", "Upgrade request required"))
        key = self.headers.get("Sec-WebSocket-Key")
        if not key or self.headers.get("Sec-WebSocket-Version") != "13":
            return self.fail(ko.status(400, "BadRequest", "bad WebSocket handshake"))
        proto = k8s_exec.pick_protocol(self.headers.get("Sec-WebSocket-Protocol"),
                                       st.exec_protocols)
        if not proto:
            return self.fail(ko.status(400, "BadRequest", "none of the offered subprotocols "
                                       "(%s) is supported" %
                                       self.headers.get("Sec-WebSocket-Protocol")))
        st.stats["execs"] += 1
        st.stats["exec_protocols"][proto] = st.stats["exec_protocols"].get(proto, 0) + 1
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", k8s_exec.accept_key(key))
        self.send_header("Sec-WebSocket-Protocol", proto)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        if st.exec_stall:
            # Hold the connection without a word until the client gives up.
            try:
                while self.request.recv(65536):
                    pass
            except OSError:
                pass
            return
        ws = k8s_exec.WsConn(self.request)
        k8s_exec.ExecSession(ws, proto, cont.exec_argv(cmd), flag["stdin"], flag["stdout"],
                             flag["stderr"], st.stats).run()


class TlsServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, st, ctx):
        self.st, self.ctx, self.conns, self.down = st, ctx, set(), False
        super().__init__(addr, Api)

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.settimeout(30)
            request.do_handshake()
            request.settimeout(None)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass


# ---- control -------------------------------------------------------------

class Control(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj, indent=1).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        app = self.server.app
        if self.path != "/state":
            return self.reply(404, {"error": "no such control path"})
        items, _ = app.st.store.list(None, lambda l: True, lambda p: True)
        self.reply(200, {"pods": items, "tokens": sorted(app.st.tokens),
                         "down": app.api is None, "stats": app.st.stats})

    def do_POST(self):
        app = self.server.app
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self.reply(400, {"error": "bad JSON"})
        st = app.st
        if self.path == "/reset":
            st.reset()
            app.set_down(False)
            return self.reply(200, {"ok": True})
        if self.path != "/fault":
            return self.reply(404, {"error": "no such control path"})
        ns = req.get("namespace", "default")
        if "tokens" in req:
            st.tokens = set(req["tokens"])
        if "forbid" in req:
            st.forbid = bool(req["forbid"])
        if "ready_delay_ms" in req:
            st.ready_delay = req["ready_delay_ms"] / 1000.0
        if "watch_delay_ms" in req:
            st.watch_delay = req["watch_delay_ms"] / 1000.0
        if "exec_protocols" in req:
            st.exec_protocols = list(req["exec_protocols"])
        if "exec_stall" in req:
            st.exec_stall = bool(req["exec_stall"])
        if "evict" in req and not evict(st, ns, req["evict"]):
            return self.reply(404, {"error": "no such pod"})
        if "delete" in req:
            if not st.store.delete(ns, req["delete"]):
                return self.reply(404, {"error": "no such pod"})
            stop_container(st, ns, req["delete"])
        if "down" in req:
            app.set_down(bool(req["down"]))
        self.reply(200, {"ok": True})


class App:
    def __init__(self, args):
        self.args = args
        self.st = State(args)
        self.ctx = None
        self.port = args.port
        self.api = None
        self.lock = threading.Lock()

    def make_certs(self):
        d = self.args.state_dir
        run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL,  # noqa: E731
                                        stderr=subprocess.PIPE)
        ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in (
            "ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=fake-k8s-ca")
        ext = os.path.join(d, "server.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
                    "extendedKeyUsage=serverAuth\n")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=kube-apiserver")
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
            "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(crt, key)
        self.ctx.set_alpn_protocols(["http/1.1"])

    def set_down(self, down):
        with self.lock:
            if down and self.api:
                api, self.api = self.api, None
                api.down = True
                api.shutdown()
                api.server_close()
                for c in list(api.conns):
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            elif not down and not self.api:
                self.api = TlsServer(("127.0.0.1", self.port), self.st, self.ctx)
                self.port = self.api.server_address[1]
                threading.Thread(target=self.api.serve_forever, kwargs={"poll_interval": 0.1},
                                 daemon=True).start()

    def write_files(self, ctl_port):
        d = self.args.state_dir
        token = sorted(self.st.tokens)[0]
        for name, text in (("token", token), ("api-port", str(self.port)),
                           ("control-port", str(ctl_port))):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        with open(os.path.join(d, "kubeconfig"), "w") as f:
            f.write(json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {
                    "server": "https://127.0.0.1:%d" % self.port,
                    "certificate-authority": os.path.join(d, "ca.crt")}}],
                "users": [{"name": "fake", "user": {"token": token}}],
                "contexts": [{"name": "fake", "context": {
                    "cluster": "fake", "user": "fake", "namespace": self.args.namespace}}]},
                indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--token", action="append", default=[])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--namespace", default="default", help="for the kubeconfig it writes")
    ap.add_argument("--ready-delay-ms", type=int, default=400)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("fake_k8s: needs root (pod containers use bwrap bind mounts and nsenter)")
    for tool in ("bwrap", "nsenter", "setpriv", "openssl"):
        if not any(os.access(os.path.join(p, tool), os.X_OK)
                   for p in os.environ.get("PATH", "/usr/bin").split(":")):
            sys.exit("fake_k8s: %s is missing" % tool)
    os.makedirs(args.state_dir, exist_ok=True)
    if not args.token:
        args.token = [secrets.token_urlsafe(24)]
    app = App(args)
    app.make_certs()
    app.set_down(False)
    ctl = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Control)
    ctl.daemon_threads = True
    ctl.app = app
    app.write_files(ctl.server_address[1])

    def bye(*_):
        for cont in list(app.st.containers.values()):
            cont.stop()
        os._exit(0)
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    print("fake-k8s ready https://127.0.0.1:%d control http://127.0.0.1:%d"
          % (app.port, ctl.server_address[1]), flush=True)
    ctl.serve_forever()


if __name__ == "__main__":
    main()
