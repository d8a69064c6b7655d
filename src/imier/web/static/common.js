// What the member page and the meeting page share: talking to the node,
// names, times and the plain words for states and answers.

import { fromHex, toHex, sha256Bytes, signEvent } from './codec.js';

// -- the node's HTTP face (docs/cli.md, "The page for people's own devices") ----------

export class NodeError extends Error {
  constructor(status, body) {
    super((body && body.message) || 'the node answered ' + status);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
  }
}

async function answer(res) {
  let body = null;
  const text = await res.text();
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { message: text }; }
  if (!res.ok) throw new NodeError(res.status, body);
  return body;
}

export async function getJSON(path) {
  return answer(await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } }));
}

export async function postJSON(path, value) {
  return answer(await fetch(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value),
  }));
}

export async function postEvent(raw) {
  return answer(await fetch('/api/events', {
    method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: raw,
  }));
}

// The node's clock: a phone whose clock is wrong still signs with the node's time.
let clockOffset = 0;
export async function syncClock() {
  try {
    const t0 = Date.now();
    const { now_ms: now } = await getJSON('/api/now');
    const t1 = Date.now();
    clockOffset = now - Math.round((t0 + t1) / 2);
  } catch (_) { clockOffset = 0; }
  return clockOffset;
}
export function nodeNow() { return Date.now() + clockOffset; }

/**
 * Build, sign and post one event in `body` (hex) with `kind` and `data`.
 * Returns the node's answer {id, state}; throws NodeError with the node's reason.
 */
export async function sendEvent(secret, authorHex, body, kind, data) {
  const next = await getJSON(`/api/next?author=${authorHex}&body=${body}`);
  const ts = Math.max(nodeNow(), next.ts_min || 0);
  const ev = signEvent(secret, {
    body: fromHex(body), ts, seq: next.seq, prev: (next.prev || []).map(fromHex), kind, data,
  });
  const res = await postEvent(ev.raw);
  return { ...(res || {}), id: (res && res.id) || toHex(ev.id), ts };
}

/** The short code of a key, as the node derives it (store/requests.py join_code):
 * the first four bytes of sha256(key), big-endian, modulo one million, "123-456". */
export function joinCode(keyHex) {
  const h = sha256Bytes(fromHex(keyHex));
  const n = ((h[0] * 2 ** 24) + (h[1] << 16) + (h[2] << 8) + h[3]) % 1000000;
  const s = String(n).padStart(6, '0');
  return s.slice(0, 3) + '-' + s.slice(3);
}

// -- names -------------------------------------------------------------------------------

/** "Ana (3f9c)": a name never stands alone, since two people may pick the same one. */
export function shown(name, keyHex) {
  const tag = keyHex ? keyHex.slice(0, 4) : '';
  if (!name) return tag ? `someone (${tag})` : 'someone';
  return tag ? `${name} (${tag})` : name;
}

/** A person in any of the shapes the node uses: "HEX", {key, name}, {key, shown}. */
export function personLabel(p, names) {
  if (typeof p === 'string') return shown(names && names[p], p);
  if (!p) return 'someone';
  if (p.shown) return p.shown;
  if (p.display && p.name) return p.display;
  const key = p.key || p.person || p.id || '';
  return shown(p.name || (names && names[key]), key);
}

// -- times ---------------------------------------------------------------------------------

export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function day(ms) {
  const d = new Date(ms);
  const today = new Date(nodeNow());
  if (d.toDateString() === today.toDateString()) return 'today at ' + clock(ms);
  return d.toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long' }) + ' at ' + clock(ms);
}

