// The real @daytonaio/sdk against the fake Daytona: every call the backend
// relies on, with assertions on the results and on the requests the fake
// received (methods, paths, part order, headers, statuses), compared with
// the recorded wire traffic of the same SDK (daytona-sdk-requests.log).
//
// env: DAYTONA_API_URL, DAYTONA_API_KEY, DAYTONA_TARGET (read by the SDK),
//      FAKE_CTL (http://127.0.0.1:<port>, the fake's /__fake API),
//      DAYTONA_SDK_LOG (optional: path of daytona-sdk-requests.log).
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { Daytona } = require('@daytonaio/sdk');

const ctl = process.env.FAKE_CTL;
let passed = 0;
let failed = 0;

async function fake(method, path, body) {
  const r = await fetch(ctl + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log('ok   ' + name + ' (' + (Date.now() - t0) + ' ms)');
  } catch (e) {
    failed++;
    console.log('FAIL ' + name + ': ' + (e && e.stack ? e.stack : e));
  }
}

async function rejectsWith(promise, status) {
  let err = null;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'expected an error');
  assert.equal(err.statusCode, status, String(err));
}

// The requests each SDK call makes, as recorded from the real SDK (methods,
// paths with ids replaced by {id}); the fake must see the same.
function loggedRequests(file) {
  const set = new Set();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^>>> ([A-Z]+) (\S+)/.exec(line);
    if (m) set.add(m[1] + ' ' + norm(m[2]));
  }
  return set;
}

function norm(path) {
  return path.split('?')[0]
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '{id}')
    .replace(/\/process\/session\/[^/]+/, '/process/session/{sid}');
}

