// Two counsellors with one seat each and three help-seekers: two chats,
// one in the queue at position 1, and the queue shown to the counsellors.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHaven, launch, consoleLogin, shot } from './harness.mjs';

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

async function seeker(nickname) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${haven.base}/embed/chat.html?lang=en`);
  await page.fill('#nickname', nickname);
  await page.click('#prechat button[type=submit]');
  return page;
}

test('capacity and queue positions show correctly on both sides', async () => {
  const desks = [];
  for (const name of ['ida', 'tom']) {
    const password = haven.account(name, { capacity: 1 });
    const desk = await consoleLogin(await browser.newContext(), haven.base, name, password);
    await desk.locator('#load', { hasText: '0 of 1' }).waitFor();
    desks.push(desk);
  }
  const first = await seeker('Een');
  await first.locator('#counsellor:not(:empty)').waitFor();
  const second = await seeker('Twee');
  await second.locator('#counsellor:not(:empty)').waitFor();
  const third = await seeker('Drie');
  await third.locator('#position', { hasText: 'You are next.' }).waitFor();
  assert.equal(await third.locator('#counsellor').textContent(), '');

  for (const desk of desks) {
    await desk.locator('#load', { hasText: '1 of 1' }).waitFor();
    const row = desk.locator('#queues tbody tr', { hasText: 'algemeen' });
    await row.locator('td:nth-child(2)', { hasText: /^1$/ }).waitFor();
    await row.locator('td:nth-child(4)', { hasText: /^0$/ }).waitFor();
  }
  await shot(desks[0], 'console-queue');
  await shot(third, 'widget-queue-position');

  // The first chat ends; after wrap-up ("ready now") its counsellor takes
  // the third help-seeker.
  await first.click('#end');
  await first.click('#end-yes');
  await first.locator('#done:not([hidden])').waitFor();
  const freed = (await desks[0].locator('.pane', { hasText: 'Een' }).count()) > 0 ? desks[0] : desks[1];
  const ready = freed.locator('#ready');
  if (await ready.isVisible()) await ready.click();
  await third.locator('#counsellor:not(:empty)').waitFor();
  await freed.locator('#tabs [role=tab]', { hasText: 'Drie' }).waitFor();
});
