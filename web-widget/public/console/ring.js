// @ts-check
// The ring for a new offer or chat: unmissable, but the helpline picks the
// sound (config `console.ring`) and each counsellor may pick another for
// their own browser. While an offer waits, it rings again every
// `ring_repeat_secs` and the tab title flashes, so a counsellor in another
// window still notices.

import { tones } from '/shared/tone.js';

/** @type {Record<string, [number[], number, number]>} frequencies, volume, gap */
const SOUNDS = {
  bell: [[880, 660, 880], 0.2, 0.2],
  chime: [[523, 784], 0.15, 0.3],
  beep: [[1000, 1000, 1000, 1000], 0.15, 0.18],
};

/** This browser's own choice; staff devices only, never the widget. */
const CHOICE = 'haven.console.ring';

let helplineDefault = 'bell';
let repeatMs = 10000;
/** @type {ReturnType<typeof setInterval> | undefined} */
let repeater;
/** @type {ReturnType<typeof setInterval> | undefined} */
let flasher;
const title = document.title;

/** @param {{ring?: string, ring_repeat_secs?: number}} settings */
export function configureRing(settings) {
  if (settings.ring) helplineDefault = settings.ring;
  if (typeof settings.ring_repeat_secs === 'number') repeatMs = settings.ring_repeat_secs * 1000;
}

/** The sound in use: this browser's choice, else the helpline's. */
export function ringChoice() {
  return localStorage.getItem(CHOICE) ?? '';
}

/** @param {string} choice '' for the helpline's default */
export function chooseRing(choice) {
  if (choice) localStorage.setItem(CHOICE, choice);
  else localStorage.removeItem(CHOICE);
}

/** Rings once with the sound in use. */
export function ring() {
  const sound = SOUNDS[ringChoice() || helplineDefault];
  if (sound) tones(...sound);
  document.body.dataset.rang = String(Number(document.body.dataset.rang ?? 0) + 1);
}

/**
 * Keeps ringing and flashing the title while `pending()` says something
 * waits for an answer; stops by itself when nothing does.
 * @param {() => boolean} pending
 */
export function ringUntilAnswered(pending) {
  ring();
  if (!flasher) {
    let on = false;
    flasher = setInterval(() => {
      on = !on;
      document.title = on ? `● New chat – ${title}` : title;
      if (!pending()) stopRinging();
    }, 1000);
  }
  if (!repeater && repeatMs > 0) {
    repeater = setInterval(() => (pending() ? ring() : stopRinging()), repeatMs);
  }
}

export function stopRinging() {
  clearInterval(repeater);
  clearInterval(flasher);
  repeater = undefined;
  flasher = undefined;
  document.title = title;
}
