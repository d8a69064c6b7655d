// The member page: this phone's key, joining, the person's groups and
// proposals, voting and the rest, each event signed here and posted to the node.

import { fromHex, payload, toHex } from './codec.js';
import * as keys from './keystore.js';
import {
  answerWords, clock, joinCode, currentRound, day, el, errorWords, getJSON, isFinal, percent, personLabel,
  phaseWords, postJSON, sendEvent, shown, syncClock, tally, until, whoVoted, why,
} from './common.js';

const app = document.getElementById('app');
const notice = document.getElementById('notice');
const whoami = document.getElementById('whoami');

const state = {
  me: null,          // {secret, pub, name}
  person: null,      // /api/person answer
  bodies: [],        // /api/bodies answer (list)
  status: [],        // proposals (status documents)
  requests: {},      // body hex -> pending join requests
  open: new Set(),   // proposal ids whose details are unfolded
  busy: false,
  joining: null,     // {body, code, linking} while waiting to be let in (or linked)
  linkTo: null,      // a person's key from a link address (#link=KEY): this phone is to be theirs
  linkPerson: null,  // /api/person answer for linkTo
  view: 'home',
};

// -- messages -----------------------------------------------------------------------------

let noticeTimer = null;
function say(text, kind = 'ok') {
  notice.hidden = false;
  notice.className = 'notice ' + kind;
  notice.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, 12000);
}

// -- what the node says about us ----------------------------------------------------------

function list(v, key) {
  if (Array.isArray(v)) return v;
  if (v && Array.isArray(v[key])) return v[key];
  return [];
}

function bodyId(b) { return typeof b === 'string' ? b : (b.id || b.body); }

/** The groups this device acts in (directly, or for its person through a link). */
function myBodies() {
  const p = state.person || {};
  const ids = list(p.bodies, 'bodies').map(bodyId);
  return ids.map((id) => state.bodies.find((b) => b.id === id) || { id, name: nameOfBody(id) });
}

function nameOfBody(id) {
  const fromPerson = list(state.person && state.person.bodies, 'bodies').find((b) => bodyId(b) === id);
  const b = state.bodies.find((x) => x.id === id);
  return (b && b.name) || (fromPerson && fromPerson.name) || 'a group';
}

/** The person this device acts for: its first key (or this key when it is the first). */
function personKey() {
  const p = state.person || {};
  return p.person || p.first_key || state.me.pub;
}

function devices() {
  const p = state.person || {};
  return list(p.devices, 'devices').map((d) => (typeof d === 'string' ? { key: d } : d));
}

/** key hex -> name, from everything the node told us. */
function names() {
  const out = {};
  for (const b of state.bodies) {
    for (const m of list(b.members, 'members')) {
      if (typeof m === 'object' && m.key) out[m.key] = m.name || out[m.key];
    }
  }
  if (state.person && state.person.name) out[personKey()] = state.person.name;
  return out;
}

function membersOf(bodyHex) {
  const b = state.bodies.find((x) => x.id === bodyHex);
  return list(b && b.members, 'members').map((m) => (typeof m === 'string' ? { key: m } : m));
}

async function refresh() {
  // A read that fails (the node busy, or asked too often) keeps what was known before.
  const keep = (v) => () => { state.stale = true; return v; };
  state.stale = false;
  const [person, bodies, status] = await Promise.all([
    getJSON('/api/person?key=' + state.me.pub).catch(keep(state.person)),
    getJSON('/api/bodies').catch(keep(state.bodies)),
    getJSON('/api/status').catch(keep({ proposals: state.status })),
  ]);
  state.person = person || {};
  state.bodies = list(bodies, 'bodies');
  state.status = list(status, 'proposals');
  const before = new Map((state.prevStatus || []).map((p) => [p.id, p]));
  const mine = myBodies();
  const mineIds = new Set(mine.map((b) => b.id));
  // The single status carries who has voted (turnout); fetch it for the open ones.
  await Promise.all(state.status.map(async (p, i) => {
    if (!mineIds.has(p.body) || isFinal(p)) return;
    const full = await getJSON('/api/status/' + p.id).catch(() => null);
    if (full) state.status[i] = full;
    else { const was = before.get(p.id); if (was && was.turnout) state.status[i] = { ...p, turnout: was.turnout }; }
  }));
  await Promise.all(mine.map(async (b) => {
    const got = await getJSON('/api/join?body=' + b.id).catch(() => null);
    if (got) state.requests[b.id] = list(got, 'requests');
  }));
  state.prevStatus = state.status;
  if (mine.length) state.joining = null;
  const sig = JSON.stringify([state.person, state.bodies, state.status, state.requests, state.joining],
    (k, v) => (k === 'as_of' ? undefined : v));
  const changed = sig !== state.sig;
  state.sig = sig;
  return changed;
}

