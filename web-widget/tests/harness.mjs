// Test harness: a real Haven on a free port with its own data dir, real
// counsellor accounts, and headless Debian Chromium driven by
// playwright-core. Nothing here stands in for the thing under test.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..');
export const artifacts = join(root, 'target', 'web-tests');

/** The haven binary: HAVEN_BIN, else the debug build `cargo test` made. */
export function havenBin() {
  const bin = process.env.WEBTEST_HAVEN ?? join(root, 'target', 'debug', 'haven');
  if (!existsSync(bin)) throw new Error(`no haven binary at ${bin}; run cargo build first`);
  return bin;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts Haven. `extraOrigins` are helpline sites allowed to embed it;
 * `hosts` are more names Haven itself is reached by (mapped to loopback in
 * the browser); `top` goes into the config's top level, `toml` is appended
 * to it.
 */
export async function startHaven({ extraOrigins = [], hosts = [], top = '', toml = '' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'haven-web-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const own = ['127.0.0.1', 'localhost', ...hosts].map((h) => `http://${h}:${port}`);
  const origins = [...own, ...extraOrigins];
  const config = join(dir, 'haven.toml');
  writeFileSync(
    config,
    `listen = "127.0.0.1:${port}"
data_dir = "${join(dir, 'data')}"
allowed_origins = ${JSON.stringify(origins)}
${top}
[log]
format = "json"
level = "warn"
${toml}`,
  );
  const bin = havenBin();
  const child = spawn(bin, ['--config', config, 'serve'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => {
    log += chunk;
  });
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const response = await fetch(`${base}/healthz`);
      if (response.ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`haven did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base,
    port,
    /** Adds an account and returns its password. */
    account(name, { role = 'counsellor', capacity = 2, display = '' } = {}) {
      const password = `pw-${name}-0123456789`;
      const args = ['--config', config, 'account', 'add', name, '--role', role, '--password-stdin', '--capacity', String(capacity)];
      if (display) args.push('--display-name', display);
      const out = spawnSync(bin, args, { input: `${password}\n`, encoding: 'utf8' });
      if (out.status !== 0) throw new Error(`account add failed: ${out.stderr}`);
      return password;
    },
    log: () => log,
    /** The data directory. */
    data: join(dir, 'data'),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Launches Chromium; `args` are extra command-line switches. */
export async function launch({ args = [] } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      ...args,
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** Saves a screenshot under target/web-tests/. */
export async function shot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
}

/** Logs a counsellor in through the console's form and sets them available. */
export async function consoleLogin(context, base, name, password) {
  const page = await context.newPage();
  page.on('dialog', (dialog) => dialog.accept());
  await page.goto(`${base}/console/`);
  await page.fill('#name', name);
  await page.fill('#password', password);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#desk:not([hidden])');
  await page.waitForFunction(() => document.querySelector('#connection')?.textContent === '');
  await page.selectOption('#status', 'available');
  return page;
}

/** The chat frame inside a host page that embeds the widget. */
export async function openWidget(page) {
  await page.waitForFunction(() => Boolean(/** @type {any} */ (window).HavenChat));
  await page.evaluate(() => /** @type {any} */ (window).HavenChat.open());
  // The iframe lives in a closed shadow root, out of reach of selectors:
  // find it among the page's frames.
  for (let i = 0; i < 100; i++) {
    const frame = page.frames().find((f) => f.url().includes('/embed/chat.html'));
    if (frame) {
      await frame.waitForSelector('#app:not([hidden])');
      return frame;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the chat frame did not appear');
}

/** Opens the widget on `url`, gives a nickname and asks for a chat. */
export async function startChat(context, url, nickname) {
  const page = await context.newPage();
  await page.goto(url);
  const chat = await openWidget(page);
  await chat.fill('#nickname', nickname);
  await chat.click('#prechat button[type=submit]');
  await chat.locator('#waiting:not([hidden]), #counsellor:not(:empty)').first().waitFor();
  return { page, chat };
}
