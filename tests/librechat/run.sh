#!/usr/bin/env bash
# LibreChat compatibility suite: installs the pinned npm packages when
# missing, then runs every test/*.test.js with node's test runner against a
# ci-server binary.
#
#   tests/librechat/run.sh [BUILD_DIR | PATH/TO/ci-server]
#
# Default binary: $CI_SERVER_BIN, else ../../build/ci-server. Each test file
# starts its own server (loopback, ephemeral port, temp storage) with the
# backend $CI_TEST_BACKEND (default bwrap; its plugin must be built).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ $# -gt 0 ]; then
	if [ -d "$1" ]; then
		CI_SERVER_BIN="$1/ci-server"
	else
		CI_SERVER_BIN="$1"
	fi
fi
CI_SERVER_BIN="${CI_SERVER_BIN:-$here/../../build/ci-server}"
if [ ! -x "$CI_SERVER_BIN" ]; then
	echo "run.sh: no ci-server binary at $CI_SERVER_BIN" >&2
	exit 1
fi
CI_SERVER_BIN="$(cd "$(dirname "$CI_SERVER_BIN")" && pwd)/$(basename "$CI_SERVER_BIN")"
export CI_SERVER_BIN

for tool in node npm; do
	if ! command -v "$tool" >/dev/null; then
		echo "run.sh: $tool is required (Node.js >= 20)" >&2
		exit 1
	fi
done

cd "$here"
# Reinstall when a pinned package is missing or package-lock.json changed.
if ! node -e '
	const lock = require("./package-lock.json");
	const inst = require("./node_modules/.package-lock.json");
	for (const [k, v] of Object.entries(lock.packages))
		if (k && (!inst.packages[k] || inst.packages[k].version !== v.version))
			process.exit(1);
' 2>/dev/null; then
	echo "== npm ci (tests/librechat)"
	npm ci --no-audit --no-fund --loglevel=error
fi

# Every request goes to 127.0.0.1: keep proxies (axios, agents' PROXY) out of it.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
echo "== node --test (server: $CI_SERVER_BIN, backend: ${CI_TEST_BACKEND:-bwrap})"
exec node --test --test-reporter=tap test/
