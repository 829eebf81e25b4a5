// Abuse, as the people involved see it: a counsellor ends an abusive chat
// with a cool-down from the console's end dialog; the help-seeker, trying
// again, gets a kind message with the alternatives instead of a chat; the
// coordinator sees the block on the dashboard and lifts it, and a chat can
// start again.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHaven, launch, consoleLogin, openWidget, shot } from './harness.mjs';

let haven;
let browser;

before(async () => {
  haven = await startHaven();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await haven?.stop();
});

/** Opens the widget in a fresh context and asks for a chat. */
async function tryToChat(nickname) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${haven.base}/demo/`);
  const chat = await openWidget(page);
  await chat.fill('#nickname', nickname);
  await chat.click('#prechat button[type=submit]');
  return { context, page, chat };
}

test('a counsellor blocks an abusive chat and a coordinator lifts the block', async () => {
  const annaPassword = haven.account('anna', { display: 'Anna', capacity: 1 });
  const coordPassword = haven.account('coord', { role: 'supervisor', display: 'Coco' });
  const annaContext = await browser.newContext();
  const anna = await consoleLogin(annaContext, haven.base, 'anna', annaPassword);

  const first = await tryToChat('Troll');
  await first.chat.locator('#counsellor', { hasText: 'Anna' }).waitFor();
  await first.chat.fill('#text', 'iets kwetsends');
  await first.chat.press('#text', 'Enter');
  const pane = anna.locator('.pane:not([hidden])');
  await pane.locator('.msg.in', { hasText: 'iets kwetsends' }).waitFor();

  // The end dialog: keep chatting is the default; a block is opt-in.
  await pane.locator('button.end').click();
  const dialog = anna.locator('#end');
  await dialog.waitFor();
  assert.equal(await anna.evaluate(() => document.activeElement?.textContent), 'Keep chatting');
  assert.equal(await anna.locator('#end-block-hours').isDisabled(), true);
  await anna.check('#end-block');
  await anna.selectOption('#end-block-hours', '24');
  await anna.selectOption('#end-block-reason', 'abusive');
  await shot(anna, 'console-end-block');
  await dialog.locator('button[value=end]').click();
  await first.chat.locator('#done:not([hidden])').waitFor();
  await first.context.close();

  // Trying again from the same connection: a kind message, the day it
  // lapses and the alternatives; no chat starts.
  const second = await tryToChat('Troll');
  const done = second.chat.locator('#done:not([hidden])');
  await done.waitFor();
  const text = await done.textContent();
  assert.match(text, /geen nieuwe chat/, text);
  assert.ok(!/error|fout|4\d\d/i.test(text), `a technical message: ${text}`);
  await second.chat.locator('#alternatives:not([hidden])').waitFor();
  await shot(second.page, 'widget-blocked');
  await second.context.close();

  // The coordinator sees the block, without where it came from, and lifts it.
  const coordContext = await browser.newContext();
  const board = await coordContext.newPage();
  board.on('dialog', (d) => d.accept());
  await board.goto(`${haven.base}/supervisor/`);
  await board.fill('#name', 'coord');
  await board.fill('#password', coordPassword);
  await board.click('#login button[type=submit]');
  const row = board.locator('#blocks tbody tr', { hasText: 'abusive' });
  await row.waitFor();
  assert.match(await row.textContent(), /anna/);
  assert.ok(!(await row.textContent()).includes('127.0.0.1'));
  await row.locator('button', { hasText: 'Lift' }).click();
  await board.locator('#no-blocks:not([hidden])').waitFor();

  const third = await tryToChat('Troll');
  await third.chat.locator('#waiting:not([hidden]), #counsellor:not(:empty)').first().waitFor();
  await Promise.all([third.context.close(), coordContext.close(), annaContext.close()]);
});
