// @ts-check
// What a coordinator does about abuse, in the supervisor view: the blocks
// counsellors put on abusive help-seekers (listed, and lifted early),
// clearing a queue of a suspected flood of fake help-seekers, and ending a
// staff member's logins. Each is in the audit log on the server.

import { fill } from '/supervisor/table.js';
import { postJson as post } from '/shared/http.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {number} ms */
function when(ms) {
  return new Date(ms).toLocaleString(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}


/** Shows the blocks in force. */
export async function loadBlocks() {
  const response = await fetch('/api/v1/supervisor/blocks').catch(() => null);
  if (!response?.ok) return;
  /** @type {{blocks: {id: string, by: string, reason: string, topic: string, at: number, until: number}[]}} */
  const { blocks } = await response.json();
  fill(
    $('blocks'),
    blocks.map((b) => ({
      key: b.id,
      cells: [
        b.reason.replace(/[_-]/g, ' '),
        b.topic,
        b.by,
        when(b.at),
        when(b.until),
        {
          button: 'Lift',
          label: `Lift the block set by ${b.by} for ${b.reason}`,
          onclick: () => lift(b.id),
        },
      ],
    })),
  );
  $('no-blocks').hidden = blocks.length > 0;
}

/** @param {string} id */
async function lift(id) {
  if (!confirm('Lift this block? The help-seeker can start a new chat at once.')) return;
  await post(`/api/v1/supervisor/blocks/${encodeURIComponent(id)}/lift`);
  await loadBlocks();
}

/** Ends the waits of the silent newcomers in `topic` (a suspected flood).
 * Returns how many, or null when it was not done.
 * @param {string} topic */
export async function clearQueue(topic) {
  const ask =
    `Clear ${topic} of everyone who arrived in the last 10 minutes and has not written anything? ` +
    'They are told the queue was cleared and may start again; those who wrote, or came back with a code, keep their place.';
  if (!confirm(ask)) return null;
  const response = await post(`/api/v1/supervisor/topics/${encodeURIComponent(topic)}/clear`, { within_secs: 600 });
  if (!response?.ok) return null;
  return (await response.json()).cleared;
}

/** Ends every login of a staff member, everywhere.
 * @param {string} name account name @param {string} shown display name */
export async function endLogins(name, shown) {
  if (!confirm(`End every login of ${shown}? Their console closes at once and their chats go back to the front of the queue.`)) return;
  const response = await post(`/api/v1/supervisor/accounts/${encodeURIComponent(name)}/logout`);
  if (!response?.ok) alert(response?.status === 403 ? 'You may not end this account’s logins.' : 'That did not work. Try again.');
}
