// The meeting page, for a projector: one proposal, its live count per group,
// who has voted and who has not, the time left, and the outcome in plain words.
// It follows /api/stream and never reloads.

import {
  countdown, currentRound, day, el, getJSON, isFinal, nodeNow, percent, phaseWords, sealWords, syncClock,
  tally, until, whoVoted, why,
} from './common.js';

const root = document.getElementById('meeting');
const live = document.getElementById('live');
const liveText = document.getElementById('livetext');

const state = { id: null, doc: null, all: [], names: {}, bodies: [], updates: 0, ticket: 0 };

function wanted() {
  const h = decodeURIComponent(location.hash.replace(/^#/, '')).trim().toLowerCase();
  return /^[0-9a-f]{64}$/.test(h) ? h : null;
}

async function loadNames() {
  try {
    const bodies = await getJSON('/api/bodies');
    state.bodies = Array.isArray(bodies) ? bodies : (bodies.bodies || []);
    const names = {};
    for (const b of state.bodies) {
      for (const m of b.members || []) if (m && m.key) names[m.key] = m.name;
    }
    state.names = names;
  } catch (_) { /* names are a nicety: counts still show */ }
}

/** Choose what to show: the proposal named in the address, else the open one closing first. */
function choose(all) {
  const want = wanted();
  if (want) return want;
  const open = all.filter((p) => !isFinal(p) && p.window);
  open.sort((a, b) => a.window[1] - b.window[1]);
  if (open.length) return open[0].id;
  return all.length ? all[all.length - 1].id : null;
}

async function load() {
  const ticket = ++state.ticket;
  const all = await getJSON('/api/status');
  const id = choose(all.proposals || []);
  const doc = id ? await getJSON('/api/status/' + id) : null;
  if (ticket !== state.ticket) return; // the stream brought something newer meanwhile
  state.all = all.proposals || [];
  state.id = id;
  state.doc = doc;
}

function bodyName(hex) {
  const b = state.bodies.find((x) => x.id === hex);
  return b ? b.name : 'the group';
}

/** Who voted / not yet, per group, from the turnout of the round (names as "Ana (3f9c)"). */
function people(doc, round) {
  if (Array.isArray(doc.turnout) && round) {
    return doc.turnout.filter((t) => t.round === round.round).map((t) => ({
      body: bodyName(t.body),
      voted: Object.keys(t.voted || {}).map((k) => label(k)),
      waiting: (t.not_voted || []).map((k) => label(k)),
    }));
  }
  return whoVoted(doc, round, state.names);
}

function label(key) {
  const n = state.names[key];
  return n ? `${n} (${key.slice(0, 4)})` : `someone (${key.slice(0, 4)})`;
}

function needs(doc, round) {
  const plain = (doc.rounds_plain || []).find((r) => r.round === round.round);
  return plain && plain.needs_percent ? `needs ${plain.needs_percent} yes` : '';
}

function render() {
  const doc = state.doc;
  if (!doc) {
    root.replaceChildren(el('section', { class: 'empty' }, el('h1', {}, 'No proposal yet'),
      el('p', {}, 'When someone proposes something, it appears here.')));
    return;
  }
  const round = currentRound(doc);
  const head = el('header', { class: 'head' },
    el('p', { class: 'phase', id: 'phase' }, phaseWords(doc)),
    el('h1', { id: 'title' }, doc.title));
  const clockBox = el('div', { class: 'clock', id: 'clock' });
  const body = [head];
  if (doc.window && !isFinal(doc)) {
    clockBox.append(el('span', { class: 'countdown', id: 'countdown', 'data-until': doc.window[1] }, countdown(doc.window[1])),
      el('span', { class: 'closes' }, `closes ${day(doc.window[1])}`));
    body.push(clockBox);
  }
  const counts = el('section', { class: 'counts', id: 'counts' });
  if (round) {
    const bodies = Object.entries(round.bodies || {});
    for (const [name, v] of bodies) {
      const t = tally(v);
      const pct = (x) => (t.eligible ? Math.round((100 * x) / t.eligible) : 0);
      counts.append(el('div', { class: 'group', 'data-body': name },
        el('h2', {}, name, el('span', { class: 'turnout' }, ` ${t.voted} of ${t.eligible} voted`)),
        el('div', { class: 'meter', role: 'img', 'aria-label': `${t.yes} yes, ${t.no} no, ${t.abstain} abstain` },
          el('span', { class: 'y', 'data-w': pct(t.yes) }), el('span', { class: 'n', 'data-w': pct(t.no) }),
          el('span', { class: 'a', 'data-w': pct(t.abstain) })),
        el('p', { class: 'numbers' },
          el('span', { class: 'yes' }, `${t.yes} yes`), ' · ', el('span', { class: 'no' }, `${t.no} no`), ' · ',
          el('span', { class: 'abstain' }, `${t.abstain} abstain`),
          v.support ? el('span', { class: 'support' }, ` · support ${percent(v.support)}`) : null)));
    }
    if (bodies.length > 1 || round.support) {
      counts.append(el('p', { class: 'overall' }, `Overall support ${percent(round.support)}, `,
        `participation ${percent(round.participation)}`, needs(doc, round) ? `; ${needs(doc, round)}` : ''));
    } else if (needs(doc, round)) {
      counts.append(el('p', { class: 'overall' }, needs(doc, round)));
    }
  }
  body.push(counts);
  const who = el('section', { class: 'who', id: 'who' });
  for (const w of people(doc, round)) {
    who.append(el('div', { class: 'people' },
      w.voted.length ? el('p', { class: 'voted' }, el('strong', {}, 'Voted: '), w.voted.join(', ')) : null,
      w.waiting.length ? el('p', { class: 'waiting' }, el('strong', {}, 'Not yet: '), w.waiting.join(', ')) : null));
  }
  body.push(who);
  const outcome = el('section', { class: 'outcome ' + (doc.state || ''), id: 'outcome' });
  if (isFinal(doc) || doc.state === 'contention') {
    outcome.append(el('h2', {}, phaseWords(doc)));
  }
  if (isFinal(doc) || doc.state === 'contention' || doc.state === 'discussion') {
    outcome.append(el('p', { class: 'why' }, why(doc)));
  } else if (round) {
    const plain = (doc.rounds_plain || []).find((x) => x.round === round.round);
    if (plain && plain.so_far) outcome.append(el('p', { class: 'why' }, `If it closed now, it ${plain.so_far}.`));
  }
  const sealed = sealWords(doc);
  if (sealed) outcome.append(el('p', { class: 'seal', id: 'seal' }, 'Count: ' + sealed));
  body.push(outcome);
  body.push(el('details', { class: 'text' }, el('summary', {}, 'The text under decision'), el('p', {}, doc.text)));
  const others = state.all.filter((p) => p.id !== doc.id && !isFinal(p));
  if (others.length) {
    body.push(el('nav', { class: 'others' }, 'Also open: ',
      ...others.map((p) => el('a', { href: '#' + p.id }, p.title))));
  }
  root.replaceChildren(...body);
  for (const s of root.querySelectorAll('.meter span')) s.style.width = s.dataset.w + '%';
  document.body.dataset.updates = String(state.updates);
  document.body.dataset.ready = '1';
}

function tick() {
  const c = document.getElementById('countdown');
  if (!c) return;
  const t = Number(c.dataset.until);
  c.textContent = countdown(t);
  if (t <= nodeNow() + 1000 && !state.reloadingAtClose) {
    // At the close the node counts the window: ask for the result.
    state.reloadingAtClose = true;
    setTimeout(() => refresh().finally(() => { state.reloadingAtClose = false; }), 1500);
  }
}

async function refresh() {
  await Promise.all([load(), loadNames()]);
  state.updates += 1;
  render();
}

function follow() {
  // initial=1: the stream first sends every proposal as it stands, so a vote that landed
  // between the first load and the stream's opening (or during a reconnect) is not missed.
  const es = new EventSource('/api/stream?initial=1');
  state.stream = es;
  es.onopen = () => { live.className = 'dot on'; liveText.textContent = 'live'; };
  es.onerror = () => {
    live.className = 'dot off';
    liveText.textContent = 'reconnecting…';
    // The browser retries by itself after a dropped connection, but gives up for good on
    // a refusal (the node's streams all taken, 503/429): then start again in a while.
    if (es.readyState === EventSource.CLOSED && state.stream === es) {
      state.stream = null;
      setTimeout(() => { refresh().catch(() => {}); follow(); }, 5000);
    }
  };
  es.addEventListener('status', (e) => {
    let doc = null;
    try { doc = JSON.parse(e.data); } catch (_) { return; }
    const i = state.all.findIndex((p) => p.id === doc.id);
    if (i >= 0) state.all[i] = doc; else state.all.push(doc);
    if (doc.id === state.id || !state.id) {
      // The stream carries the summary; the single status adds who voted. Only the
      // answer to the latest ask is shown: an older one arriving late must not undo it.
      const ticket = ++state.ticket;
      const show = (d) => {
        if (ticket !== state.ticket) return;
        state.id = doc.id;
        state.doc = d;
        state.updates += 1;
        render();
      };
      getJSON('/api/status/' + doc.id).then(show).catch(() => show(doc));
    }
  });
}

async function start() {
  await syncClock();
  await loadNames();
  await refresh();
  follow();
  window.addEventListener('hashchange', () => refresh());
  setInterval(tick, 1000);
  // Without a live stream (refused, or reconnecting), ask now and then: never stay stale.
  setInterval(() => { if (live.className !== 'dot on') refresh().catch(() => {}); }, 10000);
  setInterval(() => loadNames(), 30000);
}

start().catch((err) => {
  root.replaceChildren(el('p', { class: 'bad' }, 'The meeting page could not start: ' + err.message));
});

export { until };
