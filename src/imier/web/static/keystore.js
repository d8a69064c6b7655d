// This device's key, kept in the browser's IndexedDB. It leaves the phone only
// as the person's own backup file.

import { newSecretKey, publicKey, toHex, fromHex } from './codec.js';

const DB = 'imier';
const STORE = 'device';
const ID = 'key';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = fn(t.objectStore(STORE));
      t.oncomplete = () => resolve(req && req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally {
    db.close();
  }
}

function complete(rec) {
  return { ...rec, secret: rec.secret, pub: toHex(publicKey(rec.secret)) };
}

/** This device's record {secret, pub, name, created}, or null on a first visit. */
export async function load() {
  const rec = await tx('readonly', (s) => s.get(ID));
  return rec && rec.secret ? complete(rec) : null;
}

export async function save(rec) {
  const { pub, ...kept } = rec; // the public key is derived, not stored
  await tx('readwrite', (s) => s.put(kept, ID));
  return complete(kept);
}

/** Make and keep a new key (first visit). */
export async function create() {
  return save({ secret: newSecretKey(), name: '', created: Date.now() });
}

export async function forget() {
  await tx('readwrite', (s) => s.delete(ID));
}

// -- the backup file -----------------------------------------------------------------------

export const BACKUP_KIND = 'imier-device-key';

export function backupText(rec) {
  return JSON.stringify({
    kind: BACKUP_KIND, v: 1, name: rec.name || '', public: rec.pub, secret: toHex(rec.secret),
    note: 'Whoever holds this file can vote as you. Keep it private.',
  }, null, 1) + '\n';
}

/** The key from a backup file's text; throws an Error saying what is wrong. */
export function parseBackup(text) {
  let d;
  try { d = JSON.parse(text); } catch (_) { throw new Error('this is not an Imier key file'); }
  if (!d || d.kind !== BACKUP_KIND || d.v !== 1 || typeof d.secret !== 'string' || d.secret.length !== 64) {
    throw new Error('this is not an Imier key file');
  }
  const secret = fromHex(d.secret);
  if (d.public && toHex(publicKey(secret)) !== d.public) throw new Error('the key file is damaged');
  return { secret, name: d.name || '', created: Date.now() };
}

/** The key as 16 groups of 4 letters and digits, to write on paper. */
export function backupWords(rec) {
  const h = toHex(rec.secret);
  const groups = [];
  for (let i = 0; i < 64; i += 4) groups.push(h.slice(i, i + 4));
  return groups.join(' ');
}

export function parseWords(text) {
  const h = text.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (h.length !== 64) throw new Error('the written key has 64 letters and digits (16 groups of 4)');
  return { secret: fromHex(h), name: '', created: Date.now() };
}
