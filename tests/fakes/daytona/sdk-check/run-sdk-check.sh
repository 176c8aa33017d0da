#!/bin/sh
# Install the pinned @daytonaio/sdk (npm) into WORKDIR and run check.js
# against the fake Daytona started in FAKEDIR by run-fake.sh.
#   run-sdk-check.sh FAKEDIR WORKDIR
set -eu
fakedir=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
cp "$here/package.json" "$here/check.js" "$work/"
cd "$work"
if [ ! -f node_modules/@daytonaio/sdk/package.json ] ||
	! grep -q '"version": "0.218.0"' node_modules/@daytonaio/sdk/package.json; then
	npm install --no-audit --no-fund --no-package-lock --loglevel=error
fi
api=$(cat "$fakedir/api_url")
export DAYTONA_API_URL="$api"
export DAYTONA_API_KEY=test-key
export DAYTONA_TARGET=us
export FAKE_CTL="${api%/api}"
: "${DAYTONA_SDK_LOG:=$here/../../../../../shared/docs/daytona-sdk-requests.log}"
export DAYTONA_SDK_LOG
exec node check.js
