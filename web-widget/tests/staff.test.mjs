// The widget's host page never gains staff powers. A helpline's own site
// (hulp.example.test) embeds the widget and sits on the same site as
// Haven (chat.example.test), so a supervisor's SameSite=Strict login
// cookie travels with its requests. A script on that page must still get
// no counsellor socket and no staff POST, while the widget on it works.
// Both host names are mapped to loopback inside Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startHaven, launch, openWidget, freePort } from './harness.mjs';

let haven;
let browser;
let site;
let havenUrl;
let siteUrl;

before(async () => {
  const sitePort = await freePort();
  siteUrl = `http://hulp.example.test:${sitePort}`;
  // Plain HTTP on a name that is not localhost: the cookie cannot be
  // Secure here (it is by default, as __Host-haven_auth).
  haven = await startHaven({
    extraOrigins: [siteUrl],
    hosts: ['chat.example.test'],
    toml: '[auth]\nsecure_cookie = false\n',
  });
  havenUrl = `http://chat.example.test:${haven.port}`;
  site = createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><html lang="nl"><head><title>Hulplijn</title></head><body>
<h1>Hulplijn</h1>
<script src="${havenUrl}/widget.js" async data-lang="nl"></script>
</body></html>`);
  });
  await new Promise((r) => site.listen(sitePort, '127.0.0.1', r));
  browser = await launch({ args: ['--host-resolver-rules=MAP *.example.test 127.0.0.1'] });
});

after(async () => {
  await browser?.close();
  site?.close();
  await haven?.stop();
});

/** Whether the topic is paused, read from Haven's own supervisor page. */
async function paused(dashboard) {
  return dashboard.evaluate(async () => {
    const response = await fetch('/api/v1/topics', { credentials: 'same-origin' });
    const { topics } = await response.json();
    return topics.some((t) => t.paused);
  });
}

test('a page that embeds the widget gets no counsellor socket and no staff POST', async () => {
  const password = haven.account('coord', { role: 'supervisor', display: 'Coco' });
  const context = await browser.newContext();

  // The supervisor logs in on Haven's own origin: the cookie is set for
  // chat.example.test.
  const dashboard = await context.newPage();
  await dashboard.goto(`${havenUrl}/supervisor/`);
  await dashboard.fill('#name', 'coord');
  await dashboard.fill('#password', password);
  await dashboard.click('#login button[type=submit]');
  await dashboard.locator('#board:not([hidden])').waitFor();
  const cookies = await context.cookies(havenUrl);
  assert.ok(cookies.some((c) => c.name.endsWith('haven_auth') && c.sameSite === 'Strict'));
  assert.equal(await paused(dashboard), false);

  // The helpline's page, in the same browser: the widget works.
  const page = await context.newPage();
  await page.goto(`${siteUrl}/`);
  const chat = await openWidget(page);
  await chat.fill('#nickname', 'Kim');
  await chat.click('#prechat button[type=submit]');
  await chat.locator('#waiting:not([hidden])').waitFor();

  // A script on it tries the supervisor's powers.
  const tried = await page.evaluate(async (base) => {
    const socket = await new Promise((resolve) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/ws/counsellor`, 'haven.v1');
      const seen = [];
      const done = (how) => resolve({ how, seen });
      ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', protocol: 1 }));
      ws.onmessage = (e) => seen.push(JSON.parse(e.data).type);
      ws.onclose = (e) => done(`closed ${e.code}`);
      setTimeout(() => done('still open'), 3000);
    });
    const posts = [];
    for (const [path, body] of [
      ['/api/v1/topics/algemeen/pause', JSON.stringify({ message: 'hijacked' })],
      ['/api/v1/logout', ''],
    ]) {
      // no-cors: the page cannot read the answer, but the request goes out
      // with the cookie.
      await fetch(`${base}${path}`, { method: 'POST', mode: 'no-cors', credentials: 'include', body });
      posts.push(path);
    }
    let me = 'unreadable';
    try {
      const r = await fetch(`${base}/api/v1/me`, { credentials: 'include' });
      me = await r.text();
    } catch {
      // CORS: the answer stays unreadable either way.
    }
    return { socket, posts, me };
  }, havenUrl);

  assert.ok(!tried.socket.seen.includes('welcome'), `the host page got a counsellor socket: ${JSON.stringify(tried.socket)}`);
  assert.equal(tried.me, 'unreadable');
  assert.equal(await paused(dashboard), false, 'the host page paused a topic');
  // The logout POST did not end the supervisor's login either.
  const me = await dashboard.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(me, 200);

  // Haven's own page still has every power.
  const pausedHere = await dashboard.evaluate(async () => {
    const r = await fetch('/api/v1/topics/algemeen/pause', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'even pauze' }),
    });
    return r.status;
  });
  assert.equal(pausedHere, 204);
  assert.equal(await paused(dashboard), true);
  await context.close();
});
