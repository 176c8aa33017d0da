'use strict';
/*
 * Replicas of LibreChat's own server-side Code API calls (not on npm):
 * api/server/services/Files/Code/crud.js and process.js, in both generations,
 * as described in shared/docs/librechat-api.md §5-§8 (and the helper shapes
 * of packages/api/src/files/code: appendCodeEnvFileIdentity,
 * appendCodeEnvFile/getCodeEnvFileOptions, buildCodeEnvDownloadQuery).
 * Written from that description: same HTTP client (axios + form-data), same
 * headers, query strings, timeouts and response handling, minus Mongo and the
 * file strategies. Each function takes a `lc` context:
 *   { baseURL, userId, authHeaders }            current (>= v0.8.6)
 *   { baseURL, userId, apiKey }                 legacy  (<= v0.8.5)
 * baseURL may carry the key as userinfo (http://KEY@host:port/v1), the usual
 * way to reach a key-based server from current LibreChat (axios then sends
 * Authorization: Basic base64("KEY:")). authHeaders may also be a (sync or
 * async) function, called once per request: in JWT mode LibreChat mints a
 * fresh short-lived token for every Code API call (getCodeApiAuthHeaders).
 */
const path = require('node:path');
const axiosLib = require('axios');
const FormData = require('form-data');

/* LibreChat uses createAxiosInstance() (proxy settings only). */
const axios = axiosLib.create();

const MAX_FILE_SIZE = 150 * 1024 * 1024;
const UA = 'LibreChat/1.0';

/* ----------------------------------------------------------- current */

/* lc.authHeaders as an object, or what its function returns for this request. */
async function authOf(lc) {
	const h = typeof lc.authHeaders === 'function' ? await lc.authHeaders() : lc.authHeaders;

	return h || {};
}

/* packages/api/src/files/code: nested names travel in form-data's filepath. */
function codeEnvFileOptions(filename) {
	const normalized = filename.replace(/\\/g, '/');
	const base = path.posix.basename(normalized);

	if (normalized === base)
		return { filename };
	return { filename: base, filepath: normalized };
}

function appendIdentity(form, { kind, id, version }) {
	if (!['user', 'agent', 'skill'].includes(kind) || !id)
		throw new Error(`bad code env identity ${kind}/${id}`);
	form.append('kind', kind);
	form.append('id', id);
	if (version != null)
		form.append('version', String(version));
}

function downloadQuery({ kind, id, version }) {
	const p = new URLSearchParams({ kind, id });

	if (version != null)
		p.set('version', String(version));
	return `?${p.toString()}`;
}

/* crud.js uploadCodeEnvFile: -> { storage_session_id, file_id, response } */
async function uploadCodeEnvFile(lc, { stream, filename, kind = 'user', id, version }) {
	const form = new FormData();

	appendIdentity(form, { kind, id: id ?? lc.userId, version });
	form.append('file', stream, codeEnvFileOptions(filename));
	const response = await axios.post(`${lc.baseURL}/upload`, form, {
		headers: {
			...form.getHeaders(),
			'Content-Type': 'multipart/form-data',
			'User-Agent': UA,
			'User-Id': lc.userId,
			...(await authOf(lc)),
		},
		timeout: 120000,
		maxContentLength: MAX_FILE_SIZE,
		maxBodyLength: MAX_FILE_SIZE,
	});
	const result = response.data;
	if (result.message !== 'success')
		throw new Error(`Error uploading file: ${result.message}`);
	return {
		storage_session_id: result.storage_session_id,
		file_id: result.files[0].fileId,
		response,
	};
}

/* crud.js batchUploadCodeEnvFiles: -> { storage_session_id, files, response } */
async function batchUploadCodeEnvFiles(lc, { files, kind, id, version, read_only = false }) {
	const form = new FormData();

	appendIdentity(form, { kind, id, version });
	if (read_only)
		form.append('read_only', 'true');
	for (const f of files)
		form.append('file', f.stream, codeEnvFileOptions(f.filename));
	const response = await axios.post(`${lc.baseURL}/upload/batch`, form, {
		headers: {
			...form.getHeaders(),
			'Content-Type': 'multipart/form-data',
			'User-Agent': UA,
			'User-Id': lc.userId,
			...(await authOf(lc)),
		},
		timeout: 120000,
		maxContentLength: MAX_FILE_SIZE,
		maxBodyLength: MAX_FILE_SIZE,
	});
	const result = response.data;
	if (!result || typeof result !== 'object' || !result.storage_session_id ||
	    !Array.isArray(result.files))
		throw new Error(`Unexpected batch upload response: ${JSON.stringify(result)}`);
	if (result.message === 'error')
		throw new Error('All files in batch upload failed');
	return {
		storage_session_id: result.storage_session_id,
		files: result.files.filter((f) => f.status === 'success' && f.fileId)
			.map((f) => ({ fileId: f.fileId, filename: f.filename })),
		response,
	};
}

