'use strict';
/*
 * Starts a private ci-server for one test file: loopback, port chosen by the
 * kernel (CI_PORT=0, read back from the server.listening log line), a fresh
 * storage directory, a random API key. stop() kills it and removes the
 * directory.
 */
const { spawn, execFile, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');

const HERE = path.resolve(__dirname, '..');

/* Every request the tests make goes to 127.0.0.1: no proxy may intercept it. */
for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy',
	'ALL_PROXY', 'PROXY'])
	delete process.env[k];
process.env.NO_PROXY = process.env.no_proxy = '127.0.0.1,localhost';

function serverBin() {
	const bin = process.env.CI_SERVER_BIN || path.resolve(HERE, '../../build/ci-server');
	if (!fs.existsSync(bin))
		throw new Error(`ci-server binary not found at ${bin} (set CI_SERVER_BIN)`);
	return path.resolve(bin);
}

/* The backend tests run against: the real sandbox unless told otherwise. */
function backendName() {
	return process.env.CI_TEST_BACKEND || 'bwrap';
}

function getHealth(port) {
	return new Promise((resolve) => {
		const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 2000 },
			(res) => {
				res.resume();
				res.on('end', () => resolve(res.statusCode));
			});
		req.on('error', () => resolve(0));
		req.on('timeout', () => req.destroy());
	});
}

const MINT = path.resolve(HERE, '../jwt/mint.mjs');
const JWT_KID = 'lc-codeapi-2026-05';

/*
 * JWT mode: a fresh Ed25519 key pair (openssl) in dir; the server gets the
 * public half and accepts API keys and LibreChat JWTs. mint(sub, extra)
 * signs a token with tests/jwt/mint.mjs, which repeats LibreChat's
 * codeapi.ts; extra adds its options ({ttl: 60, now: 1700000000, ...}).
 */
function jwtMode(dir) {
	const privateKey = path.join(dir, 'ed.key');
	const publicKey = path.join(dir, 'ed.pub');

	fs.mkdirSync(dir, { mode: 0o700 });
	execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', privateKey]);
	execFileSync('openssl', ['pkey', '-in', privateKey, '-pubout', '-out', publicKey]);
	const mint = (sub, extra = {}) => new Promise((resolve, reject) => {
		const args = [MINT, 'token', '--key', privateKey, '--kid', JWT_KID, '--sub', sub];

		for (const [k, v] of Object.entries(extra))
			args.push(`--${k}`, String(v));
		execFile(process.execPath, args, (err, stdout, stderr) => {
			if (err)
				reject(new Error(`mint.mjs failed: ${stderr || err.message}`));
			else
				resolve(stdout.trim());
		});
	});
	return {
		kid: JWT_KID, privateKey, publicKey, mint,
		env: { CI_AUTH_ACCEPT: 'api_key,librechat_jwt', CI_JWT_PUBLIC_KEY_FILE: publicKey,
			CI_JWT_KID: JWT_KID },
	};
}

/**
 * opts.env: extra environment (e.g. {CI_MAX_FILE_SIZE_BYTES: '1024'});
 * opts.authMode: 'keys' (default) or 'none'; opts.config: ci.conf text (CI_CONFIG);
 * opts.jwt: true to accept LibreChat JWTs as well (a generated key pair, see jwtMode).
 * Resolves to { port, host, key, base, root, storage, log(), stop() }, plus
 * jwt: { kid, privateKey, publicKey, mint(sub, extra) } with opts.jwt:
 * base is 'http://127.0.0.1:<port>/v1', root the same without /v1.
 */
