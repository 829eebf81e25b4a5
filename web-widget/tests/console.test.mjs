// The counsellor's tools in the console, in real Chromium against a real
// Haven: canned responses from config, a private note, raising a hand, a
// warm transfer to a colleague with a note, the ring and logout.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHaven, launch, consoleLogin, startChat, shot } from './harness.mjs';

let haven;
let browser;

before(async () => {
  haven = await startHaven({
    toml: `
[console]
ring = "chime"
ring_repeat = "2s"

[[console.canned]]
title = "Welcome"
text = "Hi, I'm glad you wrote to us."
language = "en"

[[console.canned]]
title = "Welkom"
text = "Hoi, fijn dat je ons schrijft."
language = "nl"

[[console.canned]]
title = "Alleen jongeren"
text = "Dit staat nergens anders."
topics = ["jongeren"]

[topics.algemeen]
[topics.jongeren]
`,
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await haven?.stop();
});

test('canned responses, a private note, a raised hand and a warm transfer', async () => {
  const annaPassword = haven.account('anna', { display: 'Anna', capacity: 1 });
  const bobPassword = haven.account('bob', { display: 'Bob', capacity: 2 });
  const annaContext = await browser.newContext();
  const anna = await consoleLogin(annaContext, haven.base, 'anna', annaPassword);

  const seekerContext = await browser.newContext({ locale: 'nl-NL' });
  const { page, chat } = await startChat(seekerContext, `${haven.base}/demo/`, 'Sam');
  const pane = anna.locator('.pane:not([hidden])');
  await pane.locator('.about', { hasText: 'Sam' }).waitFor();

  // Canned responses for this topic, in the chat's language first; the
  // one for another topic is not offered.
  const titles = await pane.locator('select.canned option').allTextContents();
  assert.deepEqual(titles, ['Insert a canned response…', 'Welkom (nl)', 'Welcome (en)']);
  const box = pane.locator('textarea.message');
  await box.fill('Sam: ');
  await pane.locator('select.canned').selectOption({ label: 'Welkom (nl)' });
  assert.equal(await box.inputValue(), 'Sam: Hoi, fijn dat je ons schrijft.', 'inserted at the cursor');
  await box.press('End');
  await box.pressSequentially(' Ik ben Anna.');
  await box.press('Enter');
  await chat.locator('.msg.in', { hasText: 'Sam: Hoi, fijn dat je ons schrijft. Ik ben Anna.' }).waitFor();

  // A private note survives a reload of the console.
  await pane.locator('textarea.private').fill('Gaat over school.');
  await anna.reload();
  await anna.locator('.pane:not([hidden]) .about', { hasText: 'Sam' }).waitFor();
  assert.equal(await anna.locator('.pane:not([hidden]) textarea.private').inputValue(), 'Gaat over school.');

  // Raising a hand shows in the console, never to the help-seeker.
  await pane.locator('button.hand').click();
  await pane.locator('.msg.note', { hasText: 'Anna raised a hand' }).waitFor();
  assert.equal(await pane.locator('button.hand').getAttribute('aria-pressed'), 'true');
  await anna.locator('#tabs [role=tab] .hand-flag').waitFor();

  // A colleague comes online; Anna hands the chat over warmly, with her
  // note.
  const bobContext = await browser.newContext();
  const bob = await consoleLogin(bobContext, haven.base, 'bob', bobPassword);
  await bob.selectOption('#status', 'away');
  await pane.locator('button.transfer').click();
  const dialog = anna.locator('#transfer[open]');
  await dialog.waitFor();
  const colleagues = await dialog.locator('#transfer-colleague option').allTextContents();
  assert.equal(colleagues.length, 1, `only Bob, never Anna herself: ${colleagues}`);
  assert.match(colleagues[0], /^Bob — away, 0 of 2$/);
  assert.equal(await dialog.locator('#transfer-note').inputValue(), 'Gaat over school.');
  await dialog.locator('#transfer-warm').check();
  await shot(anna, 'console-transfer');
  await dialog.locator('button[value=go]').click();
  await pane.locator('.msg.note', { hasText: 'Asked Bob to take over' }).waitFor();

  // Bob's console rings until he answers, with the note in the offer.
  const offer = bob.locator('#offers li', { hasText: 'joining from Anna' });
  await offer.locator('.muted', { hasText: 'Note: Gaat over school.' }).waitFor();
  await bob.waitForFunction(() => document.title.startsWith('●'));
  const rang = Number(await bob.evaluate(() => document.body.dataset.rang));
  assert.ok(rang >= 1, 'the offer rang');
  await offer.locator('button', { hasText: 'Accept' }).click();
  await bob.waitForFunction(() => !document.title.startsWith('●'));
  const bobPane = bob.locator('.pane:not([hidden])');
  await bobPane.locator('.about', { hasText: 'Sam' }).waitFor();
  assert.equal(await bobPane.locator('textarea.private').inputValue(), 'From Anna: Gaat over school.');
  assert.equal(await bobPane.locator('button.hand').getAttribute('aria-pressed'), 'true', 'the hand stays up');
  await pane.locator('.msg.note', { hasText: 'Bob joined the chat' }).waitFor();

  // Both are in the chat; Bob lowers the hand and Anna sees it too.
  await bobPane.locator('textarea.message').fill('Hallo Sam, ik ben Bob.');
  await bobPane.locator('textarea.message').press('Enter');
  await chat.locator('.msg.in', { hasText: 'ik ben Bob' }).waitFor();
  await pane.locator('.msg.out', { hasText: 'ik ben Bob' }).waitFor();
  await bobPane.locator('button.hand').click();
  await pane.locator('.msg.note', { hasText: 'Bob lowered the hand' }).waitFor();
  await shot(bob, 'console-tools');

  // Anna leaves; the help-seeker goes on with Bob and never saw the hand
  // or the notes.
  await pane.locator('button.end').click();
  await anna.locator('#end button[value=end]').click();
  await pane.locator('.msg.note', { hasText: 'handed the chat on' }).or(pane.locator('.msg.note', { hasText: 'ended' })).first().waitFor();
  await chat.fill('#text', 'Nog steeds hier.');
  await chat.press('#text', 'Enter');
  await bobPane.locator('.msg.in', { hasText: 'Nog steeds hier.' }).waitFor();
  const seen = await chat.locator('body').textContent();
  for (const secret of ['hand', 'Gaat over school', 'hulp gevraagd']) {
    assert.ok(!seen.includes(secret), `the help-seeker saw "${secret}"`);
  }

  // Logging out forgets the notes in this browser tab.
  await anna.click('#logout');
  await anna.locator('#login:not([hidden])').waitFor();
  assert.equal(await anna.evaluate(() => sessionStorage.length), 0);

  await Promise.all([annaContext.close(), bobContext.close(), seekerContext.close()]);
  void page;
});

test('each counsellor picks their own ring, kept across reloads', async () => {
  const password = haven.account('clem', { display: 'Clem' });
  const context = await browser.newContext();
  const desk = await consoleLogin(context, haven.base, 'clem', password);
  assert.equal(await desk.locator('#ring').inputValue(), '', 'the helpline default to start with');
  await desk.selectOption('#ring', 'beep');
  await desk.click('#ring-test');
  assert.equal(await desk.evaluate(() => document.body.dataset.rang), '1');
  await desk.reload();
  await desk.locator('#desk:not([hidden])').waitFor();
  assert.equal(await desk.locator('#ring').inputValue(), 'beep');
  await context.close();
});

test('status and capacity wait until the server can hear them', async () => {
  const password = haven.account('cleo', { display: 'Cleo', capacity: 1 });
  const context = await browser.newContext();
  const desk = await context.newPage();
  // A slow start: the console's settings come late, and it connects only
  // after them.
  let release = () => {};
  const held = new Promise((resolve) => {
    release = resolve;
  });
  await desk.route('**/api/v1/console', async (route) => {
    await held;
    await route.continue();
  });
  await desk.goto(`${haven.base}/console/`);
  await desk.fill('#name', 'cleo');
  await desk.fill('#password', password);
  await desk.click('#login button[type=submit]');
  await desk.waitForSelector('#desk:not([hidden])');
  assert.equal(await desk.textContent('#connection'), 'Connecting…');
  assert.equal(await desk.isDisabled('#status'), true, 'a status picked now would go nowhere');
  assert.equal(await desk.isDisabled('#capacity'), true);
  release();
  await desk.waitForSelector('#status:not([disabled])');
  assert.equal(await desk.isDisabled('#capacity'), false);
  await desk.selectOption('#status', 'available');

  // The server heard it: the next help-seeker reaches Cleo.
  const seekerContext = await browser.newContext();
  const { chat } = await startChat(seekerContext, `${haven.base}/demo/`, 'Lou');
  await chat.locator('#counsellor', { hasText: 'Cleo' }).waitFor();
  await Promise.all([context.close(), seekerContext.close()]);
});
