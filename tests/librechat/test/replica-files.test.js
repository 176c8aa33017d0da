'use strict';
/*
 * LibreChat's server-side storage calls (crud.js / process.js replicas, both
 * generations) against ci-server: upload, batch upload, freshness probes,
 * listing, downloads. No code runs here.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer } = require('../lib/server');
const lc = require('../lib/librechat');
const { NANOID, mongoId, token, chunkedStream, slowStream, keyInUrl, sha256 } = require('../lib/util');

let srv, cur, leg;

before(async () => {
	srv = await startServer();
	const userId = mongoId();
	/* Current LibreChat reaches a key-based server with the key in the URL. */
	cur = { baseURL: keyInUrl(srv.base, srv.key), userId, authHeaders: {} };
	leg = { baseURL: srv.base, userId, apiKey: srv.key };
});
after(async () => { await srv?.stop(); });

test('current upload: chunked multipart, kind/id fields, both session keys', async () => {
	const body = Buffer.from(`a,b\n1,${token()}\n`);
	const up = await lc.uploadCodeEnvFile(cur, {
		stream: chunkedStream(body), filename: 'data.csv', kind: 'user', id: cur.userId,
	});
	const req = up.response.request;
	/* The request really went out chunked, without Content-Length (§2). */
	assert.equal(req.getHeader('content-length'), undefined);
	assert.equal(req.chunkedEncoding, true);
	assert.match(req.getHeader('content-type'), /^multipart\/form-data; boundary=/);
	assert.equal(req.getHeader('user-id'), cur.userId);
	assert.match(req.getHeader('authorization'), /^Basic /);
	assert.equal(up.response.status, 200);
	assert.match(up.response.headers['content-type'], /^application\/json/);
	const data = up.response.data;
	assert.equal(data.message, 'success');
	assert.match(data.storage_session_id, NANOID);
	assert.equal(data.session_id, data.storage_session_id);
	assert.equal(data.files.length, 1);
	assert.match(data.files[0].fileId, NANOID);
	assert.equal(data.files[0].filename, 'data.csv');

	const dl = await lc.processCodeOutput(cur, {
		id: up.file_id, name: 'data.csv', session_id: up.storage_session_id,
	});
	assert.equal(dl.response.status, 200);
	assert.deepEqual(dl.buffer, body);
});

test('current upload of a file with a known length (fs stream, Content-Length)', async () => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ci-lc-'));
	const f = path.join(dir, 'report.txt');
	const body = Buffer.from(`report ${token()}\n`);
	fs.writeFileSync(f, body);
	try {
		const up = await lc.uploadCodeEnvFile(cur, {
			stream: fs.createReadStream(f), filename: 'report.txt', id: cur.userId,
		});
		assert.equal(Number(up.response.request.getHeader('content-length')) > 0, true);
		const dl = await lc.processCodeOutput(cur, {
			id: up.file_id, name: 'report.txt', session_id: up.storage_session_id,
		});
		assert.deepEqual(dl.buffer, body);
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
});

test('nested filename docs/two.md is preserved (form-data filepath)', async () => {
	const body = Buffer.from(`# two ${token()}\n`);
	const up = await lc.uploadCodeEnvFile(cur, {
		stream: chunkedStream(body), filename: 'docs/two.md', id: cur.userId,
	});
	assert.equal(up.response.data.files[0].filename, 'docs/two.md');

	const full = await lc.axios.get(`${cur.baseURL}/files/${up.storage_session_id}`,
		{ params: { detail: 'full', kind: 'user', id: cur.userId } });
	assert.equal(full.status, 200);
	assert.equal(full.data.length, 1);
	const e = full.data[0];
	assert.equal(e.metadata['original-filename'], 'docs/two.md');
	assert.equal(e.name, `${up.storage_session_id}/${up.file_id}.md`);
	assert.equal(e.id, up.file_id);
	assert.equal(e.storage_session_id, up.storage_session_id);
	assert.equal(e.size, body.length);

	const norm = await lc.axios.get(`${cur.baseURL}/files/${up.storage_session_id}`,
		{ params: { detail: 'normalized' } });
	assert.equal(norm.data[0].name, 'docs/two.md');
	assert.equal(norm.data[0].id, up.file_id);

	/* The browser proxy's stream download: the name (or its last segment). */
	const s = await lc.getCodeOutputDownloadStream(cur, `${up.storage_session_id}/${up.file_id}`,
		{ kind: 'user', id: cur.userId });
	assert.equal(s.status, 200);
	assert.match(s.headers['content-disposition'],
		/^attachment;.*filename\*=UTF-8''(docs%2F)?two\.md/i);
	assert.match(s.headers['content-type'], /^text\/markdown/);
	assert.deepEqual(await lc.streamToBuffer(s.data), body);
});

