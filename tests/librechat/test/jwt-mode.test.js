'use strict';
/*
 * The LibreChat clients against ci-server in JWT mode: every Code API call
 * carries a fresh token minted exactly as LibreChat's codeapi.ts does
 * (tests/jwt/mint.mjs, Ed25519, kid lc-codeapi-2026-05), handed to the
 * unmodified @librechat/agents 3.9.2 tools through their authHeaders async
 * function and to the crud.js/process.js replicas as a per-request header
 * hook. The principal is jwt:<tenant>:<sub>: another sub sees none of the
 * first user's files, and an expired token is the tool's "not authorized".
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const agents = require('@librechat/agents');
const { AIMessage } = require('@langchain/core/messages');
const { startServer } = require('../lib/server');
const { startRecorder } = require('../lib/recorder');
const lc = require('../lib/librechat');
const { NANOID, mongoId, token, chunkedStream } = require('../lib/util');

let srv, rec;
const userId = mongoId();
const otherId = mongoId();
const noThrow = { validateStatus: () => true };

before(async () => {
	srv = await startServer({ jwt: true });
	rec = await startRecorder(srv.root);
});
after(async () => {
	await rec?.close();
	await srv?.stop();
});

/* LibreChat's getCodeApiAuthHeaders: one new token per Code API request. */
function bearer(sub, extra) {
	return async () => ({ Authorization: `Bearer ${await srv.jwt.mint(sub, extra)}` });
}

function claimsOf(authorization) {
	const m = /^Bearer ([^.]+)\.([^.]+)\.([^.]+)$/.exec(authorization);
	assert.ok(m, authorization);
	return {
		header: JSON.parse(Buffer.from(m[1], 'base64url')),
		claims: JSON.parse(Buffer.from(m[2], 'base64url')),
	};
}

function codeTool(authHeaders, extra = {}) {
	return agents.createCodeExecutionTool({
		user_id: userId,
		baseUrl: `${rec.base}/v1`,
		authHeaders,
		executionProfile: 'default',
		codeSessionKey: 'execute_code',
		...extra,
	});
}

async function invoke(tool, args) {
	const msg = await tool.invoke({ id: `call_${token(4)}`, name: tool.name, args, type: 'tool_call' });
	return { content: msg.content, artifact: msg.artifact };
}

test('execute_code with a fresh JWT per call', async () => {
	const tool = codeTool(bearer(userId));
	rec.clear();
	const toks = [];
	for (let i = 0; i < 2; i++) {
		const tok = token();
		const { content, artifact } = await invoke(tool, {
			lang: 'py', code: `print("jwt", ${i} * 7, "${tok}")`,
		});
		assert.equal(content, `stdout:\njwt ${i * 7} ${tok}`);
		assert.match(artifact.session_id, NANOID);
		const r = rec.requests.at(-1);
		assert.equal(r.url, '/v1/exec');
		assert.equal(r.status, 200);
		assert.equal(r.json.user_id, userId);
		toks.push(r.headers.authorization);
	}
	/* Two requests, two different tokens, both LibreChat's shape. */
	assert.notEqual(toks[0], toks[1]);
	for (const t of toks) {
		const { header, claims } = claimsOf(t);
		assert.deepEqual(header, { alg: 'EdDSA', typ: 'JWT', kid: srv.jwt.kid });
		assert.equal(claims.sub, userId);
		assert.equal(claims.aud, 'codeapi');
		assert.equal(claims.principal_source, 'librechat_jwt');
		assert.equal(claims.exp - claims.iat, 300);
	}
	assert.notEqual(claimsOf(toks[0]).claims.jti, claimsOf(toks[1]).claims.jti);
});

test('session continuity through the ToolNode with JWT auth', async () => {
	const params = {
		user_id: userId, baseUrl: `${rec.base}/v1`, authHeaders: bearer(userId),
		executionProfile: 'default',
	};
	const sessions = new Map();
	const node = new agents.ToolNode({
		tools: [agents.createCodeExecutionTool(params), agents.createBashExecutionTool(params)],
		sessions,
	});
	async function call(name, args) {
		const id = `call_${token(4)}`;
		rec.clear();
		const out = await node.invoke({ messages: [new AIMessage({ content: '',
			tool_calls: [{ id, name, args, type: 'tool_call' }] })] });
		const m = (Array.isArray(out) ? out : out.messages)[0];
		assert.equal(m.tool_call_id, id);
		assert.equal(m.status, 'success', String(m.content));
		const execs = rec.requests.filter((r) => r.url === '/v1/exec');
		assert.equal(execs.length, 1);
		assert.equal(execs[0].status, 200);
		assert.equal(claimsOf(execs[0].headers.authorization).claims.sub, userId);
		return { content: m.content, artifact: m.artifact, sent: execs[0].json };
	}

	const t1 = token();
	const c1 = await call('execute_code', {
		lang: 'py', code: `open("/mnt/data/state.txt", "w").write("${t1}")\nprint("wrote")`,
	});
	assert.equal(c1.content.split('\n')[1], 'wrote');
	const s1 = c1.artifact.session_id;
	assert.deepEqual(c1.artifact.files.map((f) => [f.name, f.storage_session_id]),
		[['state.txt', s1]]);

	const c2 = await call('bash_tool', { command: 'cat /mnt/data/state.txt; echo; echo more >> state.txt' });
	assert.ok(c2.content.startsWith(`stdout:\n${t1}\n`), c2.content);
	assert.ok(c2.content.includes('Session files: 1 persisted file(s)'), c2.content);
	assert.deepEqual(c2.sent.files.map((f) => [f.name, f.storage_session_id]), [['state.txt', s1]]);
	const f2 = c2.artifact.files.find((f) => f.name === 'state.txt');
	assert.equal(f2.storage_session_id, c2.artifact.session_id);

	const c3 = await call('execute_code', { lang: 'py', code: 'print(open("state.txt").read())' });
	assert.equal(c3.content, `stdout:\n${t1}more`);
	assert.equal(c3.sent.files[0].storage_session_id, c2.artifact.session_id);
});

