// @ts-check
// The help-seeker's chat, served from Haven's own origin and framed by the
// loader (/widget.js) on a helpline's page. This page owns the WebSocket,
// so the host page's scripts never see what is typed or said. It talks to
// the loader with postMessage, pinned to the host's origin, and only about
// the UI: ready, unread counts, attention, minimise, quick exit.
//
// Delivery (docs/protocol.md §4–5): every message gets an id and stays in
// the outbox until acked; after a reconnect the socket resumes with the
// last seq seen and resends the outbox with the same ids, which the server
// answers without delivering twice. Incoming messages are kept by seq, so
// a replay never shows one twice. The only thing stored is this tab's
// sessionStorage, cleared on end and on quick exit.

import { HavenSocket } from '/shared/socket.js';
import { pickLanguage, loadCatalogue, t, translate } from '/shared/i18n.js';
import { PROTOCOL_VERSION, CLOSE, BLANK, NOT_IN_NAMES, textLength } from '/shared/protocol.js';
import { tones } from '/shared/tone.js';

const STORE = 'haven.chat';
/** Errors after which an unacked message is retried later. */
const RETRY_LATER = new Set(['peer_backlog_full', 'rate_limited', 'wrong_state', 'internal']);
const RETRY_MS = 3000;
const TYPING_IDLE_MS = 4000;
/** Two Escapes this close together leave at once. */
const DOUBLE_ESCAPE_MS = 800;

const params = new URLSearchParams(location.search);
/** The embedding page's origin, to which alone UI events are posted. */
const hostOrigin = params.get('host') || '';
const embedded = window.parent !== window && hostOrigin !== '';
const fixedTopic = params.get('topic') || '';
const chatLanguage = params.get('chat_language') || '';
/** The longest chat message, in code points (the server's, from `welcome`). */
let maxChars = 4000;
/** The `exit` this page was opened with; honoured only when the helpline
 * lists it (see `learnExits`). */
const askedExit = params.get('exit') || '';
/** Where quick exit goes when the chat is not embedded. */
let exitUrl = 'https://www.google.com/';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * @typedef {{kind: 'in' | 'out' | 'note', text: string, id?: string, seq?: number,
 *   from?: string, at?: number, state?: 'sending' | 'sent' | 'delivered' | 'failed'}} Entry
 * @typedef {{token?: string, session?: string, lastSeq: number, delivered: number,
 *   nextId: number, outbox: {id: string, text: string}[], log: Entry[],
 *   counsellor?: string, alternatives: {name: string, phone?: string, url?: string}[],
 *   hello?: object, assigned: boolean}} State
 */

/** @returns {State} */
function fresh() {
  return { lastSeq: 0, delivered: 0, nextId: 1, outbox: [], log: [], alternatives: [], assigned: false };
}