// -- signing and posting ----------------------------------------------------------------

function remember(kind, data) {
  const t = data.target || data.proposal;
  if (!t || !['vote', 'stand'].includes(kind)) return;
  const target = typeof t === 'string' ? t : toHex(t);
  const words = { yes: 'yes', no: data.severity === 'blocking' ? 'no (a deal-breaker)' : 'no', abstain: 'abstain' };
  localStorage.setItem(`imier.${kind}.${state.me.pub}.${target}`, words[data.choice] || data.choice);
}

function recalled(kind, target) {
  return localStorage.getItem(`imier.${kind}.${state.me.pub}.${target}`);
}

async function act(what, body, kind, data) {
  if (state.busy) return false;
  state.busy = true;
  document.body.classList.add('busy');
  try {
    const res = await sendEvent(state.me.secret, state.me.pub, body, kind, data);
    remember(kind, data);
    say(answerWords(what, res), 'ok');
    await refresh();
    render();
    return true;
  } catch (err) {
    say(errorWords(what, err), 'bad');
    return false;
  } finally {
    state.busy = false;
    document.body.classList.remove('busy');
  }
}

/** After being let in: name oneself in every group where the node has no name for us. */
async function nameEverywhere(force = false) {
  const want = state.me.name;
  if (!want) return;
  const p = state.person || {};
  const named = p.names || {};
  for (const b of myBodies()) {
    const current = named[b.id] !== undefined ? named[b.id] : p.name;
    const mark = `imier.named.${state.me.pub}.${b.id}`;
    if (!force && (current === want || localStorage.getItem(mark) === want)) continue;
    try {
      await sendEvent(state.me.secret, state.me.pub, b.id, 'profile', payload.profile(want));
      localStorage.setItem(mark, want);
    } catch (err) {
      say(errorWords('Your name', err), 'bad');
      return;
    }
  }
}

// -- views ----------------------------------------------------------------------------------

function render() {
  whoami.textContent = state.me && state.me.name ? shown(state.me.name, personKey()) : '';
  app.replaceChildren(...view());
}

function view() {
  if (state.linkTo && !myBodies().length && !state.joining) return [linkView()];
  if (!state.me.name) return [nameForm()];
  if (state.view === 'devices') return devicesView();
  if (state.view === 'propose') return [proposeForm()];
  const mine = myBodies();
  if (!mine.length) return joinView();
  const out = [];
  for (const b of mine) out.push(...bodyView(b));
  out.push(el('nav', { class: 'row' },
    el('button', { class: 'big', onclick: () => { state.view = 'propose'; render(); } }, 'Propose something'),
    el('button', { class: 'big quiet', onclick: () => { state.view = 'devices'; render(); } },
      'My name and devices')));
  return out;
}

function nameForm() {
  const input = el('input', {
    id: 'name', name: 'name', maxlength: 64, autocomplete: 'name', required: true,
    placeholder: 'for example: Ana', value: state.me.name || '',
  });
  return el('form', {
    class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name) return;
      state.me = await keys.save({ ...state.me, name });
      render();
    },
  },
  el('h1', {}, 'Welcome'),
  el('p', {}, 'This phone has made its own key: it signs your votes here, and it never leaves the phone.'),
  el('label', { for: 'name' }, 'What name should others see?'),
  input,
  el('button', { class: 'big primary', type: 'submit' }, 'Continue'),
  el('details', { id: 'bycode' }, el('summary', {}, 'This is my second phone'), linkCodeForm()),
  el('details', {}, el('summary', {}, 'I have a key file from before'), restoreForm()));
}

// -- linking this phone to a person who has another phone -------------------------------

/** The address a second phone opens to become a device of this person (shown as a QR code). */
function linkAddress() {
  return `${location.origin}/#link=${personKey()}`;
}

