'use strict';
/*
 * LibreChat server-side flows that involve /exec (librechat-api.md §4-§8):
 * primeFiles re-sending uploaded files to the agents tool (current ref
 * shape, and the legacy one on the wire), nested names, read_only batch
 * files, downloading every generated file right after /exec returns, and the
 * readSandboxFile / writeSandboxFile helpers (session_id hint, no user_id).
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const agents = require('@librechat/agents');
const { startServer } = require('../lib/server');
const { startRecorder } = require('../lib/recorder');
const lc = require('../lib/librechat');
const { NANOID, mongoId, token, chunkedStream, keyInUrl, sha256 } = require('../lib/util');

let srv, rec, ctx;
const userId = mongoId();

before(async () => {
	srv = await startServer();
	rec = await startRecorder(srv.root);
	/* Current LibreChat + key-based server: key in the base URL. */
	ctx = { baseURL: keyInUrl(`${rec.base}/v1`, srv.key), userId, authHeaders: {} };
});
after(async () => {
	await rec?.close();
	await srv?.stop();
});

function codeTool(files) {
	return agents.createCodeExecutionTool({
		user_id: userId,
		files,
		baseUrl: keyInUrl(`${rec.base}/v1`, srv.key),
		executionProfile: 'default',
		codeSessionKey: 'execute_code',
	});
}

async function invoke(tool, args) {
	const msg = await tool.invoke({ id: `call_${token(4)}`, name: tool.name, args, type: 'tool_call' });
	return { content: msg.content, artifact: msg.artifact };
}

test('primeFiles (current): uploaded attachments are mounted, nested names kept', async () => {
	const csv = `city,n\nOslo,${token(2)}\n`;
	const md = `# notes ${token()}\n`;
	const a = await lc.uploadCodeEnvFile(ctx, { stream: chunkedStream(Buffer.from(csv)),
		filename: 'data.csv', kind: 'user', id: userId });
	const b = await lc.uploadCodeEnvFile(ctx, { stream: chunkedStream(Buffer.from(md)),
		filename: 'docs/two.md', kind: 'user', id: userId });
	const db = [
		{ filename: 'data.csv', codeEnvRef: { kind: 'user', id: userId,
			storage_session_id: a.storage_session_id, file_id: a.file_id } },
		{ filename: 'docs/two.md', codeEnvRef: { kind: 'user', id: userId,
			storage_session_id: b.storage_session_id, file_id: b.file_id } },
	];
	const primed = await lc.primeFiles(ctx, db, () => { throw new Error('no re-upload expected'); });
	assert.deepEqual(primed.actions, ['fresh', 'fresh']);

	rec.clear();
	const { content, artifact } = await invoke(codeTool(primed.files), {
		lang: 'py',
		code: 'import os\nprint(open("/mnt/data/data.csv").read(), end="")\n' +
			'print(open("docs/two.md").read(), end="")\nprint(sorted(os.listdir("/mnt/data/docs")))',
	});
	assert.equal(content, `stdout:\n${csv}${md}['two.md']`);
	assert.equal(artifact.files, undefined);
	const sent = rec.requests.find((r) => r.url === '/v1/exec').json;
	assert.deepEqual(sent.files, primed.files);
	assert.equal(sent.files[0].storage_session_id, a.storage_session_id);
});

test('legacy file refs {id, session_id, name} in /exec files[] are mounted', async () => {
	const body = `legacy ${token()}`;
	const a = await lc.uploadCodeEnvFile(ctx, { stream: chunkedStream(Buffer.from(body)),
		filename: 'old.txt', id: userId });
	const r = await lc.axios.post(`${srv.base}/exec`, {
		lang: 'py', code: 'print(open("/mnt/data/old.txt").read())',
		files: [{ id: a.file_id, session_id: a.storage_session_id, name: 'old.txt' }],
	}, { headers: { 'X-API-Key': srv.key, 'User-Agent': 'LibreChat/1.0' } });
	assert.equal(r.data.stdout, `${body}\n`);
	assert.equal(r.data.stderr, '');
	assert.match(r.data.session_id, NANOID);
	/* The unchanged input is omitted or echoed as inherited (§4.5). */
	assert.deepEqual(r.data.files.filter((f) => !f.inherited), []);
});

test('every generated file downloads at /download/<session_id>/<id> right after /exec', async () => {
	const tok = token();
	const code = [
		'import json, os',
		'os.makedirs("out/deep", exist_ok=True)',
		`open("out/deep/report.md", "w").write("# report ${tok}\\n")`,
		`json.dump({"t": "${tok}", "n": list(range(50))}, open("data.json", "w"))`,
		'open("blob.bin.txt", "wb").write(bytes(range(256)) * 40)',
		'print("ok")',
	].join('\n');
	const { artifact } = await invoke(codeTool(), { lang: 'py', code });
	const names = artifact.files.map((f) => f.name).sort();
	assert.deepEqual(names, ['blob.bin.txt', 'data.json', 'out/deep/report.md']);
	const got = Object.fromEntries((await lc.processArtifact(ctx, artifact))
		.map((d) => [d.name, d]));
	assert.equal(got['out/deep/report.md'].buffer.toString(), `# report ${tok}\n`);
	assert.deepEqual(JSON.parse(got['data.json'].buffer.toString()),
		{ t: tok, n: [...Array(50).keys()] });
	const blob = got['blob.bin.txt'].buffer;
	assert.equal(blob.length, 256 * 40);
	assert.equal(sha256(blob), sha256(Buffer.concat(Array(40).fill(Buffer.from([...Array(256).keys()])))));
	for (const d of Object.values(got)) {
		assert.deepEqual(d.codeEnvRef, { kind: 'user', id: userId,
			storage_session_id: artifact.session_id, file_id: d.codeEnvRef.file_id });
		assert.match(d.codeEnvRef.file_id, NANOID);
	}

	/* Later turns: the generated file is fresh and mountable from its exec session. */
	const ref = got['data.json'].codeEnvRef;
	const when = await lc.getSessionInfo(ctx, ref);
	assert.equal(lc.checkIfActive(when), true);
	const primed = await lc.primeFiles(ctx, [{ filename: 'data.json', codeEnvRef: ref }],
		() => { throw new Error('no re-upload expected'); });
	const { content } = await invoke(codeTool(primed.files), {
		lang: 'py', code: 'import json\nprint(json.load(open("data.json"))["t"])',
	});
	assert.equal(content, `stdout:\n${tok}`);
});