/** @returns {State | null} */
function load() {
  try {
    const raw = sessionStorage.getItem(STORE);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

let state = load() ?? fresh();
/** @type {HavenSocket | null} */
let socket = null;
/** @type {Record<string, string>} */
let cat = {};
let visible = !embedded;
let unread = 0;
let typingSent = false;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let typingTimer;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let receivedTimer;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let retryTimer;
let lastEscape = 0;

function save() {
  try {
    sessionStorage.setItem(STORE, JSON.stringify(state));
  } catch {
    // Storage full or disabled: the chat goes on, only a reload loses it.
  }
}

function wipe() {
  try {
    sessionStorage.clear();
  } catch {
    // Nothing stored.
  }
}

/** @param {object} message */
function post(message) {
  if (embedded) window.parent.postMessage({ haven: 1, ...message }, hostOrigin);
}

/** @param {string} key @param {Record<string, string | number>} [vars] */
const tr = (key, vars) => t(cat, key, vars);

// ---------------------------------------------------------------- views

/** @param {'prechat' | 'conversation' | 'done'} view */
function show(view) {
  $('prechat').hidden = view !== 'prechat';
  $('chat').hidden = view !== 'conversation';
  $('composer').hidden = view !== 'conversation';
  $('waiting').hidden = view !== 'conversation' || state.assigned;
  $('done').hidden = view !== 'done';
  if (view !== 'conversation') $('connection').hidden = true;
}

function renderAlternatives() {
  const list = $('alternatives-list');
  list.replaceChildren();
  for (const alt of state.alternatives) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = alt.name;
    li.append(name);
    if (alt.phone) {
      const a = document.createElement('a');
      a.href = `tel:${alt.phone.replace(/[^0-9+]/g, '')}`;
      a.textContent = alt.phone;
      li.append(' ', a);
    }
    if (alt.url) {
      const a = document.createElement('a');
      a.href = alt.url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = tr('alternatives.website');
      li.append(' ', a);
    }
    list.append(li);
  }
  $('alternatives').hidden = state.alternatives.length === 0;
}

/** @param {Entry} entry */
function entryNode(entry) {
  const li = document.createElement('li');
  li.className = `msg ${entry.kind}`;
  if (entry.kind === 'note') {
    li.textContent = entry.text;
    return li;
  }
  const who = document.createElement('span');
  who.className = 'visually-hidden';
  who.textContent = entry.kind === 'out' ? tr('chat.you') : `${entry.from ?? ''}:`;
  const text = document.createElement('p');
  text.textContent = entry.text;
  li.append(who, text);
  if (entry.kind === 'out') {
    const mark = document.createElement('span');
    mark.className = `state ${entry.state}`;
    mark.textContent = tr(`chat.state_${entry.state}`);
    li.append(mark);
    li.dataset.id = entry.id;
  }
  return li;
}

function renderLog() {
  $('log').replaceChildren(...state.log.map(entryNode));
  scrollDown();
}

/** @param {Entry} entry */
function append(entry) {
  state.log.push(entry);
  $('log').append(entryNode(entry));
  scrollDown();
}

/** @param {string} id */
function refresh(id) {
  const entry = state.log.find((e) => e.kind === 'out' && e.id === id);
  const node = $('log').querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (entry && node) node.replaceWith(entryNode(entry));
}

function scrollDown() {
  const main = $('main');
  main.scrollTop = main.scrollHeight;
}

/** @param {string} key @param {Record<string, string | number>} [vars] */
function note(key, vars) {
  append({ kind: 'note', text: tr(key, vars) });
}

/** @param {string} key */
function connectionNotice(key) {
  const el = $('connection');
  el.textContent = key ? tr(key) : '';
  el.hidden = !key;
}

/**
 * The end of the road: ended, unavailable, expired. Nothing is kept.
 * @param {string} heading @param {string} text @param {string} [returnCode]
 */
function finish(heading, text, returnCode) {
  socket?.stop();
  socket = null;
  clearTimeout(retryTimer);
  $('done-heading').textContent = heading;
  $('done-text').textContent = text;
  const code = $('return-code');
  code.hidden = !returnCode;
  code.textContent = returnCode ? tr('done.return_code', { code: returnCode }) : '';
  const alternatives = state.alternatives;
  state = fresh();
  state.alternatives = alternatives;
  wipe();
  renderAlternatives();
  show('done');
  $('done-heading').tabIndex = -1;
  $('done-heading').focus();
}

// ---------------------------------------------------------------- socket

function connect() {
  socket = new HavenSocket('/ws/seeker', {
    greet: () =>
      state.token
        ? { type: 'resume', token: state.token, last_seq: state.lastSeq }
        : state.hello ?? { type: 'hello', protocol: PROTOCOL_VERSION },
    message: handle,
    state: (s) => connectionNotice(s === 'reconnecting' ? 'connection.reconnecting' : ''),
    closed,
  });
}

/** @param {number} code */
function closed(code) {
  if (code === CLOSE.ResumeFailed) {
    finish(tr('done.expired_heading'), tr('done.expired'));
  } else if (code === CLOSE.Replaced) {
    finish(tr('done.replaced_heading'), tr('done.replaced'));
  } else if (code === CLOSE.Restarted) {
    finish(tr('done.ended_heading'), tr('done.ended.service_restarted'));
  } else if (code !== CLOSE.Normal) {
    finish(tr('done.error_heading'), tr('done.error'));
  } else if (!$('done').hidden) {
    // Already showing why.
  } else {
    finish(tr('done.ended_heading'), tr('done.ended.seeker_ended'));
  }
}

/** Sends every unacked message again, with its original id. */
function flush() {
  clearTimeout(retryTimer);
  if (!state.token) return;
  for (const m of state.outbox) socket?.send({ type: 'send', id: m.id, text: m.text });
}

function confirmSoon() {
  clearTimeout(receivedTimer);
  receivedTimer = setTimeout(() => {
    if (state.lastSeq > 0) socket?.send({ type: 'received', up_to: state.lastSeq });
  }, 200);
}

/** @param {any} msg */
function handle(msg) {
  switch (msg.type) {
    case 'welcome':
      maxChars = msg.limits?.max_chars ?? maxChars;
      state.token = msg.token;
      state.session = msg.session;
      state.alternatives = msg.alternatives ?? [];
      delete state.hello;
      save();
      renderAlternatives();
      if (msg.transcript) note('chat.recorded');
      flush();
      break;
    case 'resumed':
      state.token = msg.token;
      if (!msg.recovered) note('chat.gap');
      markDelivered(msg.delivered ?? 0);
      save();
      flush();
      break;
    case 'unavailable':
      state.alternatives = msg.alternatives ?? [];
      finish(
        tr('done.unavailable_heading'),
        msg.reason === 'paused' && msg.message
          ? msg.message
          : tr(`unavailable.${msg.reason}`, {
              time: msg.opens_at ? (msg.reason === 'blocked' ? dayAndClock(msg.opens_at) : clock(msg.opens_at)) : '',
            }),
      );
      break;
    case 'queued':
      if (msg.requeued && state.assigned) note('chat.requeued');
      state.assigned = false;
      $('position').textContent = tr(msg.position === 1 ? 'waiting.next' : 'waiting.position', {
        n: msg.position,
      });
      $('estimate').textContent =
        msg.wait_secs == null
          ? tr('waiting.no_estimate')
          : tr('waiting.estimate', { minutes: Math.max(1, Math.round(msg.wait_secs / 60)) });
      save();
      show('conversation');
      break;
    case 'topic_status': {
      const warning = $('topic-warning');
      warning.hidden = msg.state === 'open';
      warning.textContent =
        msg.state === 'paused' && msg.message
          ? msg.message
          : tr(`topic.${msg.state}`, { time: msg.at ? clock(msg.at) : '' });
      break;
    }
    case 'assigned':
      state.assigned = true;
      state.counsellor = msg.counsellor;
      $('counsellor').textContent = tr('chat.with', { name: msg.counsellor });
      note('chat.joined', { name: msg.counsellor });
      save();
      show('conversation');
      attention();
      break;
    case 'counsellor_left':
      note('chat.left', { name: msg.counsellor });
      break;
    case 'message':
      if (msg.seq <= state.lastSeq) break;
      state.lastSeq = msg.seq;
      append({ kind: 'in', seq: msg.seq, text: msg.text, from: msg.from, at: msg.at });
      $('typing').hidden = true;
      save();
      confirmSoon();
      if (!visible || document.hidden) {
        unread += 1;
        post({ type: 'unread', count: unread });
      }
      break;
    case 'ack': {
      state.outbox = state.outbox.filter((m) => m.id !== msg.id);
      const entry = state.log.find((e) => e.kind === 'out' && e.id === msg.id);
      if (entry) {
        entry.seq = msg.seq;
        if (entry.state !== 'delivered') entry.state = msg.seq <= state.delivered ? 'delivered' : 'sent';
        refresh(msg.id);
      }
      save();
      break;
    }
    case 'delivered':
      markDelivered(msg.up_to);
      save();
      break;
    case 'typing':
      $('typing').hidden = !msg.active;
      $('typing').textContent = msg.active ? tr('chat.typing', { name: state.counsellor ?? '' }) : '';
      break;
    case 'peer':
      if (!msg.connected) note('chat.peer_lost');
      else note('chat.peer_back');
      break;
    case 'ended':
      finish(tr('done.ended_heading'), tr(`done.ended.${msg.reason}`), msg.return_code);
      break;
    case 'error':
      failed(msg);
      break;
    default:
      break;
  }
}

/** @param {number} upTo */
function markDelivered(upTo) {
  state.delivered = Math.max(state.delivered, upTo);
  for (const e of state.log) {
    if (e.kind === 'out' && e.seq !== undefined && e.seq <= state.delivered && e.state !== 'delivered') {
      e.state = 'delivered';
      refresh(e.id ?? '');
    }
  }
}

/** @param {{code: string, id?: string}} msg */
function failed(msg) {
  if (msg.code === 'resume_failed') return; // the close that follows says it
  if (msg.id && RETRY_LATER.has(msg.code)) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, RETRY_MS);
    return;
  }
  if (msg.id) {
    state.outbox = state.outbox.filter((m) => m.id !== msg.id);
    const entry = state.log.find((e) => e.kind === 'out' && e.id === msg.id);
    if (entry) {
      entry.state = 'failed';
      refresh(msg.id);
    }
    save();
  }
  note(`error.${msg.code}`);
}

