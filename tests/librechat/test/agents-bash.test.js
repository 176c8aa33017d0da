'use strict';
/* The bash_tool of @librechat/agents 3.9.2 (createBashExecutionTool), unmodified. */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const agents = require('@librechat/agents');
const { startServer } = require('../lib/server');
const { startRecorder } = require('../lib/recorder');
const lc = require('../lib/librechat');
const { NANOID, mongoId, token } = require('../lib/util');

let srv, rec;
const userId = mongoId();

before(async () => {
	srv = await startServer();
	rec = await startRecorder(srv.root);
});
after(async () => {
	await rec?.close();
	await srv?.stop();
});

function bashTool(extra = {}) {
	return agents.createBashExecutionTool({
		user_id: userId,
		baseUrl: `${rec.base}/v1`,
		authHeaders: { Authorization: `Bearer ${srv.key}` },
		executionProfile: 'default',
		...extra,
	});
}

async function invoke(tool, args) {
	const msg = await tool.invoke({ id: `call_${token(4)}`, name: tool.name, args, type: 'tool_call' });
	return { content: msg.content, artifact: msg.artifact };
}

test('bash_tool is the package\'s own bash tool', () => {
	const t = bashTool();
	assert.equal(t.name, agents.BashExecutionToolName);
	assert.equal(t.name, 'bash_tool');
});

test('bash_tool runs a command with args and returns its files', async () => {
	const tok = token();
	const { content, artifact } = await invoke(bashTool(), {
		command: `echo "$1 and $2"; mkdir -p out; printf 'k,v\\n%s,1\\n' "${tok}" > out/t.csv; ls out`,
		args: ['one', 'two words'],
	});
	assert.ok(content.startsWith('stdout:\none and two words\nt.csv\n'), content);
	assert.ok(content.includes('Session files: 1 persisted file(s)'), content);
	assert.match(artifact.session_id, NANOID);
	assert.deepEqual(artifact.files.map((f) => f.name), ['out/t.csv']);
	assert.equal(artifact.files[0].storage_session_id, artifact.session_id);

	const r = rec.requests.at(-1);
	assert.equal(r.url, '/v1/exec');
	assert.equal(r.json.lang, 'bash');
	assert.deepEqual(r.json.args, ['one', 'two words']);
	assert.equal(r.json.command, undefined);

	const [dl] = await lc.processArtifact(
		{ baseURL: srv.base, userId, authHeaders: { Authorization: `Bearer ${srv.key}` } }, artifact);
	assert.equal(dl.buffer.toString(), `k,v\n${tok},1\n`);
});

test('bash_tool: a failing command still returns stdout and stderr', async () => {
	const tok = token();
	const { content, artifact } = await invoke(bashTool(), {
		command: `echo out-${tok}; echo err-${tok} >&2; exit 4`,
	});
	assert.equal(content, `stdout:\nout-${tok}\n\nstderr:\nerr-${tok}`);
	assert.match(artifact.session_id, NANOID);
	assert.equal(rec.requests.at(-1).status, 200);
});

test('bash_tool: python3 through a heredoc (BASH_SHELL_GUIDANCE)', async () => {
	const { content } = await invoke(bashTool(), {
		command: 'python3 - <<\'PY\'\nimport os\nprint(os.getcwd(), 2 ** 10)\nPY',
	});
	assert.equal(content, 'stdout:\n/mnt/data 1024');
});