/** A person's link code: the six digits of their key (as a join code), typed on the new phone. */
function linkCode() {
  return joinCode(personKey());
}

/** On the new phone: the link code typed in, matched against the members this node knows. */
function linkCodeForm() {
  const input = el('input', { id: 'linkcode-input', inputmode: 'numeric', autocomplete: 'off',
    maxlength: 7, placeholder: '123-456' });
  return el('div', { class: 'bycode' },
    el('p', { class: 'hint' }, 'On your first phone, open "My name and devices": scan its picture with this '
      + 'phone\'s camera, or type the six digits it shows under "Link a phone".'),
    el('label', { for: 'linkcode-input' }, 'The link code'), input,
    el('button', { class: 'big', type: 'button', id: 'linkcode-go', onclick: async () => {
      const digits = input.value.replace(/\D/g, '');
      if (digits.length !== 6) { say('The link code has six digits.', 'bad'); return; }
      const want = digits.slice(0, 3) + '-' + digits.slice(3);
      const found = new Set();
      for (const b of state.bodies) {
        for (const m of list(b.members, 'members')) {
          const k = typeof m === 'string' ? m : m.key;
          if (k && joinCode(k) === want) found.add(k);
        }
      }
      if (found.size !== 1) {
        say(found.size ? 'Two members have that code: scan the picture instead.'
          : 'Nobody here has that link code. Check the digits on your first phone.', 'bad');
        return;
      }
      await startLink([...found][0]);
    } }, 'Link to that person'));
}

async function startLink(key) {
  state.linkTo = key;
  state.linkPerson = await getJSON('/api/person?key=' + key).catch(() => null);
  render();
}

function linkView() {
  const p = state.linkPerson || {};
  const groups = list(p.bodies, 'bodies');
  const back = el('button', { class: 'big quiet', onclick: () => {
    state.linkTo = null; state.linkPerson = null;
    history.replaceState(null, '', location.pathname);
    render();
  } }, 'No, go back');
  if (!groups.length) {
    return el('section', { class: 'card', id: 'linkhere' }, el('h1', {}, 'Link this phone'),
      el('p', {}, 'This node does not know the person of this link. Ask them to show the picture again.'), back);
  }
  const who = p.name || 'your other phone\'s person';
  return el('section', { class: 'card', id: 'linkhere' },
    el('h1', {}, 'Link this phone'),
    el('p', {}, 'This phone will vote for ', el('strong', {}, shown(p.name, p.person || state.linkTo)),
      ' in ', groups.map((g) => g.name || 'a group').join(', '), '. You still count once.'),
    el('p', { class: 'hint' }, 'Only do this if you are ' + who + ': your other phone has to agree.'),
    el('button', { class: 'big primary', id: 'linkthis', onclick: () => linkThisPhone(p) }, `Yes, I am ${who}`),
    back);
}

async function linkThisPhone(p) {
  const name = p.name || state.me.name || 'my phone';
  try {
    if (state.me.name !== name) state.me = await keys.save({ ...state.me, name });
    let code = null;
    for (const g of list(p.bodies, 'bodies')) {
      const res = await postJSON('/api/join', { body: bodyId(g), key: state.me.pub, name });
      code = res.code;
    }
    if (code !== joinCode(state.me.pub)) {
      say('The node gave a code that does not belong to this phone\'s key: ask for help.', 'bad');
      return;
    }
    state.joining = { body: bodyId(list(p.bodies, 'bodies')[0]), code, linking: true };
    history.replaceState(null, '', location.pathname);
    render();
  } catch (err) {
    say(errorWords('Linking this phone', err), 'bad');
  }
}

