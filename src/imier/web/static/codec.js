// Canonical msgpack and signed events, exactly as src/imier/protocol/canonical.py
// and events.py write them (docs/protocol.md sections 1 and 2).
//
// Values: null, true/false, integers (Number within 2^53, or BigInt), strings,
// Uint8Array (msgpack bin), arrays, and plain objects (maps with string keys).
// Every value takes msgpack's shortest form; map keys are sorted by their UTF-8
// bytes; positive integers use the unsigned formats (as msgpack-python does).
//
// Signing: Ed25519 (RFC 8032) by @noble/ed25519 with SHA-512 from @noble/hashes,
// both vendored under ./vendor (no WebCrypto: crypto.subtle is absent on an
// http:// LAN address; only crypto.getRandomValues is used, for new keys).

import * as ed from './vendor/noble-ed25519-3.2.0/index.js';
import { sha256, sha512 } from './vendor/noble-hashes-2.4.0/sha2.js';

ed.hashes.sha512 = sha512;

export const SIGN_CONTEXT = new TextEncoder().encode('imier/event/v1\x00');
export const FORMAT_VERSION = 1;
export const MAX_EVENT_BYTES = 65536;
export const MAX_DEPTH = 6;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

// -- hex and bytes ----------------------------------------------------------------

export function toHex(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

export function fromHex(h) {
  if (typeof h !== 'string' || h.length % 2 || /[^0-9a-fA-F]/.test(h)) {
    throw new Error('not hex: ' + String(h).slice(0, 20));
  }
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(2 * i, 2), 16);
  return out;
}

export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function equalBytes(a, b) {
  return a.length === b.length && compareBytes(a, b) === 0;
}

// -- encoder --------------------------------------------------------------------------

