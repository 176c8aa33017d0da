#!/usr/bin/env bash
# The real ci-server with API keys and LibreChat JWTs accepted together:
# tokens minted like LibreChat's codeapi.ts (mint.mjs), principals keep
# every user's files and sandboxes apart, every bad token is a 401.
# Usage: server_jwt_test.sh BUILD_DIR MATERIAL_DIR
set -u
build=$1 mat=$2
here=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (got '$2', want '$3')"; fi; }
has() { if grep -q -- "$3" "$2"; then ok "$1"; else bad "$1: $(head -c 300 "$2")"; fi; }

work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port/v1
opskey=ops-key-0123456789abc
cat >"$work/ci.conf" <<EOF
auth = {
	accept = [ "api_key", "librechat_jwt" ];
	keys = ( { name = "ops"; key = "$opskey"; } );
	jwt = { keys = ( { kid = "lc-codeapi-2026-05"; file = "$mat/ed.pub"; algs = [ "EdDSA" ]; },
	                 { kid = "lc-rsa-1"; file = "$mat/rsa.pub"; algs = [ "RS256" ]; } ); };
};
backend = "fake";
storage = { path = "$work/files"; };
EOF
CI_PORT=$port CI_PLUGIN_DIR="$build/plugins" "$build/ci-server" -c "$work/ci.conf" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.05; done

mint() { node "$here/mint.mjs" token "$@"; }
now=$(date +%s)
u1=$(mint --key "$mat/ed.key" --sub user-1)
u1rsa=$(mint --alg RS256 --kid lc-rsa-1 --key "$mat/rsa.key" --sub user-1)
u2=$(mint --key "$mat/ed.key" --sub user-2)
req() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
auth() { echo "Authorization: Bearer $1"; }

# A token of LibreChat's works where an API key does.
check "EdDSA token accepted" "$(req -H "$(auth "$u1")" "$base/librechat/sessions")" 200
printf 'user one data\n' >"$work/data.txt"
check "upload with a token" "$(req -H "$(auth "$u1")" -F "file=@$work/data.txt" "$base/upload")" 200
sid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_id"])' "$work/body")
fid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["files"][0]["fileId"])' "$work/body")
check "RS256 token of the same user reads it" \
	"$(req -H "$(auth "$u1rsa")" "$base/download/$sid/$fid")" 200
has "... with the right bytes" "$work/body" "user one data"
# Principals are kept apart: another user, and the API key, see nothing.
check "another user: 404 on download" "$(req -H "$(auth "$u2")" "$base/download/$sid/$fid")" 404
check "another user: listing is empty" "$(req -H "$(auth "$u2")" "$base/files/$sid?detail=full")" 200
check "... empty" "$(cat "$work/body")" "[]"
check "the API key principal: 404" "$(req -H "X-API-Key: $opskey" "$base/download/$sid/$fid")" 404
body="{\"lang\":\"py\",\"code\":\"print(open('data.txt').read())\",\"files\":[{\"id\":\"$fid\",\"storage_session_id\":\"$sid\",\"name\":\"data.txt\"}]}"
check "another user cannot mount it" \
	"$(req -H "$(auth "$u2")" -H 'Content-Type: application/json' -d "$body" "$base/exec")" 400
check "its owner can" \
	"$(req -H "$(auth "$u1")" -H 'Content-Type: application/json' -d "$body" "$base/exec")" 200
has "... and the program reads it" "$work/body" "user one data"

# Every bad token is a 401 with a reason, never the token echoed.
expect_401() {
	check "$1: 401" "$(req -H "$(auth "$2")" "$base/librechat/sessions")" 401
	has "$1: reason given" "$work/body" '"error":"unauthorized: invalid token'
}
expect_401 "expired" "$(mint --key "$mat/ed.key" --sub user-1 --ttl 60 --now $((now - 3600)))"
expect_401 "not yet valid" "$(mint --key "$mat/ed.key" --sub user-1 --now $((now + 3600)))"
expect_401 "wrong audience" "$(mint --key "$mat/ed.key" --sub user-1 --aud other)"
expect_401 "wrong issuer" "$(mint --key "$mat/ed.key" --sub user-1 --iss someone-else)"
expect_401 "unknown kid" "$(mint --key "$mat/ed.key" --sub user-1 --kid nope)"
expect_401 "key of another signer" "$(mint --key "$mat/ed2.key" --sub user-1)"
expect_401 "RS256 header on the EdDSA key's kid" \
	"$(mint --alg RS256 --key "$mat/rsa.key" --sub user-1)"
b64() { python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).decode().rstrip("="))'; }
payload=$(printf '{"iss":"librechat","aud":"codeapi","sub":"user-1","iat":%d,"nbf":%d,"exp":%d}' \
	"$now" "$now" $((now + 300)) | b64)
none_tok="$(printf '{"alg":"none","typ":"JWT","kid":"lc-codeapi-2026-05"}' | b64).$payload."
expect_401 "alg none" "$none_tok"
hs_head=$(printf '{"alg":"HS256","typ":"JWT","kid":"lc-codeapi-2026-05"}' | b64)
hs_sig=$(printf '%s' "$hs_head.$payload" |
	python3 -c 'import hmac,hashlib,base64,sys; k=open(sys.argv[1],"rb").read(); print(base64.urlsafe_b64encode(hmac.new(k, sys.stdin.buffer.read(), hashlib.sha256).digest()).decode().rstrip("="))' "$mat/ed.pub")
expect_401 "HS256 signed with the public key" "$hs_head.$payload.$hs_sig"
tampered="${u1%%.*}.$(printf '{"iss":"librechat","aud":"codeapi","sub":"user-2","iat":%d,"nbf":%d,"exp":%d}' "$now" "$now" $((now + 300)) | b64).${u1##*.}"
expect_401 "tampered payload" "$tampered"
expect_401 "signature cut off" "${u1%.*}"
expect_401 "truncated signature" "${u1:0:$((${#u1} - 10))}"
check "garbage: 401" "$(req -H 'Authorization: Bearer not.a.jwt' "$base/librechat/sessions")" 401
if grep -q -- "${u1##*.}" "$work/log"; then bad "tokens never logged"; else ok "tokens never logged"; fi

kill -TERM $pid
wait $pid
check "clean shutdown" "$?" 0
echo "jwt-server: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
