// Recorded chats in the browser: a topic that asks lets the help-seeker
// say yes or no before the chat, the console shows the answer, and a yes
// leaves a transcript that only the offline key opens.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHaven, launch, consoleLogin, openWidget, shot, havenBin } from './harness.mjs';

let haven;
let browser;
let identity;

before(async () => {
  // The key pair is made outside the server's data dir, as an operator
  // would keep it offline.
  identity = join(mkdtempSync(join(tmpdir(), 'haven-key-')), 'identity.txt');
  const keygen = spawnSync(havenBin(), ['keygen', '--out', identity], { encoding: 'utf8' });
  assert.equal(keygen.status, 0, keygen.stderr);
  const recipient = keygen.stdout.trim();
  haven = await startHaven({
    top: `transcripts = "ask"\ntranscript_recipients = ["${recipient}"]`,
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await haven?.stop();
});

/** Opens the widget and fills the pre-chat form; `consent` ticks the box. */
async function begin(nickname, consent) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${haven.base}/demo/`);
  const chat = await openWidget(page);
  await chat.locator('#record-ask:not([hidden])').waitFor();
  assert.equal(await chat.isHidden('#record-on'), true);
  assert.equal(await chat.isChecked('#record-consent'), false, 'no answer means no');
  const notice = await chat.textContent('#privacy-transcript');
  // The demo page is Dutch.
  assert.match(notice ?? '', /Jij beslist of er een verslag/);
  await chat.fill('#nickname', nickname);
  if (consent) await chat.check('#record-consent');
  await shot(page, `widget-record-${consent ? 'yes' : 'no'}`);
  await chat.click('#prechat button[type=submit]');
  return { context, page, chat };
}

test('an ask topic asks before the chat, honours a no, and records a yes', async () => {
  const password = haven.account('anna', { display: 'Anna', capacity: 2 });
  const staff = await browser.newContext();
  const desk = await consoleLogin(staff, haven.base, 'anna', password);

  const yes = await begin('Ja', true);
  await yes.chat.fill('#text', 'Mag bewaard worden: ik heb hulp nodig.');
  await yes.chat.press('#text', 'Enter');
  await yes.chat.locator('.msg', { hasText: 'versleuteld verslag bewaard' }).waitFor();
  await desk.locator('#tabs [role=tab]', { hasText: 'Ja' }).click();
  await desk.locator('.pane:not([hidden]) .about', { hasText: 'recorded (encrypted)' }).waitFor();

  const no = await begin('Nee', false);
  await no.chat.fill('#text', 'Liever niets bewaren.');
  await no.chat.press('#text', 'Enter');
  await desk.locator('#tabs [role=tab]', { hasText: 'Nee' }).click();
  const pane = desk.locator('.pane:not([hidden])');
  await pane.locator('.about', { hasText: 'not recorded: the help-seeker said no' }).waitFor();
  await pane.locator('.msg.in', { hasText: 'Liever niets bewaren.' }).waitFor();
  assert.equal(
    await no.chat.locator('.msg', { hasText: 'verslag' }).count(),
    0,
    'the widget says nothing about a record that is not kept',
  );
  await shot(desk, 'console-record-declined');

  // Both end; only the yes left a transcript, and the key opens it.
  for (const side of [yes, no]) {
    await side.chat.click('#end');
    await side.chat.click('#end-yes');
    await side.chat.locator('#done:not([hidden])').waitFor();
  }
  const dir = join(haven.data, 'transcripts', 'algemeen');
  let files = [];
  for (let i = 0; i < 100 && files.length === 0; i++) {
    files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.haven')) : [];
    if (files.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(files.length, 1, `one transcript, not ${files.length}`);
  const decrypt = spawnSync(
    havenBin(),
    ['transcript', 'decrypt', '--identity', identity, join(dir, files[0])],
    { encoding: 'utf8' },
  );
  assert.equal(decrypt.status, 0, decrypt.stderr);
  assert.match(decrypt.stdout, /Ja \(help-seeker\): Mag bewaard worden: ik heb hulp nodig\./);
  assert.doesNotMatch(decrypt.stdout, /Liever niets bewaren/);
  await staff.close();
  await yes.context.close();
  await no.context.close();
});

test('a topic that always records says so before the chat starts', async () => {
  const recipient = spawnSync(havenBin(), ['keygen', '--out', `${identity}.on`], { encoding: 'utf8' }).stdout.trim();
  const always = await startHaven({ top: `transcripts = "on"\ntranscript_recipients = ["${recipient}"]` });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${always.base}/demo/`);
    const chat = await openWidget(page);
    await chat.locator('#record-on:not([hidden])').waitFor();
    assert.equal(await chat.isHidden('#record-ask'), true, 'nothing to tick: it is not a choice');
    assert.match(await chat.textContent('#record-on') ?? '', /bewaart een versleuteld verslag/);
    assert.match(await chat.textContent('#privacy-transcript') ?? '', /bewaart een versleuteld verslag/);
    await context.close();
  } finally {
    await always.stop();
  }
});