class Writer {
  constructor() { this.buf = new Uint8Array(256); this.n = 0; }
  room(k) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  byte(x) { this.room(1); this.buf[this.n++] = x; }
  bytes(b) { this.room(b.length); this.buf.set(b, this.n); this.n += b.length; }
  uint(x, width) { // x: BigInt, width in bytes, big-endian
    this.room(width);
    for (let i = width - 1; i >= 0; i--) { this.buf[this.n + i] = Number(x & 0xffn); x >>= 8n; }
    this.n += width;
  }
  result() { return this.buf.slice(0, this.n); }
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

function packInt(w, v) {
  let x = typeof v === 'bigint' ? v : BigInt(v);
  if (x > U64_MAX || x < I64_MIN) throw new CodecError('bad_type', 'integer out of range');
  if (x >= 0n) {
    if (x < 0x80n) w.byte(Number(x));
    else if (x < 0x100n) { w.byte(0xcc); w.uint(x, 1); }
    else if (x < 0x10000n) { w.byte(0xcd); w.uint(x, 2); }
    else if (x < 0x100000000n) { w.byte(0xce); w.uint(x, 4); }
    else { w.byte(0xcf); w.uint(x, 8); }
    return;
  }
  if (x >= -32n) { w.byte(Number(x + 256n)); return; }
  let width, tag;
  if (x >= -0x80n) { tag = 0xd0; width = 1; }
  else if (x >= -0x8000n) { tag = 0xd1; width = 2; }
  else if (x >= -0x80000000n) { tag = 0xd2; width = 4; }
  else { tag = 0xd3; width = 8; }
  w.byte(tag);
  w.uint(x + (1n << BigInt(8 * width)), width);
}

function packLen(w, n, fix, fixMax, t8, t16, t32) {
  if (fix !== null && n <= fixMax) w.byte(fix | n);
  else if (t8 !== null && n < 0x100) { w.byte(t8); w.uint(BigInt(n), 1); }
  else if (n < 0x10000) { w.byte(t16); w.uint(BigInt(n), 2); }
  else { w.byte(t32); w.uint(BigInt(n), 4); }
}

export class CodecError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

function packValue(w, v, depth) {
  if (depth > MAX_DEPTH) throw new CodecError('too_deep', 'nesting deeper than ' + MAX_DEPTH);
  if (v === null || v === undefined) { w.byte(0xc0); return; }
  if (v === false) { w.byte(0xc2); return; }
  if (v === true) { w.byte(0xc3); return; }
  if (typeof v === 'bigint') { packInt(w, v); return; }
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new CodecError('bad_type', 'floating point values are not allowed');
    packInt(w, v);
    return;
  }
  if (typeof v === 'string') {
    const b = utf8.encode(v);
    packLen(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    w.bytes(b);
    return;
  }
  if (v instanceof Uint8Array) {
    packLen(w, v.length, null, 0, 0xc4, 0xc5, 0xc6);
    w.bytes(v);
    return;
  }
  if (Array.isArray(v)) {
    packLen(w, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const x of v) packValue(w, x, depth + 1);
    return;
  }
  if (typeof v === 'object') {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    const enc = keys.map((k) => [utf8.encode(k), k]);
    enc.sort((a, b) => compareBytes(a[0], b[0]));
    packLen(w, enc.length, 0x80, 15, null, 0xde, 0xdf);
    for (const [kb, k] of enc) {
      packLen(w, kb.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      w.bytes(kb);
      packValue(w, v[k], depth + 1);
    }
    return;
  }
  throw new CodecError('bad_type', 'type ' + typeof v + ' cannot be encoded');
}

/** The canonical msgpack bytes of `value`. Keys whose value is `undefined` are left out. */
export function pack(value) {
  const w = new Writer();
  packValue(w, value, 0);
  return w.result();
}

// -- decoder (canonical only: re-encodes and compares) ------------------------------

class Reader {
  constructor(b) { this.b = b; this.i = 0; }
  need(k) { if (this.i + k > this.b.length) throw new CodecError('malformed', 'truncated'); }
  byte() { this.need(1); return this.b[this.i++]; }
  uint(width) {
    this.need(width);
    let x = 0n;
    for (let k = 0; k < width; k++) x = (x << 8n) | BigInt(this.b[this.i++]);
    return x;
  }
  take(n) { this.need(n); const out = this.b.slice(this.i, this.i + n); this.i += n; return out; }
}

function num(x) { return x <= BigInt(Number.MAX_SAFE_INTEGER) + 1n && x >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x; }

function readValue(r, depth) {
  if (depth > MAX_DEPTH) throw new CodecError('too_deep', 'nesting deeper than ' + MAX_DEPTH);
  const t = r.byte();
  if (t <= 0x7f) return t;
  if (t >= 0xe0) return t - 256;
  if ((t & 0xe0) === 0xa0) return str(r, t & 0x1f);
  if ((t & 0xf0) === 0x90) return arr(r, t & 0x0f, depth);
  if ((t & 0xf0) === 0x80) return map(r, t & 0x0f, depth);
  switch (t) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return r.take(Number(r.uint(1)));
    case 0xc5: return r.take(Number(r.uint(2)));
    case 0xc6: return r.take(Number(r.uint(4)));
    case 0xcc: return num(r.uint(1));
    case 0xcd: return num(r.uint(2));
    case 0xce: return num(r.uint(4));
    case 0xcf: return num(r.uint(8));
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      const width = 1 << (t - 0xd0);
      const u = r.uint(width);
      const half = 1n << BigInt(8 * width - 1);
      return num(u >= half ? u - (half << 1n) : u);
    }
    case 0xd9: return str(r, Number(r.uint(1)));
    case 0xda: return str(r, Number(r.uint(2)));
    case 0xdb: return str(r, Number(r.uint(4)));
    case 0xdc: return arr(r, Number(r.uint(2)), depth);
    case 0xdd: return arr(r, Number(r.uint(4)), depth);
    case 0xde: return map(r, Number(r.uint(2)), depth);
    case 0xdf: return map(r, Number(r.uint(4)), depth);
    default: throw new CodecError('bad_type', 'msgpack type 0x' + t.toString(16) + ' is not allowed');
  }
}

function str(r, n) {
  try { return fromUtf8.decode(r.take(n)); } catch (e) {
    if (e instanceof CodecError) throw e;
    throw new CodecError('malformed', 'invalid UTF-8');
  }
}

function arr(r, n, depth) {
  if (n > 4096) throw new CodecError('too_large', 'array of ' + n);
  const out = [];
  for (let k = 0; k < n; k++) out.push(readValue(r, depth + 1));
  return out;
}

function map(r, n, depth) {
  if (n > 64) throw new CodecError('too_large', 'map of ' + n);
  const out = {};
  for (let k = 0; k < n; k++) {
    const key = readValue(r, depth + 1);
    if (typeof key !== 'string') throw new CodecError('bad_key', 'map keys must be strings');
    if (Object.prototype.hasOwnProperty.call(out, key)) throw new CodecError('not_canonical', 'duplicate key');
    out[key] = readValue(r, depth + 1);
  }
  return out;
}