function joinView() {
  if (state.joining && state.joining.linking) {
    return [el('section', { class: 'card', id: 'waiting' },
      el('h1', {}, 'Waiting for your other phone'),
      el('p', {}, 'On your other phone, under "Link a phone", this code appears:'),
      el('p', { class: 'code', id: 'joincode' }, state.joining.code),
      el('p', {}, 'When it is the same as here, link it there. This page moves on by itself.'),
      el('button', { class: 'quiet', onclick: () => { state.joining = null; render(); } }, 'Cancel'))];
  }
  if (state.joining) {
    return [el('section', { class: 'card', id: 'waiting' },
      el('h1', {}, 'Waiting to be let in'),
      el('p', {}, `You asked to join ${nameOfBody(state.joining.body)}. Show this code to a member:`),
      el('p', { class: 'code', id: 'joincode' }, state.joining.code),
      el('p', {}, 'They see your name and the same code on their phone, compare it with yours, and let you in. '
        + 'This page moves on by itself.'),
      el('p', { class: 'hint' }, 'Is this your second phone? On your first phone, open "My name and devices": '
        + 'scan the picture there with this phone, or link this phone there when this code appears.'),
      el('button', { class: 'quiet', onclick: () => { state.joining = null; render(); } }, 'Choose another group'))];
  }
  const groups = state.bodies.filter((b) => !b.kind || ['community', 'workplace', 'committee'].includes(b.kind));
  const section = el('section', { class: 'card' },
    el('h1', {}, 'Join a group'),
    el('p', {}, `Hello ${state.me.name}. Which group do you want to join?`));
  if (!groups.length) section.append(el('p', { class: 'hint' }, 'This node holds no group yet.'));
  for (const b of groups) {
    section.append(el('button', {
      class: 'big choice', 'data-body': b.id,
      onclick: () => askToJoin(b.id),
    }, b.name || 'a group'));
  }
  return [section];
}

async function askToJoin(body) {
  try {
    const res = await postJSON('/api/join', { body, key: state.me.pub, name: state.me.name });
    if (res.code !== joinCode(state.me.pub)) {
      say('The node gave a code that does not belong to this phone\'s key: ask for help.', 'bad');
      return;
    }
    state.joining = { body, code: res.code };
    render();
    say('Asked. Show your code to a member.', 'ok');
  } catch (err) {
    say(errorWords('Asking to join', err), 'bad');
  }
}

function bodyView(b) {
  const out = [el('h2', { class: 'group' }, b.name || nameOfBody(b.id))];
  const mineDevices = new Set([state.me.pub, personKey(), ...devices().map((d) => d.key)]);
  const reqs = (state.requests[b.id] || []).filter((r) => !mineDevices.has(r.key));
  if (reqs.length) {
    const sec = el('section', { class: 'card requests' }, el('h3', {}, 'Asking to join'),
      el('p', { class: 'hint' }, 'Let someone in only when the code on their phone is the same as here.'));
    const same = (x, y) => (x || '').trim().toLowerCase() === (y || '').trim().toLowerCase();
    for (const r of reqs) {
      // A second phone asks under its person's name: it is to be linked by that person,
      // not let in as somebody new (that would count the person twice).
      if (same(r.name, state.me.name)) {
        sec.append(el('div', { class: 'request own', 'data-key': r.key },
          el('p', {}, el('strong', {}, shown(r.name, r.key)), ' shows the code ', el('span', { class: 'code small' }, r.code)),
          el('p', { class: 'hint' }, 'Is it your other phone? Link it, so that you still count once.'),
          el('button', { class: 'big primary', onclick: () => { state.view = 'devices'; render(); } }, 'Link my other phone'),
          el('details', {}, el('summary', {}, 'No: it is somebody else with my name'),
            el('button', { class: 'big admit', onclick: () => act(`Letting ${r.name} in`, b.id, 'admit', payload.admit(r.key)) },
              `The codes match: let this ${r.name} in`))));
        continue;
      }
      const namesake = membersOf(b.id).find((m) => same(m.name, r.name));
      sec.append(el('div', { class: 'request', 'data-key': r.key },
        el('p', {}, el('strong', {}, shown(r.name, r.key)), ' shows the code ', el('span', { class: 'code small' }, r.code)),
        namesake ? el('p', { class: 'hint warn' }, `${shown(namesake.name, namesake.key)} is already in. If this is their `
          + 'other phone, they link it from their own phone; let it in only if it is somebody else.') : null,
        el('button', {
          class: 'big primary admit', onclick: () => act(`Letting ${r.name} in`, b.id, 'admit', payload.admit(r.key)),
        }, `The codes match: let ${r.name} in`),
        recoverForm(r, b)));
    }
    out.push(sec);
  }
  const props = state.status.filter((p) => p.body === b.id);
  if (!props.length) out.push(el('p', { class: 'hint' }, 'No proposals here yet.'));
  const order = (p) => (isFinal(p) ? 1 : 0);
  for (const p of [...props].sort((x, y) => order(x) - order(y))) out.push(proposalCard(p, b));
  return out;
}

