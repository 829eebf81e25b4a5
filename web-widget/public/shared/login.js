// @ts-check
// Staff login for the console and the supervisor view. The login is the
// HttpOnly cookie the server sets, so no script holds it. A right password
// for an account with a second factor is followed, in the same form, by
// the code from the authenticator app; then whatever the login must do
// first (a new password, setting up a second factor) before `done`.

import { firstSteps } from '/shared/account.js';

/** The form's second step: the app's code, shown in place of the password.
 * @param {HTMLFormElement} form */
function codeStep(form) {
  let code = /** @type {HTMLInputElement | null} */ (form.querySelector('#code'));
  if (!code) {
    const label = document.createElement('label');
    label.htmlFor = 'code';
    label.textContent = 'Code from your authenticator app (or a recovery code)';
    code = document.createElement('input');
    code.id = 'code';
    code.name = 'code';
    code.autocomplete = 'one-time-code';
    code.required = true;
    const submit = /** @type {HTMLElement} */ (form.querySelector('button[type=submit]'));
    submit.before(label, code);
  }
  for (const id of ['name', 'password']) {
    const input = /** @type {HTMLInputElement} */ (form.querySelector(`#${id}`));
    input.required = false;
    input.hidden = true;
    /** @type {HTMLElement} */ (form.querySelector(`label[for=${id}]`)).hidden = true;
  }
  code.hidden = false;
  /** @type {HTMLElement} */ (form.querySelector('label[for=code]')).hidden = false;
  code.value = '';
  code.focus();
}

/** Back to name and password. @param {HTMLFormElement} form */
function passwordStep(form) {
  for (const id of ['name', 'password']) {
    const input = /** @type {HTMLInputElement} */ (form.querySelector(`#${id}`));
    input.required = true;
    input.hidden = false;
    /** @type {HTMLElement} */ (form.querySelector(`label[for=${id}]`)).hidden = false;
  }
  const code = /** @type {HTMLInputElement | null} */ (form.querySelector('#code'));
  if (code) {
    code.hidden = true;
    code.required = false;
    /** @type {HTMLElement} */ (form.querySelector('label[for=code]')).hidden = true;
  }
}

/** @param {Response | null} response @param {any} problem */
function problemText(response, problem) {
  const wait = Number(response?.headers.get('retry-after')) || 0;
  const later = wait ? ` Try again in ${wait >= 90 ? `${Math.ceil(wait / 60)} minutes` : `${wait} seconds`}.` : ' Try again later.';
  switch (problem.code) {
    case 'too_many_failures':
      return `Too many failed attempts from this device.${later}`;
    case 'rate_limited':
      return `Too many logins from this network.${later}`;
    case 'busy':
      return 'The server is busy. Try again in a moment.';
    case 'wrong_code':
      return 'That code is not right. Try the newest one from the app.';
    case 'unauthorized':
      return 'Wrong name or password.';
    default:
      return 'Logging in failed. Try again.';
  }
}

/**
 * Wires a login form (`name`, `password`, an error element) to
 * POST /api/v1/login (and /api/v1/login/second-factor); calls `done` with
 * the account once the login may do everything.
 * @param {HTMLFormElement} form
 * @param {HTMLElement} error
 * @param {(me: any) => void} done
 */
export function wireLogin(form, error, done) {
  let challenge = '';
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const request = challenge
      ? { path: '/api/v1/login/second-factor', body: { challenge, code: data.get('code') } }
      : { path: '/api/v1/login', body: { name: data.get('name'), password: data.get('password') } };
    const response = await fetch(request.path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request.body),
    }).catch(() => null);
    const password = /** @type {HTMLInputElement | null} */ (form.elements.namedItem('password'));
    if (password) password.value = '';
    if (response?.ok) {
      error.textContent = '';
      const me = await response.json();
      if (me.second_factor === 'totp' && me.challenge) {
        challenge = me.challenge;
        codeStep(form);
        return;
      }
      challenge = '';
      passwordStep(form);
      done(await firstSteps(me));
      return;
    }
    const problem = response ? await response.json().catch(() => ({})) : {};
    // A challenge that is spent or expired: start again with the password.
    if (challenge && problem.code !== 'wrong_code') {
      challenge = '';
      passwordStep(form);
    }
    error.textContent = problemText(response, problem);
  });
}

/** The logged-in account (after whatever it must do first), or null. */
export async function whoAmI() {
  const me = await fetch('/api/v1/me').catch(() => null);
  return me?.ok ? firstSteps(await me.json()) : null;
}

/** Ends the login on the server (which closes its sockets). */
export async function logOut() {
  await fetch('/api/v1/logout', { method: 'POST' }).catch(() => null);
}
