#!/bin/sh
# Install, from Debian's archive, the host toolchains the bwrap backend runs
# LibreChat's languages with (bwrap sandboxes see the host's /usr read-only).
#
#   scripts/install-languages.sh              core set: py js ts c cpp bash
#   scripts/install-languages.sh --all        all 13 LibreChat languages
#   scripts/install-languages.sh java r ...   just these
#   scripts/install-languages.sh --dry-run .. print the apt-get command only
#   scripts/install-languages.sh --list       languages and their packages
#
# Idempotent: apt-get installs only what is missing. Needs root (or sudo).
# Packages this Debian release does not have are reported and skipped.
set -eu

CORE="py js ts c cpp bash"
ALL="py js ts c cpp java php rs go d f90 r bash"

packages_for() {
	case "$1" in
	py | python) echo "python3 python3-numpy python3-pandas python3-matplotlib python3-seaborn python3-plotly" ;;
	js | javascript | node) echo "nodejs" ;;
	# tsc (node-typescript) compiles, ts-node runs .ts directly
	ts | typescript) echo "nodejs node-typescript ts-node" ;;
	c) echo "gcc libc6-dev" ;;
	cpp | c++) echo "g++" ;;
	java) echo "default-jdk-headless" ;; # the JDK: `java Main.java` needs its compiler
	php) echo "php-cli" ;;
	rs | rust) echo "rustc" ;;
	go | golang) echo "golang-go" ;;
	d | dlang) echo "gdc" ;;
	f90 | fortran) echo "gfortran" ;;
	r | rscript) echo "r-base-core" ;;
	bash | sh | shell) echo "bash" ;;
	*) return 1 ;;
	esac
}

usage() {
	sed -n '2,13s/^# \{0,1\}//p' "$0"
	exit "${1:-0}"
}

dry_run=0
langs=""
for arg in "$@"; do
	case "$arg" in
	-h | --help) usage 0 ;;
	-n | --dry-run) dry_run=1 ;;
	--all) langs="$langs $ALL" ;;
	--list)
		for l in $ALL; do
			printf '%-5s %s\n' "$l" "$(packages_for "$l")"
		done
		exit 0
		;;
	-*)
		echo "install-languages: unknown option $arg" >&2
		usage 2
		;;
	*) langs="$langs $arg" ;;
	esac
done
[ -n "$langs" ] || langs="$CORE"

wanted="bubblewrap"
for l in $langs; do
	if ! p=$(packages_for "$l"); then
		echo "install-languages: unknown language '$l' (known: $ALL)" >&2
		exit 2
	fi
	wanted="$wanted $p"
done

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-languages: run as root" >&2
		exit 1
	fi
else
	SUDO=
fi

export DEBIAN_FRONTEND=noninteractive
if [ "$dry_run" -eq 0 ]; then
	$SUDO apt-get update -q
fi

pkgs=""
for p in $wanted; do
	case " $pkgs " in *" $p "*) continue ;; esac
	if apt-cache show --no-all-versions "$p" >/dev/null 2>&1 ||
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		pkgs="$pkgs $p"
	else
		echo "install-languages: $p is not in this system's archive: skipped" >&2
	fi
done

if [ "$dry_run" -eq 1 ]; then
	echo "apt-get install -y$pkgs"
	exit 0
fi
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -q $pkgs

# Report what a sandbox will find (the server reports the same per language).
for l in $langs; do
	case "$l" in
	py | python) prog=python3 ;;
	js | javascript | node) prog=node ;;
	ts | typescript) prog=tsc ;;
	c) prog=gcc ;;
	cpp | c++) prog=g++ ;;
	java) prog=javac ;;
	php) prog=php ;;
	rs | rust) prog=rustc ;;
	go | golang) prog=go ;;
	d | dlang) prog=gdc ;;
	f90 | fortran) prog=gfortran ;;
	r | rscript) prog=Rscript ;;
	*) prog=bash ;;
	esac
	if PATH=/usr/local/bin:/usr/bin:/bin command -v "$prog" >/dev/null 2>&1; then
		echo "  $l: $prog available"
	else
		echo "  $l: $prog MISSING"
	fi
done
