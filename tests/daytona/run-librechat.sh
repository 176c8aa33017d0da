#!/bin/sh
# The LibreChat client suite (tests/librechat) against the daytona backend
# and the fake Daytona that run-fake.sh started in FAKEDIR.
#   run-librechat.sh FAKEDIR BUILD_DIR
set -eu
DAYTONA_API_URL=$(cat "$1/api_url")
DAYTONA_API_KEY=test-key
CI_TEST_BACKEND=daytona
export DAYTONA_API_URL DAYTONA_API_KEY CI_TEST_BACKEND
exec "$(dirname "$0")/../librechat/run.sh" "$2"
