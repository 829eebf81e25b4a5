// @ts-check
// The supervisor view: live queues, staffing and sessions across every
// node, today's figures, alerts (visible and audible), a chart of the last
// hours, and pausing a topic.
//
// It follows GET /api/v1/supervisor/feed (server-sent events): a
// `snapshot` replaces the whole picture, each `event` newer than its
// node's snapshot updates it, and fresh snapshots keep coming, so the view
// heals by itself after any loss. Nothing here ever sees message text.

import { fill } from '/supervisor/table.js';
import { loadBlocks, clearQueue, endLogins } from '/supervisor/abuse.js';
import { wireLogin, whoAmI, logOut } from '/shared/login.js';
import { keepActive } from '/shared/activity.js';
import { postJson } from '/shared/http.js';
import { setUpSecondFactor } from '/shared/account.js';
import { tones } from '/shared/tone.js';
import { watch, stopWatching, watchedSession, wireWatch } from '/supervisor/watch.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * @typedef {{topic: string, urgent: boolean, since: number}} Waiting
 * @typedef {{topic: string, counsellors: string[], since: number, urgent: boolean, hand_raised: boolean}} Session
 * @typedef {{counsellor: string, display_name: string, status: string, capacity: number, active: number, topics: string[]}} Counsellor
 * @typedef {{node: string, leading: boolean, seq: number, target: number, topics: Map<string, any>,
 *   waiting: Map<string, Waiting>, sessions: Map<string, Session>, counsellors: Map<string, Counsellor>}} Node
 */

/** @type {Map<string, Node>} */
let nodes = new Map();
/** The node serving this page: only its sessions can be watched here. */
let here = '';

/** @type {EventSource | null} */
let source = null;
/** @type {{id: number, kind: string, text: string, topic?: string}[]} */
let alerts = [];
let nextAlert = 1;
/** @type {any} */
let chart = null;
const title = document.title;
/** @type {ReturnType<typeof setInterval>[]} */
let timers = [];

// ---------------------------------------------------------------- login

async function start() {
  wireLogin(/** @type {HTMLFormElement} */ ($('login')), $('login-error'), open);
  $('logout').addEventListener('click', logout);
  $('forbidden-logout').addEventListener('click', logout);
  wireWatch(render);
  const me = await whoAmI();
  if (me) open(me);
  else showLogin();
}

function showLogin() {
  $('board').hidden = true;
  $('forbidden').hidden = true;
  $('login').hidden = false;
  $('name').focus();
}

/** @param {{display_name: string, role: string}} me */
function open(me) {
  $('login').hidden = true;
  if (me.role !== 'supervisor' && me.role !== 'admin') {
    $('forbidden').hidden = false;
    return;
  }
  $('board').hidden = false;
  $('me').textContent = me.display_name;
  keepActive();
  $('two-step').hidden = Boolean(/** @type {any} */ (me).second_factor);
  $('two-step').onclick = async () => {
    if (await setUpSecondFactor(false)) location.reload();
  };
  connect();
  loadHistory();
  loadBlocks();
  timers = [setInterval(render, 1000), setInterval(loadHistory, 60000), setInterval(loadBlocks, 15000)];
}

async function logout() {
  stopWatching();
  source?.close();
  source = null;
  timers.forEach(clearInterval);
  await logOut();
  nodes = new Map();
  alerts = [];
  showLogin();
}

// ---------------------------------------------------------------- feed

function connect() {
  source = new EventSource('/api/v1/supervisor/feed');
  source.onopen = () => ($('live').textContent = 'Live');
  source.onerror = async () => {
    $('live').textContent = 'Reconnecting…';
    if (source?.readyState === EventSource.CLOSED && !(await whoAmI())) logout();
  };
  source.addEventListener('snapshot', (e) => {
    const { nodes: list, here: node } = JSON.parse(/** @type {MessageEvent} */ (e).data);
    here = node;
    nodes = new Map(list.map((/** @type {any} */ n) => [n.node, prepare(n)]));
    render();
  });
  source.addEventListener('event', (e) => {
    apply(JSON.parse(/** @type {MessageEvent} */ (e).data));
    render();
  });
}

