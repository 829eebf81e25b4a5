// @ts-check
// The counsellor console: log in, go available, take help-seekers, and chat
// with several at once in tabs.
//
// The login is the HttpOnly cookie the login sets, so no script here ever
// holds it. Nothing is stored in the browser: a reload sends `hello`, and
// the server lists the sessions still held and replays what was not
// confirmed. Within a page's life a dropped socket resumes with the resume
// token kept in memory, and unacked messages are resent with their ids.

import { HavenSocket } from '/shared/socket.js';
import { PROTOCOL_VERSION, CLOSE } from '/shared/protocol.js';
import { tones } from '/shared/tone.js';

const TYPING_IDLE_MS = 4000;
const RETRY_MS = 3000;
const RETRY_LATER = new Set(['peer_backlog_full', 'rate_limited', 'internal']);

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * @typedef {{kind: 'in' | 'out' | 'note', text: string, id?: string, seq?: number,
 *   from?: string, state?: 'sending' | 'sent' | 'delivered' | 'failed'}} Entry
 * @typedef {{id: string, info: any, lastSeq: number, delivered: number,
 *   outbox: {id: string, text: string}[], log: Entry[], unread: number, ended: boolean,
 *   typingSent: boolean, typingTimer?: ReturnType<typeof setTimeout>,
 *   receivedTimer?: ReturnType<typeof setTimeout>,
 *   tab: HTMLButtonElement, pane: HTMLElement}} Chat
 */

/** @type {HavenSocket | null} */
let socket = null;
/** @type {string | null} */
let resumeToken = null;
/** @type {Map<string, Chat>} */
const chats = new Map();
/** @type {string | null} */
let current = null;
let nextId = 1;
/** @type {ReturnType<typeof setInterval> | undefined} */
let wrapTimer;

// ---------------------------------------------------------------- login

async function start() {
  wire();
  const me = await fetch('/api/v1/me');
  if (me.ok) open(await me.json());
  else showLogin();
}

function showLogin() {
  $('desk').hidden = true;
  $('login').hidden = false;
  $('name').focus();
}

/** @param {{display_name: string}} me */
function open(me) {
  $('login').hidden = true;
  $('desk').hidden = false;
  $('me').textContent = me.display_name;
  connect();
}

async function login(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ ($('login'));
  const data = new FormData(form);
  const response = await fetch('/api/v1/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: data.get('name'), password: data.get('password') }),
  });
  /** @type {HTMLInputElement} */ ($('password')).value = '';
  if (response.ok) {
    $('login-error').textContent = '';
    open(await response.json());
    return;
  }
  const problem = await response.json().catch(() => ({}));
  $('login-error').textContent =
    problem.code === 'locked_out'
      ? 'Too many failed attempts. Try again later.'
      : problem.code === 'unauthorized'
        ? 'Wrong name or password.'
        : 'Logging in failed. Try again.';
}

async function logout() {
  // The server closes this login's sockets (4501) when the login ends.
  socket?.stop();
  socket = null;
  await fetch('/api/v1/logout', { method: 'POST' });
  reset();
  showLogin();
}

function reset() {
  resumeToken = null;
  for (const chat of chats.values()) {
    chat.tab.remove();
    chat.pane.remove();
  }
  chats.clear();
  current = null;
  $('offers').replaceChildren();
  updateEmpty();
}

// ---------------------------------------------------------------- socket

function connect() {
  socket = new HavenSocket('/ws/counsellor', {
    greet: () =>
      resumeToken
        ? {
            type: 'resume',
            token: resumeToken,
            sessions: [...chats.values()]
              .filter((c) => !c.ended)
              .map((c) => ({ session: c.id, last_seq: c.lastSeq })),
          }
        : { type: 'hello', protocol: PROTOCOL_VERSION },
    message: handle,
    state: (s) => {
      $('connection').textContent = s === 'open' ? '' : s === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
    },
    closed: (code) => {
      socket = null;
      if (code === CLOSE.Unauthorized || code === CLOSE.ResumeFailed) {
        // Logged out elsewhere, or the resume is gone: start afresh.
        reset();
        showLogin();
      } else if (code === CLOSE.Replaced) {
        $('connection').textContent = 'This console was opened in another window.';
      } else {
        $('connection').textContent = `Disconnected (${code}). Reload to reconnect.`;
      }
    },
  });
}

