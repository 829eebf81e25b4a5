// Every language renders every string, and every string the code asks for
// exists in every catalogue (including one per protocol code).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { root, startHaven, launch, shot } from './harness.mjs';
import { ERROR_CODES, END_REASONS, UNAVAILABLE_REASONS, TOPIC_STATES } from '../public/shared/protocol.js';
import { pickLanguage, LANGUAGES } from '../public/shared/i18n.js';

const dir = join(root, 'web-widget', 'public', 'i18n');
const catalogues = Object.fromEntries(
  readdirSync(dir).map((f) => [f.replace('.json', ''), JSON.parse(readFileSync(join(dir, f), 'utf8'))]),
);

test('there is a catalogue for each language and they have the same keys', () => {
  assert.deepEqual(Object.keys(catalogues).sort(), [...LANGUAGES].sort());
  const keys = Object.keys(catalogues.en).sort();
  for (const [lang, cat] of Object.entries(catalogues)) {
    assert.deepEqual(Object.keys(cat).sort(), keys, `${lang} differs from en`);
    for (const [key, text] of Object.entries(cat)) assert.ok(text.trim(), `${lang}: ${key} is empty`);
  }
});

test('every key the chat uses, and one per protocol code, is in the catalogues', () => {
  const html = readFileSync(join(root, 'web-widget/public/embed/chat.html'), 'utf8');
  const js = readFileSync(join(root, 'web-widget/public/embed/chat.js'), 'utf8');
  const used = new Set([
    ...[...html.matchAll(/data-i18n="([^"]+)"/g)].map((m) => m[1]),
    ...[...html.matchAll(/data-i18n-attr="([^"]+)"/g)].flatMap((m) => m[1].split(';').map((p) => p.split(':')[1])),
    ...[...js.matchAll(/\btr\('([a-z_.]+)'/g)].map((m) => m[1]),
    ...[...js.matchAll(/\bnote\('([a-z_.]+)'/g)].map((m) => m[1]),
    ...[...js.matchAll(/connectionNotice\('([a-z_.]+)'/g)].map((m) => m[1]),
    ...ERROR_CODES.map((c) => `error.${c}`),
    ...END_REASONS.map((r) => `done.ended.${r}`),
    ...UNAVAILABLE_REASONS.map((r) => `unavailable.${r}`),
    ...TOPIC_STATES.map((s) => `topic.${s}`),
    ...['sending', 'sent', 'delivered', 'failed'].map((s) => `chat.state_${s}`),
  ]);
  assert.ok(used.size > 60, `found only ${used.size} keys; is the scan broken?`);
  for (const key of used) {
    for (const [lang, cat] of Object.entries(catalogues)) assert.ok(key in cat, `${lang} lacks ${key}`);
  }
});

test('the language follows the page, then the browser', () => {
  assert.equal(pickLanguage(['nl-BE']), 'nl-BE');
  assert.equal(pickLanguage(['nl-NL']), 'nl');
  assert.equal(pickLanguage(['fr']), 'fr-BE');
  assert.equal(pickLanguage(['fr-FR', 'nl']), 'fr-BE');
  assert.equal(pickLanguage(['', 'de-DE', 'en-GB']), 'en');
  assert.equal(pickLanguage(['de']), 'en');
});

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

for (const lang of LANGUAGES) {
  test(`the chat renders fully in ${lang}`, async () => {
    const page = await browser.newPage();
    await page.goto(`${haven.base}/embed/chat.html?lang=${lang}`);
    await page.waitForSelector('#app:not([hidden])');
    assert.equal(await page.evaluate(() => document.documentElement.lang), lang);
    const cat = catalogues[lang];
    const texts = await page.evaluate(() =>
      [...document.querySelectorAll('[data-i18n]')].map((el) => [
        /** @type {HTMLElement} */ (el).dataset.i18n,
        el.textContent,
      ]),
    );
    assert.ok(texts.length > 25, `only ${texts.length} strings`);
    for (const [key, text] of texts) assert.equal(text, cat[key], `${lang}: ${key}`);
    const raw = await page.evaluate(() => document.body.innerText.match(/\b[a-z_]+\.[a-z_]+\b/g) ?? []);
    assert.deepEqual(raw, [], `${lang}: untranslated keys on the page`);
    await shot(page, `widget-prechat-${lang}`);
    await page.close();
  });
}