/** A node's snapshot with times made absolute.
 * @param {any} n @returns {Node} */
function prepare(n) {
  return {
    node: n.node,
    leading: n.leading === true,
    seq: n.seq,
    target: n.service_level_target_secs,
    topics: new Map(n.topics.map((/** @type {any} */ t) => [t.topic, t])),
    waiting: new Map(
      n.waiting.map((/** @type {any} */ w) => [w.session, { topic: w.topic, urgent: w.urgent, since: n.at - w.waited_secs * 1000 }]),
    ),
    sessions: new Map(
      n.sessions.map((/** @type {any} */ s) => [
        s.session,
        { topic: s.topic, counsellors: s.counsellors, since: n.at - s.duration_secs * 1000, urgent: s.urgent, hand_raised: s.hand_raised },
      ]),
    ),
    counsellors: new Map(n.counsellors.map((/** @type {any} */ c) => [c.counsellor, c])),
  };
}

/** @param {Node} n @param {string} name */
function topicOf(n, name) {
  let t = n.topics.get(name);
  if (!t) {
    t = { topic: name, free_seats: 0, answered: 0, answered_in_target: 0, abandoned: 0, paused: false };
    n.topics.set(name, t);
  }
  return t;
}

/** Applies one event newer than its node's snapshot.
 * @param {any} ev */
function apply(ev) {
  let n = nodes.get(ev.node);
  if (!n) {
    n = prepare({ node: ev.node, seq: ev.seq - 1, at: ev.at, service_level_target_secs: 60, topics: [], waiting: [], sessions: [], counsellors: [] });
    nodes.set(ev.node, n);
  }
  if (ev.seq <= n.seq) return;
  n.seq = ev.seq;
  switch (ev.type) {
    case 'queued':
      n.waiting.set(ev.session, { topic: ev.topic, urgent: ev.urgent, since: ev.at });
      break;
    case 'abandoned':
      n.waiting.delete(ev.session);
      // The server says whether today's figures count it.
      if (ev.counted) topicOf(n, ev.topic).abandoned += 1;
      break;
    case 'session_started': {
      n.waiting.delete(ev.session);
      n.sessions.set(ev.session, { topic: ev.topic, counsellors: [ev.counsellor], since: ev.at, urgent: ev.urgent, hand_raised: false });
      const t = topicOf(n, ev.topic);
      if (ev.counted) t.answered += 1;
      if (ev.counted && ev.in_target) t.answered_in_target += 1;
      break;
    }
    case 'requeued': {
      const s = n.sessions.get(ev.session);
      n.sessions.delete(ev.session);
      n.waiting.set(ev.session, { topic: ev.topic, urgent: s?.urgent ?? false, since: ev.at });
      break;
    }
    case 'transferred': {
      const s = n.sessions.get(ev.session);
      if (!s) break;
      if (!ev.to) {
        n.sessions.delete(ev.session);
        n.waiting.set(ev.session, { topic: ev.topic, urgent: s.urgent, since: ev.at });
      } else {
        s.counsellors = ev.warm ? [...s.counsellors, ev.to] : s.counsellors.filter((c) => c !== ev.from).concat(ev.to);
      }
      break;
    }
    case 'session_ended':
      n.sessions.delete(ev.session);
      break;
    case 'counsellor': {
      const c = n.counsellors.get(ev.counsellor);
      n.counsellors.set(ev.counsellor, {
        counsellor: ev.counsellor,
        display_name: ev.display_name || c?.display_name || ev.counsellor,
        topics: c?.topics ?? [],
        status: ev.status,
        capacity: ev.capacity,
        active: ev.active,
      });
      break;
    }
    case 'counsellor_offline':
      n.counsellors.delete(ev.counsellor);
      break;
    case 'topic_paused':
      topicOf(n, ev.topic).paused = ev.paused;
      break;
    case 'hand': {
      const s = n.sessions.get(ev.session);
      if (s) s.hand_raised = ev.raised;
      if (ev.raised) raise('hand', `${nameOf(ev.counsellor)} raised a hand in a chat on ${ev.topic}.`);
      break;
    }
    case 'alert':
      raise(ev.alert, alertText(ev), ev.alert === 'flood' ? ev.topic : undefined);
      break;
    default:
      break;
  }
}