/** @param {object} frame */
const send = (frame) => socket?.send(frame) ?? false;

/** @param {any} msg */
function handle(msg) {
  switch (msg.type) {
    case 'welcome':
      resumeToken = msg.token;
      showStatus({ status: msg.status, capacity: msg.capacity, max_capacity: msg.max_capacity, active: msg.sessions.length });
      for (const s of msg.sessions) adopt(s);
      flushAll();
      break;
    case 'resumed': {
      resumeToken = msg.token;
      const held = new Set(msg.sessions.map((/** @type {any} */ s) => s.session));
      for (const chat of chats.values()) {
        if (!held.has(chat.id) && !chat.ended) endChat(chat, 'ended while you were away');
      }
      for (const s of msg.sessions) adopt(s);
      flushAll();
      break;
    }
    case 'status':
      showStatus(msg);
      break;
    case 'queues':
      showQueues(msg.topics);
      break;
    case 'offer':
      showOffer(msg);
      break;
    case 'offer_withdrawn':
      document.querySelector(`#offers li[data-session="${CSS.escape(msg.session)}"]`)?.remove();
      updateEmpty();
      break;
    case 'session_assigned': {
      document.querySelector(`#offers li[data-session="${CSS.escape(msg.session)}"]`)?.remove();
      const chat = adopt(msg);
      if (msg.note) note(chat, `Note from ${msg.from ?? 'a colleague'}: ${msg.note}`);
      select(chat.id);
      ring();
      break;
    }
    case 'message': {
      const chat = chats.get(msg.session);
      if (!chat || msg.seq <= chat.lastSeq) break;
      chat.lastSeq = msg.seq;
      append(chat, { kind: 'in', seq: msg.seq, text: msg.text, from: chat.info.nickname });
      typing(chat, false);
      confirmSoon(chat);
      if (current !== chat.id || document.hidden) {
        chat.unread += 1;
        updateTab(chat);
      }
      break;
    }
    case 'ack': {
      const chat = chats.get(msg.session);
      if (!chat) break;
      chat.outbox = chat.outbox.filter((m) => m.id !== msg.id);
      const entry = chat.log.find((e) => e.kind === 'out' && e.id === msg.id);
      if (entry) {
        entry.seq = msg.seq;
        entry.state = msg.seq <= chat.delivered ? 'delivered' : 'sent';
        redraw(chat);
      }
      break;
    }
    case 'delivered': {
      const chat = chats.get(msg.session);
      if (chat) markDelivered(chat, msg.up_to);
      break;
    }
    case 'typing': {
      const chat = chats.get(msg.session);
      if (chat) typing(chat, msg.active);
      break;
    }
    case 'peer': {
      const chat = chats.get(msg.session);
      if (chat) {
        chat.info.seeker_connected = msg.connected;
        note(chat, msg.connected ? 'The help-seeker is back.' : 'The help-seeker’s connection dropped.');
        about(chat);
      }
      break;
    }
    case 'participant': {
      const chat = chats.get(msg.session);
      if (chat) note(chat, `${msg.counsellor} ${msg.joined ? 'joined' : 'left'} the chat.`);
      break;
    }
    case 'said': {
      const chat = chats.get(msg.session);
      if (chat) append(chat, { kind: 'out', text: msg.text, from: msg.from, state: 'sent' });
      break;
    }
    case 'session_ended': {
      const chat = chats.get(msg.session);
      if (chat) endChat(chat, endText(msg.reason));
      break;
    }
    case 'transfer_failed': {
      const chat = chats.get(msg.session);
      if (chat) note(chat, `Transfer to ${msg.to} failed (${msg.reason}). The chat is still yours.`);
      break;
    }
    case 'error':
      failed(msg);
      break;
    default:
      break;
  }
}