/** @param {number} ms */
function clock(ms) {
  return new Date(ms).toLocaleTimeString(document.documentElement.lang, {
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** A moment days away, with the day: "Friday 12 December, 14:00".
 * @param {number} ms */
function dayAndClock(ms) {
  return new Date(ms).toLocaleString(document.documentElement.lang, {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    hour: '2-digit',
    minute: '2-digit',
  });
}

// ---------------------------------------------------------------- attention

function attention() {
  beep();
  if (!visible || document.hidden) post({ type: 'attention' });
}

/** Two soft tones. */
function beep() {
  tones([660, 880], 0.08, 0.18);
}

// ---------------------------------------------------------------- actions

/** @param {string} text */
function sendText(text) {
  const id = `m-${state.nextId++}`;
  state.outbox.push({ id, text });
  append({ kind: 'out', id, text, state: 'sending' });
  save();
  if (state.token) socket?.send({ type: 'send', id, text });
}

function stopTyping() {
  clearTimeout(typingTimer);
  if (typingSent) socket?.send({ type: 'typing', active: false });
  typingSent = false;
}

function quickExit() {
  socket?.send({ type: 'end' });
  socket?.stop();
  socket = null;
  wipe();
  state = fresh();
  document.body.replaceChildren();
  if (embedded) post({ type: 'quick-exit' });
  else location.replace(exitUrl);
}

function wire() {
  $('prechat').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = /** @type {HTMLFormElement} */ ($('prechat'));
    const data = new FormData(form);
    /** @type {Record<string, unknown>} */
    const hello = { type: 'hello', protocol: PROTOCOL_VERSION };
    // A name with a bidirectional override could disguise itself or the
    // text beside it: such characters are left out.
    const nickname = String(data.get('nickname') ?? '').replace(NOT_IN_NAMES, '').trim();
    if (nickname && !BLANK.test(nickname)) hello.nickname = nickname;
    const topic = fixedTopic || String(data.get('topic') ?? '');
    if (topic) hello.topic = topic;
    const language = chatLanguage || String(data.get('language') ?? '');
    if (language) hello.language = language;
    if (data.get('urgent') === 'yes') hello.urgent = true;
    // Only where the topic asks, and only a yes: no answer means no.
    if (recordMode() === 'ask' && data.get('transcript_consent') === 'yes') hello.transcript_consent = true;
    state = fresh();
    state.hello = hello;
    save();
    $('position').textContent = tr('waiting.joining');
    $('estimate').textContent = '';
    renderLog();
    show('conversation');
    connect();
    $('text').focus();
  });

  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    const box = /** @type {HTMLTextAreaElement} */ ($('text'));
    const text = box.value.trim();
    if (BLANK.test(text)) return;
    // Too long: say so and keep what was typed, to shorten or split.
    if (textLength(text) > maxChars) {
      note('error.text_too_long');
      return;
    }
    box.value = '';
    stopTyping();
    sendText(text);
  });

  $('text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      /** @type {HTMLFormElement} */ ($('composer')).requestSubmit();
    }
  });

  $('text').addEventListener('input', () => {
    if (!typingSent && socket?.send({ type: 'typing', active: true })) typingSent = true;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  const dialog = /** @type {HTMLDialogElement} */ ($('confirm-end'));
  $('end').addEventListener('click', () => dialog.showModal());
  $('end-no').addEventListener('click', () => dialog.close());
  $('end-yes').addEventListener('click', () => {
    dialog.close();
    socket?.send({ type: 'end' });
    if (!socket?.open) finish(tr('done.ended_heading'), tr('done.ended.seeker_ended'));
  });

  $('again').addEventListener('click', () => show('prechat'));
  $('quick-exit').addEventListener('click', quickExit);
  $('minimise').addEventListener('click', () => post({ type: 'minimise' }));

  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    const now = Date.now();
    if (now - lastEscape < DOUBLE_ESCAPE_MS) quickExit();
    lastEscape = now;
  });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && visible) clearUnread();
  });

  addEventListener('message', (event) => {
    if (!embedded || event.origin !== hostOrigin || event.source !== window.parent) return;
    const data = event.data;
    if (!data || data.haven !== 1) return;
    if (data.type === 'quick-exit') quickExit();
    else if (data.type === 'visible') {
      visible = Boolean(data.value);
      if (visible) {
        clearUnread();
        $('text').focus();
      }
    }
  });
}