/** @param {any} ev */
function alertText(ev) {
  switch (ev.alert) {
    case 'urgent_waiting':
      return `An urgent help-seeker has waited ${clock(ev.waited_secs)} in ${ev.topic}.`;
    case 'queue_length':
      return `${ev.waiting} are waiting in ${ev.topic}.`;
    case 'long_wait':
      return `The longest wait in ${ev.topic} is ${clock(ev.waited_secs)}.`;
    case 'flood':
      return `Suspected flood of fake help-seekers in ${ev.topic}: ${ev.arrivals} arrived in the last minute.`;
    default:
      return `Alert in ${ev.topic}.`;
  }
}

/** @param {string} name */
function nameOf(name) {
  for (const n of nodes.values()) {
    const c = n.counsellors.get(name);
    if (c) return c.display_name;
  }
  return name;
}

// ---------------------------------------------------------------- alerts

/** @param {string} kind @param {string} text @param {string} [topic] a
 * flood's topic, which the alert offers to clear */
function raise(kind, text, topic) {
  alerts.unshift({ id: nextAlert++, kind, text, topic });
  alerts = alerts.slice(0, 50);
  if (/** @type {HTMLInputElement} */ ($('sound')).checked) tones([988, 784, 988, 784], 0.25, 0.18);
}

function renderAlerts() {
  const list = $('alerts');
  list.replaceChildren(
    ...alerts.map((a) => {
      const li = document.createElement('li');
      li.className = a.kind === 'hand' ? 'hand' : 'alert';
      const text = document.createElement('span');
      text.textContent = a.text;
      const done = document.createElement('button');
      done.type = 'button';
      done.className = 'secondary';
      done.textContent = 'Dismiss';
      done.onclick = () => {
        alerts = alerts.filter((x) => x.id !== a.id);
        render();
      };
      li.append(text);
      if (a.topic) {
        const clear = document.createElement('button');
        clear.type = 'button';
        clear.className = 'secondary';
        clear.textContent = 'Clear silent newcomers…';
        clear.onclick = async () => {
          const n = await clearQueue(a.topic);
          if (n == null) return;
          alerts = alerts.filter((x) => x.id !== a.id);
          raise('info', `${n} silent newcomer${n === 1 ? '' : 's'} cleared from ${a.topic}.`);
          render();
        };
        li.append(clear);
      }
      li.append(done);
      return li;
    }),
  );
  $('no-alerts').hidden = alerts.length > 0;
  $('alerts-box').classList.toggle('active', alerts.length > 0);
  document.title = alerts.length > 0 && Math.floor(Date.now() / 1000) % 2 === 0 ? `(${alerts.length}) Alert – ${title}` : title;
}

// ---------------------------------------------------------------- render

