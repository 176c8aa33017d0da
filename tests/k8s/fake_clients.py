#!/usr/bin/python3
"""Checks the fake Kubernetes API server with Debian's real clients.

Run under with-fake.sh (KUBECONFIG, FAKE_K8S_DIR, FAKE_K8S_CONTROL set):
  - kubectl: create a pod from YAML, get it (by name, -o json, -l with an
    equality and a set-based selector), watch its phase change, the 404 of
    a missing pod, the 422 of an invalid pod, the 409 of a duplicate,
    delete;
  - python3-kubernetes: CoreV1Api CRUD and its `stream` exec over WebSocket
    (v4.channel.k8s.io): stdout, stderr, exit codes, stdin, a 401.
Prints TAP-like lines and "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%sok %d - %s%s" % ("" if ok else "not ", len(results), name,
                              "" if ok else " # " + str(detail)[:300]), flush=True)
    return ok


def kubectl(*args, stdin=None, timeout=40):
    p = subprocess.run(["kubectl", "--request-timeout=20s"] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def control(path, body=None):
    url = os.environ["FAKE_K8S_CONTROL"] + path
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
        return json.load(r)


POD = """apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: fake-check, tier: %s}
spec:
  restartPolicy: Never
  containers:
  - name: sandbox
    image: %s
    command: ["sleep", "300"]
