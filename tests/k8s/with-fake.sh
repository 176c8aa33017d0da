#!/bin/sh
# Run a command next to a fresh fake Kubernetes API server (tests/fakes/k8s):
#
#   with-fake.sh [--ready-delay-ms N] -- COMMAND [ARG]...
#
# The fake gets a state directory of its own (TLS CA, token, pods); this
# script writes a ci-server config for the k8s backend pointing at it and
# exports, for COMMAND:
#   FAKE_K8S_DIR      the state directory (ca.crt, token, kubeconfig, ...)
#   FAKE_K8S_URL      https://127.0.0.1:PORT
#   FAKE_K8S_CONTROL  http://127.0.0.1:PORT of the test-control endpoint
#   CI_K8S_CONF       the ci-server config file (backends.k8s -> the fake)
#   KUBECONFIG        a kubeconfig for kubectl / python3-kubernetes
# The fake is stopped (by its pid) and its directory removed afterwards.
#
# Missing prerequisites (root, bwrap, nsenter, setpriv, openssl, python3)
# are a failure, unless CI_SKIP_K8S=1 is set: then the test is skipped (77).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fake=$here/../fakes/k8s/fake_k8s.py
delay=300
while [ $# -gt 0 ]; do
	case $1 in
	--ready-delay-ms) delay=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "with-fake.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

missing=""
[ "$(id -u)" = 0 ] || missing="$missing root"
for t in bwrap nsenter setpriv openssl /usr/bin/python3 curl; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
	if [ "${CI_SKIP_K8S:-0}" = 1 ]; then
		echo "SKIP: the fake k8s API server needs:$missing (CI_SKIP_K8S=1)"
		exit 77
	fi
	echo "FAIL: the fake k8s API server needs:$missing (scripts/install-deps.sh --test;" \
		"or set CI_SKIP_K8S=1 on a developer machine)" >&2
	exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/ci-fake-k8s.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

/usr/bin/python3 "$fake" --state-dir "$dir/state" --ready-delay-ms "$delay" \
	--namespace ci-test >"$dir/fake.out" 2>"$dir/fake.err" &
pid=$!
i=0
until grep -q '^fake-k8s ready' "$dir/fake.out" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "FAIL: the fake k8s API server did not start:" >&2
		cat "$dir/fake.err" >&2
		exit 1
	fi
	sleep 0.05
done
FAKE_K8S_DIR=$dir/state
FAKE_K8S_URL=https://127.0.0.1:$(cat "$FAKE_K8S_DIR/api-port")
FAKE_K8S_CONTROL=http://127.0.0.1:$(cat "$FAKE_K8S_DIR/control-port")
CI_K8S_CONF=$dir/k8s.conf
KUBECONFIG=$FAKE_K8S_DIR/kubeconfig
export FAKE_K8S_DIR FAKE_K8S_URL FAKE_K8S_CONTROL CI_K8S_CONF KUBECONFIG
# The sandbox "image" is the host's root (the fake runs pods under bwrap), so
# the image name only matters for the image pull error simulation.
cat >"$CI_K8S_CONF" <<CONF
backends: {
  k8s: {
    url = "$FAKE_K8S_URL";
    namespace = "ci-test";
    ca_file = "$FAKE_K8S_DIR/ca.crt";
    token_file = "$FAKE_K8S_DIR/token";
    image_prefix = "registry.example/";
    image_format = "ci-sandbox-%s";
    start_timeout_ms = 30000;
    exec_grace_ms = 2000;
  };
};
CONF
set +e
"$@"
rc=$?
set -e
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
	echo "--- fake k8s API server stderr (last lines) ---" >&2
	tail -n 30 "$dir/fake.err" >&2
fi
exit $rc
