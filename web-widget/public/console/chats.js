// @ts-check
// The console's chats: one tab and pane per session, each with its log
// (with sent and delivered marks), composer, canned responses, private
// note and raised hand.

import { openTransfer } from '/console/transfer.js';
import { BLANK } from '/shared/protocol.js';

const TYPING_IDLE_MS = 4000;
/** Private notes of this browser tab, by session, so a reload keeps them. */
const NOTES = 'haven.console.notes';

/**
 * @typedef {{kind: 'in' | 'out' | 'note' | 'whisper', text: string, id?: string, seq?: number,
 *   from?: string, state?: 'sending' | 'sent' | 'delivered' | 'failed'}} Entry
 * @typedef {{id: string, info: any, lastSeq: number, delivered: number,
 *   outbox: {id: string, text: string}[], log: Entry[], unread: number, ended: boolean,
 *   typingSent: boolean, typingTimer?: ReturnType<typeof setTimeout>,
 *   receivedTimer?: ReturnType<typeof setTimeout>,
 *   tab: HTMLButtonElement, pane: HTMLElement}} Chat
 * @typedef {{title: string, text: string, language?: string, topics?: string[]}} Canned
 */

/** @type {Map<string, Chat>} */
export const chats = new Map();
/** @type {string | null} */
let current = null;
let nextId = 1;
/** Keeps this page's message ids apart from those of an earlier load: a
 * reused id would be taken for a retry of the earlier message. */
const idPrefix = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
/** @type {(frame: object) => boolean} */
let send = () => false;
/** @type {Canned[]} */
let canned = [];

/** @param {(frame: object) => boolean} sender */
export function useSender(sender) {
  send = sender;
}

/** @param {Canned[]} list */
export function useCanned(list) {
  canned = list;
  for (const chat of chats.values()) fillCanned(chat);
}

/** Hours a block lasts, by choice. @param {number} hours */
const forHow = (hours) => (hours % 24 === 0 ? `${hours / 24} day${hours === 24 ? '' : 's'}` : `${hours} hours`);

/** The cool-downs the helpline offers for ending an abusive chat.
 * @param {number[]} hours @param {string[]} reasons */
export function useBlockChoices(hours, reasons) {
  const fill = (/** @type {string} */ id, /** @type {[string, string][]} */ items) =>
    $(id).replaceChildren(
      ...items.map(([value, text]) => {
        const option = document.createElement('option');
        option.value = value;
        option.textContent = text;
        return option;
      }),
    );
  fill('end-block-hours', hours.map((h) => [String(h), forHow(h)]));
  fill('end-block-reason', reasons.map((r) => [r, r.replace(/[_-]/g, ' ')]));
  const box = /** @type {HTMLInputElement} */ ($('end-block'));
  box.onchange = () => {
    /** @type {HTMLFieldSetElement} */ ($('end-block-choices')).disabled = !box.checked;
  };
}

/** Asks whether to end `c`, and with a block; sends `end` when so.
 * @param {Chat} c */
function askToEnd(c) {
  const dialog = /** @type {HTMLDialogElement} */ ($('end'));
  const box = /** @type {HTMLInputElement} */ ($('end-block'));
  box.checked = false;
  /** @type {HTMLFieldSetElement} */ ($('end-block-choices')).disabled = true;
  dialog.onclose = () => {
    if (dialog.returnValue !== 'end' || c.ended) return;
    /** @type {Record<string, unknown>} */
    const frame = { type: 'end', session: c.id };
    if (box.checked) {
      frame.block = {
        hours: Number(/** @type {HTMLSelectElement} */ ($('end-block-hours')).value),
        reason: /** @type {HTMLSelectElement} */ ($('end-block-reason')).value,
      };
    }
    send(frame);
  };
  dialog.returnValue = '';
  dialog.showModal();
}

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @template {Element} T @param {Chat} chat @param {string} selector */
const part = (chat, selector) => /** @type {T} */ (/** @type {unknown} */ (chat.pane.querySelector(selector)));

/** @param {number} secs */
export function minutes(secs) {
  return secs < 60 ? `${secs}s` : `${Math.floor(secs / 60)} min`;
}

/** @param {any} info */
export function describe(info) {
  const parts = [info.nickname || 'Anonymous', info.topic];
  if (info.language) parts.push(info.language);
  if (info.urgent) parts.push('URGENT');
  if (info.returning) parts.push('returning');
  parts.push(`waited ${minutes(info.waited_secs ?? 0)}`);
  const recording = RECORDING[info.transcript ?? 'off'];
  if (recording) parts.push(recording);
  return parts.join(' · ');
}

