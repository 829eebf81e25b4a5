// The supervisor dashboard in real Chromium against a real Haven: numbers
// follow help-seekers queueing, being answered and leaving; alerts for an
// urgent wait and a raised hand; pausing a topic reaches a help-seeker's
// widget; the chart draws; counsellors may not open it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHaven, launch, consoleLogin, openWidget, shot } from './harness.mjs';

let haven;
let browser;

before(async () => {
  haven = await startHaven({
    toml: `
[supervisor]
snapshot_interval = "200ms"
history_interval = "200ms"
alert_urgent_wait = "1s"
`,
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await haven?.stop();
});

/** Logs a supervisor in on /supervisor/. */
async function board(context, name, password) {
  const page = await context.newPage();
  await page.goto(`${haven.base}/supervisor/`);
  await page.fill('#name', name);
  await page.fill('#password', password);
  await page.click('#login button[type=submit]');
  await page.locator('#board:not([hidden])').waitFor();
  await page.locator('#live', { hasText: 'Live' }).waitFor();
  return page;
}

/** The text of a topic row's cells. */
async function row(page, topic) {
  const cells = page.locator('#topics tbody tr', { has: page.locator('td', { hasText: topic }) }).first().locator('td');
  return cells.allTextContents();
}

test('the dashboard follows queues, sessions, alerts and pauses live', async () => {
  const coordPassword = haven.account('coord', { role: 'supervisor', display: 'Coco' });
  const annaPassword = haven.account('anna', { display: 'Anna', capacity: 1 });
  const coordContext = await browser.newContext();
  const dash = await board(coordContext, 'coord', coordPassword);

  // An urgent help-seeker waits: the queue shows them, then an alert.
  const seekerContext = await browser.newContext();
  const page = await seekerContext.newPage();
  await page.goto(`${haven.base}/demo/`);
  const chat = await openWidget(page);
  await chat.fill('#nickname', 'Sam');
  await chat.check('input[name=urgent][value=yes]');
  await chat.click('#prechat button[type=submit]');
  await dash.waitForFunction(() => {
    const r = [...document.querySelectorAll('#topics tbody tr')].find((tr) => tr.textContent.includes('algemeen'));
    return r && r.children[1].textContent === '1' && r.children[2].textContent === '1';
  });
  await dash.locator('#waiting tbody tr', { hasText: 'urgent' }).waitFor();
  await dash.locator('#alerts li', { hasText: 'An urgent help-seeker has waited' }).waitFor();
  await shot(dash, 'supervisor-waiting');

  // A counsellor answers: one active session, answered today, busy.
  const staff = await browser.newContext();
  const desk = await consoleLogin(staff, haven.base, 'anna', annaPassword);
  await dash.locator('#sessions tbody tr', { hasText: 'Anna' }).waitFor();
  await dash.waitForFunction(() => {
    const r = [...document.querySelectorAll('#topics tbody tr')].find((tr) => tr.textContent.includes('algemeen'));
    return r && r.children[1].textContent === '0' && r.children[6].textContent === '1';
  });
  await dash.locator('#counsellors tbody tr', { hasText: 'Anna' }).locator('td', { hasText: 'Busy' }).waitFor();
  // With someone on duty there is an estimate for the next arrival.
  await dash.waitForFunction(() => {
    const r = [...document.querySelectorAll('#topics tbody tr')].find((tr) => tr.textContent.includes('algemeen'));
    return r && /^\d+ min$/.test(r.children[4].textContent);
  });
  assert.match(await dash.locator('#staffing').textContent(), /1 busy/);

  // A raised hand is an alert too, and shows on the session.
  const pane = desk.locator('.pane:not([hidden])');
  await pane.locator('button.hand').click();
  await dash.locator('#alerts li.hand', { hasText: 'Anna raised a hand' }).waitFor();
  await dash.locator('#sessions tbody tr', { hasText: 'hand up' }).waitFor();
  await shot(dash, 'supervisor-live');

  // Pausing the topic with a message reaches a new help-seeker's widget.
  const [cells] = [await row(dash, 'algemeen')];
  assert.equal(cells[0], 'algemeen');
  await dash.getByRole('button', { name: 'Pause algemeen' }).click();
  await dash.locator('#pause[open]').waitFor();
  await dash.fill('#pause-message', 'We zijn zo terug. Bel 113 bij nood.');
  await dash.click('#pause button[value=go]');
  await dash.locator('#topics tbody tr.paused', { hasText: 'algemeen' }).waitFor();
  const otherContext = await browser.newContext();
  const other = await otherContext.newPage();
  await other.goto(`${haven.base}/demo/`);
  const otherChat = await openWidget(other);
  await otherChat.fill('#nickname', 'Kim');
  await otherChat.click('#prechat button[type=submit]');
  await otherChat.locator('text=We zijn zo terug. Bel 113 bij nood.').waitFor();
  await dash.getByRole('button', { name: 'Resume algemeen' }).click();
  await dash.locator('#topics tbody tr.paused').waitFor({ state: 'hidden' });

  // The help-seeker ends: no active session left.
  await chat.click('#end');
  await chat.click('#end-yes');
  await dash.locator('#sessions tbody tr').first().waitFor({ state: 'detached' });

  // The chart is drawn from the history.
  await dash.reload();
  await dash.locator('#board:not([hidden])').waitFor();
  await dash.locator('#chart canvas').waitFor();

  await Promise.all([coordContext.close(), seekerContext.close(), staff.close(), otherContext.close()]);
});

test('a counsellor cannot open the supervisor view', async () => {
  const password = haven.account('bob', { display: 'Bob' });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${haven.base}/supervisor/`);
  await page.fill('#name', 'bob');
  await page.fill('#password', password);
  await page.click('#login button[type=submit]');
  await page.locator('#forbidden:not([hidden])').waitFor();
  const feed = await page.evaluate(async () => (await fetch('/api/v1/supervisor/feed')).status);
  assert.equal(feed, 403);
  await context.close();
});

test('a supervisor watches, whispers and joins; the help-seeker never sees the whisper', async () => {
  const coordPassword = haven.account('coco', { role: 'supervisor', display: 'Coco' });
  const evaPassword = haven.account('eva', { display: 'Eva', capacity: 1 });
  const staff = await browser.newContext();
  const desk = await consoleLogin(staff, haven.base, 'eva', evaPassword);
  const seekerContext = await browser.newContext({ locale: 'nl-NL' });
  const page = await seekerContext.newPage();
  await page.goto(`${haven.base}/demo/`);
  const chat = await openWidget(page);
  await chat.fill('#nickname', 'Noor');
  await chat.click('#prechat button[type=submit]');
  await chat.locator('#counsellor', { hasText: 'Eva' }).waitFor();
  const pane = desk.locator('.pane:not([hidden])');

  const coordContext = await browser.newContext();
  const dash = await board(coordContext, 'coco', coordPassword);
  await dash.getByRole('button', { name: /^Watch the algemeen chat with Eva/ }).click();
  await dash.locator('#watch-about', { hasText: 'algemeen · Eva' }).waitFor();
  await pane.locator('.msg.note', { hasText: 'Coco (supervisor) is watching this chat' }).waitFor();

  // Both sides' messages reach the watcher.
  await chat.fill('#text', 'Ik ben bang.');
  await chat.press('#text', 'Enter');
  await dash.locator('#watch-log li.seeker', { hasText: 'Ik ben bang.' }).waitFor();
  await pane.locator('textarea.message').fill('Ik ben er. Waar ben je nu?');
  await pane.locator('textarea.message').press('Enter');
  await dash.locator('#watch-log li.counsellor', { hasText: 'Waar ben je nu?' }).waitFor();

  // A whisper reaches the counsellor only.
  await dash.fill('#whisper-text', 'Vraag naar een veilige plek voor vannacht.');
  await dash.click('#whisper-form button[type=submit]');
  await pane.locator('.msg.whisper', { hasText: 'veilige plek voor vannacht' }).waitFor();
  await dash.locator('#watch-log li.whisper', { hasText: 'veilige plek' }).waitFor();
  await shot(desk, 'console-whisper');
  // Something sent after the whisper has reached the help-seeker, so the
  // whisper would have by now if it ever could.
  await pane.locator('textarea.message').fill('Heb je een veilige plek voor vannacht?');
  await pane.locator('textarea.message').press('Enter');
  await chat.locator('.msg.in', { hasText: 'Heb je een veilige plek' }).waitFor();

  // Joining is visible to the help-seeker; the supervisor writes as themself.
  await dash.click('#join');
  await dash.fill('#say-text', 'Hallo Noor, ik ben Coco. Ik lees mee.');
  await dash.click('#say-form button[type=submit]');
  await chat.locator('.msg.in', { hasText: 'ik ben Coco' }).waitFor();
  await pane.locator('.msg.out', { hasText: 'ik ben Coco' }).waitFor();
  await shot(dash, 'supervisor-watch');

  const seen = await chat.locator('body').textContent();
  assert.ok(!seen.includes('Vraag naar een veilige plek'), 'the help-seeker saw the whisper');
  assert.ok(!/watching|kijkt mee/i.test(seen), 'the help-seeker was told of the silent watch');
  assert.ok(seen.includes('Coco'), 'the visible join shows');

  await dash.click('#stop-watch');
  await pane.locator('.msg.note', { hasText: 'Coco stopped watching' }).waitFor();
  const audit = await dash.evaluate(async () => (await (await fetch('/api/v1/supervisor/audit')).json()).entries.map((e) => e.action));
  assert.deepEqual(audit.slice(-4), ['observe', 'whisper', 'join', 'stop_observing']);

  await Promise.all([staff.close(), seekerContext.close(), coordContext.close()]);
});
