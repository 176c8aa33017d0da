#!/bin/sh
# Build the ci-server sandbox images without any registry: one shared
# debootstrap'ed Debian base, the runtime's Debian packages installed in a
# chroot, then "docker import" / "podman import". The result matches
# images/<runtime>/Dockerfile (same package list, same ENV/USER/WORKDIR/CMD,
# which are read from that Dockerfile).
#
#   images/build.sh [--engine docker|podman] [--force] [RUNTIME...]
#
# RUNTIME: python node bash gcc (the default set), java php rust go d fortran r.
# Idempotent: an image that exists in the engine and was built from the
# current recipe (label ci.sandbox.recipe) is skipped; --force rebuilds. The base tarball and each runtime's root filesystem tarball are
# cached under $CI_IMAGE_CACHE (default images/out/, gitignored), so building
# the same runtime for the second engine only costs the import.
#
# Environment: CI_IMAGE_CACHE, CI_DEBIAN_MIRROR (default: the host's first
# Debian mirror, else http://deb.debian.org/debian), CI_IMAGE_TAG (latest: the name the core's language table uses).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${CI_IMAGE_CACHE:-$here/out}
tag=${CI_IMAGE_TAG:-latest}
suite=bookworm
engine=docker
force=0
default_runtimes="python node bash gcc"

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() {
	sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//; /^set -eu/d' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--engine) [ $# -ge 2 ] || usage; engine=$2; shift 2 ;;
	--engine=*) engine=${1#--engine=}; shift ;;
	--force) force=1; shift ;;
	-h|--help) usage ;;
	--) shift; break ;;
	-*) log "unknown option $1"; usage ;;
	*) break ;;
	esac
done
case $engine in
docker|podman) ;;
*) die "--engine must be docker or podman, not '$engine'" ;;
esac
runtimes=${*:-$default_runtimes}
for rt in $runtimes; do
	[ -f "$here/$rt/packages" ] && [ -f "$here/$rt/Dockerfile" ] ||
		die "unknown runtime '$rt' (no images/$rt/packages + Dockerfile)"
done
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
command -v "$engine" >/dev/null || die "$engine not installed (scripts/start-engines.sh)"
"$engine" version >/dev/null 2>&1 || die "$engine engine not reachable (scripts/start-engines.sh)"

image_name() { echo "ci-sandbox-$1:$tag"; }
# The recipe of a runtime: its package list, the shared finishing script and
# its Dockerfile. Stored as a label, so a changed recipe means a rebuild.
recipe() { cat "$here/$1/packages" "$here/lib/finish-rootfs.sh" "$here/$1/Dockerfile" | cksum | cut -d' ' -f1; }
image_current() { # image_current <image> <runtime>
	have=$("$engine" image inspect --format '{{ index .Config.Labels "ci.sandbox.recipe" }}' \
		"$1" 2>/dev/null) || return 1
	[ "$have" = "$(recipe "$2")" ]
}

mirror=${CI_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources \
		2>/dev/null | head -1)
	[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(http[^ ]*\/debian\) .*/\1/p' \
		/etc/apt/sources.list 2>/dev/null | head -1)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi

mkdir -p "$cache"
work=""
mounted=""
cleanup() {
	for m in $mounted; do umount -l "$m" 2>/dev/null || true; done
	[ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The shared base: Debian minbase + the sandbox user and /mnt/data.
base_tar=$cache/base-$suite.tar
build_base() {
	[ -f "$base_tar" ] && return 0
	command -v debootstrap >/dev/null || die "debootstrap not installed"
	log "debootstrap --variant=minbase $suite from $mirror (about 1.5 min)"
	root=$work/base
	debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
	# Later apt runs use the security and updates suites too.
	cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SRC
	chroot "$root" sh -s <"$here/lib/finish-rootfs.sh"
	tar --numeric-owner -C "$root" -cf "$base_tar.part" \
		--exclude=./proc/* --exclude=./sys/* --exclude=./dev/* .
	mv "$base_tar.part" "$base_tar"
	rm -rf "$root"
	log "base cached: $base_tar ($(du -h "$base_tar" | cut -f1))"
}

# The runtime's root filesystem: base + its Debian packages.
build_rootfs() { # build_rootfs <runtime> -> $cache/rootfs-<runtime>.tar
	rt=$1
	out=$cache/rootfs-$rt.tar
	stamp=$(recipe "$rt")
	if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	build_base
	root=$work/$rt
	mkdir -p "$root"
	tar --numeric-owner -C "$root" -xf "$base_tar"
	cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	mount -t proc proc "$root/proc"
	mounted="$root/proc $mounted"
	mount --bind /dev "$root/dev"
	mounted="$root/dev $mounted"
	log "$rt: apt-get install $(tr '\n' ' ' <"$here/$rt/packages")"
	if ! chroot "$root" sh -c 'apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive xargs -a /dev/stdin apt-get install -y -qq \
			--no-install-recommends' <"$here/$rt/packages" >"$work/$rt-apt.log" 2>&1; then
		tail -20 "$work/$rt-apt.log" >&2
		die "$rt: package installation failed"
	fi
	chroot "$root" sh -s <"$here/lib/finish-rootfs.sh"
	: >"$root/etc/resolv.conf"
	for m in $mounted; do umount "$m"; done
	mounted=""
	tar --numeric-owner -C "$root" -cf "$out.part" \
		--exclude=./proc/* --exclude=./sys/* --exclude=./dev/* .
	mv "$out.part" "$out"
	echo "$stamp" >"$out.stamp"
	rm -rf "$root"
	log "$rt: root filesystem cached: $out ($(du -h "$out" | cut -f1))"
}

# ENV/USER/WORKDIR/CMD lines of the Dockerfile become import --change options.
import_image() { # import_image <runtime> <image>
	rt=$1
	set --
	while IFS= read -r line; do
		case $line in
		ENV\ *|USER\ *|WORKDIR\ *|CMD\ *) set -- "$@" --change "$line" ;;
		esac
	done <"$here/$rt/Dockerfile"
	old=$("$engine" image inspect --format '{{.Id}}' "$(image_name "$rt")" 2>/dev/null || true)
	log "$rt: $engine import -> $(image_name "$rt")"
	q=""
	[ "$engine" = podman ] && q=--quiet
	"$engine" import $q "$@" --change "LABEL ci.sandbox.runtime=$rt" \
		--change "LABEL ci.sandbox.recipe=$(recipe "$rt")" \
		"$cache/rootfs-$rt.tar" "$(image_name "$rt")" >/dev/null
	# The replaced image, unless containers still use it.
	[ -n "$old" ] && "$engine" rmi "$old" >/dev/null 2>&1 || true
}

work=$(mktemp -d "${TMPDIR:-/tmp}/ci-images.XXXXXX")
for rt in $runtimes; do
	img=$(image_name "$rt")
	if [ $force = 0 ] && image_current "$img" "$rt"; then
		log "$rt: $img is up to date in $engine, skipped"
		continue
	fi
	t0=$(date +%s)
	build_rootfs "$rt"
	import_image "$rt" "$img"
	log "$rt: built $img in $(($(date +%s) - t0)) s"
done