/** How a chat's transcript is shown, by its state. */
const RECORDING = /** @type {Record<string, string>} */ ({
  on: 'recorded (encrypted)',
  declined: 'not recorded: the help-seeker said no',
  stopped: 'recording stopped',
});

/** The broker could not write a chat's transcript any more.
 * @param {Chat} chat @param {string} state */
export function recording(chat, state) {
  chat.info.transcript = state;
  if (state === 'stopped') {
    note(chat, 'The transcript of this chat stopped (the server could not write it). Nothing from here on is recorded; the chat itself goes on.');
  }
  about(chat);
}

/** Creates the chat's tab and pane, or updates one already shown.
 * @param {any} info */
export function adopt(info) {
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
  wirePane(chat);
  chats.set(chat.id, chat);
  $('tabs').append(tab);
  $('panes').append(pane);
  about(chat);
  fillCanned(chat);
  part(chat, '.private').value = loadNotes()[chat.id] ?? '';
  updateTab(chat);
  if (!current) select(chat.id);
  else pane.hidden = true;
  updateEmpty();
  return chat;
}

/** @param {Chat} c */
function wirePane(c) {
  c.tab.onclick = () => select(c.id);
  const box = /** @type {HTMLTextAreaElement} */ (part(c, '.message'));
  const form = /** @type {HTMLFormElement} */ (part(c, 'form'));
  form.onsubmit = (event) => {
    event.preventDefault();
    const text = box.value.trim();
    if (BLANK.test(text) || c.ended) return;
    box.value = '';
    stopTyping(c);
    const id = `c-${idPrefix}-${nextId++}`;
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
  const pick = /** @type {HTMLSelectElement} */ (part(c, '.canned'));
  pick.onchange = () => {
    const entry = canned[Number(pick.value)];
    pick.value = '';
    if (!entry || c.ended) return;
    // Inserted where the cursor is, to be edited before sending.
    const at = box.selectionStart ?? box.value.length;
    box.setRangeText(entry.text, at, box.selectionEnd ?? at, 'end');
    box.focus();
  };
  const priv = /** @type {HTMLTextAreaElement} */ (part(c, '.private'));
  priv.oninput = () => saveNote(c.id, priv.value);
  part(c, '.hand').onclick = () =>
    send({ type: 'raise_hand', session: c.id, raised: !c.info.hand_raised });
  part(c, '.transfer').onclick = () => openTransfer(c, priv.value, send, (text) => note(c, text));
  part(c, '.end').onclick = () => {
    if (c.ended) {
      close(c);
    } else {
      askToEnd(c);
    }
  };
}

/** Lists the canned responses for this chat's topic, those in its
 * language first.
 * @param {Chat} chat */
function fillCanned(chat) {
  const pick = /** @type {HTMLSelectElement} */ (part(chat, '.canned'));
  const language = String(chat.info.language ?? '').split('-')[0].toLowerCase();
  const fits = canned
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => !c.topics?.length || c.topics.includes(chat.info.topic));
  const mine = (/** @type {Canned} */ c) => Boolean(language) && c.language?.toLowerCase() === language;
  fits.sort((a, b) => Number(mine(b.c)) - Number(mine(a.c)));
  const first = /** @type {HTMLOptionElement} */ (pick.firstElementChild);
  pick.replaceChildren(
    first,
    ...fits.map(({ c, i }) => {
      const option = document.createElement('option');
      option.value = String(i);
      option.textContent = c.language ? `${c.title} (${c.language})` : c.title;
      return option;
    }),
  );
  pick.parentElement?.toggleAttribute('hidden', fits.length === 0);
}

/** @returns {Record<string, string>} */
function loadNotes() {
  try {
    return JSON.parse(sessionStorage.getItem(NOTES) ?? '{}');
  } catch {
    return {};
  }
}

/** @param {string} session @param {string | null} text */
function saveNote(session, text) {
  const notes = loadNotes();
  if (text) notes[session] = text;
  else delete notes[session];
  sessionStorage.setItem(NOTES, JSON.stringify(notes));
}

/** Adds a colleague's handover note to the private note.
 * @param {Chat} chat @param {string} from @param {string} text */
export function receivedNote(chat, from, text) {
  const priv = /** @type {HTMLTextAreaElement} */ (part(chat, '.private'));
  priv.value = `From ${from}: ${text}${priv.value ? `\n\n${priv.value}` : ''}`;
  saveNote(chat.id, priv.value);
}

/** @param {Chat} chat @param {boolean} raised @param {string} by */
export function hand(chat, raised, by) {
  chat.info.hand_raised = raised;
  note(chat, raised ? `${by} raised a hand: a supervisor is asked to look.` : `${by} lowered the hand.`);
  about(chat);
  updateTab(chat);
}