function clearUnread() {
  if (unread === 0) return;
  unread = 0;
  post({ type: 'unread', count: 0 });
}

/** Per topic that records chats, `on` or `ask` (from the helpline). */
let recording = /** @type {Record<string, string> | null} */ (null);
let defaultTopic = '';

/** Whether the topic about to be chosen records: 'on', 'ask' or 'off'. */
function recordMode() {
  if (!recording) return 'unknown';
  const chosen = fixedTopic || /** @type {HTMLSelectElement} */ ($('topic')).value || defaultTopic;
  return recording[chosen] ?? 'off';
}

/** Says before the chat starts whether it is recorded, and asks where the
 * topic asks. */
function showRecording() {
  const mode = recordMode();
  $('record-on').hidden = mode !== 'on';
  $('record-ask').hidden = mode !== 'ask';
  const key = { on: 'privacy.transcript_on', ask: 'privacy.transcript_ask', off: 'privacy.transcript_off' }[mode] ?? 'privacy.transcript';
  const line = $('privacy-transcript');
  line.dataset.i18n = key;
  line.textContent = tr(key);
}

/** What the helpline offers (topics, languages, exits), fetched once. */
const helpline = fetch('/api/v1/helpline')
  .then((response) => response.json())
  .catch(() => null);

/** Quick exit goes where this page was told only when the helpline lists
 * that place; anything else would make the page an open redirect. */
