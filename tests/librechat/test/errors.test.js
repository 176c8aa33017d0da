'use strict';
/*
 * Error paths as LibreChat's clients see them: status codes and JSON bodies
 * (librechat-api.md §3, §4.3, §4.6, §6, §10), through node-fetch v2 (what
 * agents uses) and axios (what the LibreChat server uses).
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fetch = require('node-fetch');
const FormData = require('form-data');
const { startServer } = require('../lib/server');
const lc = require('../lib/librechat');
const { mongoId, token, chunkedStream, keyInUrl } = require('../lib/util');

const MAX = 1024;
let srv;
const noThrow = { validateStatus: () => true };

before(async () => {
	srv = await startServer({ env: { CI_MAX_FILE_SIZE_BYTES: String(MAX) } });
});
after(async () => { await srv?.stop(); });

function fakeId() {
	/* A well-formed id nobody minted. */
	return `Zz${token(10)}`.slice(0, 21).padEnd(21, 'x');
}

test('401 JSON without a key, on every authenticated route', async () => {
	const sid = fakeId();
	const fid = fakeId();
	const calls = [
		['POST', '/exec', JSON.stringify({ lang: 'py', code: 'print(1)' })],
		['POST', '/upload', ''],
		['POST', '/upload/batch', ''],
		['GET', `/files/${sid}?detail=summary`],
		['GET', `/sessions/${sid}/objects/${fid}`],
		['GET', `/download/${sid}/${fid}`],
		['DELETE', `/files/${sid}/${fid}`],
	];
	for (const [method, p, body] of calls) {
		for (const base of [srv.base, srv.root]) {
			const r = await fetch(base + p, {
				method, body: body || undefined,
				headers: { 'Content-Type': 'application/json', 'User-Agent': 'LibreChat/1.0' },
			});
			assert.equal(r.status, 401, `${method} ${base}${p}`);
			assert.match(r.headers.get('content-type'), /^application\/json/);
			const j = await r.json();
			assert.equal(typeof j.error, 'string', `${method} ${p}: ${JSON.stringify(j)}`);
			assert.ok(j.error.length > 0);
		}
	}
});

test('401 for a wrong key in each accepted form', async () => {
	const bad = `${srv.key.slice(0, -4)}zzzz`;
	const heads = [
		{ 'X-API-Key': bad },
		{ Authorization: `Bearer ${bad}` },
		{ Authorization: `Basic ${Buffer.from(`${bad}:`).toString('base64')}` },
	];
	for (const h of heads) {
		const r = await fetch(`${srv.base}/files/${fakeId()}`, { headers: h });
		assert.equal(r.status, 401, JSON.stringify(h));
		assert.equal(typeof (await r.json()).error, 'string');
	}
	/* Key in the URL through node-fetch v2 (Basic "KEY") and axios (Basic "KEY:"). */
	const r1 = await fetch(`${keyInUrl(srv.base, bad)}/files/${fakeId()}`);
	assert.equal(r1.status, 401);
	const r2 = await lc.axios.get(`${keyInUrl(srv.base, bad)}/files/${fakeId()}`, noThrow);
	assert.equal(r2.status, 401);
	const r3 = await fetch(`${keyInUrl(srv.base, srv.key)}/files/${fakeId()}`);
	assert.equal(r3.status, 200);
	assert.deepEqual(await r3.json(), []);
});

test('/health and /v1/health need no key', async () => {
	for (const base of [srv.root, srv.base]) {
		const r = await fetch(`${base}/health`);
		assert.equal(r.status, 200, base);
	}
});

test('400 {"error":"Unsupported language: cobol"}', async () => {
	const r = await fetch(`${srv.base}/exec`, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json', 'X-API-Key': srv.key },
		body: JSON.stringify({ lang: 'cobol', code: 'DISPLAY "HI".', user_id: mongoId() }),
	});
	assert.equal(r.status, 400);
	assert.match(r.headers.get('content-type'), /^application\/json/);
	assert.deepEqual(await r.json(), { error: 'Unsupported language: cobol' });
});

test('400 for an /exec body without lang or code, or not JSON', async () => {
	for (const body of ['{"code":"print(1)"}', '{"lang":"py"}', 'not json', '[]']) {
		const r = await lc.axios.post(`${srv.base}/exec`, body, {
			...noThrow, headers: { 'Content-Type': 'application/json', 'X-API-Key': srv.key },
		});
		assert.equal(r.status, 400, body);
		assert.equal(typeof r.data.error, 'string', body);
	}
});

