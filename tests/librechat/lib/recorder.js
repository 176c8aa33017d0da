'use strict';
/*
 * A loopback pass-through proxy that records what the client really sent
 * (method, path, headers, body) before forwarding it to ci-server, so tests
 * can assert on the wire requests of the unmodified @librechat/agents code.
 */
const http = require('node:http');

async function startRecorder(target) {
	const t = new URL(target);
	const requests = [];
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const body = Buffer.concat(chunks);
			const rec = { method: req.method, url: req.url, headers: req.headers, body };
			try {
				rec.json = JSON.parse(body.toString('utf8'));
			} catch {
				rec.json = undefined;
			}
			requests.push(rec);
			const headers = { ...req.headers, host: t.host };
			delete headers['transfer-encoding'];
			headers['content-length'] = String(body.length);
			const up = http.request({
				host: t.hostname, port: t.port, method: req.method, path: req.url, headers,
			}, (ur) => {
				rec.status = ur.statusCode;
				res.writeHead(ur.statusCode, ur.headers);
				ur.pipe(res);
			});
			up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
			up.end(body);
		});
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	const port = server.address().port;
	return {
		port,
		base: `http://127.0.0.1:${port}`,
		requests,
		clear() { requests.length = 0; },
		close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
	};
}

module.exports = { startRecorder };
