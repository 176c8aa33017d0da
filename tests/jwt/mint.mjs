#!/usr/bin/env node
// Mints Code API JWTs the way LibreChat does (packages/api/src/auth/codeapi.ts),
// for the tests in this directory and for anyone driving ci-server in JWT mode.
//
//   node mint.mjs token --key PRIVATE.pem [--alg EdDSA|RS256] [--impl librechat|jose]
//        [--kid K] [--sub USER] [--tenant T] [--role R] [--iss I] [--aud A[,B...]]
//        [--ttl SECONDS] [--now UNIX]
//   node mint.mjs jwks KID=PUBLIC.pem[:ALG] ...
//
// --impl librechat (default) repeats codeapi.ts's buildClaims() + signJwt():
// node:crypto sign() over base64url(JSON header).base64url(JSON claims), the
// header {alg, typ: "JWT", kid}, the same claim order and defaults. --impl jose
// signs the same claims with the jose library (pinned in package.json), an
// independent second implementation. An --aud with commas becomes an array.
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      throw new Error(`bad argument: ${argv[i]}`);
    }
    opts[argv[i].slice(2)] = argv[i + 1];
  }
  return opts;
}

// codeapi.ts canonicalContextHash()
function contextHash(c) {
  const canonical = {
    chc_user_id: '',
    org_id: '',
    principal_source: c.principal_source,
    role: c.role,
    service_id: '',
    sub: c.sub,
    tenant_id: c.tenant_id,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

// codeapi.ts buildClaims(), with the request's user replaced by options.
function buildClaims(o) {
  const now = o.now !== undefined ? Number(o.now) : Math.floor(Date.now() / 1000);
  const ttl = o.ttl !== undefined ? Number(o.ttl) : 300;
  const aud = o.aud ?? 'codeapi';
  const claims = {
    iss: o.iss ?? 'librechat',
    aud: aud.includes(',') ? aud.split(',') : aud,
    sub: o.sub ?? '665f1c0a9b1e8a0012345678',
    iat: now,
    nbf: now,
    exp: now + ttl,
    jti: randomUUID(),
    tenant_id: o.tenant ?? 'legacy',
    role: o.role ?? 'USER',
    principal_source: 'librechat_jwt',
  };
  claims.auth_context_hash = contextHash(claims);
  return claims;
}

const b64u = (v) => Buffer.from(v).toString('base64url');

// codeapi.ts signJwt()
function signLibreChat(alg, kid, claims, key) {
  const header = { alg, typ: 'JWT', kid };
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  const sig = sign(alg === 'RS256' ? 'RSA-SHA256' : null, Buffer.from(input), key);
  return `${input}.${b64u(sig)}`;
}

async function signJose(alg, kid, claims, pem) {
  const { SignJWT, importPKCS8 } = await import('jose');
  const key = await importPKCS8(pem, alg);
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT', kid }).sign(key);
}

async function token(o) {
  if (!o.key) throw new Error('--key is required');
  const alg = o.alg ?? 'EdDSA';
  if (alg !== 'EdDSA' && alg !== 'RS256') throw new Error(`codeapi.ts mints EdDSA or RS256, not ${alg}`);
  const kid = o.kid ?? 'lc-codeapi-2026-05';
  const pem = readFileSync(o.key, 'utf8').trim();
  const claims = buildClaims(o);
  if ((o.impl ?? 'librechat') === 'jose') return signJose(alg, kid, claims, pem);
  if (o.impl && o.impl !== 'librechat') throw new Error(`unknown --impl ${o.impl}`);
  return signLibreChat(alg, kid, claims, createPrivateKey(pem));
}

function jwks(specs) {
  const keys = specs.map((spec) => {
    const m = /^([^=]+)=([^:]+)(?::(.+))?$/.exec(spec);
    if (!m) throw new Error(`bad key spec: ${spec}`);
    const jwk = createPublicKey(readFileSync(m[2], 'utf8')).export({ format: 'jwk' });
    return { ...jwk, kid: m[1], use: 'sig', ...(m[3] ? { alg: m[3] } : {}) };
  });
  return JSON.stringify({ keys }, null, 2);
}

const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'token') console.log(await token(parseArgs(rest)));
  else if (cmd === 'jwks') console.log(jwks(rest));
  else throw new Error('usage: mint.mjs token --key PEM [...] | mint.mjs jwks KID=PEM[:ALG] ...');
} catch (e) {
  console.error(`mint.mjs: ${e.message}`);
  process.exit(2);
}
