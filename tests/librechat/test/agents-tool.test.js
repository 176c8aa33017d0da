'use strict';
/*
 * The execute_code tool of @librechat/agents 3.9.2 (createCodeExecutionTool),
 * unmodified, pointed at ci-server the ways LibreChat does it: authHeaders
 * (object or async function, Bearer key), the key in LIBRECHAT_CODE_BASEURL
 * (node-fetch v2 -> Basic), and no auth. Requests pass through a recorder so
 * the wire shape is checked too.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const agents = require('@librechat/agents');
const { startServer } = require('../lib/server');
const { startRecorder } = require('../lib/recorder');
const lc = require('../lib/librechat');
const { NANOID, mongoId, token, keyInUrl } = require('../lib/util');

let srv, none, slow, rec, recNone;
const userId = mongoId();

before(async () => {
	srv = await startServer();
	none = await startServer({ authMode: 'none' });
	slow = await startServer({ config: 'limits = { default_run_timeout_s = 2; };\n' });
	rec = await startRecorder(srv.root);
	recNone = await startRecorder(none.root);
});
after(async () => {
	await rec?.close();
	await recNone?.close();
	await Promise.all([srv?.stop(), none?.stop(), slow?.stop()]);
});

/* What ToolNode does with a model's tool call: invoke with a ToolCall. */
async function invoke(tool, args) {
	const msg = await tool.invoke({ id: `call_${token(4)}`, name: tool.name, args, type: 'tool_call' });
	return { content: msg.content, artifact: msg.artifact };
}

/* The tool as LibreChat >= v0.8.6 builds it (handleTools + codeExecutionContext). */
function codeTool(extra = {}) {
	return agents.createCodeExecutionTool({
		user_id: userId,
		baseUrl: `${rec.base}/v1`,
		authHeaders: { Authorization: `Bearer ${srv.key}` },
		executionProfile: 'default',
		codeSessionKey: 'execute_code',
		...extra,
	});
}

async function printsToken(tool) {
	const tok = token();
	const { content, artifact } = await invoke(tool, { lang: 'py', code: `print("hello", "${tok}")` });
	assert.equal(content, `stdout:\nhello ${tok}`);
	assert.match(artifact.session_id, NANOID);
	assert.equal(artifact.files, undefined);
	return artifact;
}

test('auth: authHeaders {Authorization: Bearer KEY}', async () => {
	rec.clear();
	await printsToken(codeTool());
	const r = rec.requests.at(-1);
	assert.equal(r.url, '/v1/exec');
	assert.equal(r.headers.authorization, `Bearer ${srv.key}`);
	assert.equal(r.headers['user-agent'], 'LibreChat/1.0');
	assert.equal(r.headers['x-codeapi-expected-profile'], 'default');
	assert.equal(r.json.lang, 'py');
	assert.equal(r.json.user_id, userId);
	assert.equal(r.json.codeSessionKey, 'execute_code');
	assert.equal(r.status, 200);
});

test('auth: authHeaders as an async function', async () => {
	await printsToken(codeTool({ authHeaders: async () => ({ Authorization: `Bearer ${srv.key}` }) }));
});

test('auth: key in LIBRECHAT_CODE_BASEURL (node-fetch v2 sends Basic KEY)', async () => {
	const saved = process.env.LIBRECHAT_CODE_BASEURL;
	process.env.LIBRECHAT_CODE_BASEURL = keyInUrl(`${rec.base}/v1`, srv.key);
	try {
		rec.clear();
		const tool = agents.createCodeExecutionTool({ user_id: userId });
		await printsToken(tool);
		const r = rec.requests.at(-1);
		assert.equal(r.headers.authorization, `Basic ${Buffer.from(srv.key).toString('base64')}`);
	} finally {
		if (saved === undefined)
			delete process.env.LIBRECHAT_CODE_BASEURL;
		else
			process.env.LIBRECHAT_CODE_BASEURL = saved;
	}
});

test('auth: none (CI_AUTH_MODE=none), no credentials at all', async () => {
	recNone.clear();
	await printsToken(agents.createCodeExecutionTool({ user_id: userId, baseUrl: `${recNone.base}/v1` }));
	const r = recNone.requests.at(-1);
	assert.equal(r.headers.authorization, undefined);
	assert.equal(r.headers['x-api-key'], undefined);
});

test('auth: a wrong key surfaces as the client\'s "not authorized" error', async () => {
	const tool = codeTool({ authHeaders: { Authorization: `Bearer ${srv.key}x` } });
	rec.clear();
	await assert.rejects(invoke(tool, { lang: 'py', code: 'print(1)' }), (e) => {
		assert.match(e.message, /^Execution error:/);
		assert.ok(e.message.includes(agents.CODE_API_AUTHORIZATION_ERROR_MESSAGE), e.message);
		return true;
	});
	assert.equal(rec.requests.at(-1).status, 401);
});

