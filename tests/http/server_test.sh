#!/usr/bin/env bash
# Starts the real ci-server binary on a loopback port and talks HTTP to it:
# health, auth failures, 404/405 JSON, --check-config, graceful shutdown.
# Usage: server_test.sh BUILD_DIR SOURCE_DIR
set -u
build=$1 src=$2
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (got '$2', want '$3')"; fi; }

work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=itest-key-0123456789
base=http://127.0.0.1:$port

# --check-config: the sample passes, a broken file fails with file:line.
out=$("$build/ci-server" --check-config -c "$src/conf/ci.conf" 2>&1); rc=$?
check "sample config passes --check-config" "$rc" 0
printf 'listen = {\n  port = "x";\n};\n' >"$work/bad.conf"
out=$("$build/ci-server" --check-config -c "$work/bad.conf" 2>&1); rc=$?
check "broken config fails --check-config" "$rc" 1
case $out in *"bad.conf:2:"*) ok "error names file:line";; *) bad "error names file:line: $out";; esac
out=$(CI_PLUGIN_DIR="$build/plugins" "$build/ci-server" --version); rc=$?
case $out in "ci-server "*"plugin ABI 1."*) ok "--version";; *) bad "--version: $out";; esac
case $out in *"  fake 0."*"(abi 1."*) ok "--version lists plugin versions";; *) bad "--version plugins: $out";; esac
# No key and auth not disabled: refuse to start.
out=$(env -u CI_API_KEY CI_PORT=$port "$build/ci-server" 2>&1); rc=$?
check "refuses to start without an API key" "$rc" 1

CI_API_KEY=$key CI_PORT=$port CI_BACKEND=${CI_TEST_BACKEND:-fake} \
	CI_FILE_STORAGE_PATH="$work/files" CI_PLUGIN_DIR="$build/plugins" \
	"$build/ci-server" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.05; done

req() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
check "GET /health open" "$(req "$base/health")" 200
check "GET /v1/health open" "$(req "$base/v1/health")" 200
check "GET /healthz open" "$(req "$base/healthz")" 200
check "no key: 401" "$(req "$base/v1/backends")" 401
grep -q '"error"' "$work/body" && ok "401 body is JSON error" || bad "401 body: $(cat "$work/body")"
check "wrong key: 401" "$(req -H 'X-API-Key: nope-nope-nope-nope' "$base/v1/backends")" 401
check "X-API-Key" "$(req -H "X-API-Key: $key" "$base/v1/backends")" 200
check "Bearer" "$(req -H "Authorization: Bearer $key" "$base/backends")" 200
check "key in URL (Basic)" "$(req "http://$key@127.0.0.1:$port/v1/backends")" 200
check "unknown route: 404" "$(req -H "X-API-Key: $key" "$base/nowhere")" 404
grep -q '^{"error":' "$work/body" && ok "404 body is JSON error" || bad "404 body"
check "wrong method: 405" "$(req -X DELETE -H "X-API-Key: $key" "$base/health")" 405
grep -q '^{"error":' "$work/body" && ok "405 body is JSON error" || bad "405 body"
if [ -n "${CI_TEST_EXEC:-}" ]; then
	head -c 9000000 /dev/zero | tr '\0' 'x' >"$work/big"
	check "oversized JSON body: 413" "$(req -H "X-API-Key: $key" -H 'Content-Type: application/json' --data-binary @"$work/big" "$base/exec")" 413
fi
grep -q 'http.request rid=' "$work/log" && ok "one log line per request" || bad "request log lines"

kill -TERM $pid
for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
if kill -0 $pid 2>/dev/null; then bad "SIGTERM stops the server"; else
	wait $pid; check "SIGTERM exit status" "$?" 0
	grep -q 'server.stopped' "$work/log" && ok "graceful shutdown logged" || bad "shutdown log"
fi
echo "server: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
