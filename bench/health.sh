#!/usr/bin/env bash
# GET /health with keep-alive under wrk: ci-server beside the floor (a
# minimal libmicrohttpd server built here, same daemon mode) in one run.
# Prints req/s, p99 and the ratio (target >= 0.8x the floor), and the
# server's idle RSS (target <= 10 MiB).
# Usage: bench/health.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
secs=${2:-10}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.05; done; return 1; }

pin_srv="" pin_load=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin_srv="taskset -c 0" pin_load="taskset -c 1"
fi
cc -O2 -o "$work/mhd_floor" "$here/mhd_floor.c" $(pkg-config --cflags --libs libmicrohttpd) -lpthread
pf=$(free_port)
$pin_srv "$work/mhd_floor" "$pf" & pids+=($!)
pc=$(free_port)
CI_API_KEY=bench-key-0123456789 CI_PORT=$pc CI_LOG_LEVEL=warn \
	CI_FILE_STORAGE_PATH="$work/files" CI_PLUGIN_DIR="$build/plugins" \
	CI_BACKEND=${CI_BENCH_BACKEND:-fake} $pin_srv "$build/ci-server" 2>"$work/log" & pids+=($!)
cpid=$!
wait_up "$pf"; wait_up "$pc"
sleep 1
rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$cpid/status)

# Servers on core 0, the load generator on core 1 (when there are two), so
# neither server competes with wrk differently; rounds alternate and the
# median of each side is reported.
rounds=${CI_BENCH_ROUNDS:-3}
run() { $pin_load wrk -t1 -c32 -d"${secs}s" --latency "http://127.0.0.1:$1/health" >"$work/$2.txt"; }
rps() { awk '/Requests\/sec/ {print $2}' "$work/$1.txt"; }
p99() { awk '$1=="99%" {print $2}' "$work/$1.txt"; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
wrk -t1 -c4 -d1s "http://127.0.0.1:$pf/health" >/dev/null
wrk -t1 -c4 -d1s "http://127.0.0.1:$pc/health" >/dev/null
for r in $(seq "$rounds"); do
	run "$pf" "floor$r"; run "$pc" "ci$r"
	echo "$(rps "floor$r") $(p99 "floor$r")" >>"$work/floor.all"
	echo "$(rps "ci$r") $(p99 "ci$r")" >>"$work/ci.all"
done
f_rps=$(cut -d' ' -f1 "$work/floor.all" | median); c_rps=$(cut -d' ' -f1 "$work/ci.all" | median)
to_ms() { awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[0-9]s$/ && $1 !~ /ms$/) v *= 1000; printf "%.3f\n", v }'; }
f_p99=$(cut -d' ' -f2 "$work/floor.all" | to_ms | median)
c_p99=$(cut -d' ' -f2 "$work/ci.all" | to_ms | median)
printf '%-12s %12s %12s   (median of %d rounds of %ss)\n' "server" "req/s" "p99 ms" "$rounds" "$secs"
printf '%-12s %12s %12s\n' "mhd floor" "$f_rps" "$f_p99"
printf '%-12s %12s %12s\n' "ci-server" "$c_rps" "$c_p99"
awk -v a="$c_rps" -v b="$f_rps" 'BEGIN { printf "ratio ci/floor: %.2f (target >= 0.80)\n", a / b }'
echo "ci-server idle RSS: $((rss_kib / 1024)).$(( (rss_kib % 1024) * 10 / 1024 )) MiB (target <= 10 MiB)"