test('404 with the §10 JSON body for an unknown file', async () => {
	const sid = fakeId();
	const fid = fakeId();
	const ctx = { baseURL: srv.base, userId: mongoId(), authHeaders: { 'X-API-Key': srv.key } };
	const r = await lc.axios.get(`${srv.base}/download/${sid}/${fid}` +
		lc.downloadQuery({ kind: 'user', id: ctx.userId }),
	{ ...noThrow, headers: { 'X-API-Key': srv.key } });
	assert.equal(r.status, 404);
	assert.match(r.headers['content-type'], /^application\/json/);
	assert.deepEqual(r.data, {
		error: 'File not found', details: 'The file may have expired or does not exist',
	});
	/* processCodeOutput turns that into a thrown axios error (then a download link). */
	await assert.rejects(lc.processCodeOutput(ctx, { id: fid, name: 'x.png', session_id: sid }),
		(e) => e.response?.status === 404);
	/* The freshness probe: 404 too. */
	const o = await lc.axios.get(`${srv.base}/sessions/${sid}/objects/${fid}`,
		{ ...noThrow, headers: { 'X-API-Key': srv.key } });
	assert.equal(o.status, 404);
	assert.equal(o.data.error, 'File not found');
	/* An unknown session lists as empty (§9). */
	const l = await lc.axios.get(`${srv.base}/files/${sid}?detail=summary`,
		{ headers: { 'X-API-Key': srv.key } });
	assert.deepEqual(l.data, []);
});

test('400 {"error":"Bad request"} for ids that are not nanoids', async () => {
	const r = await lc.axios.get(`${srv.base}/download/not-a-nanoid/${fakeId()}`,
		{ ...noThrow, headers: { 'X-API-Key': srv.key } });
	assert.equal(r.status, 400);
	assert.equal(r.data.error, 'Bad request');
});

test('413 {"error":"File size limit exceeded"} for an oversized upload', async () => {
	const ctx = { baseURL: srv.base, userId: mongoId(), authHeaders: { 'X-API-Key': srv.key } };
	const big = Buffer.alloc(MAX * 4, 0x61);
	await assert.rejects(
		lc.uploadCodeEnvFile(ctx, { stream: chunkedStream(big), filename: 'big.txt' }),
		(e) => {
			assert.equal(e.response?.status, 413);
			assert.deepEqual(e.response.data, { error: 'File size limit exceeded' });
			return true;
		});
	/* A file exactly at the limit is fine. */
	const ok = await lc.uploadCodeEnvFile(ctx, {
		stream: chunkedStream(Buffer.alloc(MAX, 0x62)), filename: 'max.txt',
	});
	assert.equal(ok.response.data.message, 'success');

	/* In a batch the oversized file fails alone: partial_success. */
	const b = await lc.batchUploadCodeEnvFiles(ctx, {
		kind: 'user', id: ctx.userId,
		files: [
			{ stream: Buffer.from('small'), filename: 'small.txt' },
			{ stream: big, filename: 'huge.txt' },
		],
	});
	const d = b.response.data;
	assert.equal(d.message, 'partial_success');
	assert.equal(d.succeeded, 1);
	assert.equal(d.failed, 1);
	const bad = d.files.find((f) => f.filename === 'huge.txt');
	assert.equal(bad.status, 'error');
	assert.equal(bad.error, 'File size limit exceeded');
	const l = await lc.axios.get(`${srv.base}/files/${b.storage_session_id}?detail=normalized`,
		{ headers: { 'X-API-Key': srv.key } });
	assert.deepEqual(l.data.map((e) => e.name), ['small.txt']);
});

test('400 for an upload that is not multipart', async () => {
	const r = await lc.axios.post(`${srv.base}/upload`, { file: 'x' }, {
		...noThrow, headers: { 'X-API-Key': srv.key, 'User-Id': mongoId() },
	});
	assert.equal(r.status, 400);
	assert.deepEqual(r.data, { error: 'Invalid content type. Must be multipart/form-data.' });
});

test('400 for a multipart upload without a file part, or a bad kind', async () => {
	const f1 = new FormData();
	f1.append('kind', 'user');
	f1.append('id', mongoId());
	const r1 = await lc.axios.post(`${srv.base}/upload`, f1, {
		...noThrow, headers: { ...f1.getHeaders(), 'X-API-Key': srv.key },
	});
	assert.equal(r1.status, 400);
	assert.equal(typeof r1.data.error, 'string');

	const f2 = new FormData();
	f2.append('kind', 'planet');
	f2.append('id', mongoId());
	f2.append('file', Buffer.from('x'), { filename: 'x.txt' });
	const r2 = await lc.axios.post(`${srv.base}/upload`, f2, {
		...noThrow, headers: { ...f2.getHeaders(), 'X-API-Key': srv.key },
	});
	assert.equal(r2.status, 400);
	assert.equal(r2.data.error, 'kind must be one of: skill, agent, user');
});
