'use strict';
/*
 * The legacy generation: @librechat/agents 3.1.63 (installed as
 * "agents-legacy"), the last to send X-API-Key, with legacy file refs
 * {id, session_id, name}, its ToolNode session map, and its
 * GET /files/<sid>?detail=full fallback; plus legacy LibreChat priming.
 * 3.1.63 reads LIBRECHAT_CODE_BASEURL once, when the module loads, so the
 * module is required after the server is up.
 */
const { test, before, after } = require('node:test');
const { createRequire } = require('node:module');
const assert = require('node:assert/strict');
const { startServer } = require('../lib/server');
const { startRecorder } = require('../lib/recorder');
const lc = require('../lib/librechat');
const { NANOID, mongoId, token, chunkedStream } = require('../lib/util');

let srv, rec, legacy, legacyRequire, AIMessage;
const userId = mongoId();

before(async () => {
	srv = await startServer();
	rec = await startRecorder(srv.root);
	process.env.LIBRECHAT_CODE_BASEURL = `${rec.base}/v1`;
	legacy = require('agents-legacy');
	/* The legacy package's own @langchain/core (it nests an older one). */
	legacyRequire = createRequire(require.resolve('agents-legacy'));
	({ AIMessage } = legacyRequire('@langchain/core/messages'));
});
after(async () => {
	await rec?.close();
	await srv?.stop();
});

/* The tool as legacy LibreChat built it (the key spread in as a param). */
function legacyTool(extra = {}) {
	return legacy.createCodeExecutionTool({
		user_id: userId, LIBRECHAT_CODE_API_KEY: srv.key, ...extra,
	});
}

async function invoke(tool, args, toolCallExtra = {}) {
	const msg = await tool.invoke({
		id: `call_${token(4)}`, name: tool.name, args, type: 'tool_call', ...toolCallExtra,
	});
	return { content: msg.content, artifact: msg.artifact };
}

test('the installed legacy package is 3.1.63 and sends X-API-Key', async () => {
	assert.equal(legacyRequire('../../package.json').version, '3.1.63');
	const tok = token();
	rec.clear();
	const { content, artifact } = await invoke(legacyTool(), { lang: 'py', code: `print("${tok}")` });
	assert.equal(content, `stdout:\n${tok}`);
	assert.match(artifact.session_id, NANOID);
	const r = rec.requests.at(-1);
	assert.equal(r.url, '/v1/exec');
	assert.equal(r.headers['x-api-key'], srv.key);
	assert.equal(r.headers.authorization, undefined);
	assert.equal(r.json.user_id, userId);
	assert.equal(r.json.LIBRECHAT_CODE_API_KEY, srv.key); /* spread params: ignored by the server */
});

test('legacy: a wrong key is "HTTP error! status: 401"', async () => {
	await assert.rejects(invoke(legacyTool({ LIBRECHAT_CODE_API_KEY: `${srv.key}x` }),
		{ lang: 'py', code: 'print(1)' }), /HTTP error! status: 401/);
});

test('legacy: generated files carry session ids the legacy client can use', async () => {
	const tok = token();
	const { content, artifact } = await invoke(legacyTool(), {
		lang: 'py', code: `open("/mnt/data/out.txt", "w").write("${tok}")\nprint("ok")`,
	});
	assert.ok(content.includes('Generated files:\n- /mnt/data/out.txt'), content);
	assert.equal(artifact.files.length, 1);
	const f = artifact.files[0];
	assert.equal(f.name, 'out.txt');
	assert.match(f.id, NANOID);
	/* legacy ToolNode uses f.session_id ?? response session_id (§4.5). */
	assert.equal(f.session_id ?? artifact.session_id, artifact.session_id);
	const dl = await lc.legacy.processCodeOutput({ baseURL: srv.base, apiKey: srv.key },
		{ id: f.id, name: f.name, session_id: artifact.session_id });
	assert.equal(dl.buffer.toString(), tok);
});

test('legacy ToolNode: the next call mounts files by {id, session_id, name}', async () => {
	const sessions = new Map();
	const node = new legacy.ToolNode({ tools: [legacyTool()], sessions });
	const run = async (code) => {
		const id = `call_${token(4)}`;
		rec.clear();
		const out = await node.invoke({ messages: [new AIMessage({
			content: '', tool_calls: [{ id, name: 'execute_code', args: { lang: 'py', code } }],
		})] });
		const m = (Array.isArray(out) ? out : out.messages)[0];
		return { content: m.content, artifact: m.artifact,
			sent: rec.requests.find((r) => r.url === '/v1/exec').json };
	};
	const t = token();
	const a = await run(`import json\njson.dump({"token": "${t}"}, open("/mnt/data/state_x.json", "w"))`);
	const s1 = a.artifact.session_id;
	const f1 = a.artifact.files[0];
	assert.equal(sessions.get('execute_code').session_id, s1);
	const b = await run('import json\nprint("READ", json.load(open("/mnt/data/state_x.json"))["token"])');
	assert.equal(b.content, `stdout:\nREAD ${t}`);
	assert.deepEqual(b.sent.files, [{ session_id: s1, id: f1.id, name: 'state_x.json' }]);
});

test('legacy /files/<sid>?detail=full fallback (no injected files)', async () => {
	const t = token();
	const a = await invoke(legacyTool(), {
		lang: 'py', code: `open("/mnt/data/fb.json", "w").write('{"t": "${t}"}')`,
	});
	const sid = a.artifact.session_id;
	const fid = a.artifact.files[0].id;
	rec.clear();
	/* What ToolNode 3.1.63 does with a tracked session that has no file list. */
	const b = await invoke(legacyTool(), {
		lang: 'py', code: 'import json\nprint(json.load(open("/mnt/data/fb.json"))["t"])',
	}, { session_id: sid });
	assert.equal(b.content, `stdout:\n${t}`);
	const list = rec.requests.find((r) => r.method === 'GET');
	assert.equal(list.url, `/v1/files/${sid}?detail=full`);
	assert.equal(list.headers['x-api-key'], srv.key);
	assert.equal(list.status, 200);
	const exec = rec.requests.find((r) => r.url === '/v1/exec');
	assert.deepEqual(exec.json.files, [{ session_id: sid, id: fid, name: 'fb.json' }]);
});

test('legacy LibreChat priming: upload, summary probe, files[] with session_id', async () => {
	const ctx = { baseURL: srv.base, userId, apiKey: srv.key };
	const body = `q,r\n${token()},2\n`;
	const ident = await lc.legacy.uploadCodeEnvFile(ctx, {
		stream: chunkedStream(Buffer.from(body)), filename: 'primed.csv',
	});
	const { files } = await lc.legacy.primeFiles(ctx, [{ fileIdentifier: ident, filename: 'primed.csv' }]);
	assert.equal(files[0].session_id, ident.split('/')[0]);
	/* primeFiles' result is passed to the tool as its `files` param. */
	rec.clear();
	const { content } = await invoke(legacyTool({ files }), {
		lang: 'py', code: 'print(open("/mnt/data/primed.csv").read(), end="")',
	});
	assert.equal(content, `stdout:\n${body}`.trim());
	assert.deepEqual(rec.requests.at(-1).json.files, files);
});