/** @param {string} reason */
function endText(reason) {
  switch (reason) {
    case 'seeker_ended':
      return 'The help-seeker ended the chat.';
    case 'counsellor_ended':
      return 'You ended the chat.';
    case 'seeker_timed_out':
      return 'The help-seeker’s connection was gone too long; the chat ended.';
    case 'topic_closed':
      return 'The topic closed; the chat ended.';
    case 'transferred':
      return 'You handed the chat on.';
    default:
      return 'The chat ended.';
  }
}

/** @param {any} msg */
function failed(msg) {
  const chat = msg.session ? chats.get(msg.session) : undefined;
  if (chat && msg.id && RETRY_LATER.has(msg.code)) {
    setTimeout(() => flush(chat), RETRY_MS);
    return;
  }
  if (chat && msg.id) {
    chat.outbox = chat.outbox.filter((m) => m.id !== msg.id);
    const entry = chat.log.find((e) => e.kind === 'out' && e.id === msg.id);
    if (entry) entry.state = 'failed';
    redraw(chat);
  }
  if (chat) note(chat, `Refused: ${msg.code}`);
  else $('connection').textContent = `Refused: ${msg.code}`;
}

// ---------------------------------------------------------------- status

/** @param {any} s */
function showStatus(s) {
  const status = /** @type {HTMLSelectElement} */ ($('status'));
  status.value = s.status === 'away' ? 'away' : 'available';
  const capacity = /** @type {HTMLInputElement} */ ($('capacity'));
  capacity.max = String(s.max_capacity);
  if (document.activeElement !== capacity) capacity.value = String(s.capacity);
  $('load').textContent = `${s.active} of ${s.capacity} seats in use`;
  clearInterval(wrapTimer);
  const wrapping = s.status === 'wrap_up';
  $('wrap-up').hidden = !wrapping;
  $('ready').hidden = !wrapping;
  if (wrapping) {
    let left = s.wrap_up_secs ?? 0;
    const tick = () => {
      $('wrap-up').textContent = `Wrap-up: ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
      left = Math.max(0, left - 1);
    };
    tick();
    wrapTimer = setInterval(tick, 1000);
  }
}

/** @param {any[]} topics */
function showQueues(topics) {
  const body = /** @type {HTMLElement} */ ($('queues').querySelector('tbody'));
  body.replaceChildren(
    ...topics.map((q) => {
      const row = document.createElement('tr');
      row.dataset.topic = q.topic;
      const cells = [
        q.paused ? `${q.topic} (paused)` : q.topic,
        String(q.waiting),
        q.waiting ? minutes(q.longest_wait_secs) : '–',
        String(q.free_seats),
      ];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        row.append(td);
      }
      return row;
    }),
  );
}

/** @param {number} secs */
function minutes(secs) {
  return secs < 60 ? `${secs}s` : `${Math.floor(secs / 60)} min`;
}

/** @param {any} offer */
function showOffer(offer) {
  const li = document.createElement('li');
  li.dataset.session = offer.session;
  const text = document.createElement('p');
  text.textContent = `${describe(offer)}${offer.from ? ` — from ${offer.from}` : ''}`;
  const accept = document.createElement('button');
  accept.className = 'primary';
  accept.textContent = 'Accept';
  accept.onclick = () => send({ type: 'accept', session: offer.session });
  const decline = document.createElement('button');
  decline.className = 'secondary';
  decline.textContent = 'Decline';
  decline.onclick = () => {
    send({ type: 'decline', session: offer.session });
    li.remove();
    updateEmpty();
  };
  li.append(text, accept, decline);
  if (offer.note) {
    const n = document.createElement('p');
    n.className = 'muted';
    n.textContent = `Note: ${offer.note}`;
    li.append(n);
  }
  $('offers').append(li);
  updateEmpty();
  ring();
}

/** @param {any} info */
function describe(info) {
  const parts = [info.nickname || 'Anonymous', info.topic];
  if (info.language) parts.push(info.language);
  if (info.urgent) parts.push('URGENT');
  if (info.returning) parts.push('returning');
  parts.push(`waited ${minutes(info.waited_secs ?? 0)}`);
  return parts.join(' · ');
}

// ---------------------------------------------------------------- chats

/** Creates the chat's tab and pane, or updates one already shown.
 * @param {any} info */
function adopt(info) {
  let chat = chats.get(info.session);
  if (chat) {
    Object.assign(chat.info, info);
    if (info.delivered) markDelivered(chat, info.delivered);
    if (info.recovered === false) note(chat, 'Some earlier messages cannot be shown again.');
    about(chat);
    return chat;
  }
  const tab = document.createElement('button');
  tab.type = 'button';
  tab.setAttribute('role', 'tab');
  tab.id = `tab-${info.session}`;
  const template = /** @type {HTMLTemplateElement} */ ($('pane'));
  const pane = /** @type {HTMLElement} */ (
    /** @type {DocumentFragment} */ (template.content.cloneNode(true)).firstElementChild
  );
  pane.id = `pane-${info.session}`;
  pane.setAttribute('aria-labelledby', tab.id);
  tab.setAttribute('aria-controls', pane.id);
  chat = {
    id: info.session,
    info,
    lastSeq: 0,
    delivered: info.delivered ?? 0,
    outbox: [],
    log: [],
    unread: 0,
    ended: false,
    typingSent: false,
    tab,
    pane,
  };
  const c = chat;
  tab.onclick = () => select(c.id);
  const box = /** @type {HTMLTextAreaElement} */ (pane.querySelector('textarea'));
  const form = /** @type {HTMLFormElement} */ (pane.querySelector('form'));
  form.onsubmit = (event) => {
    event.preventDefault();
    const text = box.value.trim();
    if (!text || c.ended) return;
    box.value = '';
    stopTyping(c);
    const id = `c-${nextId++}`;
    c.outbox.push({ id, text });
    append(c, { kind: 'out', id, text, state: 'sending' });
    send({ type: 'send', session: c.id, id, text });
  };
  box.onkeydown = (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  };
  box.oninput = () => {
    if (!c.typingSent && send({ type: 'typing', session: c.id, active: true })) c.typingSent = true;
    clearTimeout(c.typingTimer);
    c.typingTimer = setTimeout(() => stopTyping(c), TYPING_IDLE_MS);
  };
  /** @type {HTMLButtonElement} */ (pane.querySelector('.end')).onclick = () => {
    if (c.ended) {
      close(c);
    } else if (confirm('End this chat?')) {
      send({ type: 'end', session: c.id });
    }
  };
  chats.set(chat.id, chat);
  $('tabs').append(tab);
  $('panes').append(pane);
  about(chat);
  updateTab(chat);
  if (!current) select(chat.id);
  else pane.hidden = true;
  updateEmpty();
  return chat;
}

/** @param {Chat} chat */
function about(chat) {
  const box = /** @type {HTMLElement} */ (chat.pane.querySelector('.about'));
  const online = chat.info.seeker_connected === false ? ' · connection lost' : '';
  box.textContent = describe(chat.info) + online;
  box.classList.toggle('urgent', Boolean(chat.info.urgent));
}

/** @param {Chat} chat */
function updateTab(chat) {
  chat.tab.textContent = chat.info.nickname || 'Anonymous';
  if (chat.info.urgent) chat.tab.classList.add('urgent');
  chat.tab.classList.toggle('ended', chat.ended);
  if (chat.unread > 0) {
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = String(chat.unread);
    badge.setAttribute('aria-label', `${chat.unread} unread`);
    chat.tab.append(' ', badge);
  }
}

/** @param {string} id */
function select(id) {
  current = id;
  for (const chat of chats.values()) {
    const on = chat.id === id;
    chat.pane.hidden = !on;
    chat.tab.setAttribute('aria-selected', String(on));
    if (on) {
      chat.unread = 0;
      updateTab(chat);
    }
  }
}

/** @param {Chat} chat @param {Entry} entry */
function append(chat, entry) {
  chat.log.push(entry);
  const log = /** @type {HTMLElement} */ (chat.pane.querySelector('.log'));
  log.append(entryNode(entry));
  log.scrollTop = log.scrollHeight;
}

/** @param {Chat} chat @param {string} text */
function note(chat, text) {
  append(chat, { kind: 'note', text });
}

/** @param {Entry} entry */
function entryNode(entry) {
  const li = document.createElement('li');
  li.className = `msg ${entry.kind}`;
  const text = document.createElement('p');
  text.textContent = entry.text;
  li.append(text);
  if (entry.kind === 'out' && entry.state) {
    const mark = document.createElement('span');
    mark.className = `state ${entry.state}`;
    mark.textContent = { sending: 'Sending…', sent: 'Sent', delivered: 'Delivered', failed: 'Not sent' }[entry.state];
    li.append(mark);
  }
  return li;
}

/** @param {Chat} chat */
function redraw(chat) {
  const log = /** @type {HTMLElement} */ (chat.pane.querySelector('.log'));
  log.replaceChildren(...chat.log.map(entryNode));
}

/** @param {Chat} chat @param {number} upTo */
function markDelivered(chat, upTo) {
  chat.delivered = Math.max(chat.delivered, upTo);
  for (const e of chat.log) {
    if (e.kind === 'out' && e.seq !== undefined && e.seq <= chat.delivered) e.state = 'delivered';
  }
  redraw(chat);
}

/** @param {Chat} chat @param {boolean} active */
function typing(chat, active) {
  const line = /** @type {HTMLElement} */ (chat.pane.querySelector('.typing'));
  line.hidden = !active;
  line.textContent = active ? `${chat.info.nickname || 'The help-seeker'} is typing…` : '';
}

/** @param {Chat} chat */
function stopTyping(chat) {
  clearTimeout(chat.typingTimer);
  if (chat.typingSent) send({ type: 'typing', session: chat.id, active: false });
  chat.typingSent = false;
}

/** @param {Chat} chat */
function confirmSoon(chat) {
  clearTimeout(chat.receivedTimer);
  chat.receivedTimer = setTimeout(() => send({ type: 'received', session: chat.id, up_to: chat.lastSeq }), 200);
}

/** @param {Chat} chat */
function flush(chat) {
  for (const m of chat.outbox) send({ type: 'send', session: chat.id, id: m.id, text: m.text });
}

function flushAll() {
  for (const chat of chats.values()) {
    if (!chat.ended) flush(chat);
  }
}

/** @param {Chat} chat @param {string} why */
function endChat(chat, why) {
  chat.ended = true;
  note(chat, why);
  typing(chat, false);
  /** @type {HTMLTextAreaElement} */ (chat.pane.querySelector('textarea')).disabled = true;
  /** @type {HTMLButtonElement} */ (chat.pane.querySelector('.end')).textContent = 'Close tab';
  updateTab(chat);
}

/** @param {Chat} chat */
function close(chat) {
  chat.tab.remove();
  chat.pane.remove();
  chats.delete(chat.id);
  if (current === chat.id) {
    current = null;
    const next = chats.keys().next();
    if (!next.done) select(next.value);
  }
  updateEmpty();
}

function updateEmpty() {
  $('no-chats').hidden = chats.size > 0;
  $('no-offers').hidden = $('offers').children.length > 0;
}

/** A short ring for a new session or offer. */
function ring() {
  tones([880, 660, 880], 0.15);
}

function wire() {
  $('login').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('status').addEventListener('change', () =>
    send({ type: 'set_status', status: /** @type {HTMLSelectElement} */ ($('status')).value }),
  );
  $('capacity').addEventListener('change', () => {
    const n = Number(/** @type {HTMLInputElement} */ ($('capacity')).value);
    if (n >= 1) send({ type: 'set_capacity', capacity: n });
  });
  $('ready').addEventListener('click', () => send({ type: 'ready' }));
}

start();