/** @param {number} secs */
function clock(secs) {
  const s = Math.max(0, Math.floor(secs));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}:${String(s % 60).padStart(2, '0')}`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

function render() {
  const now = Date.now();
  const all = [...nodes.values()];
  const leading = all.find((n) => n.leading);
  $('nodes').textContent =
    (all.length === 1 ? '1 node' : `${all.length} nodes`) + (leading ? ` · ${leading.node} leads` : '');

  // Queues, summed over nodes.
  /** @type {Map<string, any>} */
  const topics = new Map();
  for (const n of all) {
    for (const t of n.topics.values()) {
      const q = topics.get(t.topic) ?? { waiting: 0, urgent: 0, longest: 0, estimate: null, free: 0, answered: 0, inTarget: 0, abandoned: 0, paused: false };
      q.free += t.free_seats;
      // Per node; the longest is what a new arrival may face.
      if (t.estimated_wait_secs != null) q.estimate = Math.max(q.estimate ?? 0, t.estimated_wait_secs);
      q.answered += t.answered;
      q.inTarget += t.answered_in_target;
      q.abandoned += t.abandoned;
      q.paused ||= t.paused;
      topics.set(t.topic, q);
    }
    for (const w of n.waiting.values()) {
      const q = topics.get(w.topic) ?? { waiting: 0, urgent: 0, longest: 0, estimate: null, free: 0, answered: 0, inTarget: 0, abandoned: 0, paused: false };
      q.waiting += 1;
      if (w.urgent) q.urgent += 1;
      q.longest = Math.max(q.longest, (now - w.since) / 1000);
      topics.set(w.topic, q);
    }
  }
  const names = [...topics.keys()].sort();
  fill(
    $('topics'),
    names.map((name) => {
      const q = topics.get(name);
      const handled = q.answered + q.abandoned;
      return {
        key: name,
        cls: q.paused ? 'paused' : '',
        cells: [
          name,
          { text: String(q.waiting), cls: 'num' },
          { text: String(q.urgent), cls: q.urgent ? 'num urgent' : 'num' },
          { text: q.waiting ? clock(q.longest) : '–', cls: 'num' },
          { text: q.estimate == null ? 'nobody on duty' : `${Math.max(1, Math.round(q.estimate / 60))} min`, cls: 'num' },
          { text: String(q.free), cls: 'num' },
          { text: String(q.answered), cls: 'num' },
          { text: String(q.abandoned), cls: 'num' },
          { text: handled ? `${Math.round((100 * q.inTarget) / handled)}%` : '–', cls: 'num' },
          q.paused ? 'Paused' : 'Open',
          {
            button: q.paused ? 'Resume' : 'Pause…',
            label: `${q.paused ? 'Resume' : 'Pause'} ${name}`,
            onclick: () => (q.paused ? resume(name) : askPause(name)),
          },
        ],
      };
    }),
  );
  const target = all[0]?.target ?? 60;
  $('sl-note').textContent = `Service level: the share of today's help-seekers answered within ${clock(target)}, of all answered or abandoned.`;

  // Counsellors.
  const counsellors = all.flatMap((n) => [...n.counsellors.values()]).sort((a, b) => a.display_name.localeCompare(b.display_name));
  /** @param {Counsellor} c */
  const stateOf = (c) => (c.status === 'available' && c.active > 0 ? 'busy' : c.status);
  const label = { available: 'Available', busy: 'Busy', wrap_up: 'Wrap-up', away: 'Away' };
  /** @type {Record<string, number>} */
  const counts = { available: 0, busy: 0, wrap_up: 0, away: 0 };
  for (const c of counsellors) counts[stateOf(c)] += 1;
  $('staffing').textContent = `${counts.available} available, ${counts.busy} busy, ${counts.wrap_up} in wrap-up, ${counts.away} away`;
  fill(
    $('counsellors'),
    counsellors.map((c) => ({
      key: c.counsellor,
      cells: [
        c.display_name,
        { text: /** @type {any} */ (label)[stateOf(c)] ?? c.status, cls: `state-${stateOf(c)}` },
        { text: `${c.active} of ${c.capacity}`, cls: 'num' },
        c.topics.join(', '),
        {
          button: 'End login…',
          label: `End the login of ${c.display_name}`,
          onclick: () => endLogins(c.counsellor, c.display_name),
        },
      ],
    })),
  );

  // Sessions and those waiting.
  const sessions = all
    .flatMap((n) => [...n.sessions.entries()].map(([id, s]) => ({ id, node: n.node, ...s })))
    .sort((a, b) => a.since - b.since);
  fill(
    $('sessions'),
    sessions.map((s) => {
      const who = s.counsellors.map(nameOf);
      /** @type {Cell} */
      const watchCell =
        s.node === here
          ? {
              button: watchedSession === s.id ? 'Watching' : 'Watch',
              label: `Watch the ${s.topic} chat with ${who.join(' and ')}`,
              disabled: watchedSession === s.id,
              onclick: () => watch(s.id),
            }
          : `on ${s.node}`;
      return {
        key: s.id,
        cells: [
          s.topic,
          who.join(' + '),
          { text: clock((now - s.since) / 1000), cls: 'num' },
          s.urgent ? { text: 'urgent', cls: 'urgent' } : 'normal',
          s.hand_raised ? { text: 'hand up', cls: 'urgent' } : '',
          watchCell,
        ],
      };
    }),
  );
  const waiting = all
    .flatMap((n) => [...n.waiting.entries()].map(([id, w]) => ({ id, ...w })))
    .sort((a, b) => a.since - b.since);
  fill(
    $('waiting'),
    waiting.map((w) => ({
      key: w.id,
      cells: [w.topic, w.urgent ? { text: 'urgent', cls: 'urgent' } : 'normal', { text: clock((now - w.since) / 1000), cls: 'num' }],
    })),
  );
  renderAlerts();
}

