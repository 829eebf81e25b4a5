// A single node restarts (SIGTERM): its chats cannot be carried over, and
// everyone is told so plainly, in their language, instead of being left to
// reconnect to a session that is gone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, startHaven, launch, consoleLogin, shot } from './harness.mjs';

const catalogue = (lang) => JSON.parse(readFileSync(join(root, 'web-widget/public/i18n', `${lang}.json`), 'utf8'));

let haven;
let browser;

before(async () => {
  haven = await startHaven({
    top: 'drain_delay = "0s"',
    toml: `[topics.algemeen]
alternatives = [{ name = "Tele-Onthaal", phone = "106" }]`,
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await haven?.stop();
});

/** Opens the chat page in `lang` and asks for a chat as `nickname`. */
async function ask(lang, nickname) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${haven.base}/embed/chat.html?lang=${lang}`);
  await page.waitForSelector('#app:not([hidden])');
  await page.fill('#nickname', nickname);
  await page.click('#prechat button[type=submit]');
  await page.locator('#waiting:not([hidden]), #counsellor:not(:empty)').first().waitFor();
  return page;
}

test('a restart tells the help-seeker in a chat, the one waiting and the counsellor that their chat ended', async () => {
  const password = haven.account('anna', { display: 'Anna', capacity: 1 });
  const staff = await browser.newContext();
  const desk = await consoleLogin(staff, haven.base, 'anna', password);

  // Sam (Flemish) is with Anna; Camille (French) waits behind him.
  const sam = await ask('nl-BE', 'Sam');
  await sam.locator('#counsellor', { hasText: 'Anna' }).waitFor();
  const pane = desk.locator('.pane:not([hidden])');
  await pane.locator('textarea.message').fill('Ik ben er. Vertel maar.');
  await pane.locator('textarea.message').press('Enter');
  await sam.locator('.msg.in', { hasText: 'Vertel maar' }).waitFor();
  const camille = await ask('fr-BE', 'Camille');
  await camille.locator('#waiting:not([hidden])').waitFor();

  await haven.stop();

  for (const [page, lang] of [
    [sam, 'nl-BE'],
    [camille, 'fr-BE'],
  ]) {
    const words = catalogue(lang);
    await page.locator('#done:not([hidden])').waitFor();
    assert.equal(await page.textContent('#done-heading'), words['done.ended_heading']);
    assert.equal(await page.textContent('#done-text'), words['done.ended.service_restarted']);
    // Where else to turn, and a new chat, right there.
    await page.locator('#alternatives:not([hidden]) li', { hasText: 'Tele-Onthaal' }).waitFor();
    assert.ok(await page.isVisible('#again'));
    // Not "the connection was gone too long", and nothing kept behind.
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  }
  await shot(sam, 'widget-restarted-nl-BE');
  await shot(camille, 'widget-restarted-fr-BE');

  // The counsellor keeps the chat on screen, ended, and is told why and
  // what to do; the console does not try to resume.
  await pane.locator('.msg.note', { hasText: 'Haven restarted and this chat ended' }).waitFor();
  await desk.locator('#connection', { hasText: 'Reload this page to log in again' }).waitFor();
  await pane.locator('.msg.out', { hasText: 'Vertel maar' }).waitFor();
  await shot(desk, 'console-restarted');
  await staff.close();
});
