#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running server on the
# embedded bubblewrap backend: installs what is missing, builds, generates an
# API key (printed once; reused from var/api-key afterwards) and starts
# ci-server in the foreground on 127.0.0.1:8080 (CI_HOST / CI_PORT override).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mkdir -p var
chmod 700 var
if [ ! -s var/api-key ] && [ -z "${CI_API_KEY:-}" ]; then
	head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' >var/api-key
	chmod 600 var/api-key
fi
export CI_API_KEY="${CI_API_KEY:-$(cat var/api-key)}"
export CI_FILE_STORAGE_PATH="${CI_FILE_STORAGE_PATH:-$PWD/var/files}"
host="${CI_HOST:-127.0.0.1}" port="${CI_PORT:-8080}"
cat <<TXT

ci-server is starting on http://$host:$port (backend: bwrap)
  API key:  $CI_API_KEY   (saved in var/api-key)
  LibreChat .env:
    LIBRECHAT_CODE_BASEURL=http://$host:$port/v1
    LIBRECHAT_CODE_API_KEY=$CI_API_KEY        # LibreChat <= v0.8.5
    # LibreChat >= v0.8.6 sends no key: use the key-in-URL form instead:
    # LIBRECHAT_CODE_BASEURL=http://$CI_API_KEY@$host:$port/v1
  Try it:
    curl -s -H "X-API-Key: $CI_API_KEY" -H 'Content-Type: application/json' \\
      -d '{"lang":"py","code":"print(6*7)"}' http://$host:$port/v1/exec

TXT
exec build/ci-server -c conf/ci.conf