// ---------------------------------------------------------------- pause

/** @param {string} topic */
function askPause(topic) {
  const dialog = /** @type {HTMLDialogElement} */ ($('pause'));
  $('pause-topic').textContent = topic;
  /** @type {HTMLTextAreaElement} */ ($('pause-message')).value = '';
  dialog.returnValue = '';
  dialog.onclose = async () => {
    if (dialog.returnValue !== 'go') return;
    const message = /** @type {HTMLTextAreaElement} */ ($('pause-message')).value.trim();
    await post(`/api/v1/topics/${encodeURIComponent(topic)}/pause`, message ? { message } : {});
  };
  dialog.showModal();
}

/** @param {string} topic */
async function resume(topic) {
  await post(`/api/v1/topics/${encodeURIComponent(topic)}/resume`, {});
}

/** @param {string} path @param {object} body */
async function post(path, body) {
  const response = await postJson(path, body);
  if (!response?.ok) raise('error', 'That did not work. Try again.');
}

// ---------------------------------------------------------------- chart

async function loadHistory() {
  const response = await fetch('/api/v1/supervisor/history').catch(() => null);
  if (!response?.ok) return;
  const { nodes: list } = await response.json();
  // Sum waiting and take the longest wait per minute across nodes and
  // topics.
  /** @type {Map<number, [number, number]>} */
  const minutes = new Map();
  for (const n of list) {
    for (const samples of Object.values(n.topics)) {
      for (const [at, waiting, longest] of /** @type {number[][]} */ (samples)) {
        const t = Math.floor(at / 60000) * 60;
        const m = minutes.get(t) ?? [0, 0];
        m[0] += waiting;
        m[1] = Math.max(m[1], longest / 60);
        minutes.set(t, m);
      }
    }
  }
  const xs = [...minutes.keys()].sort((a, b) => a - b);
  const data = [xs, xs.map((x) => minutes.get(x)?.[0] ?? 0), xs.map((x) => minutes.get(x)?.[1] ?? 0)];
  const uPlot = /** @type {any} */ (window).uPlot;
  if (!uPlot) return;
  if (!chart) {
    const box = $('chart');
    chart = new uPlot(
      {
        width: Math.max(320, box.clientWidth - 8),
        height: 240,
        series: [
          {},
          { label: 'Waiting', stroke: '#23395d', width: 2 },
          { label: 'Longest wait (min)', stroke: '#b35900', width: 2, scale: 'min' },
        ],
        axes: [{}, { label: 'waiting' }, { scale: 'min', side: 1, label: 'minutes', grid: { show: false } }],
      },
      data,
      box,
    );
  } else {
    chart.setData(data);
  }
}

start();