/** A supervisor started or stopped watching.
 * @param {Chat} chat @param {string} by @param {boolean} active */
export function watched(chat, by, active) {
  chat.info.watched_by = active ? by : null;
  note(chat, active ? `${by} (supervisor) is watching this chat. The help-seeker is not told.` : `${by} stopped watching.`);
  about(chat);
}

/** @param {Chat} chat */
export function about(chat) {
  const online = chat.info.seeker_connected === false ? ' · connection lost' : '';
  const box = part(chat, '.about');
  const watcher = chat.info.watched_by ? ` · watched by ${chat.info.watched_by}` : '';
  box.textContent = describe(chat.info) + online + watcher;
  box.classList.toggle('urgent', Boolean(chat.info.urgent));
  const button = part(chat, '.hand');
  const raised = Boolean(chat.info.hand_raised);
  button.textContent = raised ? 'Lower hand' : 'Raise hand';
  button.setAttribute('aria-pressed', String(raised));
  button.classList.toggle('raised', raised);
}

/** @param {Chat} chat */
export function updateTab(chat) {
  chat.tab.textContent = chat.info.nickname || 'Anonymous';
  if (chat.info.hand_raised) {
    const flag = document.createElement('span');
    flag.className = 'hand-flag';
    flag.textContent = 'hand up';
    chat.tab.append(' ', flag);
  }
  chat.tab.classList.toggle('urgent', Boolean(chat.info.urgent));
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
export function select(id) {
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

/** @param {Chat} chat */
export function isCurrent(chat) {
  return current === chat.id;
}

/** @param {Chat} chat @param {Entry} entry */
export function append(chat, entry) {
  chat.log.push(entry);
  const log = part(chat, '.log');
  log.append(entryNode(entry));
  log.scrollTop = log.scrollHeight;
}

/** @param {Chat} chat @param {string} text */
export function note(chat, text) {
  append(chat, { kind: 'note', text });
}

/** @param {Entry} entry */
function entryNode(entry) {
  const li = document.createElement('li');
  li.className = `msg ${entry.kind}`;
  if (entry.kind === 'whisper') {
    const who = document.createElement('span');
    who.className = 'whisper-from';
    who.textContent = `${entry.from} (supervisor) whispers — only counsellors see this:`;
    li.append(who);
  } else if (entry.kind === 'out' && entry.from) {
    const who = document.createElement('span');
    who.className = 'whisper-from';
    who.textContent = entry.from;
    li.append(who);
  }
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
export function redraw(chat) {
  part(chat, '.log').replaceChildren(...chat.log.map(entryNode));
}

/** @param {Chat} chat @param {number} upTo */
export function markDelivered(chat, upTo) {
  chat.delivered = Math.max(chat.delivered, upTo);
  for (const e of chat.log) {
    if (e.kind === 'out' && e.seq !== undefined && e.seq <= chat.delivered) e.state = 'delivered';
  }
  redraw(chat);
}

/** @param {Chat} chat @param {boolean} active */
export function typing(chat, active) {
  const line = part(chat, '.typing');
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
export function confirmSoon(chat) {
  clearTimeout(chat.receivedTimer);
  chat.receivedTimer = setTimeout(() => send({ type: 'received', session: chat.id, up_to: chat.lastSeq }), 200);
}

/** @param {Chat} chat */
export function flush(chat) {
  for (const m of chat.outbox) send({ type: 'send', session: chat.id, id: m.id, text: m.text });
}

export function flushAll() {
  for (const chat of chats.values()) {
    if (!chat.ended) flush(chat);
  }
}

/** @param {Chat} chat @param {string} why */
export function endChat(chat, why) {
  chat.ended = true;
  note(chat, why);
  typing(chat, false);
  for (const selector of ['.message', '.canned', '.hand', '.transfer']) {
    /** @type {HTMLInputElement} */ (part(chat, selector)).disabled = true;
  }
  part(chat, '.end').textContent = 'Close tab';
  updateTab(chat);
}

/** @param {Chat} chat */
function close(chat) {
  chat.tab.remove();
  chat.pane.remove();
  chats.delete(chat.id);
  saveNote(chat.id, null);
  if (current === chat.id) {
    current = null;
    const next = chats.keys().next();
    if (!next.done) select(next.value);
  }
  updateEmpty();
}

/** Forgets every chat and note (logout, or the login ended elsewhere). */
export function forgetAll() {
  for (const chat of chats.values()) {
    chat.tab.remove();
    chat.pane.remove();
  }
  chats.clear();
  current = null;
  sessionStorage.removeItem(NOTES);
  updateEmpty();
}

export function updateEmpty() {
  $('no-chats').hidden = chats.size > 0;
  $('no-offers').hidden = $('offers').children.length > 0;
}