async function learnExits() {
  const allowed = (await helpline)?.exit_urls ?? [];
  exitUrl = allowed.includes(askedExit) ? askedExit : (allowed[0] ?? exitUrl);
}

/** Fills the topic and language choices when the page did not fix them,
 * and learns which topics record chats. */
async function offerChoices() {
  const info = await helpline;
  if (!info) return;
  recording = info.transcripts ?? {};
  defaultTopic = info.default_topic ?? '';
  /** @param {string} field @param {HTMLSelectElement} select @param {string[]} values @param {string} prefix */
  const fill = (field, select, values, prefix) => {
    if (values.length < 2) return;
    select.replaceChildren(
      ...values.map((v) => {
        const option = document.createElement('option');
        option.value = v;
        option.textContent = cat[`${prefix}${v}`] ?? v;
        return option;
      }),
    );
    $(field).hidden = false;
  };
  if (!fixedTopic) {
    const select = /** @type {HTMLSelectElement} */ ($('topic'));
    fill('topic-field', select, info.topics ?? [], 'topic_name.');
    if (info.default_topic) select.value = info.default_topic;
    select.addEventListener('change', showRecording);
  }
  if (!chatLanguage) fill('language-field', /** @type {HTMLSelectElement} */ ($('language')), info.languages ?? [], 'language_name.');
  showRecording();
}

async function main() {
  const lang = pickLanguage([params.get('lang') ?? '', ...navigator.languages]);
  document.documentElement.lang = lang;
  cat = await loadCatalogue(lang);
  translate(document, cat);
  const colour = params.get('colour');
  if (colour && /^#[0-9a-fA-F]{3,8}$/.test(colour)) {
    document.documentElement.style.setProperty('--accent', colour);
  }
  $('minimise').hidden = !embedded;
  learnExits();
  wire();
  $('app').hidden = false;
  renderAlternatives();
  if (state.token || state.hello) {
    renderLog();
    if (state.counsellor) $('counsellor').textContent = tr('chat.with', { name: state.counsellor });
    show('conversation');
    connect();
  } else {
    show('prechat');
    await offerChoices();
  }
  post({ type: 'ready' });
}

main();
