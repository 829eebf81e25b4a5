// @ts-check
// Staff login for the console and the supervisor view. The login is the
// HttpOnly cookie the server sets, so no script holds it.

/**
 * Wires a login form (`name`, `password`, an error element) to
 * POST /api/v1/login; calls `done` with the account on success.
 * @param {HTMLFormElement} form
 * @param {HTMLElement} error
 * @param {(me: any) => void} done
 */
export function wireLogin(form, error, done) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const response = await fetch('/api/v1/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: data.get('name'), password: data.get('password') }),
    }).catch(() => null);
    const password = /** @type {HTMLInputElement | null} */ (form.elements.namedItem('password'));
    if (password) password.value = '';
    if (response?.ok) {
      error.textContent = '';
      done(await response.json());
      return;
    }
    const problem = response ? await response.json().catch(() => ({})) : {};
    const wait = Number(response?.headers.get('retry-after')) || 0;
    const later = wait ? ` Try again in ${wait >= 90 ? `${Math.ceil(wait / 60)} minutes` : `${wait} seconds`}.` : ' Try again later.';
    error.textContent =
      problem.code === 'too_many_failures'
        ? `Too many failed attempts from this device.${later}`
        : problem.code === 'rate_limited'
          ? `Too many logins from this network.${later}`
          : problem.code === 'busy'
            ? 'The server is busy. Try again in a moment.'
            : problem.code === 'unauthorized'
              ? 'Wrong name or password.'
              : 'Logging in failed. Try again.';
  });
}

/** The logged-in account, or null. */
export async function whoAmI() {
  const me = await fetch('/api/v1/me').catch(() => null);
  return me?.ok ? me.json() : null;
}

/** Ends the login on the server (which closes its sockets). */
export async function logOut() {
  await fetch('/api/v1/logout', { method: 'POST' }).catch(() => null);
}
