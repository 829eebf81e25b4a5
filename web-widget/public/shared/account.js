// @ts-check
// A staff member's own account, in the console and the supervisor view:
// what a login must do before anything else (change the first start's
// password, set up a second factor its role requires), and setting up a
// second factor by choice. Each step is a modal dialog built here, so both
// pages share it.

import { postJson } from '/shared/http.js';

/** @param {string} tag @param {Record<string, string>} [attrs] @param {(Node | string)[]} [children] */
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/** Posts, and reads the answer's JSON. @param {string} path @param {object} body */
async function post(path, body) {
  const response = await postJson(path, body);
  const json = response ? await response.json().catch(() => ({})) : {};
  return { ok: Boolean(response?.ok), json };
}

/**
 * Shows a modal form and resolves with what `submit` returns once it
 * returns something; until then, its message is shown.
 * @template T
 * @param {string} title
 * @param {(Node | string)[]} body
 * @param {string} action
 * @param {(form: HTMLFormElement) => Promise<{value?: T, error?: string}>} submit
 * @returns {Promise<T>}
 */
function modal(title, body, action, submit) {
  return new Promise((resolve) => {
    const error = el('p', { class: 'error', role: 'alert' });
    const button = el('button', { type: 'submit', class: 'primary' }, [action]);
    const form = /** @type {HTMLFormElement} */ (el('form', {}, [el('h2', { id: 'account-title' }, [title]), ...body, error, el('div', { class: 'actions' }, [button])]));
    const dialog = /** @type {HTMLDialogElement} */ (el('dialog', { 'aria-labelledby': 'account-title', class: 'account' }, [form]));
    // The step must be taken: Escape does not dismiss it.
    dialog.addEventListener('cancel', (event) => event.preventDefault());
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      /** @type {HTMLButtonElement} */ (button).disabled = true;
      const outcome = await submit(form);
      /** @type {HTMLButtonElement} */ (button).disabled = false;
      if (outcome.error !== undefined) {
        error.textContent = outcome.error;
        return;
      }
      dialog.close();
      dialog.remove();
      resolve(/** @type {T} */ (outcome.value));
    });
    document.body.append(dialog);
    dialog.showModal();
    /** @type {HTMLElement | null} */ (form.querySelector('input'))?.focus();
  });
}

/** A labelled input. @param {string} id @param {string} label @param {Record<string, string>} attrs */
function field(id, label, attrs) {
  return [el('label', { for: id }, [label]), el('input', { id, name: id, required: '', ...attrs })];
}

/** @param {HTMLFormElement} form @param {string} name */
const value = (form, name) => String(new FormData(form).get(name) ?? '');

/** Changes the password (the first start's, or by choice); resolves with
 * the fresh login. */
export function changePassword() {
  return modal(
    'Choose a new password',
    [
      el('p', {}, ['The password you logged in with was made for the first start and must be changed before you go on. Use at least 12 characters: a few random words work well.']),
      ...field('current', 'Current password', { type: 'password', autocomplete: 'current-password' }),
      ...field('new', 'New password', { type: 'password', autocomplete: 'new-password', minlength: '12' }),
      ...field('again', 'New password again', { type: 'password', autocomplete: 'new-password', minlength: '12' }),
    ],
    'Change password',
    async (form) => {
      if (value(form, 'new') !== value(form, 'again')) return { error: 'The new passwords differ.' };
      const { ok, json } = await post('/api/v1/account/password', { current: value(form, 'current'), new: value(form, 'new') });
      if (ok) return { value: json };
      if (json.code === 'wrong_password') return { error: 'The current password is not right.' };
      return { error: json.detail ?? 'That did not work. Try again.' };
    },
  );
}

/** Sets up a second factor: a QR code for the app, the first code, then
 * the recovery codes shown once. Resolves with the fresh login.
 * @param {boolean} required */
export async function setUpSecondFactor(required) {
  const started = await post('/api/v1/account/second-factor/start', {});
  if (!started.ok) return null;
  const qr = el('img', {
    src: `data:image/svg+xml;base64,${btoa(started.json.qr_svg)}`,
    alt: `QR code for your authenticator app. Or type this key: ${started.json.secret}`,
    width: '200',
    height: '200',
  });
  const me = await modal(
    'Set up two-step login',
    [
      el('p', {}, [
        required
          ? 'Your role logs in with a second step: a code from an authenticator app on your phone. Set it up now.'
          : 'From now on you will log in with your password and a code from an authenticator app on your phone.',
      ]),
      el('p', {}, ['Scan this code with the app (such as FreeOTP, Aegis or Google Authenticator), or type the key below it.']),
      qr,
      el('p', { class: 'secret' }, [el('code', {}, [started.json.secret])]),
      ...field('code', 'The six-digit code the app shows', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9 ]{6,7}' }),
    ],
    'Confirm',
    async (form) => {
      const { ok, json } = await post('/api/v1/account/second-factor/confirm', { code: value(form, 'code') });
      if (ok) return { value: json };
      return { error: json.code === 'wrong_code' ? 'That code is not right. Try the newest one.' : 'That did not work. Try again.' };
    },
  );
  await modal(
    'Your recovery codes',
    [
      el('p', {}, ['If you lose your phone, each of these codes lets you in once instead of the app. Write them down and keep them somewhere safe. They are shown only now.']),
      el('ul', { class: 'recovery-codes' }, (me.recovery_codes ?? []).map((/** @type {string} */ c) => el('li', {}, [el('code', {}, [c])]))),
    ],
    'I have written them down',
    async () => ({ value: null }),
  );
  return me;
}

/** Does what the login must do first, if anything; resolves with the
 * login as it then is.
 * @param {any} me */
export async function firstSteps(me) {
  let now = me;
  if (now.change_password) now = await changePassword();
  if (now.enrol_second_factor) now = (await setUpSecondFactor(true)) ?? now;
  return now;
}