test('a failing program is a normal tool result with its stderr', async () => {
	const tok = token();
	const { content, artifact } = await invoke(codeTool(), {
		lang: 'py',
		code: `import sys\nprint("before ${tok}")\nsys.stdout.flush()\n` +
			`sys.stderr.write("oops ${tok}\\n")\nraise SystemExit(3)`,
	});
	assert.match(content, new RegExp(`^stdout:\\nbefore ${tok}\\n+stderr:\\noops ${tok}`));
	assert.match(artifact.session_id, NANOID);
	const r = rec.requests.at(-1);
	assert.equal(r.status, 200);

	const t2 = await invoke(codeTool(), { lang: 'py', code: 'x = 1 / 0' });
	assert.match(t2.content, /^stdout: Empty\. Ensure you're writing output explicitly\.\nstderr:\n/);
	assert.match(t2.content, /ZeroDivisionError/);
});

test('a CSV and a matplotlib plt.show() plot come back as artifact files', async () => {
	const tok = token();
	const code = [
		'import csv',
		'import matplotlib.pyplot as plt',
		'rows = [(i, i * i) for i in range(6)]',
		'with open("/mnt/data/squares.csv", "w", newline="") as f:',
		'    csv.writer(f).writerows([("x", "y"), *rows])',
		'plt.plot([r[0] for r in rows], [r[1] for r in rows])',
		`plt.title("${tok}")`,
		'plt.show()',
		`print("done ${tok}")`,
	].join('\n');
	const { content, artifact } = await invoke(codeTool(), { lang: 'py', code });
	assert.ok(content.startsWith(`stdout:\ndone ${tok}\n`), content);
	assert.ok(content.includes('Session files: 2 persisted file(s) are available in /mnt/data, ' +
		'including 1 image(s).'), content);
	assert.match(artifact.session_id, NANOID);
	const names = artifact.files.map((f) => f.name).sort();
	assert.deepEqual(names, ['plot_1.png', 'squares.csv']);
	for (const f of artifact.files) {
		assert.match(f.id, NANOID);
		assert.equal(f.storage_session_id, artifact.session_id);
		assert.notEqual(f.inherited, true);
	}

	/* LibreChat downloads each one right away (processCodeOutput). */
	const got = Object.fromEntries((await lc.processArtifact(
		{ baseURL: srv.base, userId, authHeaders: { Authorization: `Bearer ${srv.key}` } },
		artifact)).map((d) => [d.name, d]));
	assert.equal(got['squares.csv'].buffer.toString(),
		'x,y\r\n0,0\r\n1,1\r\n2,4\r\n3,9\r\n4,16\r\n5,25\r\n');
	const png = got['plot_1.png'].buffer;
	assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
	assert.equal(png.subarray(12, 16).toString(), 'IHDR');
	assert.ok(png.readUInt32BE(16) >= 100 && png.readUInt32BE(20) >= 100, 'plot is too small');
	assert.match(got['plot_1.png'].response.headers['content-type'], /^image\/png/);
});

test('args reach the program as sys.argv[1:]', async () => {
	const args = ['a b', '--x=1', token(), 'ünï'];
	const { content } = await invoke(codeTool(), {
		lang: 'py', code: 'import sys, json\nprint(json.dumps(sys.argv[1:]))', args,
	});
	const m = /^stdout:\n(.*)\n?$/s.exec(content);
	assert.ok(m, content);
	assert.deepEqual(JSON.parse(m[1]), args);
	assert.deepEqual(rec.requests.at(-1).json.args, args);
});

test('lang bash: cwd and HOME are /mnt/data', async () => {
	const tok = token();
	const { content, artifact } = await invoke(codeTool(), {
		lang: 'bash', code: `echo $((6*7)) ${tok}; pwd; echo "$HOME"`,
	});
	assert.equal(content, `stdout:\n42 ${tok}\n/mnt/data\n/mnt/data`);
	assert.match(artifact.session_id, NANOID);
});

test('every response session_id is fresh', async () => {
	const seen = new Set();
	for (let i = 0; i < 3; i++)
		seen.add((await printsToken(codeTool())).session_id);
	assert.equal(seen.size, 3);
});

test('a run over the time limit returns its partial output and a timeout note', async () => {
	const tok = token();
	const tool = agents.createCodeExecutionTool({
		user_id: userId, baseUrl: slow.base, authHeaders: { Authorization: `Bearer ${slow.key}` },
	});
	const t0 = Date.now();
	const { content, artifact } = await invoke(tool, {
		lang: 'py', code: `import time\nprint("partial ${tok}", flush=True)\ntime.sleep(30)\nprint("never")`,
	});
	const ms = Date.now() - t0;
	assert.ok(ms < 15000, `took ${ms} ms`);
	assert.ok(content.startsWith(`stdout:\npartial ${tok}\n`), content);
	assert.ok(!content.includes('never'));
	assert.match(content, /stderr:\n[^]*time/i);
	assert.match(artifact.session_id, NANOID);
});

test('only allowlisted outputs are kept (§4.4), incl. whole basenames', async () => {
	const { artifact } = await invoke(codeTool(), {
		lang: 'bash',
		code: 'echo a > noext; echo b > prog.exe; echo c > ok.txt; echo d > Dockerfile; ' +
			'echo E=1 > .env; echo f > weird.zzz; mkdir -p d; echo g > d/page.html',
	});
	assert.deepEqual(artifact.files.map((f) => f.name).sort(),
		['.env', 'Dockerfile', 'd/page.html', 'ok.txt']);
});
