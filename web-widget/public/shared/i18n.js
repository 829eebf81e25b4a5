// @ts-check
// Strings come from one flat JSON catalogue per language under /i18n/. The
// server sends codes, never sentences; the browser picks the words.

/** The languages with a catalogue, most specific first. */
export const LANGUAGES = Object.freeze(['nl-BE', 'nl', 'fr-BE', 'en']);

/**
 * The best catalogue for what the page or the browser asks for: an exact
 * match, else the same language in another region (`fr` → `fr-BE`,
 * `nl-NL` → `nl`), else English.
 * @param {readonly string[]} wanted language tags, preferred first
 */
export function pickLanguage(wanted) {
  for (const tag of wanted) {
    if (!tag) continue;
    const lower = tag.toLowerCase();
    const exact = LANGUAGES.find((l) => l.toLowerCase() === lower);
    if (exact) return exact;
    const base = lower.split('-')[0];
    const plain = LANGUAGES.find((l) => l === base);
    if (plain) return plain;
    const regional = LANGUAGES.find((l) => l.toLowerCase().startsWith(`${base}-`));
    if (regional) return regional;
  }
  return 'en';
}

/** @typedef {Record<string, string>} Catalogue */

/** @param {string} lang @returns {Promise<Catalogue>} */
export async function loadCatalogue(lang) {
  const response = await fetch(`/i18n/${lang}.json`);
  if (!response.ok) throw new Error(`no catalogue for ${lang}`);
  return response.json();
}

/**
 * A translated string; `{name}` placeholders take `vars`. A missing key
 * shows as the key itself, so a gap is visible (and the tests catch it).
 * @param {Catalogue} cat
 * @param {string} key
 * @param {Record<string, string | number>} [vars]
 */
export function t(cat, key, vars) {
  const text = cat[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    name in vars ? String(vars[name]) : whole,
  );
}

/**
 * Fills every `data-i18n="key"` element's text, and every
 * `data-i18n-attr="attr:key;attr:key"` attribute, under `root`.
 * @param {ParentNode} root
 * @param {Catalogue} cat
 */
export function translate(root, cat) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(cat, /** @type {HTMLElement} */ (el).dataset.i18n ?? '');
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    const spec = /** @type {HTMLElement} */ (el).dataset.i18nAttr ?? '';
    for (const pair of spec.split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) el.setAttribute(attr.trim(), t(cat, key.trim()));
    }
  }
}