async function startServer(opts = {}) {
	const bin = serverBin();
	const backend = opts.backend || backendName();
	const plugins = path.join(path.dirname(bin), 'plugins');
	if (!fs.existsSync(path.join(plugins, `ci-backend-${backend}.so`)))
		throw new Error(`backend plugin ci-backend-${backend}.so is not built in ${plugins} ` +
			`(configure with -DCI_BACKENDS=${backend}, or set CI_TEST_BACKEND)`);
	const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'ci-lc-store-'));
	const key = crypto.randomBytes(16).toString('hex');
	let config = {};
	let jwt = null;
	if (opts.jwt) {
		try {
			jwt = jwtMode(`${storage}.jwt`);
		} catch (e) {
			fs.rmSync(storage, { recursive: true, force: true });
			fs.rmSync(`${storage}.jwt`, { recursive: true, force: true });
			throw new Error(`JWT mode: cannot make a key pair with openssl: ${e.message}`);
		}
	}
	/* A backend's own settings (e.g. backends.k8s -> a fake API server) come first. */
	const base = process.env.CI_TEST_BASE_CONFIG ?
		fs.readFileSync(process.env.CI_TEST_BASE_CONFIG, 'utf8') + '\n' : '';
	if (opts.config || base) {
		const f = `${storage}.conf`;
		fs.writeFileSync(f, base + (opts.config || ''));
		config = { CI_CONFIG: f };
	}
	const env = {
		PATH: process.env.PATH,
		HOME: process.env.HOME || os.homedir(),
		TMPDIR: process.env.TMPDIR || '/tmp',
		CI_HOST: '127.0.0.1',
		CI_PORT: '0',
		CI_BACKEND: backend,
		CI_FILE_STORAGE_PATH: storage,
		CI_PLUGIN_DIR: plugins,
		CI_LOG_LEVEL: 'info',
		/* Sanitizer builds report through these; daytona runs need its fake. */
		...Object.fromEntries(['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'DAYTONA_API_URL',
			'DAYTONA_API_KEY']
			.filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
		...(opts.authMode === 'none' ? { CI_AUTH_MODE: 'none' } : { CI_API_KEY: key }),
		...config,
		...(jwt ? jwt.env : {}),
		...(opts.env || {}),
	};
	const child = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
	let output = '';
	let exited = null;
	const onData = (d) => { output += d.toString(); };
	child.stdout.on('data', onData);
	child.stderr.on('data', onData);
	const cleanup = () => {
		fs.rmSync(storage, { recursive: true, force: true });
		if (config.CI_CONFIG)
			fs.rmSync(config.CI_CONFIG, { force: true });
		if (jwt)
			fs.rmSync(path.dirname(jwt.privateKey), { recursive: true, force: true });
	};
	/* Never outlive the test process, even when it ends without stop(). */
	const reap = () => {
		if (!exited)
			child.kill('SIGKILL');
		cleanup();
	};
	process.once('exit', reap);
	child.on('exit', (code, sig) => { exited = { code, sig }; });
	const deadline = Date.now() + 15000;
	let port = 0;
	while (!port) {
		const m = /server\.listening .*port=(\d+)/.exec(output);
		if (m)
			port = Number(m[1]);
		else if (exited || Date.now() > deadline) {
			child.kill('SIGKILL');
			cleanup();
			throw new Error(`ci-server did not start (exit ${JSON.stringify(exited)}):\n${output}`);
		} else
			await new Promise((r) => setTimeout(r, 20));
	}
	while ((await getHealth(port)) !== 200) {
		if (exited || Date.now() > deadline) {
			child.kill('SIGKILL');
			cleanup();
			throw new Error(`ci-server /health never answered 200:\n${output}`);
		}
		await new Promise((r) => setTimeout(r, 50));
	}

	const root = `http://127.0.0.1:${port}`;
	return {
		port,
		host: '127.0.0.1',
		key: opts.authMode === 'none' ? null : key,
		root,
		base: `${root}/v1`,
		storage,
		backend,
		...(jwt ? { jwt: { kid: jwt.kid, privateKey: jwt.privateKey,
			publicKey: jwt.publicKey, mint: jwt.mint } } : {}),
		log: () => output,
		/* Stops the server; throws if it had died or exits uncleanly (sanitizers). */
		async stop() {
			const wasRunning = !exited;
			if (wasRunning) {
				const done = new Promise((r) => child.once('exit', r));
				child.kill('SIGTERM');
				const t = setTimeout(() => child.kill('SIGKILL'), 10000);
				await done;
				clearTimeout(t);
			}
			cleanup();
			process.removeListener('exit', reap);
			if (!wasRunning || exited.code !== 0)
				throw new Error(`ci-server ${wasRunning ? 'exited uncleanly' : 'died'} ` +
					`(${JSON.stringify(exited)}):\n${output.slice(-4000)}`);
		},
	};
}

module.exports = { startServer, serverBin, backendName };
