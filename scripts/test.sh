#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the whole test suite:
# installs what is missing, builds twice (plain, and ASan+UBSan), runs every
# ctest suite in both builds (unit tests, the HTTP server, the backend
# conformance kit, containment, and the LibreChat client suite).
# Container engines are started and stopped by the suites that need them.
set -euo pipefail
cd "$(dirname "$0")/.."
backends="${CI_TEST_BACKENDS:-bwrap}"
scripts/install-deps.sh --test
status=0
for variant in plain asan; do
	dir=build-test-$variant
	flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCI_BACKENDS=$backends")
	[ $variant = asan ] && flags+=(-DCI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
	echo "== build ($variant)"
	cmake -S . -B "$dir" "${flags[@]}" >/dev/null
	cmake --build "$dir" -j"$(nproc)" >/dev/null
	echo "== test ($variant)"
	# halt_on_error keeps a sanitizer report from being lost in a passing run.
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		ctest --test-dir "$dir" --output-on-failure -j2 --timeout 900 || status=1
done
exit $status
