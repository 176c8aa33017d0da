#!/usr/bin/env bash
# Creates everything tests/jwt needs in OUT_DIR, fresh on every run: keys made
# with the openssl CLI, a JWKS built from them, and tokens minted by mint.mjs
# the way LibreChat's codeapi.ts mints them (and once more with jose).
# Usage: make_material.sh OUT_DIR
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
mint() { node "$here/mint.mjs" "$@"; }

command -v node >/dev/null || { echo "make_material.sh: node is required" >&2; exit 1; }
command -v openssl >/dev/null || { echo "make_material.sh: openssl is required" >&2; exit 1; }
# jose, pinned in package.json; installed once, under a lock so parallel
# builds (plain and ASan) do not race.
if [ ! -f "$here/node_modules/jose/package.json" ]; then
	mkdir -p "$here/node_modules"
	(
		flock 9
		if [ ! -f "$here/node_modules/jose/package.json" ]; then
			npm install --prefix "$here" --no-audit --no-fund --no-package-lock \
				--loglevel=error >&2 ||
				{ echo "make_material.sh: npm install of jose failed" >&2; exit 1; }
		fi
	) 9>"$here/node_modules/.install.lock"
fi

rm -rf "$out"
mkdir -p "$out"
cd "$out"
pub() { openssl pkey -in "$1.key" -pubout -out "$1.pub"; }
openssl genpkey -algorithm ed25519 -out ed.key && pub ed
openssl genpkey -algorithm ed25519 -out ed2.key && pub ed2
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null && pub rsa
openssl rsa -in rsa.key -RSAPublicKey_out -out rsa.pkcs1.pub 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key && pub ec
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.key 2>/dev/null && pub rsa1024
openssl genpkey -algorithm x25519 -out x25519.key && pub x25519
mint jwks lc-codeapi-2026-05=ed.pub:EdDSA lc-rsa-1=rsa.pub lc-ec-1=ec.pub >jwks.json

now=$(date +%s)
echo "$now" >now
for impl in librechat jose; do
	mint token --impl $impl --alg EdDSA --key ed.key --now "$now" >$impl-eddsa.tok
	mint token --impl $impl --alg RS256 --key rsa.key --kid lc-rsa-1 --now "$now" \
		>$impl-rs256.tok
done
mint token --impl jose --key ed.key --now "$now" --aud other,codeapi >aud-array.tok
mint token --key ed.key --now "$now" --aud other >wrong-aud.tok
mint token --key ed.key --now "$now" --iss someone-else >wrong-iss.tok
mint token --key ed.key --now "$now" --tenant 'acme:eu' --sub 'user:42' >tenant.tok