/** A member who lost every device asks from a new phone: the group may vouch for it by a
 * `recover` proposal (docs/rules.md s.11.2); once carried, the new key votes for them. */
function recoverForm(r, b) {
  const others = membersOf(b.id).filter((m) => m.key !== personKey() && m.key !== r.key);
  if (!others.length) return null;
  const who = el('select', { class: 'recover-person' },
    others.map((m) => el('option', { value: m.key }, shown(m.name, m.key))));
  return el('details', { class: 'recover' },
    el('summary', {}, 'Or: it is a member who lost their phone'),
    el('label', {}, 'Whose new phone is it? ', who),
    el('p', { class: 'hint' }, 'This proposes to the group that this phone votes for them from now on, '
      + 'and that their old devices stop. The group decides, as for any proposal.'),
    el('button', {
      class: 'big recover-propose', onclick: () => {
        const m = others.find((x) => x.key === who.value);
        const name = (m && m.name) || 'a member';
        act(`Your proposal to recover ${name}`, b.id, 'propose', payload.propose(
          `A new phone for ${shown(name, who.value)}`,
          `${name} lost their phone. From now on the phone that showed the code ${r.code} votes for them, `
          + 'and their other devices no longer do.',
          { kind: 'recover', person: fromHex(who.value), new_key: fromHex(r.key) }));
      },
    }, 'Propose the recovery'));
}

function deadline(p) {
  if (p.window && p.window[1]) return `closes ${day(p.window[1])} (${until(p.window[1])})`;
  return '';
}

function proposalCard(p, b) {
  const r = currentRound(p);
  const nm = names();
  const card = el('article', { class: 'card proposal' + (isFinal(p) ? ' final' : ''), 'data-proposal': p.id },
    el('h3', {}, p.title),
    el('p', { class: 'phase' }, phaseWords(p)),
    p.window ? el('p', { class: 'when' }, deadline(p)) : null);
  if (r) {
    for (const [bodyName, v] of Object.entries(r.bodies || {})) {
      const t = tally(v);
      card.append(el('p', { class: 'count' },
        Object.keys(r.bodies).length > 1 ? `${bodyName}: ` : '',
        `${t.voted} of ${t.eligible} voted: ${t.yes} yes (${percent(v.support)}), ${t.no} no, ${t.abstain} abstain`));
    }
    for (const w of turnoutOf(p, r, nm)) {
      if (w.voted.length) card.append(el('p', { class: 'who' }, 'Voted: ' + w.voted.join(', ')));
      if (w.waiting.length) card.append(el('p', { class: 'who waiting' }, 'Not yet: ' + w.waiting.join(', ')));
    }
  }
  if (isFinal(p)) card.append(el('p', { class: 'why' }, why(p)));
  card.append(el('details', { open: state.open.has(p.id) || null, ontoggle: (e) => {
    if (e.target.open) state.open.add(p.id); else state.open.delete(p.id);
  } }, el('summary', {}, 'Read the text'), el('p', { class: 'text' }, p.text)));
  card.append(...actions(p, b));
  return card;
}

/** Who voted and who has not in round r, per group: from the status' turnout when present. */
function turnoutOf(p, r, nm) {
  if (Array.isArray(p.turnout)) {
    const label = (k) => shown(nm[k], k);
    return p.turnout.filter((t) => t.round === r.round).map((t) => ({
      body: nameOfBody(t.body),
      voted: Object.keys(t.voted || {}).map(label),
      waiting: (t.not_voted || []).map(label),
    }));
  }
  return whoVoted(p, r, nm);
}

const CATEGORIES = [
  ['cost', 'It costs too much'], ['fairness', 'It is not fair'], ['safety', 'It is not safe'],
  ['timing', 'The timing is wrong'], ['wording', 'The text needs work'], ['other', 'Another reason'],
];

