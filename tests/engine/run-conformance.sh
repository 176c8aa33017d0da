#!/bin/sh
# ctest wrapper: run the backend conformance kit against the docker or podman
# plugin with the config in this directory.
#
#   run-conformance.sh docker|podman KIT PLUGIN.so CONFIG
#
# An unreachable engine is a failure (CI starts the engines), unless
# CI_SKIP_ENGINES=1 is set explicitly: then the test reports "skipped" (77).
set -eu
be=$1 kit=$2 plugin=$3 conf=$4
case $be in
docker) sock=/var/run/docker.sock ;;
podman) sock=/run/podman/podman.sock ;;
*) echo "unknown backend $be" >&2; exit 2 ;;
esac
if ! curl -sf --max-time 5 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
	if [ "${CI_SKIP_ENGINES:-0}" = 1 ]; then
		echo "SKIP: $be engine not reachable at $sock (CI_SKIP_ENGINES=1)"
		exit 77
	fi
	echo "FAIL: $be engine not reachable at $sock; start it with scripts/start-engines.sh" \
		"(or set CI_SKIP_ENGINES=1 on a developer machine)" >&2
	exit 1
fi
exec "$kit" --runtime bash "$plugin" "$conf"
