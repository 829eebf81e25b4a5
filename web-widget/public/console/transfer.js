// @ts-check
// The transfer dialog: hand a chat to a colleague who is online (cold, or
// warm: staying until they have taken over) or back to a queue, with a
// note for whoever takes over. The note starts as the private note.

/** @param {string} id */
const $ = (id) => /** @type {any} */ (document.getElementById(id));

/** @type {string[]} */
let topics = [];
let me = '';

/** @param {string[]} list @param {string} myName */
export function useTransferTargets(list, myName) {
  topics = list;
  me = myName;
}

/**
 * @param {{id: string, info: any}} chat
 * @param {string} privateNote
 * @param {(frame: object) => boolean} send
 * @param {(text: string) => void} say adds a line to the chat's log
 */
export async function openTransfer(chat, privateNote, send, say) {
  const dialog = /** @type {HTMLDialogElement} */ ($('transfer'));
  const colleague = /** @type {HTMLSelectElement} */ ($('transfer-colleague'));
  const topic = /** @type {HTMLSelectElement} */ ($('transfer-topic'));
  const response = await fetch('/api/v1/colleagues').catch(() => null);
  /** @type {any[]} */
  const list = response?.ok ? (await response.json()).colleagues : [];
  const others = list.filter((c) => c.name !== me);
  colleague.replaceChildren(
    ...others.map((c) => {
      const option = document.createElement('option');
      option.value = c.name;
      const state = c.status === 'wrap_up' ? 'wrap-up' : c.status;
      option.textContent = `${c.display_name} — ${state}, ${c.active} of ${c.capacity}`;
      return option;
    }),
  );
  $('no-colleagues').hidden = others.length > 0;
  topic.replaceChildren(
    ...topics.map((t) => {
      const option = document.createElement('option');
      option.value = t;
      option.textContent = t;
      option.selected = t === chat.info.topic;
      return option;
    }),
  );
  const toColleague = /** @type {HTMLInputElement} */ (document.querySelector('#transfer-form input[value=counsellor]'));
  const toTopic = /** @type {HTMLInputElement} */ (document.querySelector('#transfer-form input[value=topic]'));
  toColleague.checked = others.length > 0;
  toTopic.checked = others.length === 0;
  toColleague.disabled = others.length === 0;
  $('transfer-warm').checked = false;
  $('transfer-note').value = privateNote;
  dialog.onclose = () => {
    if (dialog.returnValue !== 'go') return;
    const note = String($('transfer-note').value).trim() || undefined;
    if (toColleague.checked && colleague.value) {
      const name = colleague.selectedOptions[0]?.textContent?.split(' — ')[0] ?? colleague.value;
      say(`Asked ${name} to take over; waiting for their answer.`);
      send({
        type: 'transfer',
        session: chat.id,
        to_counsellor: colleague.value,
        warm: Boolean($('transfer-warm').checked),
        note,
      });
    } else if (toTopic.checked && topic.value) {
      say(`Handing the chat back to the ${topic.value} queue.`);
      send({ type: 'transfer', session: chat.id, to_topic: topic.value, note });
    }
  };
  dialog.returnValue = '';
  dialog.showModal();
}
