#!/bin/sh
# Stop what scripts/start-engines.sh started, by pid file, and clean up.
# Idempotent: missing or dead pids are fine. Engines this script did not start
# are left alone.
#
#   scripts/stop-engines.sh [docker] [podman]     (default: both)
set -eu

state=${CI_ENGINE_STATE:-/run/ci-engines}
engines=${*:-docker podman}

log() { printf 'stop-engines: %s\n' "$*" >&2; }

stop_pid() { # stop_pid <pidfile> <name>
	[ -f "$1" ] || { log "$2: no pid file"; return 0; }
	pid=$(cat "$1")
	if ! kill -0 "$pid" 2>/dev/null; then
		log "$2: pid $pid not running"
		rm -f "$1"
		return 0
	fi
	kill -TERM "$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 60 ]; do
		sleep 0.25
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$2: pid $pid ignored SIGTERM for 15 s; SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$1"
	log "$2: stopped (pid $pid)"
}

for e in $engines; do
	case $e in
	docker)
		stop_pid "$state/dockerd.pid" dockerd
		rm -f /var/run/docker.pid
		;;
	podman)
		stop_pid "$state/podman.pid" "podman service"
		rm -f /run/podman/podman.sock
		;;
	*) log "unknown engine '$e'"; exit 1 ;;
	esac
done