/** Decode one canonical value; throws CodecError unless `bytes` is exactly its canonical form. */
export function unpack(bytes, maxSize = MAX_EVENT_BYTES) {
  if (bytes.length > maxSize) throw new CodecError('too_large', bytes.length + ' bytes, limit is ' + maxSize);
  const r = new Reader(bytes);
  const v = readValue(r, 0);
  if (r.i !== bytes.length) throw new CodecError('trailing_bytes', 'bytes after the end of the value');
  if (!equalBytes(pack(v), bytes)) throw new CodecError('not_canonical', 'not in canonical msgpack form');
  return v;
}

// -- keys and events ---------------------------------------------------------------------

/** A new 32-byte Ed25519 secret key (seed), from crypto.getRandomValues. */
export function newSecretKey() {
  const k = new Uint8Array(32);
  crypto.getRandomValues(k);
  return k;
}

export function publicKey(secret) { return ed.getPublicKey(secret); }

export function sha256Bytes(b) { return sha256(b); }

function sortedUnique(ids) {
  const s = [...ids].sort(compareBytes);
  return s.filter((x, i) => i === 0 || compareBytes(s[i - 1], x) !== 0);
}

/**
 * Sign an event. `fields`: {body: Uint8Array|null, ts, seq, prev: [Uint8Array], kind, data}.
 * Returns {raw, id, sig, author, signed}: the wire bytes, sha256 of them, the signature,
 * the author's key and the bytes that were signed (SIGN_CONTEXT + the map without "sig").
 */
export function signEvent(secret, fields) {
  const author = ed.getPublicKey(secret);
  const env = {
    author,
    body: fields.body === undefined ? null : fields.body,
    data: fields.data,
    kind: fields.kind,
    prev: sortedUnique(fields.prev || []),
    seq: fields.seq,
    ts: fields.ts,
    v: FORMAT_VERSION,
  };
  const signed = concat(SIGN_CONTEXT, pack(env));
  const sig = ed.sign(signed, secret);
  env.sig = sig;
  const raw = pack(env);
  if (raw.length > MAX_EVENT_BYTES) {
    throw new CodecError('too_large', raw.length + ' bytes, limit is ' + MAX_EVENT_BYTES);
  }
  return { raw, id: sha256(raw), sig, author, signed };
}

/** Decode wire bytes to the event map and check its signature. Throws CodecError. */
export function decodeEvent(raw) {
  const v = unpack(raw);
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
    throw new CodecError('bad_shape', 'an event is a map');
  }
  if (!(v.sig instanceof Uint8Array) || v.sig.length !== 64) throw new CodecError('bad_field', 'sig');
  if (!(v.author instanceof Uint8Array) || v.author.length !== 32) throw new CodecError('bad_field', 'author');
  const env = { ...v };
  delete env.sig;
  const ok = ed.verify(v.sig, concat(SIGN_CONTEXT, pack(env)), v.author);
  if (!ok) throw new CodecError('bad_signature', 'signature does not match the author');
  return { event: v, id: sha256(raw) };
}

// -- payloads, with optional keys left out (never null) ------------------------------

const b = (x) => (typeof x === 'string' ? fromHex(x) : x);

export const payload = {
  admit: (member) => ({ member: b(member) }),
  leave: () => ({}),
  propose: (title, text, extra = {}) => ({ kind: 'general', ...extra, text, title }),
  amend: (proposal, text) => ({ proposal: b(proposal), text }),
  vote(target, choice, objection = {}) {
    const d = { choice, target: b(target) };
    if (choice === 'no') {
      d.severity = objection.severity || 'minor';
      d.category = objection.category || 'other';
      if (objection.delegate) d.delegate = b(objection.delegate);
    }
    return d;
  },
  stand: (proposal, choice) => ({ choice, proposal: b(proposal) }),
  withdraw: (proposal) => ({ proposal: b(proposal) }),
  profile: (name) => ({ name }),
  link: (device) => ({ device: b(device) }),
  unlink: (device) => ({ device: b(device) }),
};

/** JSON with bytes tagged {"bin": HEX} (docs/protocol-vectors.json) to codec values. */
export function fromTagged(v) {
  if (Array.isArray(v)) return v.map(fromTagged);
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === 'bin' && typeof v.bin === 'string') return fromHex(v.bin);
    const out = {};
    for (const k of keys) out[k] = fromTagged(v[k]);
    return out;
  }
  return v;
}

/** Codec values to tagged JSON (the inverse of fromTagged). */
export function toTagged(v) {
  if (v instanceof Uint8Array) return { bin: toHex(v) };
  if (Array.isArray(v)) return v.map(toTagged);
  if (typeof v === 'bigint') return v.toString();
  if (v && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v)) out[k] = toTagged(v[k]);
    return out;
  }
  return v;
}
