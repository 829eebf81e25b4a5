// @ts-check
// Tells the server, at most once a minute, that the staff member at this
// console or dashboard is doing something (typing, clicking, scrolling),
// so their login does not end as idle (`auth.idle_timeout`) while they
// work. Nothing is sent while nobody touches the page.

const EVERY_MS = 60_000;
let touched = false;
let timer = 0;

function touch() {
  touched = true;
}

/** Starts reporting activity; stops when the page goes. */
export function keepActive() {
  if (timer) return;
  for (const kind of ['keydown', 'pointerdown', 'input', 'wheel', 'touchstart']) {
    document.addEventListener(kind, touch, { capture: true, passive: true });
  }
  timer = window.setInterval(() => {
    if (!touched) return;
    touched = false;
    fetch('/api/v1/activity', { method: 'POST' }).catch(() => null);
  }, EVERY_MS);
}
