#!/bin/sh
# Install (when missing) and start the container engines the docker and
# podman backends talk to: dockerd on /var/run/docker.sock and the podman API
# service on /run/podman/podman.sock. There is no systemd here, so both are
# started by hand, with pid files, and we wait for their sockets to answer.
# Idempotent: a running engine is left alone.
#
#   scripts/start-engines.sh [docker] [podman]     (default: both)
#
# Environment:
#   CI_ENGINE_STATE   pid files and logs (default /run/ci-engines)
#   CI_DOCKERD_ARGS   extra dockerd arguments (default: no bridge, no iptables:
#                     sandboxes run with NetworkMode none, so the host's
#                     firewall is left untouched)
#   CI_NO_APT=1       never run apt-get (fail when something is missing)
set -eu

state=${CI_ENGINE_STATE:-/run/ci-engines}
docker_sock=/var/run/docker.sock
podman_sock=/run/podman/podman.sock
engines=${*:-docker podman}

log() { printf 'start-engines: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (dockerd and rootful podman)"
mkdir -p "$state"

need_pkgs=""
want() { # want <command-or-file> <package>
	case $1 in
	/*) [ -e "$1" ] || need_pkgs="$need_pkgs $2" ;;
	*) command -v "$1" >/dev/null 2>&1 || need_pkgs="$need_pkgs $2" ;;
	esac
}
for e in $engines; do
	case $e in
	docker) want dockerd docker.io; want /usr/sbin/runc runc ;;
	podman)
		want podman podman
		# Init: true needs podman's init binary.
		want /usr/libexec/podman/catatonit catatonit
		;;
	*) die "unknown engine '$e' (docker|podman)" ;;
	esac
done
want debootstrap debootstrap
if [ -n "$need_pkgs" ]; then
	[ "${CI_NO_APT:-0}" = 1 ] && die "missing packages:$need_pkgs (CI_NO_APT=1)"
	log "installing:$need_pkgs"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq -o Dpkg::Options::=--force-confold $need_pkgs >"$state/apt.log" 2>&1 ||
		{ tail -20 "$state/apt.log" >&2; die "apt-get install failed"; }
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_sock() { # wait_sock <socket> <pidfile> <name> <log>
	i=0
	while [ $i -lt 120 ]; do
		if curl -sf --max-time 2 --unix-socket "$1" http://d/_ping >/dev/null 2>&1; then
			return 0
		fi
		alive "$2" || { tail -20 "$4" >&2; die "$3 exited during start-up (log: $4)"; }
		sleep 0.25
		i=$((i + 1))
	done
	tail -20 "$4" >&2
	die "$3 did not answer on $1 within 30 s (log: $4)"
}

start_docker() {
	pidf=$state/dockerd.pid
	if alive "$pidf" && curl -sf --max-time 2 --unix-socket $docker_sock http://d/_ping >/dev/null; then
		log "dockerd already running (pid $(cat "$pidf"))"
		return 0
	fi
	if curl -sf --max-time 2 --unix-socket $docker_sock http://d/_ping >/dev/null 2>&1; then
		log "a docker daemon not started by this script answers on $docker_sock; using it"
		return 0
	fi
	# A stale pid file of a crashed dockerd blocks a restart.
	rm -f /var/run/docker.pid
	args=${CI_DOCKERD_ARGS:---bridge=none --iptables=false --ip-masq=false}
	log "starting dockerd $args"
	# shellcheck disable=SC2086
	nohup dockerd --host=unix://$docker_sock $args >"$state/dockerd.log" 2>&1 &
	echo $! >"$pidf"
	wait_sock $docker_sock "$pidf" dockerd "$state/dockerd.log"
	log "dockerd up (pid $(cat "$pidf"))"
}

start_podman() {
	pidf=$state/podman.pid
	if alive "$pidf" && curl -sf --max-time 2 --unix-socket $podman_sock http://d/_ping >/dev/null; then
		log "podman service already running (pid $(cat "$pidf"))"
		return 0
	fi
	mkdir -p "$(dirname $podman_sock)"
	rm -f $podman_sock
	# Machine-wide podman settings for the service, kept in our state dir:
	#  - default_ulimits: root podman otherwise asks for rlimits the kernel
	#    may refuse (VMs without CAP_SYS_RESOURCE: "error setting rlimit
	#    type 7"). The plugin sets explicit Ulimits on every container too.
	#  - exit_command_delay: podman keeps two conmon processes per exec
	#    session alive for this long (default 300 s); a busy sandbox host
	#    piles up hundreds. 30 s still leaves time to read the exit code.
	#  - init_path: catatonit for Init: true.
	conf=$state/containers.conf
	cat >"$conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
init_path = "/usr/libexec/podman/catatonit"

[engine]
exit_command_delay = 30
CONF
	log "starting podman system service on $podman_sock"
	CONTAINERS_CONF=$conf nohup podman system service --time=0 "unix://$podman_sock" \
		>"$state/podman.log" 2>&1 &
	echo $! >"$pidf"
	wait_sock $podman_sock "$pidf" "podman service" "$state/podman.log"
	log "podman service up (pid $(cat "$pidf"))"
}

for e in $engines; do
	case $e in
	docker) start_docker ;;
	podman) start_podman ;;
	esac
done