function actions(p, b) {
  const out = [];
  const votingOpen = ['round1', 'round2', 'round3'].includes(p.state) && p.open_phase === 'vote';
  if (votingOpen) {
    const mine = myChoice(p);
    if (mine) out.push(el('p', { class: 'mine' }, `You voted ${mine}. You can change your vote until it closes.`));
    out.push(el('div', { class: 'vote row' },
      el('button', { class: 'big yes', onclick: () => act(`Your yes on "${p.title}"`, b.id, 'vote', payload.vote(p.id, 'yes')) }, 'Yes'),
      el('button', { class: 'big no', onclick: (e) => { e.target.closest('article').querySelector('.objection').hidden = false; } }, 'No'),
      el('button', { class: 'big abstain', onclick: () => act(`Your abstention on "${p.title}"`, b.id, 'vote', payload.vote(p.id, 'abstain')) }, 'Abstain')));
    out.push(objectionForm(p, b));
  }
  if (p.open_phase === 'amend') {
    for (const aid of p.open_amendments || []) {
      const a = (p.rounds || []).flatMap((r) => r.amendments || []).find((x) => x.id === aid);
      out.push(el('div', { class: 'amendment' },
        el('p', {}, 'A change is proposed: '), el('blockquote', {}, a ? a.text : ''),
        el('div', { class: 'row' },
          el('button', { class: 'big yes', onclick: () => act('Your yes on the change', b.id, 'vote', payload.vote(aid, 'yes')) }, 'Yes to the change'),
          el('button', { class: 'big no', onclick: () => act('Your no on the change', b.id, 'vote', payload.vote(aid, 'no', { severity: 'minor', category: 'other' })) }, 'No'))));
    }
    const ta = el('textarea', { rows: 5, class: 'amend-text' }, p.text);
    out.push(el('details', {}, el('summary', {}, 'Propose a change to the text'),
      el('form', { onsubmit: (e) => { e.preventDefault(); act('Your change', b.id, 'amend', payload.amend(p.id, ta.value)); } },
        ta, el('button', { class: 'big', type: 'submit' }, 'Send the new text'))));
  }
  if (p.state === 'contention') {
    out.push(el('div', { class: 'row stand' },
      el('button', { class: 'big yes', onclick: () => act('Your stand', b.id, 'stand', payload.stand(p.id, 'yes')) }, 'I still support it'),
      el('button', { class: 'big no', onclick: () => act('Your stand', b.id, 'stand', payload.stand(p.id, 'no')) }, 'I now oppose it')));
  }
  const mineKeys = new Set([state.me.pub, personKey()]);
  if (mineKeys.has(p.proposer) && ['discussion', 'round1'].includes(p.state)) {
    out.push(el('button', {
      class: 'quiet withdraw', onclick: () => {
        if (confirm(`Withdraw "${p.title}"?`)) act('Withdrawing', b.id, 'withdraw', payload.withdraw(p.id));
      },
    }, 'Withdraw my proposal'));
  }
  return out;
}

/** How this person voted in the open round: from the node's turnout, else this phone's memory. */
function myChoice(p) {
  const r = currentRound(p);
  const t = Array.isArray(p.turnout) && r ? p.turnout.find((x) => x.round === r.round && x.voted) : null;
  if (t) {
    const c = t.voted[personKey()] || t.voted[state.me.pub];
    if (c) return c;
    if (!recalled('vote', p.id)) return null;
  }
  return recalled('vote', p.id);
}

function objectionForm(p, b) {
  const sev = el('fieldset', { class: 'severity' }, el('legend', {}, 'How strongly?'),
    el('label', {}, el('input', { type: 'radio', name: 'sev-' + p.id, value: 'minor', checked: true }), ' I can live with it, but I object'),
    el('label', {}, el('input', { type: 'radio', name: 'sev-' + p.id, value: 'blocking' }), ' I cannot accept it: a deal-breaker'));
  const cat = el('select', { class: 'category' }, CATEGORIES.map(([v, t]) => el('option', { value: v }, t)));
  const dele = el('select', { class: 'delegate' }, el('option', { value: '' }, 'Nobody: I speak for myself'),
    membersOf(b.id).filter((m) => m.key !== personKey()).map((m) => el('option', { value: m.key }, shown(m.name, m.key))));
  const form = el('form', {
    class: 'objection', hidden: true, onsubmit: (e) => {
      e.preventDefault();
      const severity = form.querySelector('input[type=radio]:checked').value;
      const objection = { severity, category: cat.value, delegate: dele.value || undefined };
      act(`Your no on "${p.title}"`, b.id, 'vote', payload.vote(p.id, 'no', objection));
    },
  }, sev, el('label', {}, 'Why? ', cat), el('label', {}, 'Who should speak for this objection? ', dele),
  el('button', { class: 'big no', type: 'submit' }, 'Send my no'));
  return form;
}