test('download headers: stored content type, UTF-8 Content-Disposition (§10)', async () => {
	const body = Buffer.from(`\u00e9t\u00e9 ${token()}`);
	const up = await lc.uploadCodeEnvFile(cur, {
		stream: chunkedStream(body), filename: 'r\u00e9sum\u00e9 2.csv', id: cur.userId,
	});
	assert.equal(up.response.data.files[0].filename, 'r\u00e9sum\u00e9 2.csv');
	const s = await lc.getCodeOutputDownloadStream(cur, `${up.storage_session_id}/${up.file_id}`,
		{ kind: 'user', id: cur.userId });
	assert.match(s.headers['content-disposition'],
		/^attachment;.*filename\*=UTF-8''r%C3%A9sum%C3%A9%202\.csv/);
	assert.match(s.headers['content-type'], /^text\/csv/);
	const got = await lc.streamToBuffer(s.data);
	assert.equal(Number(s.headers['content-length'] ?? got.length), body.length);
	assert.deepEqual(got, body);
});

test('batch upload: one storage session, read_only, nested names', async () => {
	const a = Buffer.from(`A ${token()}`);
	const b = Buffer.from(`B ${token()}`);
	const agentId = `agent_${token(6)}`;
	const r = await lc.batchUploadCodeEnvFiles(cur, {
		kind: 'agent', id: agentId, read_only: true,
		files: [
			{ stream: chunkedStream(a), filename: 'a.txt' },
			{ stream: chunkedStream(b), filename: 'docs/two.md' },
		],
	});
	const data = r.response.data;
	assert.equal(r.response.status, 200);
	assert.equal(data.message, 'success');
	assert.match(data.storage_session_id, NANOID);
	assert.equal(data.succeeded, 2);
	assert.equal(data.failed, 0);
	assert.deepEqual(data.files.map((f) => f.status), ['success', 'success']);
	assert.deepEqual(r.files.map((f) => f.filename), ['a.txt', 'docs/two.md']);
	for (const f of r.files)
		assert.match(f.fileId, NANOID);

	const norm = await lc.axios.get(`${cur.baseURL}/files/${r.storage_session_id}`,
		{ params: { detail: 'normalized', kind: 'agent', id: agentId } });
	const byName = Object.fromEntries(norm.data.map((e) => [e.name, e]));
	assert.equal(byName['a.txt'].read_only, true);
	assert.equal(byName['docs/two.md'].read_only, true);
	assert.equal(byName['docs/two.md'].size, b.length);

	const dl = await lc.processCodeOutput(cur, {
		id: r.files[1].fileId, name: 'docs/two.md', session_id: r.storage_session_id,
	});
	assert.deepEqual(dl.buffer, b);
});