"""


def test_kubectl():
    rc, out, err = kubectl("create", "--validate=false", "-f", "-",
                           stdin=POD % ("kc-one", "web", "debian:bookworm"))
    check("kubectl create -f - (YAML)", rc == 0 and "pod/kc-one created" in out, err)
    # kubectl get -w prints the pod each time it changes: Pending, then Running.
    w = subprocess.Popen(["kubectl", "get", "pod", "kc-one", "--watch",
                          "-o", "jsonpath={.status.phase}{\"\\n\"}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    phases, end = [], time.time() + 20
    while time.time() < end and "Running" not in phases:
        line = w.stdout.readline()
        if not line:
            break
        phases.append(line.strip())
    w.kill()
    w.wait()
    check("kubectl get --watch sees Pending then Running",
          "Running" in phases and phases[0] in ("Pending", ""), phases)
    rc, out, err = kubectl("get", "pod", "kc-one", "-o", "json")
    pod = json.loads(out) if rc == 0 else {}
    check("kubectl get -o json: Running with a running container",
          pod.get("status", {}).get("phase") == "Running" and
          "running" in pod["status"]["containerStatuses"][0]["state"], err or out[:200])
    kubectl("create", "--validate=false", "-f", "-",
            stdin=POD % ("kc-two", "db", "debian:bookworm"))
    rc, out, err = kubectl("get", "pods", "-l", "app=fake-check,tier=web", "-o", "name")
    check("kubectl get -l equality selector", out.split() == ["pod/kc-one"], out + err)
    rc, out, err = kubectl("get", "pods", "-l", "tier in (web,db),app", "-o", "name")
    check("kubectl get -l set-based selector", sorted(out.split()) == ["pod/kc-one", "pod/kc-two"],
          out + err)
    rc, out, err = kubectl("get", "pods", "-l", "tier notin (web)", "-o", "name")
    check("kubectl get -l notin", out.split() == ["pod/kc-two"], out + err)
    rc, out, err = kubectl("get", "pod", "no-such-pod")
    check("kubectl get of a missing pod: NotFound", rc != 0 and "NotFound" in err and
          "not found" in err, err)
    rc, out, err = kubectl("create", "--validate=false", "-f", "-",
                           stdin=POD % ("kc-one", "web", "debian:bookworm"))
    check("kubectl create of a duplicate: AlreadyExists", rc != 0 and "AlreadyExists" in err, err)
    rc, out, err = kubectl("create", "--validate=false", "-f", "-",
                           stdin=POD % ("Bad_Name", "web", "debian:bookworm"))
    check("kubectl create of an invalid name: Invalid (422)",
          rc != 0 and "is invalid" in err and "metadata.name" in err, err)
    rc, out, err = kubectl("delete", "pod", "kc-one", "kc-two", "--wait=true")
    check("kubectl delete (and wait)", rc == 0 and 'pod "kc-one" deleted' in out, out + err)
    rc, out, err = kubectl("get", "pods", "-o", "name")
    check("no pods left", out.strip() == "", out + err)


def test_python_client():
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    from kubernetes.stream import stream

    config.load_kube_config(os.environ["KUBECONFIG"])
    v1 = client.CoreV1Api()
    ns = "ci-test"
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name="py-one", labels={"app": "py"}),
        spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
            name="sandbox", image="debian:bookworm", command=["sleep", "300"])]))
    v1.create_namespaced_pod(ns, body)
    for _ in range(100):
        p = v1.read_namespaced_pod("py-one", ns)
        if p.status.phase == "Running":
            break
        time.sleep(0.1)
    check("python client: pod Running", p.status.phase == "Running", p.status.phase)
    pods = v1.list_namespaced_pod(ns, label_selector="app=py")
    check("python client: list with labelSelector", [x.metadata.name for x in pods.items] ==
          ["py-one"])

    def run(cmd, stdin_data=None):
        r = stream(v1.connect_get_namespaced_pod_exec, "py-one", ns, command=cmd,
                   stderr=True, stdout=True, stdin=stdin_data is not None, tty=False,
                   _preload_content=False)
        if stdin_data is not None:
            r.write_stdin(stdin_data)
        out, err = "", ""
        end = time.time() + 20
        while r.is_open() and time.time() < end:
            r.update(timeout=1)
            out += r.read_stdout() if r.peek_stdout() else ""
            err += r.read_stderr() if r.peek_stderr() else ""
        out += r.read_stdout() if r.peek_stdout() else ""
        err += r.read_stderr() if r.peek_stderr() else ""
        return out, err, r.returncode

    out, err, code = run(["sh", "-c", "echo to-out; echo to-err >&2; exit 7"])
    check("python stream exec: stdout", out == "to-out\n", repr(out))
    check("python stream exec: stderr", err == "to-err\n", repr(err))
    check("python stream exec: exit code 7 from the status channel", code == 7, code)
    out, err, code = run(["sh", "-c", "id -u; pwd; ls -d /mnt/data /tmp; touch /x 2>&1; true"])
    check("python stream exec: uid 1000, read-only root, /mnt/data and /tmp",
          out.startswith("1000\n") and "/mnt/data" in out and "Read-only" in out and code == 0,
          repr(out))
    out, err, code = run(["sh", "-c", "head -c 5"], stdin_data="hello world")
    check("python stream exec: stdin (v4, no close: head -c)", out == "hello" and code == 0,
          repr(out))
    out, err, code = run(["sh", "-c", "exit 0"])
    check("python stream exec: exit 0 is Success", code == 0, code)
    st = control("/state")["stats"]
    check("the python client spoke v4.channel.k8s.io",
          st["exec_protocols"].get("v4.channel.k8s.io", 0) >= 4, st["exec_protocols"])
    try:
        v1.read_namespaced_pod("nope", ns)
        check("python client: 404 ApiException", False)
    except ApiException as e:
        check("python client: 404 ApiException", e.status == 404 and
              json.loads(e.body)["reason"] == "NotFound", e.body)
    control("/fault", {"tokens": ["not-the-client-token"]})
    try:
        v1.list_namespaced_pod(ns)
        check("python client: 401 with a rejected token", False)
    except ApiException as e:
        check("python client: 401 with a rejected token", e.status == 401 and
              json.loads(e.body)["reason"] == "Unauthorized", e.body)
    control("/reset", {})
    v1.delete_namespaced_pod("py-one", ns, grace_period_seconds=0)
    try:
        v1.read_namespaced_pod("py-one", ns)
        check("python client: delete", False)
    except ApiException as e:
        check("python client: delete", e.status == 404)


def main():
    missing = [t for t in ("kubectl",) if subprocess.run(["sh", "-c", "command -v " + t],
                                                        capture_output=True).returncode]
    try:
        import kubernetes  # noqa: F401
        import websocket  # noqa: F401
    except ImportError as e:
        missing.append("python3-kubernetes (%s)" % e)
    if missing:
        if os.environ.get("CI_SKIP_K8S") == "1":
            print("SKIP: missing %s (CI_SKIP_K8S=1)" % ", ".join(missing))
            return 77
        print("FAIL: missing %s (scripts/install-deps.sh --test)" % ", ".join(missing))
        return 1
    test_kubectl()
    test_python_client()
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
