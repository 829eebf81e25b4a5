// Size budgets: the loader at most 5 KB gzipped, the whole chat app at most
// 40 KB gzipped. Prints the sizes so they can be reported.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { root } from './harness.mjs';

const pub = join(root, 'web-widget', 'public');
const gz = (files) => files.reduce((n, f) => n + gzipSync(readFileSync(join(pub, f)), { level: 9 }).length, 0);

test('the loader and the chat app stay within their budgets', (t) => {
  const loader = gz(['widget.js']);
  // Everything the chat frame loads: page, script, styles, shared modules
  // and one catalogue (it loads only its own language).
  const app = gz([
    'embed/chat.html',
    'embed/chat.js',
    'embed/chat.css',
    'shared/socket.js',
    'shared/i18n.js',
    'shared/protocol.js',
    'shared/tone.js',
    'i18n/nl-BE.json',
  ]);
  t.diagnostic(`loader ${loader} B gzipped; chat app ${app} B gzipped`);
  assert.ok(loader <= 5 * 1024, `loader is ${loader} B gzipped`);
  assert.ok(app <= 40 * 1024, `chat app is ${app} B gzipped`);
});