/** "in 4 minutes", "in 2 hours", "in 3 days"; "now" when past. */
export function until(ms) {
  let s = Math.round((ms - nodeNow()) / 1000);
  if (s <= 0) return 'now';
  if (s < 60) return `in ${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m < 90) return `in ${m} minute${m === 1 ? '' : 's'}`;
  const h = Math.round(m / 60);
  if (h < 36) return `in ${h} hour${h === 1 ? '' : 's'}`;
  const d = Math.round(h / 24);
  return `in ${d} day${d === 1 ? '' : 's'}`;
}

/** "04:59" or "1:02:03": the projector's countdown. */
export function countdown(ms) {
  let s = Math.max(0, Math.floor((ms - nodeNow()) / 1000));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const two = (x) => String(x).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

// -- the status document in plain words ---------------------------------------------------

export function ratio(text) {
  if (typeof text !== 'string' || !text.includes('/')) return null;
  const [a, b] = text.split('/').map(Number);
  return b ? a / b : null;
}

export function percent(text) {
  const r = ratio(text);
  return r === null ? '–' : Math.round(r * 100) + '%';
}

const ROUND_NAMES = {
  1: 'Round 1 of 3, the temperature check',
  2: 'Round 2 of 3, after amendments',
  3: 'Round 3 of 3, the last round',
};

/** The phase a proposal is in, as a person would say it. */
export function phaseWords(doc) {
  const st = doc.state;
  if (st === 'discussion') return 'Being discussed: voting has not started yet';
  if (st === 'withdrawn') return 'Withdrawn by the person who proposed it';
  if (st === 'carried') return 'Decided: it passed';
  if (st === 'rejected') return 'Decided: it did not pass';
  if (st === 'tabled') return 'Set aside: support fell after it passed';
  if (st === 'contention') return 'Passed, and open to second thoughts: you can change your stand';
  const k = doc.round_open || Number(String(st).replace('round', '')) || null;
  const base = ROUND_NAMES[k] || (k ? `Round ${k}` : 'Open');
  if (doc.open_phase === 'amend') return `${base}: changes to the text can be proposed and voted`;
  return `${base}: voting is open`;
}

export function isFinal(doc) {
  return ['carried', 'rejected', 'tabled', 'withdrawn'].includes(doc.state);
}

/** The round whose counts matter now: the open one, else the last one counted. */
export function currentRound(doc) {
  const rounds = doc.rounds || [];
  if (!rounds.length) return null;
  const open = rounds.find((r) => r.open);
  return open || rounds[rounds.length - 1];
}

/** Counts of one body's verdict in a round: {yes, no, abstain, eligible}. */
export function tally(b) {
  return {
    yes: b.yes || 0, no: b.no || 0, abstain: b.abstain || 0, eligible: b.eligible || 0,
    voted: (b.yes || 0) + (b.no || 0) + (b.abstain || 0),
  };
}

/**
 * Who has voted and who has not, per body, from whichever fields the status
 * document carries: [{body, voted: [label], waiting: [label]}]. Empty lists
 * when the node does not say.
 */
export function whoVoted(doc, round, names) {
  const out = [];
  const bodies = (round && round.bodies) || {};
  for (const [bodyName, b] of Object.entries(bodies)) {
    const voted = b.voted || b.voters || b.who_voted || [];
    const waiting = b.not_voted || b.waiting || b.who_has_not || b.missing || [];
    out.push({
      body: bodyName,
      voted: voted.map((p) => personLabel(p, names)),
      waiting: waiting.map((p) => personLabel(p, names)),
    });
  }
  return out;
}

/** The node's explanation, with the code's words replaced by plain ones. */
export function why(doc) {
  const s = doc.explain || doc.why || '';
  return s.replace(/≥/g, 'at least').replace(/ < /g, ' below ');
}

/** Whether the last closed window is sealed by the tellers (docs/rules.md s.10), in words;
 * null when the status says nothing about seals. Round docs carry
 * "seal": {"window", "sealed", "tellers", "sealed_by"} once their window has closed. */
export function sealWords(doc) {
  const rounds = [...(doc.rounds || [])].reverse();
  const r = rounds.find((x) => x.seal || x.contention_seal || x.sealed !== undefined);
  const seal = r ? (r.contention_seal || r.seal || r.sealed) : (doc.seal ?? doc.sealed);
  if (seal === undefined || seal === null) return null;
  if (typeof seal === 'string') return seal;
  if (typeof seal === 'boolean') return seal ? 'sealed by the tellers' : 'not sealed';
  if (typeof seal === 'object') {
    if (seal.text) return seal.text;
    const n = seal.tellers ?? seal.n;
    const k = seal.sealed_by ?? seal.k ?? 0;
    if (n === 0) return 'not sealed: this group has no tellers, so a late, backdated vote could still change it';
    if (seal.sealed === true || (n && k * 2 > n)) return `sealed by ${k} of ${n} tellers: the count is closed`;
    if (n) return `not sealed yet (${k} of ${n} tellers have sealed it)`;
  }
  return null;
}

// -- the node's answers in words -------------------------------------------------------------

const CODES = {
  bad_signature: 'the signature does not match: the node refused it',
  not_member: 'you are not a member of this group yet',
  not_eligible: 'you cannot vote on this one: you were not a member when it was proposed',
  closed: 'voting on this is closed',
  too_large: 'that is too long',
  too_long: 'that is too long',
  missing_field: 'something is missing',
  bad_field: 'something is not right',
  invalid_event: 'the node refused it',
  rate_limited: 'too many at once: wait a moment and try again',
};

export function answerWords(what, res) {
  if (res && res.state === 'pending') {
    return `${what}: the node has it, and will count it once it has caught up with the rest.`;
  }
  return `${what}: done, the node has counted it.`;
}

export function errorWords(what, err) {
  if (err instanceof NodeError) {
    const plain = CODES[err.code];
    const msg = err.message && err.message !== plain ? ` (${err.message})` : '';
    return `${what} did not go through: ${plain || 'the node refused it'}${msg}.`;
  }
  return `${what} did not go through: the node could not be reached (${err.message}).`;
}

// -- small DOM helpers ----------------------------------------------------------------------

export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

export { toHex, fromHex };