function proposeForm() {
  const mine = myBodies();
  const where = el('select', { id: 'propose-body' }, mine.map((b) => el('option', { value: b.id }, b.name || nameOfBody(b.id))));
  const title = el('input', { id: 'propose-title', maxlength: 200, required: true });
  const text = el('textarea', { id: 'propose-text', rows: 8, required: true });
  return el('form', {
    class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      const ok = await act(`Your proposal "${title.value}"`, where.value, 'propose', payload.propose(title.value, text.value));
      if (ok) { state.view = 'home'; render(); }
    },
  }, el('h1', {}, 'Propose something'),
  mine.length > 1 ? el('label', { for: 'propose-body' }, 'In which group?') : null, mine.length > 1 ? where : null,
  el('label', { for: 'propose-title' }, 'In a few words'), title,
  el('label', { for: 'propose-text' }, 'What exactly is to be decided'), text,
  el('div', { class: 'row' },
    el('button', { class: 'big primary', type: 'submit' }, 'Propose'),
    el('button', { class: 'big quiet', type: 'button', onclick: () => { state.view = 'home'; render(); } }, 'Back')));
}

function devicesView() {
  const out = [];
  const nameInput = el('input', { id: 'rename', maxlength: 64, value: state.me.name });
  out.push(el('form', {
    class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      const name = nameInput.value.trim();
      if (!name) return;
      state.me = await keys.save({ ...state.me, name });
      await nameEverywhere(true);
      await refresh();
      say(`Others now see you as ${shown(name, personKey())}.`, 'ok');
      render();
    },
  }, el('h1', {}, 'Your name'), el('label', { for: 'rename' }, 'How others see you'), nameInput,
  el('button', { class: 'big', type: 'submit' }, 'Save the name')));

  // Linking: the new phone asks to join (it shows a code); this phone links it.
  const link = el('section', { class: 'card', id: 'link' }, el('h2', {}, 'Link a phone'),
    el('p', {}, 'Another phone of yours can vote for you too, and you still count once. '
      + 'Scan this with the other phone\'s camera:'),
    el('img', { class: 'qr', id: 'linkqr', width: 264, height: 264, 'data-link': linkAddress(),
      alt: 'A QR code for linking your other phone', src: '/api/qr?text=' + encodeURIComponent(linkAddress()) }),
    el('p', {}, 'Or open ', el('strong', {}, location.host), ' on the other phone, choose '
      + '"This is my second phone", and type the link code'),
    el('p', { class: 'code', id: 'linkcode' }, linkCode()),
    el('p', {}, 'The other phone then shows a code of its own. When the same code appears below, link it.'));
  const seen = new Set();
  for (const b of myBodies()) {
    for (const r of state.requests[b.id] || []) {
      if (r.key === state.me.pub || seen.has(r.key) || devices().some((d) => d.key === r.key)) continue;
      seen.add(r.key);
      link.append(el('div', { class: 'request', 'data-key': r.key },
        el('p', {}, el('strong', {}, r.name || 'A phone'), ' shows ', el('span', { class: 'code small' }, r.code)),
        el('button', {
          class: 'big primary link', onclick: async () => {
            for (const bb of myBodies()) await act(`Linking the phone in ${bb.name || 'the group'}`, bb.id, 'link', payload.link(r.key));
          },
        }, 'The codes match: this is my phone')));
    }
  }
  if (!seen.size) link.append(el('p', { class: 'hint' }, 'No phone is asking right now.'));
  out.push(link);

  const devs = devices().filter((d) => d.key !== state.me.pub);
  const sec = el('section', { class: 'card' }, el('h2', {}, 'Your devices'),
    el('p', {}, 'This phone: ', el('strong', {}, shown(state.me.name, state.me.pub))));
  for (const d of devs) {
    sec.append(el('div', { class: 'device row', 'data-key': d.key }, el('span', {}, shown(d.name || 'a device', d.key)),
      el('button', {
        class: 'quiet unlink', onclick: async () => {
          if (!confirm('Stop this device from voting for you?')) return;
          for (const b of myBodies()) await act('Unlinking the device', b.id, 'unlink', payload.unlink(d.key));
        },
      }, 'Lost it: unlink')));
  }
  sec.append(el('p', { class: 'hint' }, 'Lost every device? Ask your group to propose your recovery: '
    + 'once it is carried, a new key votes for you.'));
  out.push(sec);

  out.push(el('section', { class: 'card' }, el('h2', {}, 'Backup'),
    el('p', {}, 'A copy of this phone\'s key, for you alone: whoever holds it can vote as you.'),
    el('button', { class: 'big', id: 'backup', onclick: downloadBackup }, 'Download the key file'),
    el('details', {}, el('summary', {}, 'Show it to write down'), el('p', { class: 'words' }, keys.backupWords(state.me)))));
  out.push(el('button', { class: 'big quiet', onclick: () => { state.view = 'home'; render(); } }, 'Back'));
  return out;
}