test('read_only batch files are never reported back as generated files', async () => {
	const agentId = `agent_${token(6)}`;
	const cfg = `mode: ${token()}\n`;
	const up = await lc.batchUploadCodeEnvFiles(ctx, {
		kind: 'agent', id: agentId, read_only: true,
		files: [{ stream: chunkedStream(Buffer.from(cfg)), filename: 'skill/config.yaml' }],
	});
	const f = up.files[0];
	const files = [{ id: f.fileId, resource_id: agentId, storage_session_id: up.storage_session_id,
		name: 'skill/config.yaml', kind: 'agent' }];
	const { content, artifact } = await invoke(codeTool(files), {
		lang: 'bash',
		code: 'cat skill/config.yaml; echo "changed: yes" >> skill/config.yaml; echo new > fresh.txt',
	});
	assert.ok(content.startsWith(`stdout:\n${cfg}`), content);
	const generated = (artifact.files || []).filter((x) => !x.inherited).map((x) => x.name);
	assert.deepEqual(generated, ['fresh.txt']);
	/* The stored original is unchanged. */
	const dl = await lc.processCodeOutput(ctx,
		{ id: f.fileId, name: 'skill/config.yaml', session_id: up.storage_session_id });
	assert.equal(dl.buffer.toString(), cfg);
});

test('writeSandboxFile then readSandboxFile (session_id hint, no user_id)', async () => {
	const first = await invoke(codeTool(), { lang: 'py', code: 'print("seed")' });
	const content = `héllo ${token()}\nline 2\n`;
	rec.clear();
	const w = await lc.writeSandboxFile(ctx, {
		file_path: '/mnt/data/notes/hello.txt', content, session_id: first.artifact.session_id,
	});
	const sent = rec.requests.at(-1).json;
	assert.equal(sent.session_id, first.artifact.session_id);
	assert.equal(sent.user_id, undefined);
	assert.equal(w.stdout, `WROTE ${Buffer.byteLength(content)} bytes to /mnt/data/notes/hello.txt\n`);
	assert.match(w.session_id, NANOID);
	assert.deepEqual(w.files.map((f) => f.name), ['notes/hello.txt']);
	assert.equal(w.files[0].storage_session_id, w.session_id);

	/* The read mounts the written file from the seeded code session context. */
	const files = w.files.map((f) => ({ id: f.id, resource_id: f.id, name: f.name,
		storage_session_id: f.storage_session_id, kind: 'user' }));
	const r = await lc.readSandboxFile(ctx,
		{ file_path: '/mnt/data/notes/hello.txt', session_id: w.session_id, files });
	assert.equal(r.content, content);

	/* A missing file: stderr only, which readSandboxFile turns into an error. */
	await assert.rejects(lc.readSandboxFile(ctx,
		{ file_path: "/mnt/data/no such'file.txt", session_id: w.session_id }),
	/No such file or directory/);
});

/* LibreChat issue 15443: two uploads with one name in one session. */
test('two files with the same name in one batch do not break a later exec', async () => {
	const one = `first ${token()}`;
	const two = `second ${token()}`;
	const up = await lc.batchUploadCodeEnvFiles(ctx, {
		kind: 'user', id: userId,
		files: [{ stream: Buffer.from(one), filename: 'dup.txt' },
			{ stream: Buffer.from(two), filename: 'dup.txt' }],
	});
	assert.equal(up.files.length, 2);
	assert.notEqual(up.files[0].fileId, up.files[1].fileId);
	const files = up.files.map((f) => ({ id: f.fileId, resource_id: userId,
		storage_session_id: up.storage_session_id, name: 'dup.txt', kind: 'user' }));
	rec.clear();
	const { content, artifact } = await invoke(codeTool(files), {
		lang: 'bash', code: 'cat /mnt/data/dup.txt',
	});
	assert.equal(rec.requests.at(-1).status, 200);
	assert.ok([`stdout:\n${one}`, `stdout:\n${two}`].includes(content), content);
	assert.match(artifact.session_id, NANOID);
	for (const [i, want] of [[0, one], [1, two]]) {
		const dl = await lc.processCodeOutput(ctx,
			{ id: up.files[i].fileId, name: 'dup.txt', session_id: up.storage_session_id });
		assert.equal(dl.buffer.toString(), want);
	}
});
