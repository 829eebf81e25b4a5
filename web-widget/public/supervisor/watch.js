// @ts-check
// Watching one chat from the supervisor view: its messages from now on,
// whispering to the counsellor, joining visibly and writing as yourself,
// leaving, and stopping. The counsellor is told of the watch; the
// help-seeker is told only of a visible join.

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @type {EventSource | null} */
let watching = null;
/** The session being watched, if any. @type {string | null} */
export let watchedSession = null;
let nextSay = 1;
/** Keeps ids apart from an earlier page load's. */
const sayPrefix = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
/** @type {() => void} */
let changed = () => {};

/** Watches a session silently: its messages from now on.
 * @param {string} session */
export function watch(session) {
  stopWatching();
  watchedSession = session;
  $('watch').hidden = false;
  $('watch-log').replaceChildren();
  $('watch-error').textContent = '';
  $('join').hidden = false;
  $('leave').hidden = true;
  $('say-form').hidden = true;
  watching = new EventSource(`/api/v1/supervisor/sessions/${encodeURIComponent(session)}/observe`);
  watching.onmessage = (e) => watchItem(JSON.parse(e.data));
  watching.onerror = () => {
    if (watching?.readyState === EventSource.CLOSED || watching?.readyState === EventSource.CONNECTING) {
      watching?.close();
      watchLine('note', '', 'The chat ended, or watching stopped.');
      $('join').hidden = true;
      $('leave').hidden = true;
      $('say-form').hidden = true;
    }
  };
  changed();
}

export function stopWatching() {
  watching?.close();
  watching = null;
  watchedSession = null;
  $('watch').hidden = true;
}

/** @param {string} kind @param {string} who @param {string} text */
function watchLine(kind, who, text) {
  const li = document.createElement('li');
  li.className = kind;
  if (who) {
    const label = document.createElement('span');
    label.className = 'who';
    label.textContent = who;
    li.append(label);
  }
  li.append(text);
  const log = $('watch-log');
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

/** @param {any} item */
function watchItem(item) {
  switch (item.type) {
    case 'watching':
      $('watch-about').textContent = `${item.topic} · ${item.counsellors.join(' + ')}${item.urgent ? ' · urgent' : ''}. You see the chat from now on; the counsellor knows, the help-seeker does not.`;
      break;
    case 'message':
      if (item.from.seeker) watchLine('seeker', 'Help-seeker', item.text);
      else watchLine('counsellor', item.from.counsellor, item.text);
      break;
    case 'whisper':
      watchLine('whisper', `${item.from} whispered (counsellors only)`, item.text);
      break;
    case 'joined':
      watchLine('note', '', `${item.by} joined the chat; the help-seeker was told.`);
      break;
    case 'left':
      watchLine('note', '', `${item.by} left the chat.`);
      break;
    default:
      break;
  }
}

/** @param {string} action @param {object} body */
async function control(action, body) {
  if (!watchedSession) return null;
  $('watch-error').textContent = '';
  const response = await fetch(`/api/v1/supervisor/sessions/${encodeURIComponent(watchedSession)}/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).catch(() => null);
  if (!response?.ok) {
    $('watch-error').textContent = 'That did not go through. Try again.';
    return null;
  }
  return response;
}

/** @param {() => void} onChange called when what is watched changes */
export function wireWatch(onChange) {
  changed = onChange;
  $('stop-watch').addEventListener('click', () => {
    stopWatching();
    changed();
  });
  $('whisper-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const box = /** @type {HTMLTextAreaElement} */ ($('whisper-text'));
    const text = box.value.trim();
    if (text && (await control('whisper', { text }))) box.value = '';
  });
  $('join').addEventListener('click', async () => {
    if (!(await control('join', {}))) return;
    $('join').hidden = true;
    $('leave').hidden = false;
    $('say-form').hidden = false;
    $('say-text').focus();
  });
  $('leave').addEventListener('click', async () => {
    if (!(await control('leave', {}))) return;
    $('join').hidden = false;
    $('leave').hidden = true;
    $('say-form').hidden = true;
  });
  $('say-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const box = /** @type {HTMLTextAreaElement} */ ($('say-text'));
    const text = box.value.trim();
    if (!text) return;
    // A retry after a failure reuses the id, so it is never sent twice.
    const id = box.dataset.id ?? `s-${sayPrefix}-${nextSay++}`;
    box.dataset.id = id;
    if (await control('say', { id, text })) {
      box.value = '';
      delete box.dataset.id;
    }
  });
}
