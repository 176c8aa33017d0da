'use strict';
const crypto = require('node:crypto');
const { Readable } = require('node:stream');

/* Every id the server mints (librechat-api.md §2). */
const NANOID = /^[A-Za-z0-9_-]{21}$/;

/* A LibreChat user id: a 24-hex Mongo ObjectId. */
function mongoId() {
	return crypto.randomBytes(12).toString('hex');
}

function token(n = 8) {
	return crypto.randomBytes(n).toString('hex');
}

/* A stream of unknown length: form-data then makes axios send it chunked. */
function chunkedStream(buf) {
	return Readable.from([buf.subarray(0, buf.length >> 1), buf.subarray(buf.length >> 1)]);
}

/*
 * A stream that yields its pieces with a pause before each: the server then
 * receives a part's data in several network reads, as from a slow source.
 */
function slowStream(pieces, ms = 40) {
	return Readable.from((async function* gen() {
		for (const p of pieces) {
			await new Promise((r) => setTimeout(r, ms));
			yield Buffer.from(p);
		}
	})());
}

/* http://127.0.0.1:P/v1 -> http://KEY@127.0.0.1:P/v1 */
function keyInUrl(base, key) {
	const u = new URL(base);

	u.username = key;
	return u.toString().replace(/\/+$/, '');
}

function sha256(buf) {
	return crypto.createHash('sha256').update(buf).digest('hex');
}

module.exports = { NANOID, mongoId, token, chunkedStream, slowStream, keyInUrl, sha256 };