test('upload, freshness probe, priming and download replicas with a Bearer JWT', async () => {
	const ctx = { baseURL: `${rec.base}/v1`, userId, authHeaders: bearer(userId) };
	const body = Buffer.from(`x,y\n1,${token()}\n`);
	rec.clear();
	const up = await lc.uploadCodeEnvFile(ctx, { stream: chunkedStream(body), filename: 'in.csv' });
	assert.equal(up.response.status, 200);
	assert.match(up.storage_session_id, NANOID);
	assert.match(up.file_id, NANOID);
	assert.equal(claimsOf(rec.requests.at(-1).headers.authorization).claims.sub, userId);

	const ref = { kind: 'user', id: userId, storage_session_id: up.storage_session_id,
		file_id: up.file_id };
	const last = await lc.getSessionInfo(ctx, ref);
	assert.ok(last, 'freshness probe returned nothing');
	assert.ok(lc.checkIfActive(last), last);
	assert.ok(Math.abs(Date.now() - new Date(last).getTime()) < 60000, last);
	const primed = await lc.primeFiles(ctx, [{ filename: 'in.csv', codeEnvRef: ref }],
		() => { throw new Error('no re-upload expected'); });
	assert.deepEqual(primed.actions, ['fresh']);

	const dl = await lc.processCodeOutput(ctx, {
		id: up.file_id, name: 'in.csv', session_id: up.storage_session_id,
	});
	assert.equal(dl.response.status, 200);
	assert.deepEqual(dl.buffer, body);
	const s = await lc.getCodeOutputDownloadStream(ctx, `${up.storage_session_id}/${up.file_id}`,
		{ kind: 'user', id: userId });
	assert.deepEqual(await lc.streamToBuffer(s.data), body);

	/* The primed ref mounts in the package's tool with the same user's token. */
	const { content } = await invoke(codeTool(bearer(userId), { files: primed.files }), {
		lang: 'py', code: 'print(open("/mnt/data/in.csv").read(), end="")',
	});
	assert.equal(content, `stdout:\n${body.toString().trimEnd()}`);

	/* Every one of those requests carried its own token. */
	const auths = rec.requests.map((r) => r.headers.authorization);
	assert.ok(auths.length >= 5, String(auths.length));
	assert.equal(new Set(auths).size, auths.length);
});

test('another user\'s token: 404 on the download, 400 mounting the file', async () => {
	const own = { baseURL: srv.base, userId, authHeaders: bearer(userId) };
	const other = { baseURL: srv.base, userId: otherId, authHeaders: bearer(otherId) };
	const secret = `mine ${token()}`;
	const up = await lc.uploadCodeEnvFile(own, {
		stream: chunkedStream(Buffer.from(secret)), filename: 'secret.txt',
	});
	const sid = up.storage_session_id;
	const fid = up.file_id;

	await assert.rejects(lc.processCodeOutput(other, { id: fid, name: 'secret.txt', session_id: sid }),
		(e) => {
			assert.equal(e.response?.status, 404);
			return true;
		});
	const r = await lc.axios.get(`${srv.base}/download/${sid}/${fid}`,
		{ ...noThrow, headers: await other.authHeaders() });
	assert.equal(r.status, 404);
	assert.equal(r.data.error, 'File not found');
	assert.equal(await lc.getSessionInfo(other, { kind: 'user', id: otherId,
		storage_session_id: sid, file_id: fid }), null);

	const files = [{ id: fid, resource_id: otherId, storage_session_id: sid, name: 'secret.txt',
		kind: 'user' }];
	const code = 'print(open("/mnt/data/secret.txt").read())';
	const x = await lc.axios.post(`${srv.base}/exec`, { lang: 'py', code, files },
		{ ...noThrow, headers: await other.authHeaders() });
	assert.equal(x.status, 400);
	assert.equal(typeof x.data.error, 'string');
	assert.ok(!JSON.stringify(x.data).includes(secret));
	await assert.rejects(lc.readSandboxFile(other, { file_path: '/mnt/data/secret.txt', files }),
		(e) => {
			assert.equal(e.response?.status, 400);
			return true;
		});

	/* The owner still reads and mounts it. */
	const mine = await lc.axios.post(`${srv.base}/exec`, { lang: 'py', code, files },
		{ headers: await own.authHeaders() });
	assert.equal(mine.data.stdout, `${secret}\n`);
});

test('an expired token is the tool\'s "not authorized" error, not a crash', async () => {
	const hourAgo = Math.floor(Date.now() / 1000) - 3600;
	const tool = codeTool(bearer(userId, { ttl: 60, now: hourAgo }));
	rec.clear();
	await assert.rejects(invoke(tool, { lang: 'py', code: 'print(1)' }), (e) => {
		assert.match(e.message, /^Execution error:/);
		assert.ok(e.message.includes(agents.CODE_API_AUTHORIZATION_ERROR_MESSAGE), e.message);
		return true;
	});
	const r = rec.requests.at(-1);
	assert.equal(r.url, '/v1/exec');
	assert.equal(r.status, 401);
	assert.equal(claimsOf(r.headers.authorization).claims.exp, hourAgo + 60);

	/* The server is fine and the next call with a valid token runs. */
	const { content } = await invoke(codeTool(bearer(userId)), { lang: 'py', code: 'print(6 * 7)' });
	assert.equal(content, 'stdout:\n42');
});
