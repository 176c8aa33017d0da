#!/usr/bin/env bash
# Installs what building, running and testing ci-server needs on Debian 12.
# Idempotent: packages already present are skipped by apt.
#   scripts/install-deps.sh          build + run (embedded bwrap backend)
#   scripts/install-deps.sh --test   plus everything the test suite uses
set -euo pipefail
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

pkgs=(build-essential cmake pkg-config curl ca-certificates
	libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libconfig-dev libssl-dev
	libseccomp-dev libarchive-dev libcmocka-dev libwslay-dev
	bubblewrap)
if [ "$want_test" = 1 ]; then
	# wrk: benchmarks; python3-kubernetes + kubectl: the fake Kubernetes API
	# server is checked with the real clients; openssl: test keys and CAs.
	# r-base-core: R's plot capture is tested for real.
	pkgs+=(wrk python3 jq openssl python3-kubernetes python3-websocket r-base-core clang-format)
	command -v kubectl >/dev/null 2>&1 || pkgs+=(kubernetes-client)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi
if ! command -v node >/dev/null 2>&1 && [ "$want_test" = 1 ]; then
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
fi
# The languages the sandboxes run (host toolchains for the bwrap backend).
"$(dirname "$0")/install-languages.sh"