/* crud.js getCodeOutputDownloadStream (the browser download proxy). */
async function getCodeOutputDownloadStream(lc, fileIdentifier, identity) {
	return axios({
		method: 'get',
		url: `${lc.baseURL}/download/${fileIdentifier}${downloadQuery(identity)}`,
		responseType: 'stream',
		headers: { 'User-Agent': UA, ...(await authOf(lc)) },
		timeout: 15000,
	});
}

/*
 * process.js processCodeOutput, network part: download one generated file
 * right after /exec returned. -> { buffer, codeEnvRef, response }
 */
async function processCodeOutput(lc, { id, name, session_id }) {
	const response = await axios({
		method: 'get',
		url: `${lc.baseURL}/download/${session_id}/${id}` +
			downloadQuery({ kind: 'user', id: lc.userId }),
		responseType: 'arraybuffer',
		headers: { 'User-Agent': UA, ...(await authOf(lc)) },
		timeout: 15000,
	});
	return {
		name,
		buffer: Buffer.from(response.data, 'binary'),
		codeEnvRef: { kind: 'user', id: lc.userId, storage_session_id: session_id, file_id: id },
		response,
	};
}

/* The tool-end callback: every non-inherited artifact file goes through processCodeOutput. */
async function processArtifact(lc, artifact) {
	const out = [];

	for (const file of artifact.files || []) {
		if (file.inherited)
			continue;
		out.push(await processCodeOutput(lc, {
			id: file.id, name: file.name, session_id: artifact.session_id,
		}));
	}
	return out;
}

function checkIfActive(dateString) {
	return (Date.now() - new Date(dateString).getTime()) / 3600000 < 23;
}

/* process.js getSessionInfo (current): lastModified or null on any error. */
async function getSessionInfo(lc, ref) {
	try {
		const response = await axios({
			method: 'get',
			url: `${lc.baseURL}/sessions/${ref.storage_session_id}/objects/${ref.file_id}` +
				downloadQuery({ kind: ref.kind, id: ref.id,
					...(ref.kind === 'skill' ? { version: ref.version } : {}) }),
			headers: { 'User-Agent': UA, ...(await authOf(lc)) },
			timeout: 5000,
		});
		return response.data?.lastModified ?? null;
	} catch {
		return null;
	}
}

/*
 * process.js primeFiles (current), for files that carry a codeEnvRef:
 * probe freshness, re-upload stale or missing ones (reupload(file) must
 * return a fresh stream), and build the files[] the tool is primed with.
 */
async function primeFiles(lc, dbFiles, reupload) {
	const files = [];
	const fresh = new Set();
	const actions = [];

	for (const file of dbFiles) {
		let ref = file.codeEnvRef;
		let how = 'fresh';

		if (!fresh.has(ref.storage_session_id)) {
			const t = await getSessionInfo(lc, ref);
			if (!t || !checkIfActive(t)) {
				const up = await uploadCodeEnvFile(lc, {
					stream: reupload(file), filename: file.filename, kind: ref.kind, id: ref.id,
				});
				ref = { kind: ref.kind, id: ref.id,
					storage_session_id: up.storage_session_id, file_id: up.file_id };
				file.codeEnvRef = ref;
				how = 'reuploaded';
			}
			fresh.add(ref.storage_session_id);
		}
		actions.push(how);
		files.push({
			id: ref.file_id,
			resource_id: ref.id,
			storage_session_id: ref.storage_session_id,
			name: file.filename,
			kind: ref.kind,
			...(ref.kind === 'skill' ? { version: ref.version } : {}),
		});
	}
	return { files, actions };
}

/* process.js readSandboxFile: `cat` through /exec (no user_id). */
async function readSandboxFile(lc, { file_path, session_id, files }) {
	const safePath = `'${file_path.replace(/'/g, '\'\\\'\'')}'`;
	const postData = { lang: 'bash', code: `cat ${safePath}` };

	if (session_id)
		postData.session_id = session_id;
	if (files && files.length > 0)
		postData.files = files;
	const response = await axios({
		method: 'post',
		url: `${lc.baseURL}/exec`,
		data: postData,
		headers: { 'Content-Type': 'application/json', 'User-Agent': UA,
			...(await authOf(lc)) },
		timeout: 15000,
	});
	const result = response?.data ?? {};
	if (result.stderr && (result.stdout == null || result.stdout === ''))
		throw new Error(String(result.stderr).trim());
	if (result.stdout == null)
		return null;
	return { content: String(result.stdout), raw: result };
}