function downloadBackup() {
  const blob = new Blob([keys.backupText(state.me)], { type: 'application/json' });
  const a = el('a', { href: URL.createObjectURL(blob), download: `imier-key-${(state.me.name || 'me').replace(/\W+/g, '_')}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

function restoreForm() {
  const file = el('input', { type: 'file', accept: '.json,application/json' });
  const words = el('textarea', { rows: 3, placeholder: '16 groups of 4 letters and digits' });
  const use = async (rec) => {
    if (!confirm('Replace the key on this phone with the one from the backup?')) return;
    state.me = await keys.save(rec);
    await refresh();
    render();
    say('Your key is back on this phone.', 'ok');
  };
  return el('div', { class: 'restore' },
    el('label', {}, 'The key file: ', file),
    el('button', { type: 'button', onclick: async () => {
      try { if (file.files[0]) await use(keys.parseBackup(await file.files[0].text())); } catch (e) { say(e.message, 'bad'); }
    } }, 'Use the file'),
    el('label', {}, 'Or what you wrote down: ', words),
    el('button', { type: 'button', onclick: async () => {
      try { await use(keys.parseWords(words.value)); } catch (e) { say(e.message, 'bad'); }
    } }, 'Use what I wrote'));
}

// -- start ------------------------------------------------------------------------------------

async function poll() {
  // While waiting to be let in, and to keep counts fresh; the stream triggers sooner.
  if (state.busy || state.polling) return;
  state.polling = true;
  try { await pollOnce(); } finally { state.polling = false; }
}

async function pollOnce() {
  const before = myBodies().length;
  const wasJoining = state.joining;
  let changed = await refresh();
  if (before === 0 && myBodies().length > 0 && wasJoining) {
    say(`You are in. Welcome to ${myBodies()[0].name || 'the group'}!`, 'ok');
    await nameEverywhere();
    changed = (await refresh()) || true;
  }
  const typing = document.activeElement && app.contains(document.activeElement)
    && ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName);
  const objecting = [...app.querySelectorAll('form.objection')].some((f) => !f.hidden);
  if (changed && !typing && !objecting) render();
}

async function start() {
  state.me = (await keys.load()) || (await keys.create());
  window.imierDevice = state.me.pub; // for the tests and for support: which key this page holds
  await syncClock();
  await refresh();
  const linkHash = /^#link=([0-9a-f]{64})$/.exec(location.hash.toLowerCase());
  if (linkHash && !myBodies().length && linkHash[1] !== state.me.pub) await startLink(linkHash[1]);
  else if (linkHash) history.replaceState(null, '', location.pathname);
  if (myBodies().length) await nameEverywhere();
  render();
  document.body.dataset.ready = '1';
  try {
    const es = new EventSource('/api/stream');
    es.addEventListener('status', () => { poll().catch(() => {}); });
  } catch (_) { /* polling below still works */ }
  // Poll often while waiting to be let in, gently otherwise (the stream wakes us sooner).
  let last = 0;
  setInterval(() => {
    const every = myBodies().length ? 6000 : 2000;
    if (Date.now() - last < every) return;
    last = Date.now();
    poll().catch(() => {});
  }, 1000);
}

start().catch((err) => {
  app.replaceChildren(el('p', { class: 'card bad' }, 'This page could not start: ' + err.message));
});

export { state, refresh, clock, personLabel, toHex };
