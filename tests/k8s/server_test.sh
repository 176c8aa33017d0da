#!/bin/sh
# The whole server on the k8s backend (run under with-fake.sh): build/ci-server
# with CI_BACKEND=k8s and the generated config talks to the fake API server;
# LibreChat's calls go through HTTP: upload, exec with the file, download of
# what the program wrote, a failing program, and the faults the issue names
# (API server down -> 503, image pull error -> fast 502 with the reason, pod
# deleted underneath -> recreated on the next exec).
#
#   server_test.sh BUILD_DIR
set -u
build=$1
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (got '$2', want '$3')"; fi; }
has() { case $2 in *"$3"*) ok "$1" ;; *) bad "$1 (no '$3' in: $(printf %.300s "$2"))" ;; esac; }

work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=k8s-itest-key-0123456789
base=http://127.0.0.1:$port
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
fault() { curl -sf -X POST -d "$1" "$FAKE_K8S_CONTROL/fault" >/dev/null || bad "fault $1"; }

# A runtime whose image cannot be pulled: the fake fails "no-such-image" pulls.
cp "$CI_K8S_CONF" "$work/ci.conf"
sed -i 's|image_format = |image = { node = "registry.example/no-such-image:1"; };\n    image_format = |' \
	"$work/ci.conf"
CI_API_KEY=$key CI_PORT=$port CI_BACKEND=k8s CI_FILE_STORAGE_PATH="$work/files" \
	CI_PLUGIN_DIR="$build/plugins" "$build/ci-server" -c "$work/ci.conf" 2>"$work/log" &
pid=$!
for _ in $(seq 200); do curl -sf "$base/health" >/dev/null && break; sleep 0.05; done
check "server up on the k8s backend" "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" 200
H="X-API-Key: $key"

printf 'hello from the upload\n' >"$work/data.txt"
up=$(curl -s -H "$H" -F "file=@$work/data.txt;filename=data.txt" "$base/upload")
has "upload answers success" "$up" '"message":"success"'
sid=$(printf "%s" "$up" | json 'd["storage_session_id"]')
fid=$(printf "%s" "$up" | json 'd["files"][0]["fileId"]')

cat >"$work/exec.json" <<JSON
{"lang": "py", "code": "import sys\nprint(open('/mnt/data/data.txt').read().upper(), end='')\nopen('/mnt/data/out.txt', 'w').write('made in a pod')\nprint('warned', file=sys.stderr)",
 "files": [{"id": "$fid", "storage_session_id": "$sid", "name": "data.txt"}]}
JSON
t0=$(date +%s%N)
res=$(curl -s -H "$H" -H 'Content-Type: application/json' --data-binary @"$work/exec.json" "$base/exec")
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# exec (new pod, upload, run, collect): ${ms} ms"
has "exec: stdout from the program" "$res" '"stdout":"HELLO FROM THE UPLOAD\n"'
has "exec: stderr from the program" "$res" '"stderr":"warned\n"'
has "exec: the written file is reported" "$res" '"name":"out.txt"'
esid=$(printf "%s" "$res" | json 'd["session_id"]')
oid=$(printf "%s" "$res" | json '[f["id"] for f in d["files"] if f["name"] == "out.txt"][0]')
check "download of the file the program wrote" \
	"$(curl -s -H "$H" "$base/download/$esid/$oid")" "made in a pod"

res=$(curl -s -w '\n%{http_code}' -H "$H" -H 'Content-Type: application/json' \
	-d '{"lang":"py","code":"import sys\nprint(\"before\")\nsys.exit(3)"}' "$base/exec")
check "a failing program is still HTTP 200" "$(echo "$res" | tail -n1)" 200
has "... with its output" "$res" '"stdout":"before\n"'

# Pod deleted underneath between two execs: the next exec still works.
pods_before=$(curl -sf "$FAKE_K8S_CONTROL/state" | json 'len(d["pods"])')
for name in $(curl -sf "$FAKE_K8S_CONTROL/state" | json '" ".join(p["metadata"]["name"] for p in d["pods"])'); do
	fault "{\"namespace\": \"ci-test\", \"delete\": \"$name\"}"
done
res=$(curl -s -w '\n%{http_code}' -H "$H" -H 'Content-Type: application/json' \
	-d '{"lang":"py","code":"print(6*7)"}' "$base/exec")
check "exec after the pods were deleted underneath: 200" "$(echo "$res" | tail -n1)" 200
has "... and it ran" "$res" '"stdout":"42\n"'
echo "# pods before the deletion: $pods_before"

# Image pull error: fast 502 with the reason.
t0=$(date +%s%N)
res=$(curl -s -w '\n%{http_code}' -H "$H" -H 'Content-Type: application/json' \
	-d '{"lang":"js","code":"console.log(1)"}' "$base/exec")
ms=$((($(date +%s%N) - t0) / 1000000))
check "image pull error: 502" "$(echo "$res" | tail -n1)" 502
has "... with the reason" "$res" "ErrImagePull"
[ "$ms" -lt 10000 ] && ok "... fast (${ms} ms)" || bad "image pull error took ${ms} ms"

# API server down: 503, and back to work when it returns.
fault '{"down": true}'
res=$(curl -s -w '\n%{http_code}' -H "$H" -H 'Content-Type: application/json' \
	-d '{"lang":"py","code":"print(1)"}' "$base/exec")
check "API server down: 503" "$(echo "$res" | tail -n1)" 503
fault '{"down": false}'
res=$(curl -s -w '\n%{http_code}' -H "$H" -H 'Content-Type: application/json' \
	-d '{"lang":"py","code":"print(2)"}' "$base/exec")
check "API server back: 200" "$(echo "$res" | tail -n1)" 200

kill -TERM $pid
for _ in $(seq 200); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
if kill -0 $pid 2>/dev/null; then bad "SIGTERM stops the server"; else
	wait $pid
	check "server exit status" "$?" 0
fi
pid=""
if [ "$fail" -ne 0 ]; then
	echo "--- server log (last lines) ---"
	tail -n 40 "$work/log"
fi
echo "k8s server: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
