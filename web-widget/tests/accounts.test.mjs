// Staff accounts in the browser: the first start's admin changes the
// generated password at the first login (and its file goes); a role that
// requires two-step login sets it up (QR code, first code, recovery codes)
// before the desk opens, and is asked for the app's code at every login.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startHaven, launch, shot } from './harness.mjs';

let haven;
let browser;

before(async () => {
  haven = await startHaven({ toml: '[auth]\nsecond_factor_roles = ["counsellor"]\n' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await haven?.stop();
});

/** What an authenticator app shows for a base32 `secret` at `unix` seconds. */
function totp(secret, unix) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const h = createHmac('sha1', key).update(counter).digest();
  const at = h[19] & 0xf;
  const n = ((h[at] & 0x7f) << 24) | (h[at + 1] << 16) | (h[at + 2] << 8) | h[at + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

/** @param {import('playwright-core').Page} page */
async function logIn(page, url, name, password) {
  await page.goto(url);
  await page.fill('#name', name);
  await page.fill('#password', password);
  await page.click('#login button[type=submit]');
}

test('the first start\'s admin chooses a new password before anything else', async () => {
  const file = join(haven.data, 'initial-admin-password');
  assert.ok(existsSync(file), 'no initial password file');
  const generated = readFileSync(file, 'utf8').trim();
  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page, `${haven.base}/supervisor/`, 'admin', generated);
  const dialog = page.locator('dialog.account');
  await dialog.locator('h2', { hasText: 'Choose a new password' }).waitFor();
  assert.equal(await page.locator('#board').isHidden(), true, 'the board opened first');
  await dialog.locator('#current').fill(generated);
  await dialog.locator('#new').fill('Welcome2024!');
  await dialog.locator('#again').fill('Welcome2024!');
  await dialog.locator('button[type=submit]').click();
  await dialog.locator('.error', { hasText: 'common' }).waitFor();
  await dialog.locator('#new').fill('tulpen fiets regen zeven');
  await dialog.locator('#again').fill('tulpen fiets regen zeven');
  await dialog.locator('button[type=submit]').click();
  await page.locator('#board:not([hidden])').waitFor();
  assert.ok(!existsSync(file), 'the initial password file is still there');
  await context.close();
});

test('a counsellor sets up two-step login and is asked for the code at every login', async () => {
  const password = haven.account('anna', { display: 'Anna' });
  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page, `${haven.base}/console/`, 'anna', password);
  const dialog = page.locator('dialog.account');
  await dialog.locator('h2', { hasText: 'two-step' }).waitFor();
  assert.equal(await page.locator('#desk').isHidden(), true, 'the desk opened first');
  const secret = (await dialog.locator('.secret code').textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.ok((await dialog.locator('img').getAttribute('src')).startsWith('data:image/svg+xml;base64,'));
  await shot(page, 'console-two-step');
  await dialog.locator('#code').fill(totp(secret, Date.now() / 1000));
  await dialog.locator('button[type=submit]').click();
  const codes = page.locator('dialog.account .recovery-codes li');
  await codes.first().waitFor();
  assert.equal(await codes.count(), 10);
  await page.locator('dialog.account button[type=submit]').click();
  await page.locator('#desk:not([hidden])').waitFor();

  // Log out and in: the app's code is asked after the password.
  await page.click('#logout');
  await page.locator('#login:not([hidden])').waitFor();
  await page.fill('#name', 'anna');
  await page.fill('#password', password);
  await page.click('#login button[type=submit]');
  await page.locator('#code:not([hidden])').waitFor();
  await page.fill('#code', '000000');
  await page.click('#login button[type=submit]');
  await page.locator('#login-error', { hasText: 'not right' }).waitFor();
  // The code setting it up used this step's; the app's next one works now.
  await page.fill('#code', totp(secret, Date.now() / 1000 + 30));
  await page.click('#login button[type=submit]');
  await page.locator('#desk:not([hidden])').waitFor();
  await context.close();
});
