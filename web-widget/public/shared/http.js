// @ts-check
// The one way the staff pages post JSON to Haven.

/** POSTs `body` as JSON to `path`; null when the network failed.
 * @param {string} path @param {object} [body] */
export function postJson(path, body = {}) {
  return fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).catch(() => null);
}