async function main() {
  await fake('POST', '/__fake/reset');
  const daytona = new Daytona();
  let sb;

  await step('create waits for started', async () => {
    await fake('POST', '/__fake/config', { creating_ms: 300, starting_ms: 200 });
    sb = await daytona.create({
      language: 'python', labels: { 'sdk-check': 'yes' }, envVars: { FOO: 'bar' },
      autoStopInterval: 15, autoDeleteInterval: 60,
    }, { timeout: 30 });
    assert.equal(sb.state, 'started');
    assert.match(sb.toolboxProxyUrl, /^http:\/\/127\.0\.0\.1:\d+\/toolbox$/);
    assert.notEqual(new URL(sb.toolboxProxyUrl).port, new URL(process.env.DAYTONA_API_URL).port);
  });
  if (!sb) throw new Error('no sandbox: cannot go on');

  await step('executeCommand runs for real', async () => {
    const r = await sb.process.executeCommand('echo hi; echo $FOO $A; pwd', '/home/daytona',
      { A: '1' }, 10);
    assert.equal(r.exitCode, 0);
    assert.equal(r.result, 'hi\nbar 1\n/home/daytona\n');
    const e = await sb.process.executeCommand('exit 7', undefined, undefined, 10);
    assert.equal(e.exitCode, 7);
  });
  await step('executeCommand timeout is a 408', async () => {
    await rejectsWith(sb.process.executeCommand('sleep 5', undefined, undefined, 1), 408);
  });
  await step('codeRun python', async () => {
    const r = await sb.process.codeRun('print(6 * 7)', undefined, 30);
    assert.equal(r.exitCode, 0);
    assert.equal(r.result.trim(), '42');
  });
  await step('uploadFile / listFiles / downloadFile / deleteFile', async () => {
    await sb.fs.uploadFile(Buffer.from('hello world'), '/home/daytona/in/hello.txt');
    const ls = await sb.fs.listFiles('/home/daytona/in');
    assert.equal(ls.length, 1);
    assert.equal(ls[0].name, 'hello.txt');
    assert.equal(ls[0].size, 11);
    assert.equal(ls[0].isDir, false);
    const buf = await sb.fs.downloadFile('/home/daytona/in/hello.txt');
    assert.equal(buf.toString(), 'hello world');
    await rejectsWith(sb.fs.downloadFile('/home/daytona/missing.txt'), 404);
    await sb.fs.deleteFile('/home/daytona/in/hello.txt');
    assert.equal((await sb.fs.listFiles('/home/daytona/in')).length, 0);
  });
  await step('session command splits stdout and stderr', async () => {
    await sb.process.createSession('lc');
    const r = await sb.process.executeSessionCommand('lc',
      { command: 'echo out; echo err >&2; exit 3', runAsync: false }, 30);
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    await sb.process.deleteSession('lc');
  });
  await step('list by label, get', async () => {
    const seen = [];
    for await (const s of daytona.list({ labels: { 'sdk-check': 'yes' } })) seen.push(s.id);
    assert.deepEqual(seen, [sb.id]);
    const none = [];
    for await (const s of daytona.list({ labels: { 'sdk-check': 'no' } })) none.push(s.id);
    assert.equal(none.length, 0);
    assert.equal((await daytona.get(sb.id)).id, sb.id);
  });
  await step('401, 404, 400 errors', async () => {
    const bad = new Daytona({ apiKey: 'wrong' });
    await rejectsWith(bad.get(sb.id), 401);
    await rejectsWith(daytona.get('nope'), 404);
    await rejectsWith(daytona.create({ snapshot: 'does-not-exist' }), 400);
  });
  await step('toolbox 500 from a fault rule', async () => {
    await fake('POST', '/__fake/faults', {
      method: 'POST', path_regex: '/process/execute$', times: 1, status: 500,
      body: { statusCode: 500, message: 'daemon exploded', code: 'INTERNAL_SERVER_ERROR' },
    });
    await rejectsWith(sb.process.executeCommand('true'), 500);
  });
  await step('stop, start', async () => {
    await sb.stop();
    assert.equal(sb.state, 'stopped');
    await sb.start();
    assert.equal(sb.state, 'started');
  });
  await step('409 on delete while creating', async () => {
    await fake('POST', '/__fake/config', { create_outcome: 'stuck' });
    await rejectsWith(daytona.create({ labels: { 'sdk-check': 'stuck' } }, { timeout: 1 }),
      undefined);
    await fake('POST', '/__fake/config', { create_outcome: 'ok' });
    const stuck = [];
    for await (const s of daytona.list({ labels: { 'sdk-check': 'stuck' } })) stuck.push(s);
    assert.equal(stuck.length, 1);
    await rejectsWith(daytona.delete(stuck[0]), 409);
  });
  await step('delete', async () => {
    await sb.delete();
    await new Promise((r) => setTimeout(r, 400));
    await rejectsWith(daytona.get(sb.id), 404);
  });

  await step('requests match the real SDK traffic', async () => {
    const reqs = await fake('GET', '/__fake/requests');
    const must = [
      ['POST', '/api/sandbox', 200], ['GET', '/api/sandbox/{id}', 200],
      ['POST', '/toolbox/{id}/process/execute', 200], ['POST', '/toolbox/{id}/process/execute', 408],
      ['POST', '/toolbox/{id}/process/code-run', 200],
      ['POST', '/toolbox/{id}/files/bulk-upload', 200], ['GET', '/toolbox/{id}/files', 200],
      ['POST', '/toolbox/{id}/files/bulk-download', 200],
      ['DELETE', '/toolbox/{id}/files', 204], ['POST', '/toolbox/{id}/process/session', 201],
      ['POST', '/toolbox/{id}/process/session/{sid}/exec', 200],
      ['GET', '/api/sandbox', 200], ['GET', '/api/sandbox/{id}', 401],
      ['GET', '/api/sandbox/nope', 404], ['POST', '/api/sandbox', 400],
      ['POST', '/api/sandbox/{id}/stop', 200], ['POST', '/api/sandbox/{id}/start', 200],
      ['DELETE', '/api/sandbox/{id}', 409], ['DELETE', '/api/sandbox/{id}', 200],
    ];
    for (const [m, p, st] of must) {
      assert.ok(reqs.some((r) => r.method === m && norm(r.path) === p && r.status === st),
        `no ${m} ${p} -> ${st}`);
    }
    for (const r of reqs) {
      if (r.headers.authorization === 'Bearer wrong' || r.path.startsWith('/api/socket.io')) continue;
      assert.equal(r.headers['x-daytona-sdk-version'], '0.218.0');
      assert.ok(r.headers['x-daytona-source']);
      assert.equal(r.headers['x-daytona-organization-id'], undefined);
      assert.equal(r.port, r.path.startsWith('/toolbox/') ? 'toolbox' : 'api');
    }
    const up = reqs.find((r) => r.path.endsWith('/files/bulk-upload'));
    assert.deepEqual(up.parts, ['files[0].path', 'files[0].file']);
    assert.equal(up.headers['transfer-encoding'], 'chunked');
    const ls = reqs.find((r) => r.method === 'GET' && r.path.endsWith('/files'));
    assert.equal(ls.query, 'path=%2Fhome%2Fdaytona%2Fin');
    const lab = reqs.find((r) => r.method === 'GET' && r.path === '/api/sandbox' &&
      r.status === 200);
    assert.equal(decodeURIComponent(lab.query.replace(/^.*labels=/, '').split('&')[0]),
      '{"sdk-check":"yes"}');
    const stop = reqs.find((r) => r.path.endsWith('/stop'));
    assert.equal(stop.query, 'force=false');
    const logFile = process.env.DAYTONA_SDK_LOG;
    if (logFile && fs.existsSync(logFile)) {
      const logged = loggedRequests(logFile);
      const extra = new Set(['GET /toolbox/{id}/files/info', 'DELETE /toolbox/{id}/process/session/{sid}']);
      for (const r of reqs) {
        const key = r.method + ' ' + norm(r.path);
        if (r.status > 0 && !logged.has(key) && !extra.has(key) && !key.includes('/nope'))
          assert.fail(`${key} is not in the recorded SDK traffic`);
      }
      console.log('     compared with ' + logFile);
    }
  });

  console.log(`${passed} passed, ${failed} failed`);
  // the SDK's event-socket retries would keep node alive for minutes
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log('FAIL ' + e.stack);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
