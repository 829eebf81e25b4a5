// A whole conversation between the widget on a helpline page and the
// counsellor console, in real Chromium against a real Haven.

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
  await browser?.close()
  await haven?.stop()
});

test('a help-seeker and a counsellor chat from start to end', async () => {
  const password = haven.account('anna', { display: 'Anna' });
  const staff = await browser.newContext();
  const desk = await consoleLogin(staff, haven.base, 'anna', password);
  await shot(desk, 'console-available')

  const seekerContext = await browser.newContext();
  const page = await seekerContext.newPage();
  await page.goto(`${haven.base}/demo/`)
  const chat = await openWidget(page);
  await shot(page, 'widget-prechat')

  await chat.fill('#nickname', 'Sam')
  await chat.check('input[name=urgent][value=yes]')
  await chat.click('#prechat button[type=submit]')
  await chat.fill('#text', 'Hallo, ik weet niet goed hoe ik moet beginnen.')
  await chat.press('#text', 'Enter')

  // The counsellor gets the session, with the pre-chat answers and the
  // message written while waiting.
  const tab = desk.locator('#tabs [role=tab]', { hasText: 'Sam' });
  await tab.waitFor()
  const pane = desk.locator('.pane:not([hidden])');
  await pane.locator('.about', { hasText: 'URGENT' }).waitFor()
  await pane.locator('.msg.in', { hasText: 'hoe ik moet beginnen' }).waitFor()

  await chat.locator('#counsellor', { hasText: 'Anna' }).waitFor()
  await pane.locator('textarea.message').fill('Neem je tijd. Ik lees mee.')
  await pane.locator('textarea.message').press('Enter')
  await chat.locator('.msg.in', { hasText: 'Neem je tijd' }).waitFor()

  // Both sides see their messages confirmed by the other.
  await chat.locator('.msg.out .state.delivered').first().waitFor()
  await pane.locator('.msg.out .state.delivered').first().waitFor()
  await shot(page, 'widget-chat')
  await shot(desk, 'console-chat')

  // Typing shows on the other side.
  await chat.locator('#text').pressSequentially('Dank')
  await pane.locator('.typing', { hasText: 'Sam is typing' }).waitFor()

  // The help-seeker ends, after confirming.
  await chat.click('#end')
  await chat.locator('#confirm-end[open]').waitFor()
  await chat.click('#end-yes')
  await chat.locator('#done:not([hidden])').waitFor()
  await pane.locator('.msg.note', { hasText: 'help-seeker ended' }).waitFor()
  assert.equal(await chat.evaluate(() => sessionStorage.length), 0, 'nothing stays stored after the end');
  await shot(page, 'widget-ended')

  await staff.close()
  await seekerContext.close()
});
