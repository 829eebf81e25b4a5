// @ts-check
// The counsellor console: log in, go available, take help-seekers, and chat
// with several at once in tabs (chats.js), with canned responses, private
// notes, transfers (transfer.js), a raised hand and a ring (ring.js).
//
// The login is the HttpOnly cookie the login sets, so no script here ever
// holds it. Chats are not stored in the browser: a reload sends `hello`,
// and the server lists the sessions still held and replays what was not
// confirmed. Within a page's life a dropped socket resumes with the resume
// token kept in memory, and unacked messages are resent with their ids.
// Private notes stay in this tab's sessionStorage until the chat's tab is
// closed or the counsellor logs out.

import { HavenSocket } from '/shared/socket.js';
import { wireLogin, whoAmI, logOut } from '/shared/login.js';
import { keepActive } from '/shared/activity.js';
import { setUpSecondFactor } from '/shared/account.js';
import { PROTOCOL_VERSION, CLOSE } from '/shared/protocol.js';
import {
  chats, adopt, about, append, note, select, isCurrent, updateTab, markDelivered, typing,
  confirmSoon, flush, flushAll, endChat, forgetAll, updateEmpty, redraw, describe, minutes,
  hand, receivedNote, useSender, useCanned, useBlockChoices, watched, recording,
} from '/console/chats.js';
import { useTransferTargets } from '/console/transfer.js';
import { configureRing, ring, ringUntilAnswered, stopRinging, ringChoice, chooseRing } from '/console/ring.js';

const RETRY_MS = 3000;
const RETRY_LATER = new Set(['peer_backlog_full', 'rate_limited', 'internal']);

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @type {HavenSocket | null} */
let socket = null;
/** @type {string | null} */
let resumeToken = null;
/** @type {ReturnType<typeof setInterval> | undefined} */
let wrapTimer;

// ---------------------------------------------------------------- login

async function start() {
  wire();
  const me = await whoAmI();
  if (me) open(me);
  else showLogin();
}

function showLogin() {
  $('desk').hidden = true;
  $('login').hidden = false;
  $('name').focus();
}

/** @param {{name: string, display_name: string, second_factor?: boolean}} me */
async function open(me) {
  keepActive();
  // Two-step login by choice; setting it up ends this login's socket, so
  // the page starts again with the fresh login.
  $('two-step').hidden = Boolean(me.second_factor);
  $('two-step').onclick = async () => {
    if (await setUpSecondFactor(false)) location.reload();
  };
  $('login').hidden = true;
  $('desk').hidden = false;
  $('me').textContent = me.display_name;
  // Not connected yet: say so, and take no status or capacity change the
  // server would never hear (the welcome says what they are).
  $('connection').textContent = 'Connecting…';
  heard(false);
  const settings = await fetch('/api/v1/console').then((r) => (r.ok ? r.json() : {}), () => ({}));
  configureRing(settings);
  useCanned(settings.canned ?? []);
  useBlockChoices(settings.block_hours ?? [], settings.block_reasons ?? []);
  useTransferTargets(settings.topics ?? [], me.name);
  connect();
}

async function logout() {
  // The server closes this login's sockets (4501) when the login ends.
  socket?.stop();
  socket = null;
  await logOut();
  reset();
  showLogin();
}

function reset() {
  resumeToken = null;
  forgetAll();
  $('offers').replaceChildren();
  stopRinging();
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
      if (s !== 'open') heard(false);
    },
    closed: (code) => {
      socket = null;
      heard(false);
      if (code === CLOSE.Unauthorized || code === CLOSE.ResumeFailed) {
        // Logged out elsewhere, or the resume is gone: start afresh.
        reset();
        showLogin();
      } else if (code === CLOSE.Replaced) {
        $('connection').textContent = 'This console was opened in another window.';
      } else if (code === CLOSE.Restarted) {
        // The chats stay on screen, ended, to be read; the login is gone.
        stopRinging();
        $('offers').replaceChildren();
        $('connection').textContent = 'Haven restarted and your chats ended. Reload this page to log in again.';
      } else {
        $('connection').textContent = `Disconnected (${code}). Reload to reconnect.`;
      }
    },
  });
}

/** @param {object} frame */
const send = (frame) => socket?.send(frame) ?? false;

/** Status and capacity can be changed only while the server hears them:
 * from its welcome until the connection drops. A change picked while
 * connecting would otherwise go nowhere, and the welcome would put the
 * old value back.
 * @param {boolean} on */
function heard(on) {
  for (const id of ['status', 'capacity']) /** @type {HTMLInputElement} */ ($(id)).disabled = !on;
}
useSender(send);

/** @param {string} session */
const offerItem = (session) => document.querySelector(`#offers li[data-session="${CSS.escape(session)}"]`);
const offersPending = () => $('offers').children.length > 0;

