// An axe-core scan (WCAG 2.1 AA) of the widget, the console and the
// supervisor view in each state a person meets: no serious or critical
// violations.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import AxeBuilder from '@axe-core/playwright';
import { startHaven, launch, consoleLogin } from './harness.mjs';

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

async function scan(page, what) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `${what} has serious or critical accessibility violations`,
  );
}

test('the widget and the console pass an accessibility scan', async () => {
  const password = haven.account('eva', { display: 'Eva' });
  const staffContext = await browser.newContext();
  const login = await staffContext.newPage();
  await login.goto(`${haven.base}/console/`);
  await login.waitForSelector('#login:not([hidden])');
  await scan(login, 'the console login');
  await login.close();

  const page = await (await browser.newContext()).newPage();
  await page.goto(`${haven.base}/embed/chat.html?lang=nl`);
  await page.waitForSelector('#prechat:not([hidden])');
  await scan(page, 'the pre-chat form');
  await page.fill('#nickname', 'Ari');
  await page.click('#prechat button[type=submit]');
  await page.waitForSelector('#waiting:not([hidden])');
  await page.locator('#estimate:not(:empty)').waitFor();
  await scan(page, 'the waiting room');

  const desk = await consoleLogin(staffContext, haven.base, 'eva', password);
  await page.locator('#counsellor', { hasText: 'Eva' }).waitFor();
  await page.fill('#text', 'hallo');
  await page.press('#text', 'Enter');
  await desk.locator('.msg.in', { hasText: 'hallo' }).waitFor();
  await scan(page, 'the chat');
  await scan(desk, 'the console with a chat');
  await desk.click('.pane:not([hidden]) button.transfer');
  await desk.locator('#transfer[open]').waitFor();
  await scan(desk, 'the transfer dialog');
  await desk.click('#transfer button[value=cancel]');
  await desk.locator('#transfer[open]').waitFor({ state: 'detached' });
  await page.click('#end');
  await page.click('#end-yes');
  await page.waitForSelector('#done:not([hidden])');
  await scan(page, 'the end screen');
});

test('the supervisor view passes an accessibility scan', async () => {
  const password = haven.account('sup', { role: 'supervisor', display: 'Sup' });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${haven.base}/supervisor/`);
  await page.waitForSelector('#login:not([hidden])');
  await scan(page, 'the supervisor login');
  await page.fill('#name', 'sup');
  await page.fill('#password', password);
  await page.click('#login button[type=submit]');
  await page.locator('#topics tbody tr').first().waitFor();
  await scan(page, 'the supervisor view');
  await page.getByRole('button', { name: /^Pause / }).first().click();
  await page.locator('#pause[open]').waitFor();
  await scan(page, 'the pause dialog');
  await context.close();
});

test('the widget works at 320 px wide', async () => {
  const page = await browser.newPage({ viewport: { width: 320, height: 640 } });
  await page.goto(`${haven.base}/demo/`);
  await page.evaluate(() => /** @type {any} */ (window).HavenChat.open());
  const frame = await (async () => {
    for (;;) {
      const f = page.frames().find((x) => x.url().includes('/embed/chat.html'));
      if (f) return f;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await frame.waitForSelector('#prechat:not([hidden])');
  const width = await frame.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 320, `the chat scrolls sideways: ${width}px`);
  const box = await (await frame.frameElement()).boundingBox();
  assert.ok(box && box.width === 320 && box.height === 640, `the chat fills the screen: ${JSON.stringify(box)}`);
  const exit = await frame.locator('#quick-exit').boundingBox();
  assert.ok(exit && exit.x + exit.width <= 320, 'quick exit is on screen');
});
