#!/bin/sh
# Build examples/out-of-tree-backend with its own Makefile, outside the CMake
# tree, and load the result through the real loader (the conformance kit).
#   example_build.sh SRC_DIR OUT_DIR CONFORMANCE_BIN PKG_CONFIG_DIR|none
# With a directory, the header must come through pkg-config; with "none",
# pkg-config must find nothing and the Makefile's fallback is used.
set -eu
src=$1 out=$2 kit=$3 pc=$4

rm -rf "$out"
mkdir -p "$out"
chmod 0755 "$out" # the loader refuses group/world-writable plugin directories
if [ "$pc" = none ]; then
	PKG_CONFIG_PATH=/nonexistent PKG_CONFIG_LIBDIR=/nonexistent
	export PKG_CONFIG_PATH PKG_CONFIG_LIBDIR
	if pkg-config --exists ci-backend; then
		echo "pkg-config unexpectedly finds ci-backend" >&2
		exit 1
	fi
else
	PKG_CONFIG_PATH=$pc
	export PKG_CONFIG_PATH
	echo "pkg-config --cflags ci-backend: $(pkg-config --cflags ci-backend)"
fi
make -C "$src" O="$out"
"$kit" --only sweep "$out/ci-backend-example.so"