/** @param {any} msg */
function handle(msg) {
  const chat = msg.session ? chats.get(msg.session) : undefined;
  switch (msg.type) {
    case 'welcome':
      resumeToken = msg.token;
      showStatus({ status: msg.status, capacity: msg.capacity, max_capacity: msg.max_capacity, active: msg.sessions.length });
      heard(true);
      for (const s of msg.sessions) adopt(s);
      flushAll();
      break;
    case 'resumed': {
      resumeToken = msg.token;
      heard(true);
      const held = new Set(msg.sessions.map((/** @type {any} */ s) => s.session));
      for (const c of chats.values()) {
        if (!held.has(c.id) && !c.ended) endChat(c, 'ended while you were away');
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
      offerItem(msg.session)?.remove();
      updateEmpty();
      break;
    case 'session_assigned': {
      offerItem(msg.session)?.remove();
      updateEmpty();
      const mine = adopt(msg);
      if (msg.note) {
        note(mine, `Note from ${msg.from ?? 'a colleague'}: ${msg.note}`);
        receivedNote(mine, msg.from ?? 'a colleague', msg.note);
      } else if (msg.from) {
        note(mine, `${msg.from} handed this chat to you.`);
      }
      select(mine.id);
      ring();
      break;
    }
    case 'message': {
      if (!chat || msg.seq <= chat.lastSeq) break;
      chat.lastSeq = msg.seq;
      append(chat, { kind: 'in', seq: msg.seq, text: msg.text, from: chat.info.nickname });
      typing(chat, false);
      confirmSoon(chat);
      if (!isCurrent(chat) || document.hidden) {
        chat.unread += 1;
        updateTab(chat);
      }
      break;
    }
    case 'ack': {
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
    case 'delivered':
      if (chat) markDelivered(chat, msg.up_to);
      break;
    case 'typing':
      if (chat) typing(chat, msg.active);
      break;
    case 'peer':
      if (chat) {
        chat.info.seeker_connected = msg.connected;
        note(chat, msg.connected ? 'The help-seeker is back.' : 'The help-seeker’s connection dropped.');
        about(chat);
      }
      break;
    case 'participant':
      if (chat) note(chat, `${msg.counsellor} ${msg.joined ? 'joined' : 'left'} the chat.`);
      break;
    case 'hand':
      if (chat) hand(chat, msg.raised, msg.by);
      break;
    case 'observed':
      if (chat) watched(chat, msg.by, msg.active);
      break;
    case 'transcript':
      if (chat) recording(chat, msg.state);
      break;
    case 'whisper':
      if (chat) {
        append(chat, { kind: 'whisper', text: msg.text, from: msg.from });
        if (!isCurrent(chat) || document.hidden) {
          chat.unread += 1;
          updateTab(chat);
        }
      }
      break;
    case 'said':
      if (chat) append(chat, { kind: 'out', text: msg.text, from: msg.from, state: 'sent' });
      break;
    case 'session_ended':
      if (chat) endChat(chat, endText(msg.reason));
      break;
    case 'transfer_failed':
      if (chat) note(chat, `Transfer to ${msg.to} failed (${transferFailure(msg.reason)}). The chat is still yours.`);
      break;
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
    case 'cleared':
      return 'A coordinator cleared the queue; the wait ended.';
    case 'service_restarted':
      return 'Haven restarted and this chat ended. The help-seeker was told and offered a new chat.';
    case 'transferred':
      return 'You handed the chat on.';
    default:
      return 'The chat ended.';
  }
}

/** @param {string} reason */
function transferFailure(reason) {
  return { declined: 'they declined', timed_out: 'no answer in time', gone: 'they went offline' }[reason] ?? reason;
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

/** @param {any} offer */
function showOffer(offer) {
  offerItem(offer.session)?.remove();
  const li = document.createElement('li');
  li.dataset.session = offer.session;
  const text = document.createElement('p');
  const transfer = offer.from ? ` — ${offer.warm ? 'joining' : 'handed over'} from ${offer.from}` : '';
  text.textContent = `${describe(offer)}${transfer}`;
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
  ringUntilAnswered(offersPending);
}

function wire() {
  wireLogin(/** @type {HTMLFormElement} */ ($('login')), $('login-error'), open);
  $('logout').addEventListener('click', logout);
  $('status').addEventListener('change', () =>
    send({ type: 'set_status', status: /** @type {HTMLSelectElement} */ ($('status')).value }),
  );
  $('capacity').addEventListener('change', () => {
    const n = Number(/** @type {HTMLInputElement} */ ($('capacity')).value);
    if (n >= 1) send({ type: 'set_capacity', capacity: n });
  });
  $('ready').addEventListener('click', () => send({ type: 'ready' }));
  const choice = /** @type {HTMLSelectElement} */ ($('ring'));
  choice.value = ringChoice();
  choice.addEventListener('change', () => chooseRing(choice.value));
  $('ring-test').addEventListener('click', ring);
}

start();
