// Quick exit, resume across a network drop, and what a host page can see.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startHaven, launch, consoleLogin, openWidget, startChat, shot, freePort } from './harness.mjs';

let haven;
let browser;
let site;
let siteOrigin;

before(async () => {
  // A helpline's own site on another origin, embedding the widget, with
  // the kind of script (a keylogger here) that analytics and session
  // replay tools amount to.
  const port = await freePort();
  siteOrigin = `http://localhost:${port}`;
  haven = await startHaven({
    extraOrigins: [siteOrigin],
    top: 'quick_exit_urls = ["/demo/neutral.html", "http://listed.invalid/weer"]',
  });
  site = createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><html lang="nl"><head><title>Hulplijn</title></head><body>
<h1>Hulplijn</h1>
<script>
  window.seen = [];
  for (const kind of ['keydown', 'keypress', 'input', 'keyup']) {
    document.addEventListener(kind, (e) => window.seen.push(e.key || e.data || ''), true);
  }
  window.addEventListener('message', (e) => window.seen.push(JSON.stringify(e.data)));
</script>
<script src="${haven.base}/widget.js" async data-lang="nl" data-exit-url="${siteOrigin}/weather"></script>
</body></html>`);
  });
  await new Promise((r) => site.listen(port, '127.0.0.1', r));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  site?.close();
  await haven?.stop();
});

/** Opens the widget on the demo page and gets the chat going. */
test('the host page cannot read what the help-seeker types or reads', async () => {
  const context = await browser.newContext();
  const { page, chat } = await startChat(context, `${siteOrigin}/`, 'Kim');
  const secret = 'mijn geheim 4821';
  await chat.locator('#text').pressSequentially(secret);
  await chat.press('#text', 'Enter');
  await chat.locator('.msg.out', { hasText: secret }).waitFor();
  const seen = await page.evaluate(() => /** @type {any} */ (window).seen.join(''));
  assert.ok(!seen.includes('4821') && !seen.includes('geheim'), `host page saw: ${seen}`);
  // Nor can it reach into the frame.
  const reach = await page.evaluate(() => {
    const host = document.getElementById('haven-chat');
    return { shadow: host?.shadowRoot ?? null, frames: window.frames.length };
  });
  assert.equal(reach.shadow, null, 'the launcher is in a closed shadow root');
  const blocked = await page.evaluate(() => {
    try {
      return window.frames[0].document.body.innerText;
    } catch (e) {
      return 'blocked';
    }
  });
  assert.equal(blocked, 'blocked');
  await context.close();
});

test('quick exit leaves no trace: page replaced, storage empty, no way back', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${haven.base}/demo/neutral.html?before`);
  await page.goto(`${haven.base}/demo/`);
  const chat = await openWidget(page);
  await chat.fill('#nickname', 'Lou');
  await chat.click('#prechat button[type=submit]');
  await chat.fill('#text', 'iemand kan meekijken');
  await chat.press('#text', 'Enter');
  await chat.locator('.msg.out').waitFor();
  assert.ok((await chat.evaluate(() => sessionStorage.length)) > 0, 'resume state kept while chatting');
  await shot(page, 'widget-waiting');

  await chat.click('#quick-exit');
  await page.waitForURL(`${haven.base}/demo/neutral.html`);
  // Same origin as the chat frame: its sessionStorage would be visible here.
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.equal(await page.evaluate(() => document.cookie), '');
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  await page.goBack();
  assert.equal(page.url(), `${haven.base}/demo/neutral.html?before`, 'back skips the chat page');
  await context.close();
});

test('the chat page on its own quick-exits only to a place the helpline lists', async () => {
  const context = await browser.newContext();
  const reached = [];
  for (const host of ['attacker.invalid', 'listed.invalid']) {
    await context.route(`http://${host}/**`, (route) => {
      reached.push(route.request().url());
      return route.fulfill({ contentType: 'text/html', body: '<p>elders</p>' });
    });
  }
  /** Opens chat.html with `exit` and presses quick exit; returns where it went. */
  const exitTo = async (exit) => {
    const page = await context.newPage();
    const learned = page.waitForResponse((r) => r.url().endsWith('/api/v1/helpline'));
    await page.goto(`${haven.base}/embed/chat.html?lang=nl&exit=${encodeURIComponent(exit)}`);
    await page.waitForSelector('#app:not([hidden])');
    await learned;
    await page.click('#quick-exit');
    await page.waitForURL((url) => !url.pathname.startsWith('/embed/'));
    const url = page.url();
    await page.close();
    return url;
  };
  // Someone else's address is not honoured: the helpline's first place is.
  assert.equal(await exitTo('http://attacker.invalid/phish'), `${haven.base}/demo/neutral.html`);
  assert.equal(await exitTo('//attacker.invalid/phish'), `${haven.base}/demo/neutral.html`);
  assert.ok(!reached.some((u) => u.includes('attacker')), `went to ${reached}`);
  // A listed one is.
  assert.equal(await exitTo('http://listed.invalid/weer'), 'http://listed.invalid/weer');
  await context.close();
});

test('pressing Escape twice on the host page is a quick exit too', async () => {
  const context = await browser.newContext();
  const { page } = await startChat(context, `${siteOrigin}/`, 'Jo');
  await page.locator('h1').click();
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await page.waitForURL(`${siteOrigin}/weather`);
  await context.close();
});

test('a dropped network resumes the chat with nothing lost or doubled', async () => {
  const password = haven.account('bram', { display: 'Bram', capacity: 1 });
  const staff = await browser.newContext();
  const desk = await consoleLogin(staff, haven.base, 'bram', password);
  const context = await browser.newContext();
  const { page, chat } = await startChat(context, `${haven.base}/demo/`, 'Noor');
  await chat.locator('#counsellor', { hasText: 'Bram' }).waitFor();
  const pane = desk.locator('.pane:not([hidden])');
  await pane.locator('.about', { hasText: 'Noor' }).waitFor();

  await context.setOffline(true);
  await chat.locator('#connection', { hasText: /./ }).waitFor();
  await shot(page, 'widget-reconnecting');
  for (const text of ['offline een', 'offline twee']) {
    await chat.fill('#text', text);
    await chat.press('#text', 'Enter');
  }
  for (const text of ['terwijl weg 1', 'terwijl weg 2', 'terwijl weg 3']) {
    await pane.locator('textarea.message').fill(text);
    await pane.locator('textarea.message').press('Enter');
  }
  await pane.locator('.msg.out .state.sent').nth(2).waitFor();
  await context.setOffline(false);

  await chat.locator('.msg.in', { hasText: 'terwijl weg 3' }).waitFor();
  await pane.locator('.msg.in', { hasText: 'offline twee' }).waitFor();
  await chat.locator('#connection').waitFor({ state: 'hidden' });
  const heard = await chat.locator('.msg.in p').allTextContents();
  assert.deepEqual(heard, ['terwijl weg 1', 'terwijl weg 2', 'terwijl weg 3']);
  const received = await pane.locator('.msg.in p').allTextContents();
  assert.deepEqual(received, ['offline een', 'offline twee']);
  // Each of the help-seeker's messages went out once and is acked.
  await chat.locator('.msg.out .state.sending').first().waitFor({ state: 'detached' });
  await staff.close();
  await context.close();
});