/* process.js writeSandboxFile: a python writer run through bash (no user_id). */
async function writeSandboxFile(lc, { file_path, content, session_id, files }) {
	const payload = Buffer.from(JSON.stringify({
		file_path,
		content_b64: Buffer.from(content, 'utf8').toString('base64'),
	}), 'utf8').toString('base64');
	const code = [
		'python3 - <<\'PY\'',
		'import base64, json, os',
		`payload = ${JSON.stringify(payload)}`,
		'data = json.loads(base64.b64decode(payload).decode(\'utf-8\'))',
		'path = data[\'file_path\']',
		'content = base64.b64decode(data[\'content_b64\'])',
		'parent = os.path.dirname(path)',
		'if parent:',
		'    os.makedirs(parent, exist_ok=True)',
		'with open(path, \'wb\') as f:',
		'    f.write(content)',
		'print(f"WROTE {len(content)} bytes to {path}")',
		'PY',
	].join('\n');
	const postData = { lang: 'bash', code };

	if (session_id)
		postData.session_id = session_id;
	if (files && files.length > 0)
		postData.files = files;
	const response = await axios({
		method: 'post',
		url: `${lc.baseURL}/exec`,
		data: postData,
		headers: { 'Content-Type': 'application/json', 'User-Agent': UA,
			...(await authOf(lc)) },
		timeout: 15000,
	});
	const result = response?.data ?? {};
	if (result.stderr && (result.stdout == null || result.stdout === ''))
		throw new Error(String(result.stderr).trim());
	return {
		stdout: result.stdout, stderr: result.stderr,
		session_id: result.session_id, files: result.files,
	};
}

/* ------------------------------------------------------------ legacy */

/* crud.js uploadCodeEnvFile (<= v0.8.5): -> "sid/fid[?entity_id=..]" */
async function legacyUploadCodeEnvFile(lc, { stream, filename, entity_id = '' }) {
	const form = new FormData();

	if (entity_id.length > 0)
		form.append('entity_id', entity_id);
	form.append('file', stream, filename);
	const response = await axios.post(`${lc.baseURL}/upload`, form, {
		headers: {
			...form.getHeaders(),
			'Content-Type': 'multipart/form-data',
			'User-Agent': UA,
			'User-Id': lc.userId,
			'X-API-Key': lc.apiKey,
		},
		maxContentLength: MAX_FILE_SIZE,
		maxBodyLength: MAX_FILE_SIZE,
	});
	const result = response.data;
	if (result.message !== 'success')
		throw new Error(`Error uploading file: ${result.message}`);
	const fileIdentifier = `${result.session_id}/${result.files[0].fileId}`;
	return entity_id.length === 0 ? fileIdentifier : `${fileIdentifier}?entity_id=${entity_id}`;
}

/* process.js getSessionInfo (<= v0.8.5): GET /files/<sid>?detail=summary. */
async function legacyGetSessionInfo(lc, fileIdentifier) {
	try {
		const [p, queryString] = fileIdentifier.split('?');
		const session_id = p.split('/')[0];
		const queryParams = queryString
			? Object.fromEntries(new URLSearchParams(queryString).entries()) : {};
		const response = await axios({
			method: 'get',
			url: `${lc.baseURL}/files/${session_id}`,
			params: { detail: 'summary', ...queryParams },
			headers: { 'User-Agent': UA, 'X-API-Key': lc.apiKey },
			timeout: 5000,
		});
		return response.data.find((file) => file.name.startsWith(p))?.lastModified ?? null;
	} catch {
		return null;
	}
}

/* process.js primeFiles (<= v0.8.5): files[] of {id, session_id, name}. */
async function legacyPrimeFiles(lc, dbFiles) {
	const files = [];

	for (const file of dbFiles) {
		const [p] = file.fileIdentifier.split('?');
		const [session_id, id] = p.split('/');
		const t = await legacyGetSessionInfo(lc, file.fileIdentifier);
		if (!t || !checkIfActive(t))
			throw new Error(`stale or missing file ${file.fileIdentifier} (would re-upload)`);
		files.push({ id, session_id, name: file.filename });
	}
	return { files };
}

/* process.js processCodeOutput (<= v0.8.5): no query, X-API-Key. */
async function legacyProcessCodeOutput(lc, { id, name, session_id }) {
	const response = await axios({
		method: 'get',
		url: `${lc.baseURL}/download/${session_id}/${id}`,
		responseType: 'arraybuffer',
		headers: { 'User-Agent': UA, 'X-API-Key': lc.apiKey },
		timeout: 15000,
	});
	return { name, buffer: Buffer.from(response.data, 'binary'), response };
}

/* crud.js getCodeOutputDownloadStream (<= v0.8.5). */
function legacyGetCodeOutputDownloadStream(lc, fileIdentifier) {
	return axios({
		method: 'get',
		url: `${lc.baseURL}/download/${fileIdentifier}`,
		responseType: 'stream',
		headers: { 'User-Agent': UA, 'X-API-Key': lc.apiKey },
		timeout: 15000,
	});
}

async function streamToBuffer(stream) {
	const chunks = [];

	for await (const c of stream)
		chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
	return Buffer.concat(chunks);
}

module.exports = {
	axios,
	codeEnvFileOptions,
	downloadQuery,
	uploadCodeEnvFile,
	batchUploadCodeEnvFiles,
	getCodeOutputDownloadStream,
	processCodeOutput,
	processArtifact,
	checkIfActive,
	getSessionInfo,
	primeFiles,
	readSandboxFile,
	writeSandboxFile,
	legacy: {
		uploadCodeEnvFile: legacyUploadCodeEnvFile,
		getSessionInfo: legacyGetSessionInfo,
		primeFiles: legacyPrimeFiles,
		processCodeOutput: legacyProcessCodeOutput,
		getCodeOutputDownloadStream: legacyGetCodeOutputDownloadStream,
	},
	streamToBuffer,
};
