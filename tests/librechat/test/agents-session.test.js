'use strict';
/*
 * Session continuity through the real ToolNode of @librechat/agents 3.9.2
 * (src/tools/ToolNode.ts): its Graph-style sessions map records each
 * result's session_id and files, and the next code call is sent with
 * files[] = toInjectedFileRef(...) (storage_session_id shape). Each call is
 * a model tool call handed to ToolNode.invoke, as the agent graph does.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const agents = require('@librechat/agents');
const { AIMessage } = require('@langchain/core/messages');
const { startServer } = require('../lib/server');
const { startRecorder } = require('../lib/recorder');
const { NANOID, mongoId, token } = require('../lib/util');

let srv, rec, node, sessions;
const userId = mongoId();

before(async () => {
	srv = await startServer();
	rec = await startRecorder(srv.root);
	const params = {
		user_id: userId,
		baseUrl: `${rec.base}/v1`,
		authHeaders: { Authorization: `Bearer ${srv.key}` },
		executionProfile: 'default',
	};
	sessions = new Map();
	node = new agents.ToolNode({
		tools: [agents.createCodeExecutionTool(params), agents.createBashExecutionTool(params)],
		sessions,
	});
});
after(async () => {
	await rec?.close();
	await srv?.stop();
});

/* One assistant turn with one tool call, through the ToolNode. */
async function call(name, args) {
	const id = `call_${token(4)}`;
	rec.clear();
	const out = await node.invoke({
		messages: [new AIMessage({ content: '', tool_calls: [{ id, name, args, type: 'tool_call' }] })],
	});
	const msgs = Array.isArray(out) ? out : out.messages;
	assert.equal(msgs.length, 1);
	const m = msgs[0];
	assert.equal(m.tool_call_id, id);
	assert.equal(m.status, 'success', String(m.content));
	const execs = rec.requests.filter((r) => r.url === '/v1/exec');
	assert.equal(execs.length, 1);
	return { content: m.content, artifact: m.artifact, sent: execs[0].json };
}

function codeSession() {
	return sessions.get(agents.Constants.EXECUTE_CODE);
}

test('files written by one call are mounted in the next ones, across both tools', async () => {
	const t1 = token();
	/* 1: execute_code writes state and a nested file. */
	const c1 = await call('execute_code', {
		lang: 'py',
		code: 'import json, os\nos.makedirs("/mnt/data/sub/dir", exist_ok=True)\n' +
			`json.dump({"token": "${t1}"}, open("/mnt/data/state_x.json", "w"))\n` +
			`open("/mnt/data/sub/dir/n.txt", "w").write("nested ${t1}")\nprint("wrote")`,
	});
	assert.equal(c1.sent.files, undefined);
	const s1 = c1.artifact.session_id;
	assert.match(s1, NANOID);
	assert.deepEqual(c1.artifact.files.map((f) => f.name).sort(), ['state_x.json', 'sub/dir/n.txt']);
	const f1 = c1.artifact.files.find((f) => f.name === 'state_x.json');
	assert.equal(codeSession().session_id, s1);
	assert.deepEqual(codeSession().files.map((f) => [f.name, f.storage_session_id]).sort(),
		[['state_x.json', s1], ['sub/dir/n.txt', s1]]);

	/* 2: execute_code reads both back: the ToolNode sent them in files[]. */
	const c2 = await call('execute_code', {
		lang: 'py',
		code: 'import json\nprint("READ", json.load(open("/mnt/data/state_x.json"))["token"])\n' +
			'print(open("sub/dir/n.txt").read())',
	});
	assert.equal(c2.content, `stdout:\nREAD ${t1}\nnested ${t1}`);
	assert.equal(c2.sent.session_id, undefined);
	const sent = Object.fromEntries(c2.sent.files.map((f) => [f.name, f]));
	assert.deepEqual(sent['state_x.json'], {
		id: f1.id, resource_id: f1.id, name: 'state_x.json', storage_session_id: s1, kind: 'user',
	});
	assert.equal(sent['sub/dir/n.txt'].storage_session_id, s1);
	/* Unchanged inputs are not reported as new files. */
	const regenerated = (c2.artifact.files || []).filter((f) => !f.inherited);
	assert.deepEqual(regenerated, []);
	const s2 = c2.artifact.session_id;
	assert.match(s2, NANOID);
	assert.notEqual(s2, s1);

	/* 3: bash_tool shares the session: reads, then rewrites the state. */
	const t2 = token();
	const c3 = await call('bash_tool', {
		command: `cat /mnt/data/state_x.json; echo; printf '{"token": "%s"}' ${t2} > /mnt/data/state_x.json`,
	});
	assert.equal(c3.content.split('\n')[1], `{"token": "${t1}"}`);
	assert.deepEqual(c3.sent.files.map((f) => f.name).sort(), ['state_x.json', 'sub/dir/n.txt']);
	const s3 = c3.artifact.session_id;
	assert.deepEqual(c3.artifact.files.map((f) => f.name), ['state_x.json']);
	const f3 = c3.artifact.files[0];
	assert.notEqual(f3.id, f1.id);
	assert.equal(f3.storage_session_id, s3);
	const tracked = Object.fromEntries(codeSession().files.map((f) => [f.name, f]));
	assert.equal(tracked['state_x.json'].id, f3.id);
	assert.equal(tracked['state_x.json'].storage_session_id, s3);
	assert.equal(tracked['sub/dir/n.txt'].storage_session_id, s1);

	/* 4: execute_code sees the rewritten state (files from two storage sessions). */
	const c4 = await call('execute_code', {
		lang: 'py', code: 'import json\nprint(json.load(open("state_x.json"))["token"])',
	});
	assert.equal(c4.content, `stdout:\n${t2}`);
	const sent4 = Object.fromEntries(c4.sent.files.map((f) => [f.name, f.storage_session_id]));
	assert.deepEqual(sent4, { 'state_x.json': s3, 'sub/dir/n.txt': s1 });

	/* 5: deleting an input is reported in deleted_files and leaves the session. */
	const c5 = await call('execute_code', {
		lang: 'py', code: 'import os\nos.remove("/mnt/data/state_x.json")\nprint("rm")',
	});
	assert.deepEqual(c5.artifact.deleted_files, ['state_x.json']);
	assert.deepEqual(codeSession().files.map((f) => f.name), ['sub/dir/n.txt']);

	/* 6: and it is gone in the next call, while the rest is still there. */
	const c6 = await call('bash_tool', {
		command: 'test -e /mnt/data/state_x.json && echo present || echo absent; cat sub/dir/n.txt',
	});
	assert.equal(c6.content, `stdout:\nabsent\nnested ${t1}`);
	assert.deepEqual(c6.sent.files.map((f) => f.name), ['sub/dir/n.txt']);
});

test('a failed call keeps the session\'s files for the next call', async () => {
	const t = token();
	const w = await call('execute_code', {
		lang: 'py', code: `open("/mnt/data/keep.txt", "w").write("${t}")`,
	});
	assert.deepEqual(w.artifact.files.map((f) => f.name), ['keep.txt']);
	const bad = await call('execute_code', { lang: 'py', code: 'raise RuntimeError("nope")' });
	assert.match(bad.content, /RuntimeError: nope/);
	const r = await call('bash_tool', { command: 'cat /mnt/data/keep.txt' });
	assert.equal(r.content, `stdout:\n${t}`);
});