test('current freshness probe GET /sessions/:sid/objects/:fid and primeFiles', async () => {
	const body = Buffer.from(`fresh ${token()}`);
	const before = Date.now();
	const up = await lc.uploadCodeEnvFile(cur, {
		stream: chunkedStream(body), filename: 'fresh.txt', id: cur.userId,
	});
	const ref = { kind: 'user', id: cur.userId, storage_session_id: up.storage_session_id,
		file_id: up.file_id };
	const when = await lc.getSessionInfo(cur, ref);
	assert.equal(typeof when, 'string');
	assert.match(when, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
	const t = new Date(when).getTime();
	assert.ok(t >= before - 2000 && t <= Date.now() + 2000, `lastModified ${when} is not now`);
	assert.equal(lc.checkIfActive(when), true);

	/* The whole object body (official shape, §8). */
	const o = await lc.axios.get(`${cur.baseURL}/sessions/${up.storage_session_id}/objects/` +
		`${up.file_id}${lc.downloadQuery({ kind: 'user', id: cur.userId })}`);
	assert.equal(o.data.size, body.length);
	assert.equal(o.data.name, `${up.storage_session_id}/${up.file_id}.txt`);
	assert.equal(o.data.originalFilename, 'fresh.txt');

	/* primeFiles: a fresh file is re-sent as is, without re-upload. */
	const db = [{ filename: 'fresh.txt', codeEnvRef: { ...ref } }];
	const primed = await lc.primeFiles(cur, db, () => { throw new Error('no re-upload'); });
	assert.deepEqual(primed.actions, ['fresh']);
	assert.deepEqual(primed.files, [{
		id: up.file_id, resource_id: cur.userId, storage_session_id: up.storage_session_id,
		name: 'fresh.txt', kind: 'user',
	}]);
});

test('freshness probe of a deleted file is a miss, and primeFiles re-uploads', async () => {
	const body = Buffer.from(`gone ${token()}`);
	const up = await lc.uploadCodeEnvFile(cur, {
		stream: chunkedStream(body), filename: 'gone.txt', id: cur.userId,
	});
	const del = await lc.axios.delete(`${cur.baseURL}/files/${up.storage_session_id}/${up.file_id}`);
	assert.equal(del.status, 200);
	const probe = await lc.axios.get(`${cur.baseURL}/sessions/${up.storage_session_id}/objects/` +
		`${up.file_id}`, { validateStatus: () => true });
	assert.equal(probe.status, 404);
	assert.equal(probe.data.error, 'File not found');
	const ref = { kind: 'user', id: cur.userId, storage_session_id: up.storage_session_id,
		file_id: up.file_id };
	assert.equal(await lc.getSessionInfo(cur, ref), null);

	const db = [{ filename: 'gone.txt', codeEnvRef: { ...ref } }];
	const primed = await lc.primeFiles(cur, db, () => chunkedStream(body));
	assert.deepEqual(primed.actions, ['reuploaded']);
	const f = primed.files[0];
	assert.notEqual(f.storage_session_id, up.storage_session_id);
	assert.match(f.id, NANOID);
	const dl = await lc.processCodeOutput(cur, {
		id: f.id, name: 'gone.txt', session_id: f.storage_session_id,
	});
	assert.deepEqual(dl.buffer, body);
});

test('legacy upload (X-API-Key, entity_id) and /files?detail=summary probe', async () => {
	const body = Buffer.from(`legacy ${token()}`);
	const id1 = await lc.legacy.uploadCodeEnvFile(leg, {
		stream: chunkedStream(body), filename: 'legacy.txt',
	});
	assert.match(id1, /^[A-Za-z0-9_-]{21}\/[A-Za-z0-9_-]{21}$/);
	const when = await lc.legacy.getSessionInfo(leg, id1);
	assert.equal(typeof when, 'string');
	assert.equal(lc.checkIfActive(when), true);

	const agent = `agent_${token(6)}`;
	const id2 = await lc.legacy.uploadCodeEnvFile(leg, {
		stream: chunkedStream(body), filename: 'agentfile.txt', entity_id: agent,
	});
	assert.match(id2, new RegExp(`^[A-Za-z0-9_-]{21}/[A-Za-z0-9_-]{21}\\?entity_id=${agent}$`));
	const when2 = await lc.legacy.getSessionInfo(leg, id2);
	assert.equal(typeof when2, 'string');

	/* The summary entries carry name/lastModified plus fileId (§9). */
	const [sid, fid] = id1.split('/');
	const sum = await lc.axios.get(`${leg.baseURL}/files/${sid}?detail=summary`,
		{ headers: { 'X-API-Key': leg.apiKey } });
	assert.equal(sum.data.length, 1);
	assert.equal(sum.data[0].fileId, fid);
	assert.equal(sum.data[0].size, body.length);
	assert.ok(sum.data[0].name.startsWith(`${sid}/${fid}`));

	/* detail=simple (the default): object names. */
	const simple = await lc.axios.get(`${leg.baseURL}/files/${sid}`,
		{ headers: { 'X-API-Key': leg.apiKey } });
	assert.deepEqual(simple.data, [`${sid}/${fid}.txt`]);

	const primed = await lc.legacy.primeFiles(leg, [{ fileIdentifier: id2, filename: 'agentfile.txt' }]);
	const [sid2, rest] = id2.split('/');
	assert.deepEqual(primed.files, [{ id: rest.split('?')[0], session_id: sid2, name: 'agentfile.txt' }]);

	const s = await lc.legacy.getCodeOutputDownloadStream(leg, id1);
	assert.equal(s.status, 200);
	assert.deepEqual(await lc.streamToBuffer(s.data), body);
	const dl = await lc.legacy.processCodeOutput(leg, { id: fid, name: 'legacy.txt', session_id: sid });
	assert.deepEqual(dl.buffer, body);
});

test('routes answer both at / and under /v1', async () => {
	const body = Buffer.from(`root ${token()}`);
	const rootCtx = { ...cur, baseURL: keyInUrl(srv.root, srv.key) };
	const up = await lc.uploadCodeEnvFile(rootCtx, {
		stream: chunkedStream(body), filename: 'root.txt', id: cur.userId,
	});
	const dl = await lc.processCodeOutput(cur, {
		id: up.file_id, name: 'root.txt', session_id: up.storage_session_id,
	});
	assert.deepEqual(dl.buffer, body);
	const dl2 = await lc.processCodeOutput(rootCtx, {
		id: up.file_id, name: 'root.txt', session_id: up.storage_session_id,
	});
	assert.deepEqual(dl2.buffer, body);
});

test('Bearer key in authHeaders (LibreChat getCodeApiAuthHeaders shape)', async () => {
	const bearer = { baseURL: srv.base, userId: cur.userId,
		authHeaders: { Authorization: `Bearer ${srv.key}` } };
	const body = Buffer.from(`bearer ${token()}`);
	const up = await lc.uploadCodeEnvFile(bearer, {
		stream: chunkedStream(body), filename: 'b.txt', id: cur.userId,
	});
	const dl = await lc.processCodeOutput(bearer, {
		id: up.file_id, name: 'b.txt', session_id: up.storage_session_id,
	});
	assert.deepEqual(dl.buffer, body);
});

/*
 * A file whose bytes reach the server in several reads, the first one short
 * (a slow source stream behind form-data): exactly one file, whole content.
 * LibreChat keeps files[0].fileId, so a phantom extra entry breaks it.
 */
test('slowly streamed upload registers one file with the whole content', async () => {
	const pieces = ['sm', 'all ', token(), '\n'];
	const want = Buffer.from(pieces.join(''));
	const up = await lc.uploadCodeEnvFile(cur, {
		stream: slowStream(pieces), filename: 'slow.txt', id: cur.userId,
	});
	assert.deepEqual(up.response.data.files.map((f) => f.filename), ['slow.txt']);
	const dl = await lc.processCodeOutput(cur, {
		id: up.file_id, name: 'slow.txt', session_id: up.storage_session_id,
	});
	assert.deepEqual(dl.buffer, want);
	const list = await lc.axios.get(`${cur.baseURL}/files/${up.storage_session_id}`,
		{ params: { detail: 'normalized' } });
	assert.deepEqual(list.data.map((e) => [e.name, e.size]), [['slow.txt', want.length]]);

	const b = await lc.batchUploadCodeEnvFiles(cur, {
		kind: 'user', id: cur.userId,
		files: [
			{ stream: slowStream(['ab', 'cd']), filename: 'one.txt' },
			{ stream: slowStream(['ef', 'gh']), filename: 'two.txt' },
		],
	});
	assert.deepEqual(b.response.data.files.map((f) => [f.status, f.filename]),
		[['success', 'one.txt'], ['success', 'two.txt']]);
	assert.equal(b.response.data.succeeded, 2);
});

/* LibreChat's code-server agents keep connections alive: requests must not desync a reused socket. */
test('keep-alive: uploads, downloads, listings and a 404 on one reused socket', async () => {
	const http = require('node:http');
	const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
	const ax = lc.axios.create({ httpAgent: agent, validateStatus: () => true,
		headers: { 'X-API-Key': srv.key, 'User-Agent': 'LibreChat/1.0' } });
	try {
		const reused = [];
		for (let i = 0; i < 3; i++) {
			const body = Buffer.from(`ka ${i} ${token()}`);
			const form = new (require('form-data'))();
			form.append('kind', 'user');
			form.append('id', cur.userId);
			form.append('file', chunkedStream(body), { filename: `ka${i}.txt` });
			const up = await ax.post(`${srv.base}/upload`, form, { headers: form.getHeaders() });
			assert.equal(up.status, 200, JSON.stringify(up.data));
			reused.push(up.request.reusedSocket);
			const { storage_session_id: sid, files: [{ fileId }] } = up.data;
			const miss = await ax.get(`${srv.base}/download/${sid}/${'A'.repeat(21)}`);
			assert.equal(miss.status, 404);
			reused.push(miss.request.reusedSocket);
			const dl = await ax.get(`${srv.base}/download/${sid}/${fileId}`,
				{ responseType: 'arraybuffer' });
			assert.equal(dl.status, 200);
			assert.deepEqual(Buffer.from(dl.data), body);
			reused.push(dl.request.reusedSocket);
			const ls = await ax.get(`${srv.base}/files/${sid}?detail=summary`);
			assert.equal(ls.data.length, 1);
			reused.push(ls.request.reusedSocket);
		}
		/* Everything after the first request went over the same connection. */
		assert.deepEqual(reused.slice(1), Array(reused.length - 1).fill(true));
	} finally {
		agent.destroy();
	}
});

test('an 8 MiB chunked upload streams through intact', async () => {
	const crypto = require('node:crypto');
	const { Readable } = require('node:stream');
	const big = crypto.randomBytes(8 << 20);
	const pieces = [];
	for (let o = 0; o < big.length; o += 65536)
		pieces.push(big.subarray(o, o + 65536));
	const up = await lc.uploadCodeEnvFile(cur, {
		stream: Readable.from(pieces), filename: 'big.parquet', id: cur.userId,
	});
	assert.equal(up.response.request.chunkedEncoding, true);
	assert.equal(up.response.data.files.length, 1);
	const dl = await lc.processCodeOutput(cur, {
		id: up.file_id, name: 'big.parquet', session_id: up.storage_session_id,
	});
	assert.equal(dl.buffer.length, big.length);
	assert.equal(sha256(dl.buffer), sha256(big));
});
