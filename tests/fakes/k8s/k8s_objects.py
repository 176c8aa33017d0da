"""Pod store of the fake Kubernetes API server: objects, label and field
selectors, metav1.Status shapes, validation, and the watch event log.

TEST FIXTURE ONLY. Nothing here is a Kubernetes implementation; it models
the parts of the pods API that ci-server's k8s backend and the Debian
clients (kubectl, python3-kubernetes) use, with the real wire shapes.
"""
import copy
import datetime
import re
import secrets
import threading
import time

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def now_rfc3339(t=None):
    t = time.time() if t is None else t
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def status(code, reason, message, details=None):
    """A metav1.Status failure body."""
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details is not None:
        s["details"] = details
    return s


def not_found(name, kind="pods"):
    return status(404, "NotFound", '%s "%s" not found' % (kind, name),
                  {"name": name, "kind": kind})


def label_key_ok(key):
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and LABEL_NAME.match(name) is not None


class SelectorError(ValueError):
    pass


def _split_top(s):
    """Split a selector on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise SelectorError("unbalanced parentheses")
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


SET_RE = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s+\(([^()]*)\)$")
EQ_RE = re.compile(r"^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=(),]*)$")


def parse_label_selector(s):
    """Return a predicate over a labels dict (equality and set-based)."""
    reqs = []
    for part in _split_top(s or ""):
        m = SET_RE.match(part)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            vals.discard("")
            if not label_key_ok(key):
                raise SelectorError("invalid label key %r" % key)
            reqs.append((key, op, vals))
            continue
        m = EQ_RE.match(part)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3)
            if not label_key_ok(key) or not LABEL_VALUE.match(val):
                raise SelectorError("invalid requirement %r" % part)
            reqs.append((key, "!=" if op == "!=" else "=", {val}))
            continue
        if part.startswith("!") and label_key_ok(part[1:].strip()):
            reqs.append((part[1:].strip(), "!", None))
            continue
        if label_key_ok(part):
            reqs.append((part, "exists", None))
            continue
        raise SelectorError("unable to parse requirement %r" % part)

    def match(labels):
        labels = labels or {}
        for key, op, vals in reqs:
            has = key in labels
            if op == "exists" and not has:
                return False
            if op == "!" and has:
                return False
            if op in ("=", "in") and (not has or labels[key] not in vals):
                return False
            if op in ("!=", "notin") and has and labels[key] in vals:
                return False
        return True
    return match


def parse_field_selector(s):
    reqs = []
    for part in _split_top(s or ""):
        m = re.match(r"^([a-zA-Z.]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m or m.group(1) not in ("metadata.name", "metadata.namespace", "status.phase",
                                        "spec.nodeName", "spec.restartPolicy"):
            raise SelectorError('field label not supported: "%s"' % part)
        reqs.append((m.group(1), m.group(2) != "!=", m.group(3)))

    def get(pod, path):
        cur = pod
        for p in path.split("."):
            cur = cur.get(p, {}) if isinstance(cur, dict) else {}
        return cur if isinstance(cur, str) else ""

    def match(pod):
        return all((get(pod, f) == v) == eq for f, eq, v in reqs)
    return match


def validate_pod(pod, ns):
    """Return a 422 Status for what the real API server would refuse, or None."""
    causes = []

    def need(cond, field, reason, msg):
        if not cond:
            causes.append({"reason": reason, "message": msg, "field": field})
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = meta.get("name", "")
    need(name or meta.get("generateName"), "metadata.name", "FieldValueRequired",
         "Required value: name or generateName is required")
    if name:
        need(len(name) <= 253 and DNS1123_SUBDOMAIN.match(name), "metadata.name",
             "FieldValueInvalid", "Invalid value: %r: a lowercase RFC 1123 subdomain" % name)
    if meta.get("namespace") not in (None, ns):
        causes.append({"reason": "FieldValueInvalid", "field": "metadata.namespace",
                       "message": "the namespace of the provided object does not match "
                                  "the namespace sent on the request"})
    for k, v in (meta.get("labels") or {}).items():
        need(label_key_ok(k), "metadata.labels", "FieldValueInvalid",
             "Invalid value: %r: invalid label key" % k)
        need(isinstance(v, str) and len(v) <= 63 and LABEL_VALUE.match(v), "metadata.labels",
             "FieldValueInvalid", "Invalid value: %r: invalid label value" % (v,))
    containers = spec.get("containers") or []
    need(containers, "spec.containers", "FieldValueRequired", "Required value")
    for i, c in enumerate(containers):
        need(c.get("name"), "spec.containers[%d].name" % i, "FieldValueRequired",
             "Required value")
        need(c.get("image"), "spec.containers[%d].image" % i, "FieldValueRequired",
             "Required value")
    rp = spec.get("restartPolicy", "Always")
    need(rp in ("Always", "OnFailure", "Never"), "spec.restartPolicy", "FieldValueNotSupported",
         'Unsupported value: "%s"' % rp)
    ads = spec.get("activeDeadlineSeconds")
    need(ads is None or (isinstance(ads, int) and ads > 0), "spec.activeDeadlineSeconds",
         "FieldValueInvalid", "Invalid value: must be greater than 0")
    if not causes:
        return None
    msg = 'Pod "%s" is invalid: ' % (name or meta.get("generateName", "")) + "; ".join(
        "%s: %s" % (c["field"], c["message"]) for c in causes)
    return status(422, "Invalid", msg, {"name": name, "kind": "Pod", "causes": causes})


class Store:
    """Pods and an append-only event log that watches follow."""

    def __init__(self):
        self.lock = threading.Condition()
        self.pods = {}  # (ns, name) -> pod
        self.rv = 100
        self.events = []  # (rv, type, ns, pod copy)

    def _bump(self, etype, pod):
        self.rv += 1
        pod["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, etype, pod["metadata"]["namespace"], copy.deepcopy(pod)))
        if len(self.events) > 5000:
            del self.events[:1000]
        self.lock.notify_all()

    def create(self, ns, pod):
        with self.lock:
            meta = pod.setdefault("metadata", {})
            if not meta.get("name"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            key = (ns, meta["name"])
            if key in self.pods:
                return None, status(409, "AlreadyExists", 'pods "%s" already exists' % key[1],
                                    {"name": key[1], "kind": "pods"})
            meta["namespace"] = ns
            meta["uid"] = "%s-%s-%s-%s-%s" % tuple(
                secrets.token_hex(n) for n in (4, 2, 2, 2, 6))
            meta["creationTimestamp"] = now_rfc3339()
            meta.setdefault("labels", {})
            pod["apiVersion"], pod["kind"] = "v1", "Pod"
            spec = pod.setdefault("spec", {})
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            for c in spec.get("containers", []):
                c.setdefault("imagePullPolicy", "IfNotPresent")
                c.setdefault("terminationMessagePath", "/dev/termination-log")
            pod["status"] = {"phase": "Pending", "qosClass": "Burstable",
                             "conditions": [{"type": "PodScheduled", "status": "False"}]}
            self.pods[key] = pod
            self._bump("ADDED", pod)
            return copy.deepcopy(pod), None

    def get(self, ns, name):
        with self.lock:
            p = self.pods.get((ns, name))
            return copy.deepcopy(p) if p else None

    def update(self, ns, name, fn):
        """Apply fn(pod) under the lock; emits MODIFIED. Returns the copy or None."""
        with self.lock:
            p = self.pods.get((ns, name))
            if not p:
                return None
            fn(p)
            self._bump("MODIFIED", p)
            return copy.deepcopy(p)

    def delete(self, ns, name):
        with self.lock:
            p = self.pods.pop((ns, name), None)
            if not p:
                return None
            p["metadata"]["deletionTimestamp"] = now_rfc3339()
            p["metadata"]["deletionGracePeriodSeconds"] = 0
            self._bump("DELETED", p)
            return copy.deepcopy(p)

    def list(self, ns, lsel, fsel):
        with self.lock:
            items = [copy.deepcopy(p) for (pns, _), p in sorted(self.pods.items())
                     if (ns is None or pns == ns) and lsel(p["metadata"].get("labels"))
                     and fsel(p)]
            return items, str(self.rv)

    def events_after(self, rv, ns, lsel, fsel, timeout):
        """Events with resourceVersion > rv, waiting up to timeout seconds."""
        end = time.monotonic() + timeout
        with self.lock:
            while True:
                out = [(r, t, copy.deepcopy(p)) for (r, t, pns, p) in self.events
                       if r > rv and (ns is None or pns == ns)
                       and lsel(p["metadata"].get("labels")) and fsel(p)]
                if out:
                    return out, self.events[-1][0]
                left = end - time.monotonic()
                if left <= 0:
                    return [], rv
                self.lock.wait(left)
