#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the whole test suite:
# installs what is missing, starts the container engines and builds the
# sandbox images the backend suites use (from Debian packages, no registry),
# builds twice (plain, and ASan+UBSan), runs every ctest suite in both
# builds, and stops the engines it started.
#
#   CI_TEST_BACKENDS="bwrap;docker;podman;daytona;k8s"   which backends to build and test
set -euo pipefail
cd "$(dirname "$0")/.."
backends="${CI_TEST_BACKENDS:-bwrap;docker;podman;daytona;k8s}"
scripts/install-deps.sh --test

engines=()
case ";$backends;" in *";docker;"*) engines+=(docker) ;; esac
case ";$backends;" in *";podman;"*) engines+=(podman) ;; esac
if [ ${#engines[@]} -gt 0 ]; then
	echo "== engines: ${engines[*]}"
	scripts/start-engines.sh "${engines[@]}"
	trap 'scripts/stop-engines.sh '"${engines[*]}"' || true' EXIT
	for e in "${engines[@]}"; do
		images/build.sh --engine "$e" bash python
	done
fi

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
echo "== all suites: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
